"""What an evaluation writes and reads back: predictions in upstream's shape, metrics, upstream's result json.

``predictions.json``: ``[{"input", "output", "predict", "item_id"}]`` (upstream's shape plus the
target item); ``metrics.json``: :meth:`minionerec.metrics.Evaluation.as_dict` plus timing; with
``result_json`` also upstream's exact ``[{"input", "output", "predict"}]`` (its ``--result_json_data``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from minionerec.catalogue import Catalogue, read_info
from minionerec.eval.testset import TestSet
from minionerec.io import publish_together, read_predictions, write_json
from minionerec.metrics import DEFAULT_KS, evaluate_predictions, normalise_prediction

UPSTREAM_KEYS = ("input", "output", "predict")


def predictions_records(test: TestSet, predictions: Sequence[Sequence[str]]) -> list[dict[str, Any]]:
    return [
        {"input": prompt, "output": target + "\n", "predict": list(preds), "item_id": item}
        for prompt, target, preds, item in zip(test.prompts, test.target_sids, predictions, test.target_items)
    ]


def write_results(out_dir: Path, records: list[dict[str, Any]], metrics: dict[str, Any], result_json: str = "") -> None:
    """Publish predictions.json and metrics.json together (both of one run, or neither), write the
    upstream-shaped ``result_json`` when asked, and remove the finished run's partial files."""
    with publish_together(out_dir) as (staging, _):
        write_json(staging / "predictions.json", records)
        write_json(staging / "metrics.json", metrics)
    if result_json:
        write_json(result_json, [{k: r[k] for k in UPSTREAM_KEYS} for r in records])
    partial = out_dir / "partial"
    for path in partial.glob("rank*.jsonl"):
        path.unlink()
    if partial.is_dir() and not any(partial.iterdir()):
        partial.rmdir()


def metrics_from_files(result_json: str | Path, info_file: str | Path, ks: Sequence[int] = DEFAULT_KS) -> dict[str, Any]:
    """Metrics of a predictions file (upstream shape; ``item_id`` enables item-level ranks)."""
    records = read_predictions(result_json)
    catalogue = Catalogue.from_info(read_info(info_file))
    targets = [normalise_prediction(r["output"]) for r in records]
    items = [r.get("item_id") for r in records]
    target_items = [int(i) for i in items] if all(i is not None for i in items) else None
    evaluation = evaluate_predictions([r["predict"] for r in records], targets, catalogue.sid_to_items(), target_items, ks)
    return evaluation.as_dict()
