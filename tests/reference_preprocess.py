"""TEST ORACLE ONLY: the row-by-row implementation the columnar minionerec.data replaced (kept to check byte identity).

One implementation, shared by ``data/amazon18_data_process.py``, ``data/amazon23_data_process.py``
and ``data/movielens_process.py``.  It follows upstream's ``data/amazon18_data_process.py``
(reference ``original-minionerec.md`` §1.1, §1.2, §2) step by step:

1. **Title filter** (format-specific, see :mod:`minionerec.text`): items without an admissible
   title are removed before anything else.
2. **Time window**: a review counts when ``start <= t <= end``; ``start``/``end`` are midnight
   on the 1st of ``st_month/st_year`` and ``ed_month/ed_year``.  The end month itself is
   therefore excluded apart from its first instant, as upstream.
3. **Iterative k-core**: each pass counts, per user and per item, the reviews in the window
   whose user and item are still present (repeated reviews count), then removes users with
   fewer than ``user_k`` and items with fewer than ``item_k``; passes repeat until nothing
   changes.
4. **Widening** (``min_items > 0``): while fewer than ``min_items`` items remain and
   ``st_year > 1996``, ``st_year`` is decremented and steps 2-3 are re-run (upstream: 3000).
5. **Id remapping**: users are numbered in order of first appearance in the filtered review
   list (file order); items in order of first encounter while walking users in that order,
   each user's reviews stable-sorted by timestamp.  Ids are 0-based; repeated user-item
   interactions are kept.
6. **Sliding windows**: per user (in id order), interactions stable-sorted by timestamp (ties
   keep file order); every position ``i >= 1`` gives ``history = items[max(0, i-10):i]``,
   ``target = items[i]``.
7. **Split**: all samples stable-sorted by target timestamp (ties keep the order of step 6);
   train = the first ``int(T*0.8)``, valid = up to ``int(T*0.9)``, test = the rest.

Deliberate differences from upstream (bug fixes; everything else is kept identical):

- the window bounds are computed in **UTC** (upstream used the machine's local time zone, so
  the same command gave different splits on different machines);
- ``item_k`` is honoured for items (upstream used ``user_k`` for both; with
  ``item_k == user_k`` the result is upstream's);
- Amazon 2018 ``categories`` are read from the ``category`` key (upstream read a key that does
  not exist, so they were always empty) and joined with ``", "``;
- an empty description list is stored as ``""`` (upstream's ``str([])`` gave ``"[]"``);
- item.json records also carry the raw ``price`` (for the GPR item value); Amazon 2023 brands
  fall back to ``details["Brand"]`` when ``store`` is empty;
- ``dedup`` (off by default, so upstream's repeats are kept) optionally keeps only the earliest
  interaction of each (user, item) pair inside the window, before the k-core;
- the window widening is a flag (``min_items``, 0 = off) instead of always-on with 3000;
  it reuses the parsed files instead of re-reading them;
- malformed lines and records without the needed fields are skipped *with a counted warning*
  (or an error with ``strict``) instead of silently or with a crash; an empty result, a window
  without data or a meta file without usable titles is a clear error;
- ``<D>.review.json`` (review texts, unused downstream) is not written; instead
  ``<D>.interactions.tsv`` lists every kept interaction (user, item, rating, timestamp) and
  ``<D>.stats.json`` records the counts and the filters applied;
- Amazon 2023 reviews with a missing or unparsable timestamp are skipped (upstream set it to
  0, which the window then dropped anyway unless the window was off).
"""

from __future__ import annotations

import calendar
import datetime as dt
import logging
import math
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

from tqdm import tqdm

from minionerec.errors import InputError, where
from minionerec.io import (
    InterRow,
    LineSkips,
    atomic_write_text,
    iter_json_lines,
    open_text,
    require_file,
    write_id_map,
    write_inter,
    write_inter_json,
    write_json,
)
from minionerec.text import (
    amazon18_brand,
    amazon18_description,
    category_phrase,
    clean_amazon18_title,
    clean_amazon23_title,
    join_cleaned,
)

logger = logging.getLogger(__name__)

MAX_HISTORY = 10
EARLIEST_YEAR = 1996  # the widening loop stops here (the first year of Amazon review data)
TRAIN_FRACTION = 0.8
VALID_END_FRACTION = 0.9


# --------------------------------------------------------------------------------------------
# Options shared by every data script (the `data:` section of a config)
# --------------------------------------------------------------------------------------------

