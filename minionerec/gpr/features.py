"""GPR features of a processed dataset, from training-period signals only, and the side files that hold them.

*Training-period interactions* of a user are the interactions the training split shows: its
first ``k + 1`` interactions when ``k`` of its samples are train samples.  (The split is a
stable sort by target time, so a user's train targets are always its positions ``1..k``.)

- **U** (one per user): mean rating of the user's training-period interactions;
  ``> user_high`` -> ``[USER_HIGH_RATING]``, ``> user_mid`` -> ``[USER_MID_RATING]``, else
  ``[USER_LOW_RATING]``; a user without training-period interactions gets ``[USER_UNKNOWN]``.
- **E** (one per sample, the context of the request at the target's time): ``gap`` (default)
  buckets the time since the user's previous interaction (same day / within a week / within 30
  days / longer); ``weekday`` is weekday vs weekend (UTC); ``random`` is upstream's simulated
  noise (browse / search / homepage), drawn from a seeded RNG, kept as a control.
- **I/O item type**: ``price`` (default) marks an item ``I`` when its price is known and at
  least the ``item_type_quantile`` quantile of the known prices of the training-period items,
  else ``O``; ``popularity`` marks it ``I`` when its training-period interaction count reaches
  that quantile of the training-period items' counts.
- **Item value** (VAFT): ``v_raw = ln(1 + price) + ln(1 + n_train)`` (unknown price counts as 0),
  min-max normalised with the minimum and maximum over the training-period items and clipped
  to ``[0, 1]`` (items seen only later get their clipped value).

The data-stage hooks: the plain ``minionerec.data.process(raw, options, variant)`` calls
:func:`dataset_features` before writing and :func:`write_side_files` (:mod:`minionerec.gpr.sidefiles`)
inside the same publication.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from minionerec.errors import InputError
from minionerec.gpr.config import GPRConfig
from minionerec.gpr.sidefiles import CONTEXT_HEADER, ItemFeature, SideFiles
from minionerec.gpr.tokens import CONTEXT_TOKENS, DAY, USER_TOKENS, USER_UNKNOWN, gpr_vocabulary
from minionerec.io import atomic_write_text, write_json

logger = logging.getLogger(__name__)


def parse_price(raw: Any) -> float | None:
    """A price as a float, or None: Amazon'18 strings like ``"$1,234.50"``; ranges and junk -> None."""
    if raw is None or isinstance(raw, bool):
        return None
    if isinstance(raw, (int, float)):
        value = float(raw)
    else:
        text = str(raw).strip().replace("$", "").replace(",", "")
        try:
            value = float(text)
        except ValueError:
            return None
    return value if math.isfinite(value) and value >= 0 else None


def training_interactions(sequences: Mapping[int, Sequence[tuple[int, int, float]]],
                          train_targets_per_user: Mapping[int, int]) -> dict[int, list[tuple[int, int, float]]]:
    """``{user: its first k + 1 interactions}`` for users with ``k >= 1`` train samples."""
    return {user: list(sequences[user][: k + 1]) for user, k in train_targets_per_user.items() if k > 0}


def user_tokens(train_seqs: Mapping[int, Sequence[tuple[int, int, float]]], users: Sequence[int],
                high: float, mid: float) -> dict[int, str]:
    """U token of every user in ``users`` from its training-period ratings."""
    out = {}
    for user in users:
        seq = train_seqs.get(user)
        if not seq:
            out[user] = USER_UNKNOWN
            continue
        mean = sum(r for _, _, r in seq) / len(seq)
        out[user] = USER_TOKENS[0] if mean > high else USER_TOKENS[1] if mean > mid else USER_TOKENS[2]
    return out


