"""The whole protocol on parsed raw data (steps 2-7 of :mod:`minionerec.data.protocol` and the
stats), and the run shared by the processing scripts: check, build, write every output together."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl

from minionerec.errors import InputError
from minionerec.data.protocol import (
    EARLIEST_YEAR,
    MAX_HISTORY,
    ColumnarDataset,
    ProcessedDataset,
    ProtocolOptions,
    RawData,
    Sample,
    TimeWindow,
    chronological_split,
    filter_titled,
    history_expr,
    interaction_frame,
    iso_utc,
    make_window,
    remap_ids,
    sample_columns,
    sliding_samples,
    titled_only,
)
from minionerec.data.writers import item_ids, output_dir, slices, user_ids, write_dataset
from minionerec.text import category_phrase

logger = logging.getLogger(__name__)

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


def check_dataset_name(options: Any) -> None:
    if not options.dataset:
        raise InputError("no dataset name: pass --dataset NAME (or set common.dataset in the config)")
    if "/" in options.dataset or options.dataset in {".", ".."}:
        raise InputError(f"dataset name {options.dataset!r} must be a plain name, not a path")


def build_frames(raw: RawData, options: ProtocolOptions) -> ColumnarDataset:
    """Run steps 2-7 on parsed raw data (the title filter is already in ``raw.items``)."""
    frame = interaction_frame(raw.interactions)
    if frame.height == 0:
        raise InputError(f"{raw.source}: no usable interaction; check that the reviews file is the right one")
    if not raw.items:
        raise InputError(f"{raw.source}: no item has a usable title, so every item is filtered out")
    titled = titled_only(frame, raw.items)
    n_raw = frame.height
    del frame
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
        kept, counts = filter_titled(titled, n_raw, window, options.user_k, options.item_k, options.dedup)
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
    del titled
    timelines = remap_ids(kept)
    del kept
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
    user2id = dict(user_ids(timelines).iter_rows())
    item2id = dict(item_ids(timelines).iter_rows())
    sequences: dict[int, list[tuple[int, int, float]]] = {}
    for uid, iid, ts, rating in timelines.select("uid", "iid", "timestamp", "rating").iter_rows():
        sequences.setdefault(uid, []).append((iid, ts, rating))

    def samples(split: pl.DataFrame) -> list[Sample]:
        out = []
        for part in slices(split):
            columns = sample_columns(timelines, part).select("uid", history_expr(), "target")
            for (u, h, t), ts in zip(columns.iter_rows(), part["timestamp"]):
                out.append(Sample(u, tuple(int(x) for x in h.split()), t, ts))
        return out

    return ProcessedDataset(user2id, item2id, sequences, samples(frames.train), samples(frames.valid),
                            samples(frames.test), frames.stats, frames)


def process(raw: RawData, options: ProtocolOptions, variant: Any = None) -> Path:
    """Build the dataset from parsed raw data and write every output; returns the output folder.

    A switched-on ``variant`` (``minionerec.gpr.GPRVariant``, the ``gpr:`` section) computes its features
    before anything is written and writes its side files beside the plain outputs (same plain files).
    """
    from minionerec.records import stage_outputs  # records imports config, which imports io: keep this light

    variant = variant if variant is not None and variant.enabled else None
    dataset: ColumnarDataset | ProcessedDataset = (build_frames(raw, options) if variant is None
                                                   else build_dataset(raw, options))
    features = variant.data_features(dataset, raw.items) if variant is not None else None
    out = output_dir(options)
    with stage_outputs(options, out) as staging:  # every file published together, the done-record last
        write_dataset(dataset, raw.items, staging, options.dataset)
        if variant is not None:
            variant.write_data_side_files(features, staging, options.dataset)
    if variant is not None:
        variant.save_config(out)
    return out


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