@dataclass
class ProtocolOptions:
    """Options of the protocol, shared by the Amazon 2018 / 2023 and MovieLens scripts."""

    section: ClassVar[str] = "data"

    input_path: str = field(
        default="${common.workdir}/raw",
        metadata={"help": "Folder holding the raw files of the dataset."},
    )
    dataset: str = field(
        default="", metadata={"help": "Dataset name; output files are <output_dir>/<dataset>/<dataset>.*"}
    )
    output_dir: str = field(
        default="${common.workdir}/data", metadata={"help": "Outputs go to <output_dir>/<dataset>/."}
    )
    user_k: int = field(default=5, metadata={"help": "k-core: users with fewer interactions are removed (0 = off)."})
    item_k: int = field(default=5, metadata={"help": "k-core: items with fewer interactions are removed (0 = off)."})
    st_year: int = field(default=1996, metadata={"help": "Window start year (0 = no time window)."})
    st_month: int = field(default=10, metadata={"help": "Window start month; start = 00:00 UTC on its 1st day."})
    ed_year: int = field(default=2018, metadata={"help": "Window end year (0 = no time window)."})
    ed_month: int = field(
        default=10, metadata={"help": "Window end month; end = 00:00 UTC on its 1st day (inclusive)."}
    )
    min_items: int = field(
        default=0,
        metadata={"help": "Widen the window (st_year - 1, down to 1996) while fewer items remain; 0 = off "
                  "(upstream always used 3000)."},
    )
    strict: bool = field(
        default=False,
        metadata={"help": "Stop at the first malformed line or incomplete record instead of skipping it with a "
                  "counted warning."},
    )
    dedup: bool = field(
        default=False,
        metadata={"help": "Keep only the earliest interaction of each (user, item) pair inside the window (the "
                  "official Amazon 2023 benchmark rule); off = upstream, which keeps repeats."},
    )


# --------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------

class Interaction(NamedTuple):
    """One raw review/rating, in file order (a NamedTuple: millions are created, cheaply)."""

    user: str
    item: str
    timestamp: int
    rating: float


class Sample(NamedTuple):
    """One sliding-window sample, with the target's timestamp (the split key)."""

    user: int
    history: tuple[int, ...]
    target: int
    timestamp: int

    def as_row(self) -> InterRow:
        return InterRow(self.user, self.history, self.target)


@dataclass
class RawData:
    """What a format reader hands to the protocol.

    ``items`` maps every item that passed the title filter to its item.json record.
    """

    interactions: list[Interaction]
    items: dict[str, dict[str, Any]]
    source: str
    counts: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TimeWindow:
    start: int
    end: int

    def describe(self) -> str:
        return f"[{iso_utc(self.start)}, {iso_utc(self.end)}]"


@dataclass
class ProcessedDataset:
    user2id: dict[str, int]
    item2id: dict[str, int]
    sequences: dict[int, list[tuple[int, int, float]]]  # user -> [(item, timestamp, rating)] in time order
    train: list[Sample]
    valid: list[Sample]
    test: list[Sample]
    stats: dict[str, Any]


# --------------------------------------------------------------------------------------------
# Time window
# --------------------------------------------------------------------------------------------

def month_start_utc(year: int, month: int) -> int:
    """Unix time of 00:00 UTC on the 1st of ``month/year``."""
    if not 1 <= month <= 12:
        raise InputError(f"month must be 1..12, got {month}")
    return calendar.timegm((year, month, 1, 0, 0, 0))


