"""The data protocol, step by step: raw interactions -> k-core -> id maps -> 10-item windows -> 8:1:1 time split.

Columnar (polars frames, one row per interaction; user and item ids are categorical codes from
the reader on), byte-identical to the former row-by-row code kept as the test oracle
``tests/reference_preprocess.py``.  It follows upstream's ``data/amazon18_data_process.py``
(reference ``original-minionerec.md`` §1.1, §1.2, §2):

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

The whole protocol (steps 2-7 and the stats) is :func:`minionerec.data.build.build_frames`.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, NamedTuple

import polars as pl

from minionerec.errors import InputError
from minionerec.io import InterRow

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


#: The columns of an interaction frame.  Readers hand ``user``/``item`` over as ``pl.Categorical``
#: (4-byte codes: the protocol's windows, sorts and joins never touch the strings); a String
#: frame or a list of :class:`Interaction` is accepted too and cast on entry.
INTERACTION_SCHEMA = {"user": pl.String, "item": pl.String, "timestamp": pl.Int64, "rating": pl.Float64}
CODED_SCHEMA = {"user": pl.Categorical, "item": pl.Categorical, "timestamp": pl.Int64, "rating": pl.Float64}


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
        frame = self.interactions.select(list(INTERACTION_SCHEMA)).cast(INTERACTION_SCHEMA)
        return [Interaction(*row) for row in frame.iter_rows()]


def coded_frame(rows: Sequence[Interaction] | pl.DataFrame) -> pl.DataFrame:
    """Interactions as a frame of :data:`CODED_SCHEMA` (categorical user/item codes), file order kept."""
    if isinstance(rows, pl.DataFrame):
        return rows.select(list(CODED_SCHEMA)).cast(CODED_SCHEMA)
    return pl.DataFrame(list(rows), schema=INTERACTION_SCHEMA, orient="row").cast(CODED_SCHEMA)


@dataclass(frozen=True)
class TimeWindow:
    start: int
    end: int

    def describe(self) -> str:
        return f"[{iso_utc(self.start)}, {iso_utc(self.end)}]"


@dataclass
class ColumnarDataset:
    """The protocol's result as frames (what :func:`minionerec.data.writers.write_dataset` writes)."""

    timelines: pl.DataFrame  # see remap_ids
    train: pl.DataFrame  # see sliding_samples: ``row, timestamp``, in split order
    valid: pl.DataFrame
    test: pl.DataFrame
    stats: dict[str, Any]


@dataclass
class ProcessedDataset:
    """The protocol's result as Python objects (the GPR features walk samples one by one)."""

    user2id: dict[str, int]
    item2id: dict[str, int]
    sequences: dict[int, list[tuple[int, int, float]]]  # user -> [(item, timestamp, rating)] in time order
    train: list[Sample]
    valid: list[Sample]
    test: list[Sample]
    stats: dict[str, Any]
    frames: ColumnarDataset | None = None  # the frames these objects were made from (what write_dataset writes)


# --------------------------------------------------------------------------------------------
# Step 2: time window
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
# Steps 1-3: filtering (one row per interaction, ``idx`` = file order)
# --------------------------------------------------------------------------------------------

def interaction_frame(interactions: pl.DataFrame | Sequence[Interaction]) -> pl.DataFrame:
    """The interactions as a coded frame ``user, item, timestamp, rating, idx`` (``idx`` = file order)."""
    return coded_frame(interactions).with_row_index("idx")


def titled_only(frame: pl.DataFrame, titled_items: Mapping[str, Any]) -> pl.DataFrame:
    """Step 1: the interactions whose item passed the title filter."""
    titled = pl.Series(list(titled_items), dtype=pl.String).cast(pl.Categorical)
    return frame.filter(pl.col("item").is_in(titled.implode()))


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
    return filter_titled(titled_only(frame, titled_items), frame.height, window, user_k, item_k, dedup)


