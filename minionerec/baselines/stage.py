"""The baselines stage: popularity, Markov, SASRec and GRU4Rec on the LLM-stage splits.

Every model trains on the train split, picks its settings on the VALID split only, and is
scored once on the test split.  Per model it writes ``<output_dir>/<model>.metrics.json`` in
the shape of :meth:`minionerec.metrics.Evaluation.as_dict` (so baselines sit in one table with
evaluate.py's results), and a ``summary.json`` with the selected settings, valid/test metrics and
wall times.  Ranked item ids are mapped to SID strings through the info file for the SID-level
metrics; item-level metrics rank the item ids themselves.  CC is 0: every prediction is a
catalogue item.

- **popularity** (:mod:`.popularity`): items by how often they are a train target (ties: catalogue order);
- **markov** (:mod:`.markov`): ``window``, ``decay`` and the transition source are chosen on valid;
- **sasrec**, **gru4rec** (:mod:`.sequential`, trained by :mod:`.train`): early-stopped on valid.  The
  SASRec model saved in ``<output_dir>/sasrec/`` is the ``sasrec`` CF reward model of rl.py
  (:class:`minionerec.baselines.cf_scorer.CFScorer`).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch

from minionerec.baselines.markov import TRANSITION_SOURCES, Markov, MarkovSettings
from minionerec.baselines.popularity import Popularity, target_rank_with_prior, top_k_with_prior
from minionerec.baselines.sequential import ModelConfig, top_items
from minionerec.baselines.tensors import SequenceBatch, split_rows_to_batch
from minionerec.baselines.train import TrainConfig, train_sequential_model
from minionerec.budget import WALL_CLOCK_CAP
from minionerec.catalogue import Catalogue
from minionerec.cli import seed_everything
from minionerec.config import save_resolved_config
from minionerec.errors import InputError
from minionerec.holdout import holdout_seed_of, split_valid_by_user
from minionerec.io import SplitRow, find_llm_data_files, publish_together, read_split_csv, write_json
from minionerec.metrics import DEFAULT_KS, Evaluation, hr_ndcg, metric_value, ranked_items_metrics, sid_rank
from minionerec.records import begin_stage

logger = logging.getLogger("minionerec.baselines")

MODELS = ("popularity", "markov", "sasrec", "gru4rec")


@dataclass
class BaselinesConfig:
    """Settings of baselines.py (section ``baselines`` of the experiment config)."""

    section: ClassVar[str] = "baselines"

    dataset: str = field(default="", metadata={"help": "Dataset name: the CSVs are <data_dir>/{train,valid,test}/<dataset>*.csv."})
    seed: int = field(default=42, metadata={"help": "Seed of model initialisation and batch order."})
    holdout_seed: int = field(default=-1, metadata={"help": "Seed of the held-out selection users; -1 = seed (common.holdout_seed)."})
    data_dir: str = field(default="${common.workdir}/llm",
                          metadata={"help": "Folder with train/, valid/, test/ and info/ (convert_dataset.py output or upstream's)."})
    train_subdir: str = field(default="train", metadata={"help": "Sub-folder of data_dir holding the train CSV "
                                                        "(train_reconstructed_partial for the Industrial partial data)."})
    output_dir: str = field(default="${common.workdir}/baselines", metadata={"help": "Where metrics and models go."})
    model: str = field(default="all", metadata={"help": "popularity, markov, sasrec, gru4rec, a comma list, or all."})
    ks: list[int] = field(default_factory=lambda: list(DEFAULT_KS), metadata={"help": "Cut-offs K of HR@K and NDCG@K."})
    eval_samples: int = field(default=0, metadata={"help": "Valid rows used for selection: all valid rows of a seeded "
                                                    "set of users, at least this many rows (0 = all valid rows)."})
    train_on_valid: bool = field(default=False, metadata={"help": "Also train on the valid rows outside the selection "
                                                           "users (as sft.train_on_valid), so baselines see the SFT data."})
    select_metric: str = field(default="NDCG@10", metadata={"help": "Valid metric used for every model selection."})
    device: str = field(default="auto", metadata={"help": "auto (CUDA when available), cpu, cuda, cuda:1, ..."})
    num_threads: int = field(default=0, metadata={"help": "CPU threads of torch (0 = torch's default).  These models "
                                                     "are small: 1 is often fastest, always on a busy machine."})
    # Markov
    markov_windows: list[int] = field(default_factory=lambda: [1, 2, 3, 5, 10],
                                      metadata={"help": "Candidate numbers of last history items summed (chosen on valid)."})
    markov_decays: list[float] = field(default_factory=lambda: [0.3, 0.6, 1.0],
                                       metadata={"help": "Candidate weights decay**age of older history items (chosen on valid)."})
    markov_transitions: list[str] = field(
        default_factory=lambda: list(TRANSITION_SOURCES),
        metadata={"help": "Candidate transition sources (chosen on valid): 'last' counts (last history item -> target) "
                  "once per train row; 'all' also counts consecutive history pairs, once per user."})
    # SASRec / GRU4Rec
    max_history: int = field(default=10, metadata={"help": "History items the neural models read (the last ones)."})
    hidden_size: int = field(default=64, metadata={"help": "Embedding and hidden size."})
    num_blocks: int = field(default=2, metadata={"help": "Transformer blocks (SASRec) or GRU layers (GRU4Rec)."})
    num_heads: int = field(default=2, metadata={"help": "Attention heads of SASRec."})
    dropout: float = field(default=0.5, metadata={"help": "Dropout of embeddings and blocks."})
    loss: str = field(default="ce", metadata={"help": "'ce' full-softmax cross-entropy, or 'bce' with sampled negatives."})
    num_negatives: int = field(default=64, metadata={"help": "Negatives per position for loss=bce."})
    all_positions: bool = field(default=True, metadata={"help": "Train every history position on its next item "
                                                         "(else only the last position on the row's target)."})
    learning_rate: float = field(default=2e-3, metadata={"help": "AdamW learning rate."})
    weight_decay: float = field(default=0.1, metadata={"help": "AdamW (decoupled) weight decay."})
    batch_size: int = field(default=256, metadata={"help": "Train rows per step."})
    eval_batch_size: int = field(default=1024, metadata={"help": "Rows per scoring batch."})
    max_epochs: int = field(default=200, metadata={"help": "Upper bound on epochs."})
    patience: int = field(default=10, metadata={"help": "Stop after this many epochs without a better valid metric."})
    max_train_seconds: float = field(default=0.0, metadata={"help": "Safety valve: stop a neural model's training after this "
                                     "many seconds (0 = off). Epochs and early stopping decide otherwise; when it fires, "
                                     "the summary and results.md say the model is not comparable."})
    dro_alpha: float = field(default=0.0, metadata={"help": "Weight of upstream's DRO term added to the SASRec/GRU4Rec "
                             "loss (upstream sasrec.py --alpha; 0 = off, upstream's default)."})
    dro_beta: float = field(default=1.0, metadata={"help": "Robust radius of the DRO term (upstream sasrec.py --beta)."})
    resume: bool = field(default=True, metadata={"help": "Continue an interrupted (or reuse a finished) run with the "
                                                   "same settings and data from <output_dir>/<model>/train_state.pt."})

    def models(self) -> list[str]:
        names = list(MODELS) if self.model == "all" else [m.strip() for m in self.model.split(",") if m.strip()]
        unknown = [m for m in names if m not in MODELS]
        if unknown or not names:
            raise InputError(f"--model {self.model!r}: choose from {', '.join(MODELS)}, a comma list of them, or all")
        return names


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------

@dataclass
class Splits:
    """The three splits and the catalogue, as read from the CSVs and the info file."""

    catalogue: Catalogue
    train: list[SplitRow]
    valid: list[SplitRow]
    test: list[SplitRow]
    paths: dict[str, str]


def load_splits(data_dir: str | Path, dataset: str, train_subdir: str = "train", eval_samples: int = 0,
                train_on_valid: bool = False, seed: int = 42) -> Splits:
    """Read the splits; optionally select on a seeded slice of valid users and train on the rest.

    The slice holds whole users (:mod:`minionerec.holdout`): a random row slice would leak its
    targets through the same users' later valid rows.
    """
    files = find_llm_data_files(data_dir, dataset, train_subdir)
    paths = {"train": files.train, "valid": files.valid, "test": files.test, "info": files.info}
    missing = [f"{name} ({Path(data_dir) / (train_subdir if name == 'train' else name)}/{dataset}*)"
               for name, p in paths.items() if p is None]
    if missing:
        raise InputError(f"missing data file(s): {', '.join(missing)}; run convert_dataset.py for this config "
                         f"or point --data_dir / --train_subdir at upstream's prepared files")
    catalogue = Catalogue.read(files.info)  # type: ignore[arg-type]
    rows = {name: read_split_csv(paths[name]) for name in ("train", "valid", "test")}  # type: ignore[arg-type]
    for name, split in rows.items():
        if not split:
            raise InputError(f"split CSV {paths[name]} has no rows")
        check_items(split, catalogue, str(paths[name]))
    train, valid = rows["train"], rows["valid"]
    if eval_samples > 0 or train_on_valid:
        valid, rest = split_valid_by_user(valid, eval_samples, seed)
        if train_on_valid:
            if not rest:
                raise InputError(f"baselines.train_on_valid needs baselines.eval_samples smaller than the valid CSV "
                                 f"({len(rows['valid'])} rows) so that a held-out slice remains")
            train = train + rest
    return Splits(catalogue, train, valid, rows["test"], {k: str(v) for k, v in paths.items()})


def check_items(rows: Sequence[SplitRow], catalogue: Catalogue, source: str) -> None:
    """InputError naming the row of the first item id that the info file does not list."""
    for n, row in enumerate(rows, start=1):
        catalogue.to_rows((*row.history_item_id, row.item_id), f"{source} row {n}")


# --------------------------------------------------------------------------------------------
# Metrics in evaluate.py's shape
# --------------------------------------------------------------------------------------------

def ranked_evaluation(ranked: torch.Tensor, rows: Sequence[SplitRow], catalogue: Catalogue,
                      ks: Sequence[int]) -> Evaluation:
    """Evaluation of ranked catalogue indices: SID level through the info file, item level on ids."""
    ranked_ids = [[catalogue.item_ids[i] for i in r] for r in ranked.tolist()]
    sid_predictions = [[catalogue.sid_strings[i] for i in r] for r in ranked.tolist()]
    sid_ranks = [sid_rank(preds, row.item_sid) for preds, row in zip(sid_predictions, rows)]
    kept = tuple(k for k in ks if k <= ranked.shape[1]) or (ranked.shape[1],)
    return Evaluation(
        n_samples=len(rows),
        sid_level=hr_ndcg(sid_ranks, kept),
        item_level=ranked_items_metrics(ranked_ids, [row.item_id for row in rows], kept),
        cc=0,
        ks=kept,
    )




# --------------------------------------------------------------------------------------------
# Runners: each returns (test Evaluation, summary entry)
# --------------------------------------------------------------------------------------------

def run_popularity(cfg: BaselinesConfig, splits: Splits, batches: dict[str, SequenceBatch]) -> tuple[Evaluation, dict]:
    pop = Popularity(splits.catalogue, splits.train)
    k = min(max(cfg.ks), splits.catalogue.n_items)
    valid_ranks = pop.rank[batches["valid"].targets]
    ranked = pop.order[:k].expand(len(splits.test), k)
    return ranked_evaluation(ranked, splits.test, splits.catalogue, cfg.ks), {
        "valid": {cfg.select_metric: metric_value(valid_ranks, cfg.select_metric)}}


def run_markov(cfg: BaselinesConfig, splits: Splits, batches: dict[str, SequenceBatch]) -> tuple[Evaluation, dict]:
    pop = Popularity(splits.catalogue, splits.train)
    settings_grid = [MarkovSettings(source, int(window), float(decay)) for source in cfg.markov_transitions
                     for window, decay in itertools.product(cfg.markov_windows, cfg.markov_decays)]
    if not settings_grid:
        raise InputError("markov: markov_transitions, markov_windows and markov_decays must not be empty")
    max_age = max(s.window for s in settings_grid)
    chains = {source: Markov(splits.catalogue, splits.train, source) for source in cfg.markov_transitions}
    ranks: dict[MarkovSettings, list[torch.Tensor]] = {s: [] for s in settings_grid}
    for part in chunks(batches["valid"], 256):
        for source, chain in chains.items():
            age_rows = chain.age_rows(part.seqs, part.lengths, max_age)
            for settings in settings_grid:
                if settings.transitions == source:
                    scores = Markov.combine(age_rows, settings.window, settings.decay)
                    ranks[settings].append(target_rank_with_prior(scores, pop.rank, part.targets))
    grid = []
    for settings in settings_grid:
        value = metric_value(torch.cat(ranks[settings]), cfg.select_metric)
        grid.append({**dataclasses.asdict(settings), cfg.select_metric: value})
    best_index = max(range(len(grid)), key=lambda i: grid[i][cfg.select_metric])  # first best on ties
    settings, value = settings_grid[best_index], grid[best_index][cfg.select_metric]
    logger.info("markov: selected %s on valid (%s %.4f) among %d settings", settings, cfg.select_metric, value, len(grid))
    chain = chains[settings.transitions]
    k = min(max(cfg.ks), splits.catalogue.n_items)
    ranked = torch.cat([
        top_k_with_prior(chain.scores(part.seqs, part.lengths, settings.window, settings.decay), pop.order, k)
        for part in chunks(batches["test"], 256)])
    return ranked_evaluation(ranked, splits.test, splits.catalogue, cfg.ks), {
        "selected": dataclasses.asdict(settings), "valid": {cfg.select_metric: value}, "valid_grid": grid}


def run_neural(name: str, cfg: BaselinesConfig, splits: Splits, batches: dict[str, SequenceBatch]) -> tuple[Evaluation, dict]:
    model_cfg = ModelConfig(model_type=name, n_items=splits.catalogue.n_items, hidden_size=cfg.hidden_size,
                            num_blocks=cfg.num_blocks, num_heads=cfg.num_heads, dropout=cfg.dropout,
                            max_history=cfg.max_history)
    train_cfg = TrainConfig(loss=cfg.loss, num_negatives=cfg.num_negatives, all_positions=cfg.all_positions,
                            learning_rate=cfg.learning_rate, weight_decay=cfg.weight_decay, batch_size=cfg.batch_size,
                            eval_batch_size=cfg.eval_batch_size, max_epochs=cfg.max_epochs, patience=cfg.patience,
                            select_metric=cfg.select_metric, max_train_seconds=cfg.max_train_seconds, seed=cfg.seed,
                            dro_alpha=cfg.dro_alpha, dro_beta=cfg.dro_beta)
    out_dir = Path(cfg.output_dir) / name
    result = train_sequential_model(model_cfg, train_cfg, batches["train"], batches["valid"], splits.catalogue,
                                    out_dir=out_dir, device=cfg.device, resume=cfg.resume)
    device = next(result.model.parameters()).device
    k = min(max(cfg.ks), splits.catalogue.n_items)
    ranked = top_items(result.model, batches["test"], k, cfg.eval_batch_size, device)
    return ranked_evaluation(ranked, splits.test, splits.catalogue, cfg.ks), {
        "model_dir": str(out_dir), "best_epoch": result.best_epoch, "epochs": len(result.history),
        "stopped": result.stopped, "train_seconds": round(result.seconds, 1),
        "valid": {cfg.select_metric: result.best_valid.get(cfg.select_metric)},
        **({WALL_CLOCK_CAP: result.wall_clock_cap} if result.wall_clock_cap else {})}


def chunks(data: SequenceBatch, size: int) -> list[SequenceBatch]:
    return [data.subset(slice(s, s + size)) for s in range(0, len(data), size)]


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------

def run_baselines(cfg: BaselinesConfig) -> dict[str, dict[str, Any]]:
    """Run the selected baselines; returns ``{model: summary entry}`` (also written to summary.json)."""
    names = cfg.models()
    seed_everything(cfg.seed)
    if cfg.num_threads > 0:
        torch.set_num_threads(cfg.num_threads)
    splits = load_splits(cfg.data_dir, cfg.dataset, cfg.train_subdir, cfg.eval_samples, cfg.train_on_valid,
                         holdout_seed_of(cfg))
    logger.info("data: %d train, %d valid (selection), %d test rows, %d catalogue items (%s)", len(splits.train),
                len(splits.valid), len(splits.test), splits.catalogue.n_items, cfg.data_dir)
    batches = {name: split_rows_to_batch(rows, splits.catalogue, cfg.max_history, splits.paths[name])
               for name, rows in (("train", splits.train), ("valid", splits.valid), ("test", splits.test))}
    out_dir = Path(cfg.output_dir)
    begin_stage(cfg, out_dir)  # the old done-record goes first: a failed run never looks finished
    summary_path = out_dir / "summary.json"
    summary: dict[str, dict[str, Any]] = {}
    metrics: dict[str, dict[str, Any]] = {}
    for name in names:
        started = time.monotonic()
        if name == "popularity":
            evaluation, entry = run_popularity(cfg, splits, batches)
        elif name == "markov":
            evaluation, entry = run_markov(cfg, splits, batches)
        else:
            evaluation, entry = run_neural(name, cfg, splits, batches)
        entry["wall_seconds"] = round(time.monotonic() - started, 2)
        entry["test"] = evaluation.as_dict()
        metrics[name] = evaluation.as_dict()
        summary[name] = entry
        logger.info("%s: test %s (%.1fs)", name, format_metrics(evaluation.item_level, cfg.ks), entry["wall_seconds"])
    previous = _read_summary(summary_path)
    # metrics and summary of one run published together (the model folders are written in place while
    # training: they are the neural models' resume state); the done-record last
    with publish_together(out_dir) as (staging, _):
        for name, values in metrics.items():
            write_json(staging / f"{name}.metrics.json", values)
        write_json(staging / summary_path.name, {**previous, **summary, "_data": splits.paths})
    save_resolved_config(cfg, out_dir)
    print_table(summary, cfg.ks, splits.paths["test"])
    return summary


def _read_summary(path: Path) -> dict[str, Any]:
    """The previous summary.json (so running one model keeps the others' entries)."""
    try:
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except json.JSONDecodeError:
        return {}


def format_metrics(metrics: dict[str, float], ks: Sequence[int]) -> str:
    return " ".join(f"{m}@{k}={metrics[f'{m}@{k}']:.4f}" for k in ks for m in ("HR", "NDCG") if f"{m}@{k}" in metrics)


def print_table(summary: dict[str, dict[str, Any]], ks: Sequence[int], test_path: str) -> None:
    """The test metrics of every model run, one row each (item level)."""
    shown = [k for k in ks if k in (3, 5, 10)] or list(ks)
    header = f"{'model':<12}" + "".join(f"{'HR@' + str(k):>9}{'NDCG@' + str(k):>9}" for k in shown) + f"{'seconds':>9}"
    lines = [f"test split {test_path} (item level)", header]
    for name, entry in summary.items():
        item = entry["test"]["item_level"]
        lines.append(f"{name:<12}" + "".join(f"{item.get(f'HR@{k}', float('nan')):>9.4f}"
                                             f"{item.get(f'NDCG@{k}', float('nan')):>9.4f}" for k in shown)
                     + f"{entry['wall_seconds']:>9.1f}")
    print("\n".join(lines), flush=True)
