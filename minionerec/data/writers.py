"""Every output file of the data stage, written from the protocol's frames in the current formats.

Large files are written in slices of :data:`SLICE_ROWS` rows, so the text of a whole split is
never held in memory at once; each file is atomic (temp file, then rename).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import polars as pl

from minionerec.io import INTER_HEADER, atomic_path, atomic_write_text, write_json
from minionerec.data.protocol import (
    ColumnarDataset,
    ProcessedDataset,
    ProtocolOptions,
    history_expr,
    item_strings,
    sample_columns,
)

logger = logging.getLogger(__name__)

SLICE_ROWS = 250_000  # rows turned into text at a time (bounds the writers' memory)
INTERACTIONS_HEADER = "user_id:token\titem_id:token\trating:float\ttimestamp:float"


def output_dir(options: ProtocolOptions) -> Path:
    return Path(options.output_dir) / options.dataset


def write_dataset(
    ds: ColumnarDataset | ProcessedDataset, items: Mapping[str, dict[str, Any]], out_dir: str | Path, dataset: str
) -> Path:
    """Write every output file of the data stage into ``out_dir`` (atomically, one by one).

    The completion markers (``<D>.stats.json`` here, ``data.config.yaml`` in ``process``) are
    removed first and written last, so an interrupted run never looks finished with a mix of
    old and new files.
    """
    frames = ds.frames if isinstance(ds, ProcessedDataset) else ds
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    prefix = out_dir / dataset
    for marker in (out_dir / "data.config.yaml", Path(f"{prefix}.stats.json")):
        marker.unlink(missing_ok=True)
    timelines = frames.timelines
    item_text = item_strings(timelines)
    for name, samples in (("train", frames.train), ("valid", frames.valid), ("test", frames.test)):
        write_inter_frame(f"{prefix}.{name}.inter", timelines, samples, item_text)
    del item_text
    item_order = item_ids(timelines)
    write_json(f"{prefix}.item.json", {str(i): items[item] for item, i in item_order.iter_rows()})
    write_inter_json(f"{prefix}.inter.json", timelines)
    write_id_map(f"{prefix}.user2id", user_ids(timelines))
    write_id_map(f"{prefix}.item2id", item_order)
    write_interactions_tsv(f"{prefix}.interactions.tsv", timelines)
    write_json(f"{prefix}.stats.json", frames.stats)
    logger.info(
        "%s: %d users, %d items, %d interactions; samples train/valid/test = %d/%d/%d -> %s",
        dataset, frames.stats["users"], frames.stats["items"], frames.stats["interactions"],
        frames.train.height, frames.valid.height, frames.test.height, out_dir,
    )
    return out_dir


def user_ids(timelines: pl.DataFrame) -> pl.DataFrame:
    """``user, uid`` in id order."""
    return timelines.unique("uid", keep="first", maintain_order=True).select(pl.col("user").cast(pl.String), "uid")


def item_ids(timelines: pl.DataFrame) -> pl.DataFrame:
    """``item, iid`` in id order."""
    return timelines.unique("iid", keep="first").sort("iid").select(pl.col("item").cast(pl.String), "iid")


def slices(frame: pl.DataFrame) -> Iterator[pl.DataFrame]:
    """``frame`` cut into consecutive slices of at most :data:`SLICE_ROWS` rows (views, no copies)."""
    for start in range(0, frame.height, SLICE_ROWS):
        yield frame.slice(start, SLICE_ROWS)


def write_inter_frame(
    path: str | Path, timelines: pl.DataFrame, samples: pl.DataFrame, item_text: pl.Series | None = None
) -> Path:
    """A ``.inter`` split: ``uid<TAB>history<TAB>target`` per sample, in the split's order
    (``item_text``: :func:`item_strings` of ``timelines``, computed here when not given)."""
    item_text = item_strings(timelines) if item_text is None else item_text
    line = pl.concat_str([pl.col("uid").cast(pl.String), history_expr(), pl.col("target").cast(pl.String)],
                         separator="\t")
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(("\t".join(INTER_HEADER) + "\n").encode())
        for part in slices(samples):
            _write_column(f, sample_columns(timelines, part, item_text=item_text).select(line))
    return Path(path)


def write_lines(path: str | Path, header: str | None, lines: pl.DataFrame) -> Path:
    """Write ``header`` (if any) and the one string column of ``lines``, one per line, atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        if header is not None:
            f.write(f"{header}\n".encode())
        for part in slices(lines):
            _write_column(f, part)
    return Path(path)


def _write_column(f: Any, lines: pl.DataFrame) -> None:
    if lines.height:
        lines.write_csv(f, include_header=False, quote_style="never")


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
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(f"{INTERACTIONS_HEADER}\n".encode())
        for part in slices(timelines):
            _write_column(f, part.select(line))
    return Path(path)
