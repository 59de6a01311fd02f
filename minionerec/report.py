"""The results folder of one run: ``results/<config name>/``.

Collects what the stages wrote (evaluation metrics, baseline metrics, training logs, the SID
quality report, every resolved config) into:

- ``results.md``: HR@{3,5,10} / NDCG@{3,5,10} for SFT, SFT+RL and the baselines (SID level, the
  paper's convention; equal to item level when SIDs are unique), plus the run time;
- ``results.json``: the same numbers, machine-readable;
- ``training_curves.png``, ``hr_at_k.png``, ``sid_utilisation.png``;
- ``configs/``: the config file and each stage's resolved ``<section>.config.yaml``.

``python -m minionerec.report CONFIG.yaml`` rebuilds it from the files on disk.
"""

from __future__ import annotations

import json
import logging
import platform
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from minionerec.budget import cap_note
from minionerec.cli import exit_on_input_error, setup_logging
from minionerec.config import load_config, parse_cli, read_config_file
from minionerec.errors import InputError
from minionerec.io import atomic_path, atomic_write_text, publish_together, write_json
from minionerec.metrics import compare_predictions

logger = logging.getLogger("minionerec.report")

TABLE_KS = (3, 5, 10)
BASELINE_ORDER = ("sasrec", "gru4rec", "markov", "popularity")
LABELS = {"sft": "SFT", "rl": "SFT+RL", "sasrec": "SASRec", "gru4rec": "GRU4Rec", "markov": "Markov",
          "popularity": "Popularity"}


