"""The data protocol: raw interactions -> k-core -> id maps -> 10-item windows -> 8:1:1 time split.

One implementation, shared by ``data/amazon18_data_process.py``, ``data/amazon23_data_process.py``
and ``data/movielens_process.py``; columnar (polars frames, one row per interaction; reviews are
parsed in chunks, see :func:`_read_reviews`), byte-identical to the former row-by-row code kept as
the test oracle ``tests/reference_preprocess.py``.  It follows upstream's ``data/amazon18_data_process.py``
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
import gzip
import io as _io
import logging
import math
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import polars as pl
from tqdm import tqdm

from minionerec.errors import InputError, where
from minionerec.io import (
    INTER_HEADER,
    InterRow,
    LineSkips,
    atomic_path,
    atomic_write_text,
    iter_json_lines,
    json_object_lines,
    open_text,
    require_file,
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
        default="", metadata={"help": "Dataset name; output files are <output_path>/<dataset>/<dataset>.*"}
    )
    output_path: str = field(
        default="${common.workdir}/data", metadata={"help": "Outputs go to <output_path>/<dataset>/."}
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

    ``items`` maps every item that passed the title filter to its item.json record;
    ``interactions`` is a frame with :data:`INTERACTION_SCHEMA`'s columns in file order (or a list).
    """

    interactions: pl.DataFrame | list[Interaction]
    items: dict[str, dict[str, Any]]
    source: str
    counts: dict[str, Any] = field(default_factory=dict)

    def interaction_rows(self) -> list[Interaction]:
        """The interactions as records (for inspection and tests; the protocol works on the frame)."""
        if isinstance(self.interactions, list):
            return self.interactions
        return [Interaction(*row) for row in self.interactions.select(list(INTERACTION_SCHEMA)).iter_rows()]


@dataclass(frozen=True)
class ReviewKeys:
    """The JSON keys of a review format; ``time_divisor`` turns the time field into seconds."""

    user: str
    item: str
    time: str
    rating: str
    time_divisor: int = 1


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
    frames: Any = None  # the ColumnarDataset these objects were made from (what write_dataset writes)


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
# Filtering (columnar: one row per interaction, ``idx`` = file order)
# --------------------------------------------------------------------------------------------

INTERACTION_SCHEMA = {"user": pl.String, "item": pl.String, "timestamp": pl.Int64, "rating": pl.Float64}


def interaction_frame(interactions: pl.DataFrame | Sequence[Interaction]) -> pl.DataFrame:
    """The interactions as a frame ``user, item, timestamp, rating, idx`` (``idx`` = file order)."""
    if isinstance(interactions, pl.DataFrame):
        frame = interactions.select(list(INTERACTION_SCHEMA)).cast(INTERACTION_SCHEMA)
    else:
        frame = pl.DataFrame(list(interactions), schema=INTERACTION_SCHEMA, orient="row")
    return frame.with_row_index("idx")


def kcore(frame: pl.DataFrame, user_k: int, item_k: int) -> tuple[pl.DataFrame, int]:
    """Iterative k-core on users (``user_k``) and items (``item_k``); returns (kept, passes).

    Each pass counts the surviving interactions per user and per item and removes, at once,
    every user below ``user_k`` and every item below ``item_k``.  Repeated interactions count.
    """
    passes = 0
    while True:
        passes += 1
        kept = frame.filter((pl.len().over("user") >= user_k) & (pl.len().over("item") >= item_k))
        if kept.height == frame.height:
            return frame, passes
        frame = kept


def filter_interactions(
    frame: pl.DataFrame,
    titled_items: Mapping[str, Any],
    window: TimeWindow | None,
    user_k: int,
    item_k: int,
    dedup: bool = False,
) -> tuple[pl.DataFrame, dict[str, int]]:
    """Title filter, time window, optional de-duplication and k-core (``frame`` from :func:`interaction_frame`).

    Returns the kept interactions (file order) and counts.
    """
    titled = frame.filter(pl.col("item").is_in(pl.Series(list(titled_items), dtype=pl.String)))
    return filter_titled(titled, frame.height, window, user_k, item_k, dedup)


def filter_titled(
    titled: pl.DataFrame, n_raw: int, window: TimeWindow | None, user_k: int, item_k: int, dedup: bool
) -> tuple[pl.DataFrame, dict[str, int]]:
    in_window = titled if window is None else titled.filter(pl.col("timestamp").is_between(window.start, window.end))
    unique = earliest_per_pair(in_window) if dedup else in_window
    kept, passes = kcore(unique, user_k, item_k)
    counts = {
        "removed_item_without_title": n_raw - titled.height,
        "removed_outside_window": titled.height - in_window.height,
        "removed_as_repeat": in_window.height - unique.height,
        "removed_by_kcore": unique.height - kept.height,
        "kcore_passes": passes,
    }
    return kept, counts