def iso_utc(timestamp: int | float) -> str:
    return dt.datetime.fromtimestamp(timestamp, tz=dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def make_window(st_year: int, st_month: int, ed_year: int, ed_month: int) -> TimeWindow | None:
    """The window, or None when either year is 0 (no time filter)."""
    if not st_year or not ed_year:
        return None
    window = TimeWindow(month_start_utc(st_year, st_month), month_start_utc(ed_year, ed_month))
    if window.start > window.end:
        raise InputError(
            f"time window starts after it ends ({st_year}-{st_month:02d} > {ed_year}-{ed_month:02d}); "
            "fix --st_year/--st_month/--ed_year/--ed_month"
        )
    return window


# --------------------------------------------------------------------------------------------
# Filtering
# --------------------------------------------------------------------------------------------

def kcore(interactions: list[Interaction], user_k: int, item_k: int) -> tuple[list[Interaction], int]:
    """Iterative k-core on users (``user_k``) and items (``item_k``); returns (kept, passes).

    Each pass counts the surviving interactions per user and per item and removes, at once,
    every user below ``user_k`` and every item below ``item_k``.  Repeated interactions count.
    """
    kept = interactions
    passes = 0
    while True:
        passes += 1
        user_counts = Counter(x.user for x in kept)
        item_counts = Counter(x.item for x in kept)
        bad_users = {u for u, c in user_counts.items() if c < user_k}
        bad_items = {i for i, c in item_counts.items() if c < item_k}
        if not bad_users and not bad_items:
            return kept, passes
        kept = [x for x in kept if x.user not in bad_users and x.item not in bad_items]


def filter_interactions(
    interactions: list[Interaction],
    titled_items: Mapping[str, Any],
    window: TimeWindow | None,
    user_k: int,
    item_k: int,
    dedup: bool = False,
) -> tuple[list[Interaction], dict[str, int]]:
    """Title filter, time window, optional de-duplication and k-core.

    Returns the kept interactions (file order) and counts.
    """
    titled = [x for x in interactions if x.item in titled_items]
    in_window = titled if window is None else [x for x in titled if window.start <= x.timestamp <= window.end]
    unique = earliest_per_pair(in_window) if dedup else in_window
    kept, passes = kcore(unique, user_k, item_k)
    counts = {
        "removed_item_without_title": len(interactions) - len(titled),
        "removed_outside_window": len(titled) - len(in_window),
        "removed_as_repeat": len(in_window) - len(unique),
        "removed_by_kcore": len(unique) - len(kept),
        "kcore_passes": passes,
    }
    return kept, counts


def earliest_per_pair(interactions: list[Interaction]) -> list[Interaction]:
    """The earliest interaction of every (user, item) pair (ties: the first in file order), in file order."""
    best: dict[tuple[str, str], tuple[int, Interaction]] = {}
    for index, x in enumerate(interactions):
        key = (x.user, x.item)
        if key not in best or x.timestamp < best[key][1].timestamp:
            best[key] = (index, x)
    return [x for _, x in sorted(best.values(), key=lambda pair: pair[0])]


# --------------------------------------------------------------------------------------------
# Ids, windows, split
# --------------------------------------------------------------------------------------------

def remap_ids(kept: list[Interaction]) -> tuple[dict[str, int], dict[str, int], dict[int, list[Interaction]]]:
    """Users by first appearance (file order); items by first encounter walking users in id
    order through their time-sorted (stable) interactions.  Returns the per-user sorted lists."""
    by_user: dict[str, list[Interaction]] = {}
    for x in kept:
        by_user.setdefault(x.user, []).append(x)
    user2id = {user: index for index, user in enumerate(by_user)}
    item2id: dict[str, int] = {}
    timelines: dict[int, list[Interaction]] = {}
    for user, rows in by_user.items():
        ordered = sorted(rows, key=lambda x: x.timestamp)
        timelines[user2id[user]] = ordered
        for x in ordered:
            if x.item not in item2id:
                item2id[x.item] = len(item2id)
    return user2id, item2id, timelines


def sliding_samples(
    timelines: Mapping[int, Sequence[Interaction]], item2id: Mapping[str, int], max_history: int = MAX_HISTORY
) -> list[Sample]:
    """One sample per user and position ``i >= 1``, users in id order."""
    samples: list[Sample] = []
    for user in sorted(timelines):
        items = [item2id[x.item] for x in timelines[user]]
        times = [x.timestamp for x in timelines[user]]
        for i in range(1, len(items)):
            samples.append(Sample(user, tuple(items[max(0, i - max_history):i]), items[i], times[i]))
    return samples


def split_indices(total: int) -> tuple[int, int]:
    """``(int(T*0.8), int(T*0.9))``: the train end and the valid end."""
    return int(total * TRAIN_FRACTION), int(total * VALID_END_FRACTION)


def chronological_split(samples: list[Sample]) -> tuple[list[Sample], list[Sample], list[Sample]]:
    """Stable sort by target time, then cut 8:1:1."""
    ordered = sorted(samples, key=lambda s: s.timestamp)
    train_end, valid_end = split_indices(len(ordered))
    return ordered[:train_end], ordered[train_end:valid_end], ordered[valid_end:]


# --------------------------------------------------------------------------------------------
# The whole protocol
# --------------------------------------------------------------------------------------------

def build_dataset(raw: RawData, options: ProtocolOptions) -> ProcessedDataset:
    """Run steps 2-7 on parsed raw data (the title filter is already in ``raw.items``)."""
    if not raw.interactions:
        raise InputError(f"{raw.source}: no usable interaction; check that the reviews file is the right one")
    if not raw.items:
        raise InputError(f"{raw.source}: no item has a usable title, so every item is filtered out")
    if not any(x.item in raw.items for x in raw.interactions):
        raise InputError(
            f"{raw.source}: none of the reviewed items has metadata with a usable title; "
            "are the reviews and the meta file of the same category?"
        )
    if options.user_k < 0 or options.item_k < 0 or options.min_items < 0:
        raise InputError("user_k, item_k and min_items must be >= 0")

    st_year = options.st_year
    while True:
        window = make_window(st_year, options.st_month, options.ed_year, options.ed_month)
        kept, counts = filter_interactions(
            raw.interactions, raw.items, window, options.user_k, options.item_k, options.dedup
        )
        n_items = len({x.item for x in kept})
        logger.info(
            "window %s: %d interactions, %d items after %d k-core pass(es)",
            window.describe() if window else "(none)", len(kept), n_items, counts["kcore_passes"],
        )
        if window is None or n_items >= options.min_items or st_year <= EARLIEST_YEAR:
            break
        st_year -= 1
        logger.info("fewer than min_items=%d items: widening the window to start in %d", options.min_items, st_year)

    _check_not_empty(raw, window, kept, counts, options)
    user2id, item2id, timelines = remap_ids(kept)
    samples = sliding_samples(timelines, item2id)
    if not samples:
        raise InputError(
            f"{raw.source}: every remaining user has a single interaction, so no sample can be built; "
            "lower --user_k/--item_k or widen the time window"
        )
    train, valid, test = chronological_split(samples)
    sequences = {
        user: [(item2id[x.item], x.timestamp, x.rating) for x in rows] for user, rows in timelines.items()
    }
    stats = {
        "dataset": options.dataset,
        "source": raw.source,
        "category_phrase": category_phrase(options.dataset),
        "users": len(user2id),
        "items": len(item2id),
        "interactions": len(kept),
        "samples": {"train": len(train), "valid": len(valid), "test": len(test), "total": len(samples)},
        "target_time": {
            "train": _time_range(train), "valid": _time_range(valid), "test": _time_range(test),
        },
        "filters": {
            "user_k": options.user_k,
            "item_k": options.item_k,
            "window": None if window is None else {
                "start": iso_utc(window.start), "end": iso_utc(window.end), "inclusive": True,
                "st_year": st_year, "st_month": options.st_month,
                "ed_year": options.ed_year, "ed_month": options.ed_month,
            },
            "min_items": options.min_items,
            "dedup": options.dedup,
            "widened_from_st_year": options.st_year if st_year != options.st_year else None,
            "max_history": MAX_HISTORY,
            "split": "global chronological int(T*0.8) / int(T*0.9) on target time",
        },
        "counts": {**raw.counts, **counts},
    }
    return ProcessedDataset(user2id, item2id, sequences, train, valid, test, stats)


def _time_range(samples: Sequence[Sample]) -> dict[str, str] | None:
    if not samples:
        return None
    return {"first": iso_utc(samples[0].timestamp), "last": iso_utc(samples[-1].timestamp)}


def _check_not_empty(
    raw: RawData, window: TimeWindow | None, kept: list[Interaction], counts: Mapping[str, int],
    options: ProtocolOptions,
) -> None:
    if kept:
        return
    titled = [x.timestamp for x in raw.interactions if x.item in raw.items]
    if window is not None and counts["removed_outside_window"] == len(titled):
        raise InputError(
            f"{raw.source}: no review falls in the time window {window.describe()}; the reviews of titled items "
            f"span {iso_utc(min(titled))} .. {iso_utc(max(titled))}; fix --st_year/--st_month/--ed_year/--ed_month "
            "(or set --st_year 0 for no window)"
        )
    raise InputError(
        f"{raw.source}: nothing is left after filtering ({counts['removed_item_without_title']} interactions "
        f"without a titled item, {counts['removed_outside_window']} outside the window, "
        f"{counts['removed_by_kcore']} removed by the {options.user_k}/{options.item_k}-core); "
        "lower --user_k/--item_k or widen the time window"
    )


# --------------------------------------------------------------------------------------------
# Outputs
# --------------------------------------------------------------------------------------------

def output_dir(options: ProtocolOptions) -> Path:
    return Path(options.output_dir) / options.dataset


def write_dataset(ds: ProcessedDataset, items: Mapping[str, dict[str, Any]], out_dir: str | Path, dataset: str) -> Path:
    """Write every output file of the data stage into ``out_dir`` (atomically, one by one).

    The completion markers (``<D>.stats.json`` here, ``data.config.yaml`` in :func:`process`) are
    removed first and written last, so an interrupted run never looks finished with a mix of
    old and new files.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    prefix = out_dir / dataset
    for marker in (out_dir / "data.config.yaml", Path(f"{prefix}.stats.json")):
        marker.unlink(missing_ok=True)
    for name, samples in (("train", ds.train), ("valid", ds.valid), ("test", ds.test)):
        write_inter(f"{prefix}.{name}.inter", (s.as_row() for s in samples))
    id2item = {index: item for item, index in ds.item2id.items()}
    write_json(f"{prefix}.item.json", {str(i): items[id2item[i]] for i in range(len(id2item))})
    write_inter_json(f"{prefix}.inter.json", {u: [x[0] for x in seq] for u, seq in ds.sequences.items()})
    write_id_map(f"{prefix}.user2id", ds.user2id)
    write_id_map(f"{prefix}.item2id", ds.item2id)
    write_interactions_tsv(f"{prefix}.interactions.tsv", ds.sequences)
    write_json(f"{prefix}.stats.json", ds.stats)
    logger.info(
        "%s: %d users, %d items, %d interactions; samples train/valid/test = %d/%d/%d -> %s",
        dataset, ds.stats["users"], ds.stats["items"], ds.stats["interactions"],
        len(ds.train), len(ds.valid), len(ds.test), out_dir,
    )
    return out_dir


def write_interactions_tsv(path: str | Path, sequences: Mapping[int, Sequence[tuple[int, int, float]]]) -> Path:
    """Every kept interaction as a RecBole-style atomic TSV, users in id order, time order within."""
    lines = ["user_id:token\titem_id:token\trating:float\ttimestamp:float"]
    for user, seq in sequences.items():
        lines.extend(f"{user}\t{item}\t{rating:g}\t{ts}" for item, ts, rating in seq)
    return atomic_write_text(path, "\n".join(lines) + "\n")


# --------------------------------------------------------------------------------------------
# Format readers
# --------------------------------------------------------------------------------------------

def _first_existing(folder: Path, names: Sequence[str], what: str, fix: str) -> Path:
    for name in names:
        if (folder / name).is_file():
            return folder / name
    raise InputError(f"{what} not found in {folder}: expected one of {', '.join(names)}; {fix}")


def _logged(skips: LineSkips) -> dict[str, int]:
    skips.log()
    return skips.as_dict()


def _skip_or_fail(skips: LineSkips, reason: str, lineno: int, strict: bool, fix: str) -> None:
    if strict:
        raise InputError(f"{where(skips.path, lineno)}: {reason}; {fix}")
    skips.add(reason, lineno)


AMAZON18_HELP = (
    "download them from the Amazon Review Data (2018) pages of the McAuley lab, UCSD "
    "(https://cseweb.ucsd.edu/~jmcauley/datasets/amazon_v2/, mirror: https://nijianmo.github.io/amazon/)"
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
        reviews = _first_existing(
            folder, [f"{dataset}_5.json", f"{dataset}_5.json.gz", f"{dataset}.json", f"{dataset}.json.gz"],
            "Amazon 2018 reviews file", AMAZON18_HELP,
        )
    if metadata_file:
        meta = require_file(metadata_file, "Amazon 2018 meta file", AMAZON18_HELP)
    else:
        meta = _first_existing(folder, [f"meta_{dataset}.json", f"meta_{dataset}.json.gz"],
                               "Amazon 2018 meta file", AMAZON18_HELP)
    return reviews, meta


def read_amazon18(reviews_path: str | Path, meta_path: str | Path, strict: bool = False) -> RawData:
    """Parse Amazon 2018 reviews (``reviewerID, asin, overall, unixReviewTime``) and meta."""
    items, meta_counts = _read_meta(Path(meta_path), strict, "asin", _amazon18_item)
    interactions, review_counts = _read_reviews(Path(reviews_path), strict, _amazon18_review)
    return RawData(interactions, items, f"{reviews_path} + {meta_path}", {**meta_counts, **review_counts})


def _amazon18_item(record: Mapping[str, Any]) -> dict[str, Any] | None:
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


def _amazon18_review(record: Mapping[str, Any]) -> Interaction | str:
    user, item, ts = record.get("reviewerID"), record.get("asin"), record.get("unixReviewTime")
    if not isinstance(user, str) or not user or not isinstance(item, str) or not item:
        return "a review without 'reviewerID' or 'asin'"
    timestamp = _as_int(ts)
    if timestamp is None:
        return "a review without an integer 'unixReviewTime'"
    return Interaction(sys.intern(user), sys.intern(item), timestamp, _as_float(record.get("overall")))


AMAZON23_HELP = (
    "download <Category>.jsonl.gz and meta_<Category>.jsonl.gz from "
    "https://datarepo.eng.ucsd.edu/mcauley_group/data/amazon_2023/ (raw/review_categories, raw/meta_categories)"
)


def amazon23_files(
    input_path: str | Path, dataset: str, reviews_file: str = "", metadata_file: str = ""
) -> tuple[Path, Path]:
    """The reviews and meta files: ``<D>.jsonl[.gz]`` and ``meta_<D>.jsonl[.gz]``."""
    folder = Path(input_path)
    if not (reviews_file and metadata_file) and not folder.is_dir():
        raise InputError(f"input folder {folder} does not exist; pass --input_path DIR ({AMAZON23_HELP})")
    reviews = (require_file(reviews_file, "Amazon 2023 reviews file", AMAZON23_HELP) if reviews_file else
               _first_existing(folder, [f"{dataset}.jsonl", f"{dataset}.jsonl.gz"], "Amazon 2023 reviews file",
                               AMAZON23_HELP))
    meta = (require_file(metadata_file, "Amazon 2023 meta file", AMAZON23_HELP) if metadata_file else
            _first_existing(folder, [f"meta_{dataset}.jsonl", f"meta_{dataset}.jsonl.gz"], "Amazon 2023 meta file",
                            AMAZON23_HELP))
    return reviews, meta


def read_amazon23(reviews_path: str | Path, meta_path: str | Path, strict: bool = False) -> RawData:
    """Parse Amazon 2023 reviews (``user_id, parent_asin, rating, timestamp`` in ms) and meta."""
    items, meta_counts = _read_meta(Path(meta_path), strict, "parent_asin", _amazon23_item)
    interactions, review_counts = _read_reviews(Path(reviews_path), strict, _amazon23_review)
    return RawData(interactions, items, f"{reviews_path} + {meta_path}", {**meta_counts, **review_counts})


def _amazon23_item(record: Mapping[str, Any]) -> dict[str, Any] | None:
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
        "images": _image_urls(record.get("images")),
        "price": price if isinstance(price, (int, float)) and not isinstance(price, bool) else None,
    }


def _image_urls(images: Any) -> list[Any]:
    if not isinstance(images, list):
        return []
    urls = []
    for image in images:
        if isinstance(image, dict):
            key = "hi_res" if "hi_res" in image else "large" if "large" in image else "thumb"
            urls.append(image.get(key))
    return urls


def _amazon23_review(record: Mapping[str, Any]) -> Interaction | str:
    user, item = record.get("user_id"), record.get("parent_asin")
    if not isinstance(user, str) or not user or not isinstance(item, str) or not item:
        return "a review without 'user_id' or 'parent_asin'"
    ms = _as_int(record.get("timestamp"))
    if ms is None:
        return "a review without an integer 'timestamp'"
    return Interaction(sys.intern(user), sys.intern(item), ms // 1000, _as_float(record.get("rating")))


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return int(value)
    if isinstance(value, str):
        try:
            return int(float(value.strip()))
        except ValueError:
            return None
    return None


def _as_float(value: Any) -> float:
    try:
        result = float(value)
    except (TypeError, ValueError):
        return 0.0
    return result if math.isfinite(result) else 0.0


def _read_meta(path: Path, strict: bool, key: str, make_item: Any) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Items that pass the title filter (a later line of the same item overwrites an earlier one)."""
    skips = LineSkips(path)
    items: dict[str, dict[str, Any]] = {}
    records = without_title = 0
    for lineno, record in tqdm(iter_json_lines(path, skips, strict, "meta file"), desc=f"meta {path.name}",
                               unit=" lines", mininterval=5, disable=None):
        item = record.get(key)
        if not isinstance(item, str) or not item:
            _skip_or_fail(skips, f"a meta record without {key!r}", lineno, strict, f"every record needs {key!r}")
            continue
        records += 1
        features = make_item(record)
        if features is None:
            without_title += 1
            continue
        items[item] = features
    if records == 0:
        raise InputError(f"meta file {path} has no usable record (every line was malformed or lacked {key!r})")
    if not items:
        raise InputError(
            f"meta file {path}: none of its {records} records has a usable title, so every item would be filtered "
            "out; is it the metadata file of this category?"
        )
    if without_title:
        logger.info("%s: %d of %d meta records dropped by the title filter", path, without_title, records)
    return items, {"meta_records": records, "meta_dropped_by_title_filter": without_title,
                   "items_with_title": len(items), "meta_lines_skipped": _logged(skips)}


def _read_reviews(path: Path, strict: bool, make_interaction: Any) -> tuple[list[Interaction], dict[str, Any]]:
    skips = LineSkips(path)
    interactions: list[Interaction] = []
    for lineno, record in tqdm(iter_json_lines(path, skips, strict, "reviews file"), desc=f"reviews {path.name}",
                               unit=" lines", mininterval=5, disable=None):
        parsed = make_interaction(record)
        if isinstance(parsed, str):
            _skip_or_fail(skips, parsed, lineno, strict, "every review needs its user, item and time fields")
            continue
        interactions.append(parsed)
    if not interactions:
        raise InputError(f"reviews file {path} has no usable review (every line was malformed or incomplete)")
    return interactions, {"reviews_read": len(interactions), "review_lines_skipped": _logged(skips)}


# --------------------------------------------------------------------------------------------
# MovieLens (GroupLens ml-100k / ml-1m, RecBole atomic files)
# --------------------------------------------------------------------------------------------

ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
    "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
)
MOVIELENS_HELP = "run `bash data/fetch_movielens.sh DEST` (ml-100k from the recbole wheel) first"


