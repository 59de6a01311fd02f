"""JSON-lines raw files shared by the Amazon readers: the meta file (one item record per line) and
the reviews file, parsed by polars chunk by chunk straight into categorical user/item codes."""

from __future__ import annotations

import gzip
import io as _io
import logging
import math
import queue
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
from tqdm import tqdm

from minionerec.errors import InputError, where
from minionerec.io import LineSkips, iter_json_lines, json_object_lines, require_file
from minionerec.data.protocol import CODED_SCHEMA, Interaction, coded_frame

logger = logging.getLogger(__name__)

REVIEW_CHUNK_BYTES = 16 << 20  # decompressed bytes parsed at a time: bounds the reader's memory

#: A format's rule for one parsed review record: the interaction, or why the record is skipped.
ReviewRule = Callable[[Mapping[str, Any]], "Interaction | str"]
#: A format's rule for one meta record: its item.json record, or None when the title filter drops it.
ItemRule = Callable[[Mapping[str, Any]], "dict[str, Any] | None"]


@dataclass(frozen=True)
class ReviewKeys:
    """The JSON keys of a review format; ``time_divisor`` turns the time field into seconds."""

    user: str
    item: str
    time: str
    rating: str
    time_divisor: int = 1


def first_existing(folder: Path, names: Sequence[str], what: str, fix: str) -> Path:
    for name in names:
        if (folder / name).is_file():
            return folder / name
    raise InputError(f"{what} not found in {folder}: expected one of {', '.join(names)}; {fix}")


def logged(skips: LineSkips) -> dict[str, int]:
    skips.log()
    return skips.as_dict()


def skip_or_fail(skips: LineSkips, reason: str, lineno: int, strict: bool, fix: str) -> None:
    if strict:
        raise InputError(f"{where(skips.path, lineno)}: {reason}; {fix}")
    skips.add(reason, lineno)


def as_int(value: Any) -> int | None:
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


def as_float(value: Any) -> float:
    try:
        result = float(value)
    except (TypeError, ValueError):
        return 0.0
    return result if math.isfinite(result) else 0.0


# --------------------------------------------------------------------------------------------
# Meta files
# --------------------------------------------------------------------------------------------

def read_meta(path: Path, strict: bool, key: str, make_item: ItemRule) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Items that pass the title filter (a later line of the same item overwrites an earlier one)."""
    skips = LineSkips(path)
    items: dict[str, dict[str, Any]] = {}
    records = without_title = 0
    for lineno, record in tqdm(iter_json_lines(path, skips, strict, "meta file"), desc=f"meta {path.name}",
                               unit=" lines", mininterval=5, disable=None):
        item = record.get(key)
        if not isinstance(item, str) or not item:
            skip_or_fail(skips, f"a meta record without {key!r}", lineno, strict, f"every record needs {key!r}")
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
                   "items_with_title": len(items), "meta_lines_skipped": logged(skips)}


# --------------------------------------------------------------------------------------------
# Reviews files
# --------------------------------------------------------------------------------------------

def read_reviews(
    path: Path, strict: bool, make_interaction: ReviewRule, keys: ReviewKeys
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Reviews as a coded frame (:data:`CODED_SCHEMA`), parsed by polars chunk by chunk.

    A chunk polars cannot parse cleanly (a malformed line, a missing or odd-typed field) is
    re-read line by line with ``make_interaction``, the rules of record, so skips are counted
    and errors name the line exactly as for a row-by-row reader.  Each chunk's ids become
    categorical codes at once, so no id string is kept per review.
    """
    skips = LineSkips(path)
    frames: list[pl.DataFrame] = []
    try:
        with tqdm(desc=f"reviews {path.name}", unit=" lines", mininterval=5, disable=None) as bar:
            for lineno, chunk in line_chunks(path):
                frame = parse_review_chunk(chunk, keys)
                if frame is None:
                    frame = review_chunk_by_line(chunk, lineno, path, skips, strict, make_interaction)
                frames.append(frame)
                bar.update(chunk.count(b"\n"))
    except (OSError, EOFError) as exc:
        raise InputError(f"reviews file {path} cannot be read ({exc}); re-download or decompress it again") from None
    interactions = pl.concat(frames, rechunk=True) if frames else pl.DataFrame(schema=CODED_SCHEMA)
    if interactions.height == 0:
        raise InputError(f"reviews file {path} has no usable review (every line was malformed or incomplete)")
    return interactions, {"reviews_read": interactions.height, "review_lines_skipped": logged(skips)}


def line_chunks(path: Path) -> Iterator[tuple[int, bytes]]:
    """``(number of the first line, whole lines)`` of about REVIEW_CHUNK_BYTES each, decompressing ``.gz``.

    The file is read (and decompressed) one block ahead in a thread, so the next block is
    inflated while the caller parses this one (zlib and polars both release the GIL).
    """
    require_file(path, "reviews file")
    lineno = 1
    rest = b""
    for block in _read_ahead(path):
        block = rest + block
        cut = block.rfind(b"\n") + 1
        chunk, rest = block[:cut], block[cut:]
        if chunk:
            yield lineno, chunk
            lineno += chunk.count(b"\n")
    if rest:
        yield lineno, rest


def _read_ahead(path: Path) -> Iterator[bytes]:
    """The blocks of ``path`` (decompressed), read by a thread at most one block ahead of the caller."""
    blocks: queue.Queue[bytes | BaseException | None] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def reader() -> None:
        try:
            with (gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")) as f:
                while not stop.is_set() and (block := f.read(REVIEW_CHUNK_BYTES)):
                    blocks.put(block)
            blocks.put(None)
        except BaseException as exc:  # handed to the caller, which raises it in its own thread
            blocks.put(exc)

    thread = threading.Thread(target=reader, name=f"read {path.name}", daemon=True)
    thread.start()
    try:
        while (block := blocks.get()) is not None:
            if isinstance(block, BaseException):
                raise block
            yield block
    finally:
        stop.set()
        while thread.is_alive():  # unblock a reader waiting on a full queue, then let it finish
            try:
                blocks.get(timeout=0.1)
            except queue.Empty:
                pass
        thread.join()


def parse_review_chunk(chunk: bytes, keys: ReviewKeys) -> pl.DataFrame | None:
    """The chunk's reviews (coded) when every line is a complete, well-typed review; else None."""
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
        user=pl.col(keys.user).cast(pl.Categorical), item=pl.col(keys.item).cast(pl.Categorical),
        timestamp=pl.col(keys.time) // keys.time_divisor if keys.time_divisor != 1 else pl.col(keys.time),
        rating=pl.when(rating.is_finite()).then(rating).otherwise(0.0).fill_null(0.0),
    )


def review_chunk_by_line(
    chunk: bytes, lineno: int, path: Path, skips: LineSkips, strict: bool, make_interaction: ReviewRule
) -> pl.DataFrame:
    try:
        text = chunk.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"reviews file {path} cannot be read ({exc}); re-download or decompress it again") from None
    rows: list[Interaction] = []
    for number, record in json_object_lines(text.splitlines(), lineno, path, skips, strict, "reviews file"):
        parsed = make_interaction(record)
        if isinstance(parsed, str):
            skip_or_fail(skips, parsed, number, strict, "every review needs its user, item and time fields")
            continue
        rows.append(parsed)
    return coded_frame(rows)