def earliest_per_pair(frame: pl.DataFrame) -> pl.DataFrame:
    """The earliest interaction of every (user, item) pair (ties: the first in file order), in file order."""
    return (frame.sort(["timestamp", "idx"]).unique(subset=["user", "item"], keep="first", maintain_order=True)
            .sort("idx"))


# --------------------------------------------------------------------------------------------
# Ids, windows, split
# --------------------------------------------------------------------------------------------

def remap_ids(kept: pl.DataFrame) -> pl.DataFrame:
    """Users by first appearance (file order); items by first encounter walking users in id
    order through their time-sorted (stable) interactions.

    Returns the timelines: ``uid, iid, user, item, timestamp, rating`` sorted by user id, then time
    (ties keep file order).
    """
    with_uid = kept.with_columns(uid=(pl.col("idx").min().over("user").rank("dense") - 1).cast(pl.Int64))
    ordered = with_uid.sort(["uid", "timestamp", "idx"]).with_row_index("pos")
    ordered = ordered.with_columns(iid=(pl.col("pos").min().over("item").rank("dense") - 1).cast(pl.Int64))
    return ordered.select("uid", "iid", "user", "item", "timestamp", "rating")


SAMPLE_SLICE_ROWS = 500_000  # timelines are windowed this many rows at a time (bounds the shifted columns)


def sliding_samples(timelines: pl.DataFrame, max_history: int = MAX_HISTORY) -> pl.DataFrame:
    """One sample per user and position ``i >= 1``, users in id order: ``uid, history, target, timestamp``.

    ``history`` is the space-joined ``items[max(0, i-max_history):i]`` (the ``.inter`` column).
    Timelines are cut into slices at user boundaries, so a shift inside a slice stays within a
    user wherever the position allows it.
    """
    position = timelines.select(position=pl.int_range(pl.len()).over("uid"))["position"]
    starts = (position == 0).arg_true().to_list()
    cuts = [0]
    for start in starts[1:]:  # one step per user, not per interaction
        if start - cuts[-1] >= SAMPLE_SLICE_ROWS:
            cuts.append(start)
    cuts.append(timelines.height)
    item = pl.col("iid").cast(pl.String)
    pos = pl.col("position")
    shifted = [pl.when(pos >= k).then(item.shift(k)) for k in range(max_history, 0, -1)]
    parts = []
    for lo, hi in zip(cuts[:-1], cuts[1:]):
        part = timelines[lo:hi].select("uid", "iid", "timestamp").with_columns(position=position[lo:hi])
        parts.append(part.select(
            "uid", pos, history=pl.concat_str(shifted, separator=" ", ignore_nulls=True), target=pl.col("iid"),
            timestamp=pl.col("timestamp"),
        ).filter(pos >= 1).drop("position"))
    return pl.concat(parts, rechunk=True)


def split_indices(total: int) -> tuple[int, int]:
    """``(int(T*0.8), int(T*0.9))``: the train end and the valid end."""
    return int(total * TRAIN_FRACTION), int(total * VALID_END_FRACTION)