def movielens_item(title: str, year: str, genres: Sequence[str]) -> dict[str, Any]:
    """The item.json record of a movie: title (+ year), genres as description and categories."""
    title = " ".join(title.split())
    year = year.strip()
    if year and year.isdigit() and not title.endswith(f"({year})"):
        title = f"{title} ({year})"
    genres = [g for g in genres if g and g.lower() != "unknown"]
    return {
        "title": title,
        "description": f"Genres: {', '.join(genres)}." if genres else "",
        "brand": "",
        "categories": ", ".join(genres),
    }


def read_movielens(input_path: str | Path, dataset: str) -> RawData:
    """Read MovieLens from ``input_path``: RecBole ``<D>.inter``/``<D>.item``, GroupLens ml-100k
    ``u.data``/``u.item`` or GroupLens ml-1m ``ratings.dat``/``movies.dat``."""
    folder = Path(input_path)
    if not folder.is_dir():
        raise InputError(f"MovieLens folder {folder} does not exist; {MOVIELENS_HELP}")
    if (folder / f"{dataset}.inter").is_file():
        return _read_recbole(folder / f"{dataset}.inter",
                             require_file(folder / f"{dataset}.item", "RecBole item file", MOVIELENS_HELP))
    if (folder / "u.data").is_file():
        return _read_grouplens(folder / "u.data", require_file(folder / "u.item", "ml-100k item file (u.item)"),
                               "\t", "|")
    if (folder / "ratings.dat").is_file():
        return _read_grouplens(folder / "ratings.dat",
                               require_file(folder / "movies.dat", "ml-1m item file (movies.dat)"), "::", "::")
    raise InputError(
        f"no MovieLens files in {folder}: expected {dataset}.inter + {dataset}.item (RecBole), "
        f"u.data + u.item (GroupLens ml-100k) or ratings.dat + movies.dat (GroupLens ml-1m); {MOVIELENS_HELP}"
    )