def filter_titled(
    titled: pl.DataFrame, n_raw: int, window: TimeWindow | None, user_k: int, item_k: int, dedup: bool
) -> tuple[pl.DataFrame, dict[str, int]]:
    """Steps 2-3 on the titled interactions; the counts of what each filter removed."""
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
# Steps 5-7: ids, windows, split
# --------------------------------------------------------------------------------------------

def remap_ids(kept: pl.DataFrame) -> pl.DataFrame:
    """Users by first appearance (file order); items by first encounter walking users in id
    order through their time-sorted (stable) interactions.

    Returns the timelines: ``uid, iid, position, user, item, timestamp, rating`` sorted by user id,
    then time (ties keep file order); ``position`` is the interaction's index in its user's timeline.
    """
    with_uid = kept.with_columns(uid=(pl.col("idx").min().over("user").rank("dense") - 1).cast(pl.Int64))
    ordered = with_uid.sort(["uid", "timestamp", "idx"]).with_row_index("pos")
    ordered = ordered.with_columns(
        iid=(pl.col("pos").min().over("item").rank("dense") - 1).cast(pl.Int64),
        position=(pl.col("pos") - pl.col("pos").min().over("uid")).cast(pl.UInt32),
    )
    return ordered.select("uid", "iid", "position", "user", "item", "timestamp", "rating")


def sliding_samples(timelines: pl.DataFrame) -> pl.DataFrame:
    """One sample per user and position ``i >= 1``, users in id order: ``row, timestamp``.

    ``row`` is the target's row in ``timelines``; the sample's user, target and history (the rows
    before it in the same timeline, at most :data:`MAX_HISTORY`) are gathered from there when the
    sample is written (:func:`sample_columns`), so no per-sample list or string is ever held.
    """
    return (timelines.select("position", "timestamp").with_row_index("row")
            .filter(pl.col("position") >= 1).select("row", "timestamp"))


def sample_columns(
    timelines: pl.DataFrame, samples: pl.DataFrame, max_history: int = MAX_HISTORY,
    item_text: pl.Series | None = None,
) -> pl.DataFrame:
    """``uid, h<k>..., target`` of ``samples`` (rows of ``timelines``): ``h1`` is the item just before
    the target, ``h<k>`` the k-th before it (null beyond the user's first item).  With ``item_text``
    (:func:`item_strings` of the same timelines) the ``h<k>`` are gathered from it, as strings: each
    id is then formatted once per interaction, not once per sample and position."""
    iid = pl.lit(timelines["iid"] if item_text is None else item_text)
    back = pl.col("row").cast(pl.Int64)
    picked = (timelines.select(pl.col("uid", "iid", "position").gather(samples["row"]))
              .with_columns(row=samples["row"]))
    history = {f"h{k}": pl.when(pl.col("position") >= k).then(iid.gather((back - k).clip(0)))
               for k in range(max_history, 0, -1)}
    return picked.select("uid", **history, target="iid")


def item_strings(timelines: pl.DataFrame) -> pl.Series:
    """The ``iid`` column as strings (short ids are stored inline, so the gathers stay cheap)."""
    return timelines["iid"].cast(pl.String)


def history_expr(max_history: int = MAX_HISTORY) -> pl.Expr:
    """The space-joined history (the ``.inter`` column) of a :func:`sample_columns` frame."""
    return pl.concat_str([pl.col(f"h{k}").cast(pl.String) for k in range(max_history, 0, -1)],
                         separator=" ", ignore_nulls=True)


def split_indices(total: int) -> tuple[int, int]:
    """``(int(T*0.8), int(T*0.9))``: the train end and the valid end."""
    return int(total * TRAIN_FRACTION), int(total * VALID_END_FRACTION)


def chronological_split(samples: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Stable sort by target time, then cut 8:1:1."""
    ordered = samples.sort("timestamp", maintain_order=True)
    train_end, valid_end = split_indices(ordered.height)
    return ordered[:train_end], ordered[train_end:valid_end], ordered[valid_end:]