def chronological_split(samples: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Stable sort by target time, then cut 8:1:1."""
    ordered = samples.sort("timestamp", maintain_order=True)
    train_end, valid_end = split_indices(ordered.height)
    return ordered[:train_end], ordered[train_end:valid_end], ordered[valid_end:]


# --------------------------------------------------------------------------------------------
# The whole protocol
# --------------------------------------------------------------------------------------------

@dataclass
class ColumnarDataset:
    """The protocol's result as frames (what :func:`write_dataset` writes)."""

    timelines: pl.DataFrame  # see remap_ids
    train: pl.DataFrame  # see sliding_samples
    valid: pl.DataFrame
    test: pl.DataFrame
    stats: dict[str, Any]


def build_frames(raw: RawData, options: ProtocolOptions) -> ColumnarDataset:
    """Run steps 2-7 on parsed raw data (the title filter is already in ``raw.items``)."""
    frame = interaction_frame(raw.interactions)
    if frame.height == 0:
        raise InputError(f"{raw.source}: no usable interaction; check that the reviews file is the right one")
    if not raw.items:
        raise InputError(f"{raw.source}: no item has a usable title, so every item is filtered out")
    # categorical ids: the k-core windows and sorts then work on 4-byte codes instead of strings
    titled = (frame.filter(pl.col("item").is_in(pl.Series(list(raw.items), dtype=pl.String)))
              .with_columns(pl.col("user", "item").cast(pl.Categorical)))
    if titled.height == 0:
        raise InputError(
            f"{raw.source}: none of the reviewed items has metadata with a usable title; "
            "are the reviews and the meta file of the same category?"
        )
    if options.user_k < 0 or options.item_k < 0 or options.min_items < 0:
        raise InputError("user_k, item_k and min_items must be >= 0")

    st_year = options.st_year
    while True:
        window = make_window(st_year, options.st_month, options.ed_year, options.ed_month)
        kept, counts = filter_titled(titled, frame.height, window, options.user_k, options.item_k, options.dedup)
        n_items = kept["item"].n_unique()
        logger.info(
            "window %s: %d interactions, %d items after %d k-core pass(es)",
            window.describe() if window else "(none)", kept.height, n_items, counts["kcore_passes"],
        )
        if window is None or n_items >= options.min_items or st_year <= EARLIEST_YEAR:
            break
        st_year -= 1
        logger.info("fewer than min_items=%d items: widening the window to start in %d", options.min_items, st_year)

    _check_not_empty(raw, titled, window, kept, counts, options)
    timelines = remap_ids(kept)
    del frame, titled, kept
    samples = sliding_samples(timelines)
    if samples.height == 0:
        raise InputError(
            f"{raw.source}: every remaining user has a single interaction, so no sample can be built; "
            "lower --user_k/--item_k or widen the time window"
        )
    train, valid, test = chronological_split(samples)
    stats = {
        "dataset": options.dataset,
        "source": raw.source,
        "category_phrase": category_phrase(options.dataset),
        "users": int(timelines["uid"].n_unique()),
        "items": int(timelines["iid"].n_unique()),
        "interactions": timelines.height,
        "samples": {"train": train.height, "valid": valid.height, "test": test.height, "total": samples.height},
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
    return ColumnarDataset(timelines, train, valid, test, stats)


def build_dataset(raw: RawData, options: ProtocolOptions) -> ProcessedDataset:
    """:func:`build_frames` as Python objects (for the GPR features, which walk samples one by one)."""
    frames = build_frames(raw, options)
    timelines = frames.timelines
    user2id = dict(timelines.unique("uid", keep="first", maintain_order=True).select("user", "uid").iter_rows())
    item2id = dict(timelines.unique("iid", keep="first").sort("iid").select("item", "iid").iter_rows())
    sequences: dict[int, list[tuple[int, int, float]]] = {}
    for uid, iid, ts, rating in timelines.select("uid", "iid", "timestamp", "rating").iter_rows():
        sequences.setdefault(uid, []).append((iid, ts, rating))

    def samples(split: pl.DataFrame) -> list[Sample]:
        return [Sample(u, tuple(int(x) for x in h.split()), t, ts) for u, h, t, ts in split.iter_rows()]

    return ProcessedDataset(user2id, item2id, sequences, samples(frames.train), samples(frames.valid),
                            samples(frames.test), frames.stats, frames)


def _time_range(samples: pl.DataFrame) -> dict[str, str] | None:
    if samples.height == 0:
        return None
    return {"first": iso_utc(samples["timestamp"][0]), "last": iso_utc(samples["timestamp"][-1])}


def _check_not_empty(
    raw: RawData, titled: pl.DataFrame, window: TimeWindow | None, kept: pl.DataFrame, counts: Mapping[str, int],
    options: ProtocolOptions,
) -> None:
    if kept.height:
        return
    if window is not None and counts["removed_outside_window"] == titled.height:
        raise InputError(
            f"{raw.source}: no review falls in the time window {window.describe()}; the reviews of titled items "
            f"span {iso_utc(titled['timestamp'].min())} .. {iso_utc(titled['timestamp'].max())}; fix "
            "--st_year/--st_month/--ed_year/--ed_month (or set --st_year 0 for no window)"
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
    return Path(options.output_path) / options.dataset


def write_dataset(
    ds: ColumnarDataset | ProcessedDataset, items: Mapping[str, dict[str, Any]], out_dir: str | Path, dataset: str
) -> Path:
    """Write every output file of the data stage into ``out_dir`` (atomically, one by one).

    The completion markers (``<D>.stats.json`` here, ``data.config.yaml`` in :func:`process`) are
    removed first and written last, so an interrupted run never looks finished with a mix of
    old and new files.
    """
    frames = ds.frames if isinstance(ds, ProcessedDataset) else ds
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    prefix = out_dir / dataset
    for marker in (out_dir / "data.config.yaml", Path(f"{prefix}.stats.json")):
        marker.unlink(missing_ok=True)
    for name, samples in (("train", frames.train), ("valid", frames.valid), ("test", frames.test)):
        line = pl.concat_str([pl.col("uid").cast(pl.String), pl.col("history"), pl.col("target").cast(pl.String)],
                             separator="\t")
        write_lines(f"{prefix}.{name}.inter", "\t".join(INTER_HEADER), samples.select(line))
    timelines = frames.timelines
    item_order = timelines.unique("iid", keep="first").sort("iid").select("item", "iid")
    write_json(f"{prefix}.item.json", {str(i): items[item] for item, i in item_order.iter_rows()})
    write_inter_json(f"{prefix}.inter.json", timelines)
    users = timelines.unique("uid", keep="first", maintain_order=True).select("user", "uid")
    write_id_map(f"{prefix}.user2id", users)
    write_id_map(f"{prefix}.item2id", item_order)
    write_interactions_tsv(f"{prefix}.interactions.tsv", timelines)
    write_json(f"{prefix}.stats.json", frames.stats)
    logger.info(
        "%s: %d users, %d items, %d interactions; samples train/valid/test = %d/%d/%d -> %s",
        dataset, frames.stats["users"], frames.stats["items"], frames.stats["interactions"],
        frames.train.height, frames.valid.height, frames.test.height, out_dir,
    )
    return out_dir


def write_lines(path: str | Path, header: str | None, lines: pl.DataFrame) -> Path:
    """Write ``header`` (if any) and the one string column of ``lines``, one per line, atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        if header is not None:
            f.write(f"{header}\n".encode())
        lines.write_csv(f, include_header=False, quote_style="never")
    return Path(path)


def write_id_map(path: str | Path, pairs: pl.DataFrame) -> Path:
    """``original<TAB>index`` per row of the two-column frame ``pairs`` (the format of io.write_id_map)."""
    key, index = pairs.columns
    line = pl.concat_str([pl.col(key).cast(pl.String), pl.col(index).cast(pl.String)], separator="\t")
    return write_lines(path, None, pairs.select(line))


def write_inter_json(path: str | Path, timelines: pl.DataFrame) -> Path:
    """``{"user": [item, ...], ...}`` on one line (the format of io.write_inter_json)."""
    per_user = (timelines.group_by("uid", maintain_order=True)
                .agg(pl.col("iid").cast(pl.String).str.join(", "))
                .select(pl.format('"{}": [{}]', "uid", "iid").str.join(", ")))
    return atomic_write_text(path, "{" + per_user.item() + "}\n")


def write_interactions_tsv(path: str | Path, timelines: pl.DataFrame) -> Path:
    """Every kept interaction as a RecBole-style atomic TSV, users in id order, time order within."""
    ratings = timelines["rating"].unique().to_list()
    rating = pl.col("rating").replace_strict(ratings, [f"{r:g}" for r in ratings], return_dtype=pl.String)
    line = pl.concat_str([pl.col("uid").cast(pl.String), pl.col("iid").cast(pl.String), rating,
                          pl.col("timestamp").cast(pl.String)], separator="\t")
    return write_lines(path, "user_id:token\titem_id:token\trating:float\ttimestamp:float", timelines.select(line))


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
    interactions, review_counts = _read_reviews(Path(reviews_path), strict, _amazon18_review, AMAZON18_KEYS)
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


AMAZON18_KEYS = ReviewKeys("reviewerID", "asin", "unixReviewTime", "overall")


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
    interactions, review_counts = _read_reviews(Path(reviews_path), strict, _amazon23_review, AMAZON23_KEYS)
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


AMAZON23_KEYS = ReviewKeys("user_id", "parent_asin", "timestamp", "rating", time_divisor=1000)


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


REVIEW_CHUNK_BYTES = 32 << 20  # decompressed bytes parsed at a time: bounds the reader's memory


def _read_reviews(
    path: Path, strict: bool, make_interaction: Any, keys: ReviewKeys
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Reviews as a frame (:data:`INTERACTION_SCHEMA`), parsed by polars chunk by chunk.

    A chunk polars cannot parse cleanly (a malformed line, a missing or odd-typed field) is
    re-read line by line with ``make_interaction``, the rules of record, so skips are counted
    and errors name the line exactly as for a row-by-row reader.
    """
    skips = LineSkips(path)
    frames: list[pl.DataFrame] = []
    n_lines = 0
    try:
        with tqdm(desc=f"reviews {path.name}", unit=" lines", mininterval=5, disable=None) as bar:
            for lineno, chunk in _line_chunks(path):
                frame = _parse_review_chunk(chunk, keys)
                if frame is None:
                    frame = _review_chunk_by_line(chunk, lineno, path, skips, strict, make_interaction)
                frames.append(frame)
                lines = chunk.count(b"\n")
                n_lines += lines
                bar.update(lines)
    except (OSError, EOFError) as exc:
        raise InputError(f"reviews file {path} cannot be read ({exc}); re-download or decompress it again") from None
    interactions = pl.concat(frames, rechunk=True) if frames else pl.DataFrame(schema=INTERACTION_SCHEMA)
    if interactions.height == 0:
        raise InputError(f"reviews file {path} has no usable review (every line was malformed or incomplete)")
    return interactions, {"reviews_read": interactions.height, "review_lines_skipped": _logged(skips)}


def _line_chunks(path: Path) -> Iterator[tuple[int, bytes]]:
    """``(number of the first line, whole lines)`` of about REVIEW_CHUNK_BYTES each, decompressing ``.gz``."""
    require_file(path, "reviews file")
    lineno = 1
    with (gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")) as f:
        rest = b""
        while block := f.read(REVIEW_CHUNK_BYTES):
            block = rest + block
            cut = block.rfind(b"\n") + 1
            chunk, rest = block[:cut], block[cut:]
            if chunk:
                yield lineno, chunk
                lineno += chunk.count(b"\n")
        if rest:
            yield lineno, rest


def _parse_review_chunk(chunk: bytes, keys: ReviewKeys) -> pl.DataFrame | None:
    """The chunk's reviews when every line is a complete, well-typed review; else None."""
    schema = {keys.user: pl.String, keys.item: pl.String, keys.time: pl.Int64, keys.rating: pl.Float64}
    try:
        frame = pl.read_ndjson(_io.BytesIO(chunk), schema=schema)
    except (pl.exceptions.PolarsError, ValueError):
        return None
    for key in (keys.user, keys.item):
        column = frame[key]
        if column.null_count() or (column.str.len_bytes() == 0).any():
            return None
        # polars turns a number into a string; the rules want a JSON string: count the string values
        if chunk.count(f'"{key}": "'.encode()) + chunk.count(f'"{key}":"'.encode()) != frame.height:
            return None
    if frame[keys.time].null_count():
        return None
    rating = pl.col(keys.rating)
    return frame.select(
        user=pl.col(keys.user), item=pl.col(keys.item),
        timestamp=pl.col(keys.time) // keys.time_divisor if keys.time_divisor != 1 else pl.col(keys.time),
        rating=pl.when(rating.is_finite()).then(rating).otherwise(0.0).fill_null(0.0),
    )


def _review_chunk_by_line(
    chunk: bytes, lineno: int, path: Path, skips: LineSkips, strict: bool, make_interaction: Any
) -> pl.DataFrame:
    try:
        text = chunk.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"reviews file {path} cannot be read ({exc}); re-download or decompress it again") from None
    rows: list[Interaction] = []
    for number, record in json_object_lines(text.splitlines(), lineno, path, skips, strict, "reviews file"):
        parsed = make_interaction(record)
        if isinstance(parsed, str):
            _skip_or_fail(skips, parsed, number, strict, "every review needs its user, item and time fields")
            continue
        rows.append(parsed)
    return pl.DataFrame(rows, schema=INTERACTION_SCHEMA, orient="row")


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
    from minionerec.records import stage_outputs  # records imports config, which imports io: keep this light

    dataset = build_frames(raw, options)
    out = output_dir(options)
    with stage_outputs(options, out) as staging:  # every file published together, the done-record last
        write_dataset(dataset, raw.items, staging, options.dataset)
    return out


__all__ = [
    "AMAZON18_HELP",
    "ColumnarDataset",
    "INTERACTION_SCHEMA",
    "Interaction",
    "ProcessedDataset",
    "ProtocolOptions",
    "RawData",
    "Sample",
    "TimeWindow",
    "amazon18_files",
    "amazon23_files",
    "build_dataset",
    "build_frames",
    "interaction_frame",
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