def _recbole_rows(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header names (without ``:type``) and the rows of a RecBole atomic file."""
    with open_text(path) as f:
        header = [h.split(":")[0] for h in f.readline().rstrip("\n").split("\t")]
        rows = [(lineno, line.rstrip("\n").split("\t")) for lineno, line in enumerate(f, start=2) if line.strip()]
    return header, rows


def _column(header: Sequence[str], path: Path, *candidates: str, required: bool = True) -> int | None:
    for name in candidates:
        if name in header:
            return header.index(name)
    if required:
        raise InputError(f"{where(path, 1)}: header has no {' or '.join(candidates)} column (header: {header})")
    return None


def _read_recbole(inter_path: Path, item_path: Path) -> RawData:
    header, rows = _recbole_rows(item_path)
    id_col = _column(header, item_path, "item_id")
    title_col = _column(header, item_path, "movie_title", "title")
    year_col = _column(header, item_path, "release_year", "year", required=False)
    genre_col = _column(header, item_path, "class", "genre", "genres", required=False)
    items: dict[str, dict[str, Any]] = {}
    for lineno, parts in rows:
        parts = parts + [""] * (len(header) - len(parts))
        title = parts[title_col].strip()
        if not parts[id_col] or not title:
            raise InputError(f"{where(item_path, lineno)}: a movie needs an item_id and a title")
        year = parts[year_col] if year_col is not None else ""
        genres = parts[genre_col].split() if genre_col is not None else []
        items[parts[id_col]] = movielens_item(title, year, genres)

    header, rows = _recbole_rows(inter_path)
    user_col = _column(header, inter_path, "user_id")
    item_col = _column(header, inter_path, "item_id")
    time_col = _column(header, inter_path, "timestamp")
    rating_col = _column(header, inter_path, "rating", required=False)
    interactions = []
    for lineno, parts in rows:
        try:
            interactions.append(Interaction(
                parts[user_col], parts[item_col], int(float(parts[time_col])),
                _as_float(parts[rating_col]) if rating_col is not None else 0.0,
            ))
        except (IndexError, ValueError):
            raise InputError(
                f"{where(inter_path, lineno)}: expected user_id, item_id and a numeric timestamp"
            ) from None
    return RawData(interactions, items, f"{inter_path} + {item_path}", {"reviews_read": len(interactions),
                                                                      "items_with_title": len(items)})


def _read_grouplens(ratings_path: Path, movies_path: Path, rating_sep: str, movie_sep: str) -> RawData:
    items: dict[str, dict[str, Any]] = {}
    with open(movies_path, encoding="latin-1") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            parts = line.rstrip("\n").split(movie_sep)
            if len(parts) < 3:
                raise InputError(f"{where(movies_path, lineno)}: expected 'id{movie_sep}title{movie_sep}...'")
            if movie_sep == "|":  # ml-100k: id|title|date|video date|url|19 genre flags
                flags = parts[5:5 + len(ML100K_GENRES)]
                genres = [g for g, flag in zip(ML100K_GENRES, flags) if flag == "1"]
                year = parts[2][-4:] if parts[2][-4:].isdigit() else ""
            else:  # ml-1m: id::Title (Year)::Genre|Genre
                genres, year = parts[2].split("|"), ""
            items[parts[0]] = movielens_item(parts[1], year, genres)
    interactions = []
    with open(ratings_path, encoding="latin-1") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            parts = line.strip().split(rating_sep)
            try:
                interactions.append(Interaction(parts[0], parts[1], int(parts[3]), float(parts[2])))
            except (IndexError, ValueError):
                raise InputError(
                    f"{where(ratings_path, lineno)}: expected "
                    f"'user{rating_sep}item{rating_sep}rating{rating_sep}timestamp'"
                ) from None
    return RawData(interactions, items, f"{ratings_path} + {movies_path}", {"reviews_read": len(interactions),
                                                                          "items_with_title": len(items)})


# --------------------------------------------------------------------------------------------
# Script entry point shared by the three processing scripts
# --------------------------------------------------------------------------------------------

#: The processing script of every raw format (``data.source``); run_all.sh can dispatch on it.
SOURCE_SCRIPTS = {
    "amazon18": "data/amazon18_data_process.sh",
    "amazon23": "data/amazon23_data_process.sh",
    "movielens": "data/movielens_process.sh",
    "lcrec": "data/lcrec_process.sh",
}


def check_source(source: str, expected: str) -> None:
    """Refuse a config whose ``data.source`` belongs to another script, naming the right one."""
    if source != expected:
        script = SOURCE_SCRIPTS.get(source)
        fix = f"run {script} with this config" if script else f"data.source must be one of {', '.join(SOURCE_SCRIPTS)}"
        raise InputError(f"data.source is {source!r} but this is {SOURCE_SCRIPTS[expected]}; {fix}")


def check_dataset_name(options: ProtocolOptions) -> None:
    if not options.dataset:
        raise InputError("no dataset name: pass --dataset NAME (or set common.dataset in the config)")
    if "/" in options.dataset or options.dataset in {".", ".."}:
        raise InputError(f"dataset name {options.dataset!r} must be a plain name, not a path")


def process(raw: RawData, options: ProtocolOptions) -> Path:
    """Build the dataset from parsed raw data and write every output; returns the output folder."""
    from minionerec.config import save_resolved_config  # config imports io; keep this module light to import

    dataset = build_dataset(raw, options)
    out = write_dataset(dataset, raw.items, output_dir(options), options.dataset)
    save_resolved_config(options, out)
    return out


__all__ = [
    "AMAZON18_HELP",
    "Interaction",
    "ProcessedDataset",
    "ProtocolOptions",
    "RawData",
    "Sample",
    "TimeWindow",
    "amazon18_files",
    "amazon23_files",
    "build_dataset",
    "SOURCE_SCRIPTS",
    "check_dataset_name",
    "check_source",
    "chronological_split",
    "filter_interactions",
    "kcore",
    "make_window",
    "month_start_utc",
    "movielens_item",
    "process",
    "read_amazon18",
    "read_amazon23",
    "read_movielens",
    "remap_ids",
    "sliding_samples",
    "split_indices",
    "write_dataset",
]
