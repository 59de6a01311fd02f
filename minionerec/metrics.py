"""HR@K, NDCG@K and CC for next-item prediction with one relevant item.

Two conventions:

- **SID level** (upstream ``calc.py``): a prediction is a SID string; it is a hit when it
  equals the target's SID, so when several items share a SID, predicting it counts as a hit
  for any of them.
- **Item level**: each predicted SID stands for the catalogue items that carry it (in
  catalogue order); the ranked list of *items* is searched for the target item.  With a
  collision-free index both conventions agree.

Predictions are de-duplicated (first occurrence kept) before ranking.  CC counts every
prediction (over all samples) that is not a catalogue SID.  The rank is 0-based;
HR@K = 1[rank < K] and NDCG@K = 1[rank < K] / log2(rank + 2), averaged over samples.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from minionerec.errors import InputError
from minionerec.io import read_predictions

DEFAULT_KS = (1, 3, 5, 10, 20, 50)


def normalise_prediction(text: str) -> str:
    """Strip whitespace, newlines and double quotes, as upstream compares strings."""
    return text.replace('"', "").replace("\n", "").replace(" ", "").strip()


def dedup(predictions: Sequence[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for p in predictions:
        if p not in seen:
            seen.add(p)
            out.append(p)
    return out


def sid_rank(predictions: Sequence[str], target_sid: str) -> int | None:
    """0-based rank of ``target_sid`` among the de-duplicated predictions, or None."""
    for rank, p in enumerate(dedup(predictions)):
        if p == target_sid:
            return rank
    return None


def item_rank(predictions: Sequence[str], target_item: int, sid_to_items: Mapping[str, Sequence[int]]) -> int | None:
    """0-based rank of ``target_item`` when each predicted SID expands to its catalogue items."""
    rank = 0
    seen_items: set[int] = set()
    for p in dedup(predictions):
        for item in sid_to_items.get(p, ()):
            if item in seen_items:
                continue
            if item == target_item:
                return rank
            seen_items.add(item)
            rank += 1
    return None


Ranks = Sequence[Optional[int]]
"""0-based ranks, ``None`` for a miss; a 1-D integer numpy array or torch tensor of ranks works too."""


def _rank_list(ranks: Any) -> list[int | None]:
    """Python ints (or None) from a list, a numpy array or a torch tensor, so every caller shares one formula."""
    return ranks.tolist() if hasattr(ranks, "tolist") else list(ranks)


def ndcg_gain(rank: int | None, k: int) -> float:
    """NDCG@k of one sample with one relevant item: ``1/log2(rank + 2)`` inside the top k, else 0."""
    return 1.0 / math.log2(rank + 2) if rank is not None and rank < k else 0.0


def hr_ndcg(ranks: Ranks, ks: Sequence[int]) -> dict[str, float]:
    """``{"HR@K": ..., "NDCG@K": ...}`` averaged over samples (0 for an empty list).

    The one HR/NDCG implementation: evaluation (SID and item ranks), the baselines' selection
    on valid and the sequential models' epoch selection (torch rank tensors) all call it.
    """
    values = _rank_list(ranks)
    n = len(values)
    out: dict[str, float] = {}
    for k in ks:
        hits = [r for r in values if r is not None and r < k]
        out[f"HR@{k}"] = len(hits) / n if n else 0.0
        out[f"NDCG@{k}"] = sum(ndcg_gain(r, k) for r in hits) / n if n else 0.0
    return out


def parse_metric(metric: str) -> tuple[str, int]:
    """``"NDCG@10" -> ("NDCG", 10)``; InputError for anything but ``HR@K`` / ``NDCG@K``."""
    name, _, k = metric.partition("@")
    if name not in ("HR", "NDCG") or not k.isdigit():
        raise InputError(f"metric must look like NDCG@10 or HR@5, got {metric!r}")
    return name, int(k)


def metric_value(ranks: Ranks, metric: str) -> float:
    """One metric (``"NDCG@10"``, ``"HR@5"``) of 0-based ranks, as :func:`hr_ndcg` computes it."""
    _, k = parse_metric(metric)
    return hr_ndcg(ranks, (k,))[metric]


@dataclass
class Evaluation:
    """Metrics of one predictions set."""

    n_samples: int
    sid_level: dict[str, float]
    item_level: dict[str, float]
    cc: int
    ks: tuple[int, ...]

    def as_dict(self) -> dict:
        return {
            "n_samples": self.n_samples,
            "ks": list(self.ks),
            "sid_level": self.sid_level,
            "item_level": self.item_level,
            "CC": self.cc,
        }


def evaluate_predictions(
    predictions: Sequence[Sequence[str]],
    target_sids: Sequence[str],
    catalogue: Mapping[str, Sequence[int]],
    target_items: Sequence[int] | None = None,
    ks: Sequence[int] = DEFAULT_KS,
) -> Evaluation:
    """Score ranked predictions against one target per sample.

    ``catalogue`` maps every valid SID string to the item ids carrying it.  ``ks`` larger than
    the number of predictions per sample are dropped (as upstream limits K to the beam count).
    ``target_items`` enables item-level metrics; without it item level repeats SID level.
    """
    if len(predictions) != len(target_sids):
        raise ValueError(f"{len(predictions)} prediction lists for {len(target_sids)} targets")
    n_beams = max((len(p) for p in predictions), default=0)
    kept_ks = tuple(k for k in ks if k <= n_beams) or tuple(ks[:1])
    cleaned = [[normalise_prediction(p) for p in preds] for preds in predictions]
    cc = sum(1 for preds in cleaned for p in preds if p not in catalogue)
    sid_ranks = [sid_rank(preds, normalise_prediction(t)) for preds, t in zip(cleaned, target_sids)]
    if target_items is None:
        item_ranks = sid_ranks
    else:
        item_ranks = [item_rank(preds, int(item), catalogue) for preds, item in zip(cleaned, target_items)]
    return Evaluation(
        n_samples=len(predictions),
        sid_level=hr_ndcg(sid_ranks, kept_ks),
        item_level=hr_ndcg(item_ranks, kept_ks),
        cc=cc,
        ks=kept_ks,
    )


def ranked_items_metrics(ranked_items: Sequence[Sequence[int]], targets: Sequence[int], ks: Sequence[int] = DEFAULT_KS) -> dict[str, float]:
    """HR/NDCG for models that rank item ids directly (baselines)."""
    ranks = []
    for items, target in zip(ranked_items, targets):
        ranks.append(next((r for r, item in enumerate(dedup(items)) if item == target), None))  # type: ignore[arg-type]
    return hr_ndcg(ranks, ks)


def per_sample_ndcg(ranks: Ranks, k: int) -> list[float]:
    """NDCG@k of each sample (``1/log2(rank + 2)`` inside the top k, else 0)."""
    return [ndcg_gain(r, k) for r in _rank_list(ranks)]


@dataclass
class PairedDelta:
    """Mean of B minus mean of A over the same samples, with a paired-bootstrap confidence interval."""

    n_samples: int
    mean_a: float
    mean_b: float
    delta: float
    ci_low: float
    ci_high: float
    confidence: float

    @property
    def significant(self) -> bool:
        return self.ci_low > 0 or self.ci_high < 0

    def as_dict(self) -> dict:
        return {"n_samples": self.n_samples, "mean_a": self.mean_a, "mean_b": self.mean_b, "delta": self.delta,
                "ci_low": self.ci_low, "ci_high": self.ci_high, "confidence": self.confidence,
                "significant": self.significant}


def paired_bootstrap(a: Sequence[float], b: Sequence[float], n_resamples: int = 2000, confidence: float = 0.95,
                     seed: int = 0) -> PairedDelta:
    """Percentile bootstrap of ``mean(b) - mean(a)``, resampling samples (rows) with both scores kept together.

    Two models evaluated on the same rows are strongly correlated, so the paired interval is far
    narrower than comparing two independent intervals.
    """
    import numpy as np

    if len(a) != len(b):
        raise ValueError(f"paired samples differ in length: {len(a)} vs {len(b)}")
    if not a:
        raise ValueError("paired_bootstrap needs at least one sample")
    diff = np.asarray(b, dtype=np.float64) - np.asarray(a, dtype=np.float64)
    rng = np.random.default_rng(seed)
    means = np.empty(n_resamples)
    for start in range(0, n_resamples, 256):  # chunks keep memory at 256 x n
        stop = min(start + 256, n_resamples)
        idx = rng.integers(0, len(diff), size=(stop - start, len(diff)))
        means[start:stop] = diff[idx].mean(axis=1)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return PairedDelta(n_samples=len(diff), mean_a=float(np.mean(a)), mean_b=float(np.mean(b)),
                       delta=float(diff.mean()), ci_low=float(low), ci_high=float(high), confidence=confidence)


def compare_predictions(result_a: str | Path, result_b: str | Path, ks: Sequence[int] = (10,),
                        n_resamples: int = 2000, seed: int = 0) -> dict[str, Any]:
    """B minus A in SID-level HR@K and NDCG@K over the same rows, with paired-bootstrap 95% intervals."""
    a, b = read_predictions(result_a), read_predictions(result_b)
    if len(a) != len(b):
        raise InputError(f"{result_a} has {len(a)} rows and {result_b} {len(b)}: compare evaluations of the same test file")
    for i, (ra, rb) in enumerate(zip(a, b)):
        if normalise_prediction(ra["output"]) != normalise_prediction(rb["output"]) or ra.get("input") != rb.get("input"):
            raise InputError(f"row {i} differs between {result_a} and {result_b} (prompt or target): "
                             "compare evaluations of the same test file with the same --max_samples")
    ranks = {}
    for name, records in (("a", a), ("b", b)):
        ranks[name] = [sid_rank([normalise_prediction(p) for p in r["predict"]], normalise_prediction(r["output"]))
                       for r in records]
    out: dict[str, Any] = {"a": str(result_a), "b": str(result_b)}
    for k in ks:
        hits = {n: [1.0 if r is not None and r < k else 0.0 for r in rs] for n, rs in ranks.items()}
        ndcg = {n: per_sample_ndcg(rs, k) for n, rs in ranks.items()}
        out[f"HR@{k}"] = paired_bootstrap(hits["a"], hits["b"], n_resamples, seed=seed).as_dict()
        out[f"NDCG@{k}"] = paired_bootstrap(ndcg["a"], ndcg["b"], n_resamples, seed=seed).as_dict()
    return out
