"""Amazon Reviews 2023 raw files (``<D>.jsonl[.gz]`` + ``meta_<D>.jsonl[.gz]``): the reader, its
``data:`` config (defaults: upstream's amazon23 .sh) and the stage run.

Items are ``parent_asin`` (variants collapse); timestamps are ``ms // 1000``; the brand is
``store`` (else ``details["Brand"]``); the description is the cleaned paragraphs joined by spaces;
categories are joined by ``", "``.  Titles are admitted when non-empty after cleaning.
"""

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
from minionerec.text import clean_amazon23_title, join_cleaned

AMAZON23_HELP = (
    "download <Category>.jsonl.gz and meta_<Category>.jsonl.gz from "
    "https://datarepo.eng.ucsd.edu/mcauley_group/data/amazon_2023/ (raw/review_categories, raw/meta_categories)"
)
AMAZON23_KEYS = ReviewKeys("user_id", "parent_asin", "timestamp", "rating", time_divisor=1000)


@dataclass
class Amazon23Config(ProtocolOptions):
    """The ``data:`` section for Amazon 2023 raw files (defaults: upstream's amazon23 .sh)."""

    st_year: int = field(default=2018, metadata={"help": "Window start year (0 = no time window)."})
    st_month: int = field(default=10, metadata={"help": "Window start month; start = 00:00 UTC on its 1st day."})
    ed_year: int = field(default=2023, metadata={"help": "Window end year (0 = no time window)."})
    ed_month: int = field(default=9, metadata={"help": "Window end month; end = 00:00 UTC on its 1st day (inclusive)."})
    source: str = field(default="amazon23", metadata={"help": "Raw format of this config's data (amazon23)."})
    reviews_file: str = field(default="", metadata={"help": "Reviews file; empty: <dataset>.jsonl[.gz] in input_path."})
    metadata_file: str = field(
        default="", metadata={"help": "Meta file; empty: meta_<dataset>.jsonl[.gz] in input_path."}
    )


def amazon23_files(
    input_path: str | Path, dataset: str, reviews_file: str = "", metadata_file: str = ""
) -> tuple[Path, Path]:
    """The reviews and meta files: ``<D>.jsonl[.gz]`` and ``meta_<D>.jsonl[.gz]``."""
    folder = Path(input_path)
    if not (reviews_file and metadata_file) and not folder.is_dir():
        raise InputError(f"input folder {folder} does not exist; pass --input_path DIR ({AMAZON23_HELP})")
    reviews = (require_file(reviews_file, "Amazon 2023 reviews file", AMAZON23_HELP) if reviews_file else
               first_existing(folder, [f"{dataset}.jsonl", f"{dataset}.jsonl.gz"], "Amazon 2023 reviews file",
                              AMAZON23_HELP))
    meta = (require_file(metadata_file, "Amazon 2023 meta file", AMAZON23_HELP) if metadata_file else
            first_existing(folder, [f"meta_{dataset}.jsonl", f"meta_{dataset}.jsonl.gz"], "Amazon 2023 meta file",
                           AMAZON23_HELP))
    return reviews, meta


def read_amazon23(reviews_path: str | Path, meta_path: str | Path, strict: bool = False) -> RawData:
    """Parse Amazon 2023 reviews (``user_id, parent_asin, rating, timestamp`` in ms) and meta."""
    items, meta_counts = read_meta(Path(meta_path), strict, "parent_asin", amazon23_item)
    interactions, review_counts = read_reviews(Path(reviews_path), strict, amazon23_review, AMAZON23_KEYS)
    return RawData(interactions, items, f"{reviews_path} + {meta_path}", {**meta_counts, **review_counts})


def amazon23_item(record: Mapping[str, Any]) -> dict[str, Any] | None:
    """The item.json record of a meta line, or None when its title does not pass the filter."""
    title = clean_amazon23_title(record.get("title"))
    if title is None:
        return None
    details = record.get("details") if isinstance(record.get("details"), dict) else {}
    price = record.get("price")
    return {
        "title": title,
        "description": join_cleaned(record.get("description"), " "),
        "brand": join_cleaned(record.get("store"), " ") or join_cleaned(details.get("Brand"), " "),
        "categories": join_cleaned(record.get("categories"), ", "),
        "features": join_cleaned(record.get("features"), " "),
        "details": details,
        "images": image_urls(record.get("images")),
        "price": price if isinstance(price, (int, float)) and not isinstance(price, bool) else None,
    }


def image_urls(images: Any) -> list[Any]:
    if not isinstance(images, list):
        return []
    urls = []
    for image in images:
        if isinstance(image, dict):
            key = "hi_res" if "hi_res" in image else "large" if "large" in image else "thumb"
            urls.append(image.get(key))
    return urls


def amazon23_review(record: Mapping[str, Any]) -> Interaction | str:
    """The interaction of a review line, or why it is skipped."""
    user, item = record.get("user_id"), record.get("parent_asin")
    if not isinstance(user, str) or not user or not isinstance(item, str) or not item:
        return "a review without 'user_id' or 'parent_asin'"
    ms = as_int(record.get("timestamp"))
    if ms is None:
        return "a review without an integer 'timestamp'"
    return Interaction(sys.intern(user), sys.intern(item), ms // 1000, as_float(record.get("rating")))


def run_amazon23(cfg: Amazon23Config, variant: Any = None) -> Path:
    """The stage: find the files, read them, run the protocol, write every output (``variant``: see ``process``)."""
    check_source(cfg.source, "amazon23")
    check_dataset_name(cfg)
    reviews, meta = amazon23_files(cfg.input_path, cfg.dataset, cfg.reviews_file, cfg.metadata_file)
    return process(read_amazon23(reviews, meta, cfg.strict), cfg, variant)