def _read(path: Path) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def collect_rows(stage_cfgs: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{model: {"metrics": {...}, "source": path}}`` from evaluation and baseline outputs."""
    from minionerec.eval import output_dir_of  # lazy: the eval stage imports torch and the model code
    from minionerec.pipeline import kept_sft_policy

    rows: dict[str, dict[str, Any]] = {}
    for name in ("sft", "rl"):
        cfg = stage_cfgs.get(f"eval_{name}")
        if cfg is None:
            continue
        if name == "rl" and "sft" in rows and "rl" in stage_cfgs and kept_sft_policy(stage_cfgs["rl"]) \
                and Path(cfg.model_path) == Path(stage_cfgs["rl"].output_dir):
            # run_all skipped eval_rl: the RL checkpoint is the SFT policy (issue 17)
            kept = "RL's select_best kept the SFT policy: SFT's metrics"
            note = "; ".join(n for n in (rows["sft"]["note"], kept) if n)
            rows[name] = {**rows["sft"], "note": note}
            continue
        path = output_dir_of(cfg) / "metrics.json"
        if path.is_file():
            rows[name] = {"metrics": _read(path), "source": str(path), "note": _training_cap_note(stage_cfgs)}
    baselines = stage_cfgs.get("baselines")
    if baselines is not None:
        path = Path(baselines.output_dir) / "summary.json"
        summary = _read(path) if path.is_file() else {}
        for name in BASELINE_ORDER:
            entry = summary.get(name)
            if isinstance(entry, dict) and isinstance(entry.get("test"), dict):
                rows[name] = {"metrics": entry["test"], "source": str(path), "note": cap_note(entry)}
    return rows


def _training_cap_note(stage_cfgs: dict[str, Any]) -> str | None:
    """The wall-clock note of the SFT run that the SFT and SFT+RL rows stand on (None when epochs decided)."""
    sft = stage_cfgs.get("sft")
    summary = Path(sft.output_dir) / "sft.summary.json" if sft is not None else None
    return cap_note(_read(summary)) if summary is not None and summary.is_file() else None


def markdown_table(rows: dict[str, dict[str, Any]], level: str = "sid_level") -> str:
    header = "| Model | " + " | ".join(f"HR@{k} | NDCG@{k}" for k in TABLE_KS) + " |"
    lines = [header, "|---|" + "---|" * (2 * len(TABLE_KS))]
    for name, row in rows.items():
        metrics = row["metrics"].get(level) or row["metrics"].get("item_level", {})
        cells = []
        for k in TABLE_KS:
            for metric in ("HR", "NDCG"):
                value = metrics.get(f"{metric}@{k}")
                cells.append(f"{value:.4f}" if isinstance(value, (int, float)) else "-")
        label = LABELS.get(name, name) + (f" ({row['note']})" if row.get("note") else "")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def shared_sid_lines(rows: dict[str, dict[str, Any]]) -> list[str]:
    """With ``allow_shared_sids``: a note and the item-level table (SID level counts a hit for any item of a SID)."""
    shared = max((int(r["metrics"].get("shared_sid_items") or 0) for r in rows.values()), default=0)
    if not shared:
        return []
    return [f"Note: the catalogue lets {shared} items share SIDs (allow_shared_sids), so a SID-level hit may be "
            "another item of the same SID. Item level (each predicted SID expanded to its items, in catalogue "
            "order; baselines rank items):", "", markdown_table(rows, level="item_level"), ""]


def _log_history(folder: Path) -> list[dict[str, Any]]:
    """The longest Trainer log history saved under ``folder`` (checkpoints hold trainer_state.json)."""
    best: list[dict[str, Any]] = []
    for path in folder.rglob("trainer_state.json"):
        history = _read(path).get("log_history", [])
        if len(history) > len(best):
            best = history
    return best


def _save_figure(fig: Any, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")


def plot_training_curves(stage_cfgs: dict[str, Any], out: Path) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = []
    for name, keys in (("sft", ("loss", "eval_loss")), ("rl", ("reward", "kl", "eval_NDCG@10"))):
        cfg = stage_cfgs.get(name)
        if cfg is None or not Path(cfg.output_dir).is_dir():
            continue
        history = _log_history(Path(cfg.output_dir))
        series = {key: [(h["step"], h[key]) for h in history if key in h and "step" in h] for key in keys}
        if any(series.values()):
            panels.append((name, series))
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4), squeeze=False)
    for ax, (name, series) in zip(axes[0], panels):
        for key, points in series.items():
            if points:
                ax.plot([p[0] for p in points], [p[1] for p in points], label=key, marker="." if len(points) < 50 else None)
        ax.set_title(f"{LABELS[name]} training")
        ax.set_xlabel("step")
        ax.legend()
        ax.grid(alpha=0.3)
    path = out / "training_curves.png"
    _save_figure(fig, path)
    plt.close(fig)
    return path


def plot_hr_at_k(rows: dict[str, dict[str, Any]], out: Path) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, row in rows.items():
        metrics = row["metrics"].get("sid_level") or row["metrics"].get("item_level", {})
        ks = sorted(int(key.split("@")[1]) for key in metrics if key.startswith("HR@"))
        if ks:
            ax.plot(ks, [metrics[f"HR@{k}"] for k in ks], marker="o", label=LABELS.get(name, name))
    ax.set_xscale("log")
    ax.set_xlabel("K")
    ax.set_ylabel("HR@K")
    ax.set_title("Hit rate at K (test split)")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    path = out / "hr_at_k.png"
    _save_figure(fig, path)
    plt.close(fig)
    return path


def plot_sid_utilisation(sid_report: dict[str, Any] | None, out: Path) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not sid_report or not sid_report.get("levels"):
        return None
    levels = sid_report["levels"]
    labels = [chr(ord("a") + int(level["level"])) for level in levels]
    x = range(len(levels))
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.bar([i - 0.2 for i in x], [level["utilisation"] for level in levels], width=0.4, label="codes used / codebook")
    ax.bar([i + 0.2 for i in x], [level["normalised_entropy"] for level in levels], width=0.4,
           label="normalised entropy")
    ax.set_xticks(list(x), labels)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("SID level")
    ax.set_title(f"SID level utilisation ({sid_report.get('method')}, {sid_report.get('num_items')} items)")
    ax.legend(loc="lower left")
    path = out / "sid_utilisation.png"
    _save_figure(fig, path)
    plt.close(fig)
    return path


def stage_configs(config_path: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """Resolved config of every stage the config runs, keyed by stage name."""
    from minionerec.pipeline import _schema_of, plan

    cfgs = {}
    for stage in plan(read_config_file(config_path)):
        cfgs[stage.name] = load_config(_schema_of(stage), config_path, {**overrides, **dict(stage.overrides)})
    return cfgs


def _machine() -> str:
    import os

    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}"


def rl_validation_line(stage_cfgs: dict[str, Any]) -> str | None:
    """One sentence on the RL validation curve (``rl_summary.json``), e.g. whether RL beat its step-0 policy."""
    cfg = stage_cfgs.get("rl")
    summary_path = Path(cfg.output_dir) / "rl_summary.json" if cfg is not None else None
    if summary_path is None or not summary_path.is_file():
        return None
    summary = _read(summary_path)
    curve = summary.get("validation_curve") or []
    if not curve:
        return None
    metric = next(k for k in curve[0] if k != "step")
    points = ", ".join(f"{p['step']}: {p[metric]:.4f}" for p in curve)
    line = f"RL validation {metric} by step ({points})"
    if summary.get("kept_initial_policy"):
        return line + "; no RL checkpoint beat step 0, so the RL stage kept the SFT policy."
    best = summary.get("best_checkpoint")
    return line + (f"; the policy is `{Path(best).name}`." if best else ".")


def rl_vs_sft_line(stage_cfgs: dict[str, Any], k: int = 10) -> str | None:
    """SFT+RL minus SFT on the same test rows, with paired-bootstrap 95% intervals."""
    from minionerec.eval import output_dir_of

    if "eval_sft" not in stage_cfgs or "eval_rl" not in stage_cfgs:
        return None
    paths = [output_dir_of(stage_cfgs[name]) / "predictions.json" for name in ("eval_sft", "eval_rl")]
    if not all(p.is_file() for p in paths):
        return None
    try:
        result = compare_predictions(paths[0], paths[1], ks=(k,))
    except InputError as err:
        logger.warning("no paired SFT / SFT+RL comparison: %s", err)
        return None
    cells = []
    for metric in (f"HR@{k}", f"NDCG@{k}"):
        d = result[metric]
        verdict = "significant" if d["significant"] else "not significant"
        cells.append(f"{metric} {d['delta']:+.4f} [{d['ci_low']:+.4f}, {d['ci_high']:+.4f}] ({verdict})")
    n_rows = result[f"NDCG@{k}"]["n_samples"]
    return f"SFT+RL minus SFT on the same {n_rows} test rows (paired bootstrap, 95% interval): " + "; ".join(cells) + "."


def write_report(config_path: str, overrides: dict[str, Any] | None = None, total_seconds: float | None = None,
                 results_root: str | Path = "results") -> Path:
    """Write ``results/<config name>/`` (every file published together, see io.publish_together) and return it."""
    run_name = Path(config_path).stem
    out = Path(results_root) / run_name
    with publish_together(out) as (staging, _):
        _write_report_files(config_path, overrides or {}, total_seconds, run_name, staging)
    return out


def _write_report_files(config_path: str, overrides: dict[str, Any], total_seconds: float | None, run_name: str,
                        out: Path) -> None:
    cfgs = stage_configs(config_path, overrides)
    rows = collect_rows(cfgs)

    sid_report = None
    if "sid" in cfgs:
        report_path = Path(cfgs["sid"].output_path).with_suffix(".report.json")
        sid_report = _read(report_path) if report_path.is_file() else None
    figures = [p for p in (plot_training_curves(cfgs, out), plot_hr_at_k(rows, out),
                           plot_sid_utilisation(sid_report, out)) if p is not None]

    configs_dir = out / "configs"
    configs_dir.mkdir(exist_ok=True)
    shutil.copyfile(config_path, configs_dir / Path(config_path).name)
    from minionerec.pipeline import plan

    for stage in plan(read_config_file(config_path)):
        marker = stage.marker_dir(cfgs[stage.name]) / f"{stage.section}.config.yaml"
        if marker.is_file():
            shutil.copyfile(marker, configs_dir / f"{stage.name}.config.yaml")

    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    lines = [f"# Results: {run_name}", "",
             f"Config `{config_path}`; {when}; {_machine()}." + (f" Pipeline wall time {total_seconds / 60:.1f} min."
                                                                  if total_seconds else ""), "",
             "Test split, constrained beam search for SFT / SFT+RL; metrics at SID level (the paper's convention).", "",
             markdown_table(rows), ""]
    lines += shared_sid_lines(rows)
    for line in (rl_vs_sft_line(cfgs), rl_validation_line(cfgs)):
        if line:
            lines += [line, ""]
    if figures:
        lines += [f"![{p.stem}]({p.name})" for p in figures] + [""]
    lines += ["Sources: " + ", ".join(f"{LABELS.get(n, n)}: `{r['source']}`" for n, r in rows.items()), ""]
    atomic_write_text(out / "results.md", "\n".join(lines))
    write_json(out / "results.json", {"config": config_path, "date": when, "machine": _machine(),
                                      "total_seconds": total_seconds,
                                      "models": {n: r["metrics"] for n, r in rows.items()},
                                      "notes": {n: r["note"] for n, r in rows.items() if r.get("note")}})
    logger.info("results table:\n%s", markdown_table(rows))


@exit_on_input_error
def main(argv: list[str] | None = None) -> None:
    setup_logging()
    config_path, overrides = parse_cli(sys.argv[1:] if argv is None else argv)
    if config_path is None:
        from minionerec.errors import InputError

        raise InputError("usage: python -m minionerec.report CONFIG.yaml [--section.key value ...]")
    print(write_report(config_path, overrides))


if __name__ == "__main__":
    main()