def quantile(values: Sequence[float], q: float) -> float:
    """The lower ``q`` quantile (an element of ``values``; no interpolation)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def item_features(records: Mapping[int, Mapping[str, Any]], train_seqs: Mapping[int, Sequence[tuple[int, int, float]]],
                  rule: str, q: float) -> tuple[dict[int, ItemFeature], dict[str, Any]]:
    """Type and value of every item in ``records``; statistics over the training-period items."""
    counts: dict[int, int] = {}
    for seq in train_seqs.values():
        for item, _, _ in seq:
            counts[item] = counts.get(item, 0) + 1
    prices = {item: parse_price(rec.get("price")) for item, rec in records.items()}
    train_items = sorted(counts)
    if not train_items:
        raise InputError("no training-period interaction: the train split is empty, so GPR features cannot be fitted")
    known = [prices[i] for i in train_items if prices.get(i) is not None]
    if rule == "price":
        if not known:
            raise InputError("gpr.item_type_rule=price but no training-period item has a parseable price; "
                             "use gpr.item_type_rule popularity for this dataset")
        threshold = quantile(known, q)
        is_i = {i: prices[i] is not None and prices[i] >= threshold for i in records}
    else:
        threshold = quantile([counts[i] for i in train_items], q)
        is_i = {i: counts.get(i, 0) >= threshold for i in records}
    raw = {i: math.log1p(prices[i] or 0.0) + math.log1p(counts.get(i, 0)) for i in records}
    low = min(raw[i] for i in train_items)
    high = max(raw[i] for i in train_items)
    span = high - low
    feats = {}
    for i in records:
        value = 0.5 if span <= 0 else min(1.0, max(0.0, (raw[i] - low) / span))
        feats[i] = ItemFeature("I" if is_i[i] else "O", value, prices[i], counts.get(i, 0))
    stats = {"type_threshold": threshold, "items_with_price": sum(p is not None for p in prices.values()),
             "train_items": len(train_items), "type_I": sum(f.type == "I" for f in feats.values()),
             "value_raw_min": low, "value_raw_max": high}
    return feats, stats


def context_token(rule: str, timestamp: int, previous: int | None, rng: random.Random) -> str:
    """E token of one request (the sample's target time; ``previous`` = the last history interaction's time)."""
    tokens = CONTEXT_TOKENS[rule]
    if rule == "random":
        return rng.choice(tokens)
    if rule == "weekday":
        return tokens[1] if dt.datetime.fromtimestamp(timestamp, dt.timezone.utc).weekday() >= 5 else tokens[0]
    gap = timestamp - (previous if previous is not None else timestamp)
    return tokens[0] if gap < DAY else tokens[1] if gap < 7 * DAY else tokens[2] if gap < 30 * DAY else tokens[3]


def previous_timestamps(samples: Sequence[Any], sequences: Mapping[int, Sequence[tuple[int, int, float]]],
                        max_history: int = 10) -> list[int]:
    """For each sample, the time of the interaction just before its target in the user's timeline.

    A sample is located by (user, target time, target, history) among the user's positions; the
    positions of one user are consumed in order, so repeated identical windows stay aligned.
    """
    positions: dict[tuple[int, int, int, tuple[int, ...]], list[int]] = {}
    for user, seq in sequences.items():
        items = [x[0] for x in seq]
        for i in range(1, len(seq)):
            key = (user, seq[i][1], seq[i][0], tuple(items[max(0, i - max_history):i]))
            positions.setdefault(key, []).append(seq[i - 1][1])
    out: list[int | None] = []
    for s in samples:
        key = (s.user, s.timestamp, s.target, tuple(s.history))
        found = positions.get(key)
        if not found:
            raise RuntimeError(f"sample {key} is not a position of user {s.user}'s timeline: the samples and the "
                               "sequences come from different runs (or another history length)")
        out.append(found.pop(0))
    return out


@dataclass
class GPRFeatures:
    users: dict[int, str]
    items: dict[int, ItemFeature]
    contexts: dict[str, list[tuple[int, int, str]]]   # split -> [(user, target, E)] aligned with the .inter rows
    summary: dict[str, Any]


def extract_features(ds: Any, records: Mapping[int, Mapping[str, Any]], cfg: GPRConfig) -> GPRFeatures:
    """All GPR features of a processed dataset (``minionerec.data.ProcessedDataset``)."""
    cfg.check()
    per_user: dict[int, int] = {}
    for s in ds.train:
        per_user[s.user] = per_user.get(s.user, 0) + 1
    train_seqs = training_interactions(ds.sequences, per_user)
    users = user_tokens(train_seqs, sorted(ds.sequences), cfg.user_high, cfg.user_mid)
    items, item_stats = item_features(records, train_seqs, cfg.item_type_rule, cfg.item_type_quantile)
    rng = random.Random(cfg.seed)
    contexts = {}
    for split in ("train", "valid", "test"):
        samples = getattr(ds, split)
        previous = previous_timestamps(samples, ds.sequences)
        contexts[split] = [(s.user, s.target, context_token(cfg.context_rule, s.timestamp, p, rng))
                           for s, p in zip(samples, previous)]
    train_cutoff = max((s.timestamp for s in ds.train), default=None)
    summary = {
        "rules": {"user": cfg.user_rule, "user_high": cfg.user_high, "user_mid": cfg.user_mid,
                  "context": cfg.context_rule, "item_type": cfg.item_type_rule, "item_type_quantile": cfg.item_type_quantile,
                  "value": "minmax(ln(1+price) + ln(1+train_count)) over training-period items"},
        "seed": cfg.seed,
        "train_cutoff_timestamp": train_cutoff,
        "user_token_counts": _counts(users.values()),
        "context_token_counts": {split: _counts(t for _, _, t in rows) for split, rows in contexts.items()},
        "items": item_stats,
        "tokens": gpr_vocabulary(),
    }
    return GPRFeatures(users, items, contexts, summary)


def _counts(values: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return dict(sorted(out.items()))


def dataset_features(dataset: Any, raw_items: Mapping[str, Mapping[str, Any]], cfg: GPRConfig) -> GPRFeatures:
    """Data-stage hook, before anything is written: the features of a built dataset
    (``minionerec.data.ProcessedDataset``) whose raw item records are ``raw_items``."""
    cfg.check()
    id2item = {index: item for item, index in dataset.item2id.items()}
    records = {i: raw_items[id2item[i]] for i in range(len(id2item))}
    return extract_features(dataset, records, cfg)


def write_side_files(features: GPRFeatures, data_dir: str | Path, dataset: str) -> SideFiles:
    files = SideFiles.of(data_dir, dataset)
    files.summary.unlink(missing_ok=True)  # completion marker: written last
    write_json(files.users, {str(u): t for u, t in sorted(features.users.items())})
    write_json(files.items, {str(i): {"type": f.type, "value": round(f.value, 6), "price": f.price,
                                      "train_count": f.train_count} for i, f in sorted(features.items.items())})
    for split, rows in features.contexts.items():
        lines = ["\t".join(CONTEXT_HEADER)] + [f"{u}\t{i}\t{t}" for u, i, t in rows]
        atomic_write_text(files.contexts[split], "\n".join(lines) + "\n")
    write_json(files.summary, features.summary)
    logger.info("GPR side files: %s, %s, %s; U %s; types %s", files.users.name, files.items.name, files.summary.name,
                features.summary["user_token_counts"], {"I": features.summary["items"]["type_I"],
                                                        "O": len(features.items) - features.summary["items"]["type_I"]})
    return files
