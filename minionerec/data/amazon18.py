"""Amazon Reviews 2018 raw files (``<D>_5.json[.gz]`` / ``<D>.json[.gz]`` + ``meta_<D>.json[.gz]``):
the reader, its ``data:`` config and the stage run."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from minionerec.errors import InputError
from minionerec.io import require_file
from minionerec.data.build import check_dataset_name, check_source, process
from minionerec.data.jsonl import ReviewKeys, as_float, as_int, first_existing, read_meta, read_reviews
from minionerec.data.protocol import Interaction, ProtocolOptions, RawData
from minionerec.text import amazon18_brand, amazon18_description, clean_amazon18_title, join_cleaned

AMAZON18_HELP = (
    "download them from the Amazon Review Data (2018) pages of the McAuley lab, UCSD "
    "(https://cseweb.ucsd.edu/~jmcauley/datasets/amazon_v2/, mirror: https://nijianmo.github.io/amazon/)"
)
AMAZON18_KEYS = ReviewKeys("reviewerID", "asin", "unixReviewTime", "overall")


@dataclass
class Amazon18Config(ProtocolOptions):
    """The ``data:`` section for Amazon 2018 raw files."""

    source: str = field(default="amazon18", metadata={"help": "Raw format of this config's data (amazon18)."})
    reviews_file: str = field(default="", metadata={"help": "Reviews file; empty: found in input_path."})
    metadata_file: str = field(
        default="", metadata={"help": "Meta file; empty: meta_<dataset>.json[.gz] in input_path."}
    )


def amazon18_files(
    input_path: str | Path, dataset: str, reviews_file: str = "", metadata_file: str = ""
) -> tuple[Path, Path]:
    """The reviews and meta files: ``<D>_5.json[.gz]`` (else ``<D>.json[.gz]``) and ``meta_<D>.json[.gz]``."""
    folder = Path(input_path)
    if reviews_file:
        reviews = require_file(reviews_file, "Amazon 2018 reviews file", AMAZON18_HELP)
    else:
        if not folder.is_dir():
            raise InputError(f"input folder {folder} does not exist; pass --input_path DIR holding the raw files "
                             f"({AMAZON18_HELP})")
        reviews = first_existing(
            folder, [f"{dataset}_5.json", f"{dataset}_5.json.gz", f"{dataset}.json", f"{dataset}.json.gz"],
            "Amazon 2018 reviews file", AMAZON18_HELP,
        )
    if metadata_file:
        meta = require_file(metadata_file, "Amazon 2018 meta file", AMAZON18_HELP)
    else:
        meta = first_existing(folder, [f"meta_{dataset}.json", f"meta_{dataset}.json.gz"],
                              "Amazon 2018 meta file", AMAZON18_HELP)
    return reviews, meta


def read_amazon18(reviews_path: str | Path, meta_path: str | Path, strict: bool = False) -> RawData:
    """Parse Amazon 2018 reviews (``reviewerID, asin, overall, unixReviewTime``) and meta."""
    items, meta_counts = read_meta(Path(meta_path), strict, "asin", amazon18_item)
    interactions, review_counts = read_reviews(Path(reviews_path), strict, amazon18_review, AMAZON18_KEYS)
    return RawData(interactions, items, f"{reviews_path} + {meta_path}", {**meta_counts, **review_counts})


def amazon18_item(record: Mapping[str, Any]) -> dict[str, Any] | None:
    """The item.json record of a meta line, or None when its title does not pass the filter."""
    title = clean_amazon18_title(record.get("title"))
    if title is None:
        return None
    return {
        "title": title,
        "description": amazon18_description(record.get("description")),
        "brand": amazon18_brand(record.get("brand")),
        "categories": join_cleaned(record.get("category"), ", "),
        "price": record.get("price") if isinstance(record.get("price"), str) else "",
    }


def amazon18_review(record: Mapping[str, Any]) -> Interaction | str:
    """The interaction of a review line, or why it is skipped."""
    user, item, ts = record.get("reviewerID"), record.get("asin"), record.get("unixReviewTime")
    if not isinstance(user, str) or not user or not isinstance(item, str) or not item:
        return "a review without 'reviewerID' or 'asin'"
    timestamp = as_int(ts)
    if timestamp is None:
        return "a review without an integer 'unixReviewTime'"
    return Interaction(sys.intern(user), sys.intern(item), timestamp, as_float(record.get("overall")))


def run_amazon18(cfg: Amazon18Config, variant: Any = None) -> Path:
    """The stage: find the files, read them, run the protocol, write every output (``variant``: see ``process``)."""
    check_source(cfg.source, "amazon18")
    check_dataset_name(cfg)
    reviews, meta = amazon18_files(cfg.input_path, cfg.dataset, cfg.reviews_file, cfg.metadata_file)
    return process(read_amazon18(reviews, meta, cfg.strict), cfg, variant)
