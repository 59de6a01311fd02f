"""Training of the sequential baselines: losses, early stopping on VALID, resumable state.

:func:`train_sequential_model` uses full-softmax cross-entropy (or BCE with vectorised negative
sampling), optionally plus upstream's DRO term (``dro_alpha`` > 0, :func:`dro_loss`), evaluates
on the VALIDATION rows after every epoch, keeps the best state by a validation metric, stops
early, and is resumable from ``train_state.pt``.  The test split never reaches this module:
selection on test was upstream's bug (reference 9.3).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from minionerec.baselines.model_files import save_model
from minionerec.baselines.sequential import ModelConfig, SequentialRecommender, build_model, target_ranks
from minionerec.baselines.tensors import SequenceBatch
from minionerec.budget import wall_clock_cap
from minionerec.catalogue import Catalogue
from minionerec.checkpoints import load_torch_file
from minionerec.device import resolve_device
from minionerec.errors import InputError
from minionerec.io import atomic_path
from minionerec.metrics import hr_ndcg, parse_metric

logger = logging.getLogger("minionerec.sasrec")

TRAIN_STATE = "train_state.pt"
#: Upstream's propensity exponent: ps = ((pop + 1) / sum(pop + 1)) ** 0.05 (sasrec.py, calcu_propensity_score).
PROPENSITY_POWER = 0.05
#: The DRO settings; while dro_alpha is 0 (off, upstream's default) they are left out of model.json and
#: the resume hash, so runs without DRO keep their files and resume states.
_DRO_FIELDS = ("dro_alpha", "dro_beta")


@dataclass
class TrainConfig:
    """Optimisation settings (saved in model.json beside the model hyperparameters)."""

    loss: str = "ce"
    num_negatives: int = 64
    all_positions: bool = True
    learning_rate: float = 2e-3
    weight_decay: float = 0.1
    batch_size: int = 256
    eval_batch_size: int = 1024
    max_epochs: int = 200
    patience: int = 10
    select_metric: str = "NDCG@10"
    max_train_seconds: float = 0.0  # a user's safety valve (0 = off); budgets are epochs
    seed: int = 42
    dro_alpha: float = 0.0  # weight of upstream's DRO term (upstream --alpha, default 0 = off)
    dro_beta: float = 1.0  # its robust radius (upstream --beta)

    def __post_init__(self) -> None:
        if self.loss not in ("ce", "bce"):
            raise InputError(f"loss must be 'ce' (full softmax) or 'bce' (sampled negatives), got {self.loss!r}")
        try:
            parse_metric(self.select_metric)
        except InputError:
            raise InputError(f"select_metric must look like NDCG@10 or HR@5, got {self.select_metric!r}") from None
        if self.dro_alpha < 0:
            raise InputError(f"dro_alpha must be >= 0 (0 = no DRO term), got {self.dro_alpha}")
        if self.dro_beta <= 0:
            raise InputError(f"dro_beta must be > 0, got {self.dro_beta}")

    def recorded(self) -> dict[str, Any]:
        """The settings as saved in model.json (the DRO keys only when the term is on)."""
        values = dataclasses.asdict(self)
        if self.dro_alpha == 0:
            for key in _DRO_FIELDS:
                values.pop(key)
        return values


@dataclass
class TrainResult:
    """What training produced: the best model and the validation history that selected it."""

    model: SequentialRecommender
    best_epoch: int
    best_valid: dict[str, float]
    history: list[dict[str, Any]]
    seconds: float
    stopped: str
    wall_clock_cap: dict[str, Any] | None = None  # set when max_train_seconds, not the epochs, ended training


def position_targets(batch: SequenceBatch, all_positions: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, L) target catalogue indices and a mask of the positions that carry a loss.

    With ``all_positions`` every history position predicts the next history item (standard
    SASRec training); the last real position always predicts the row's target.
    """
    b, length = batch.seqs.shape
    targets = torch.full((b, length), -1, dtype=torch.long, device=batch.seqs.device)
    if all_positions:
        targets[:, :-1] = batch.seqs[:, 1:] - 1  # pads become -1
    rows = torch.arange(b, device=batch.seqs.device)
    targets[rows, batch.lengths - 1] = batch.targets
    positions = torch.arange(length, device=batch.seqs.device)[None, :]
    mask = (positions < batch.lengths[:, None]) & (targets >= 0)
    if not all_positions:
        mask &= positions == (batch.lengths[:, None] - 1)
    return targets, mask


def propensity(train: SequenceBatch, n_items: int) -> torch.Tensor:
    """(n_items,) upstream's propensity of every item: ``((count + 1) / sum(count + 1)) ** 0.05``,
    counts of each item as a train row target."""
    counts = torch.bincount(train.targets.cpu(), minlength=n_items).double() + 1
    return (counts / counts.sum()) ** PROPENSITY_POWER


def dro_loss(logits: torch.Tensor, gold: torch.Tensor, ps: torch.Tensor, beta: float) -> torch.Tensor:
    """Upstream's DRO term (its sasrec.py training loop), averaged over positions.

    Per position with full-catalogue logits ``z`` and target ``t``:
    ``log(sum_j exp(ps_j z_j^2 / beta) - exp(ps_t z_t^2 / beta) + exp(ps_t (z_t - 1)^2 / beta))``,
    i.e. a log-sum-exp where the target's term ``ps_t z_t^2`` is replaced by ``ps_t (z_t - 1)^2``.
    Computed as ``logsumexp`` (upstream sums ``exp`` directly, which overflows for large logits).
    """
    ps = ps.to(logits.device, logits.dtype)
    terms = ps * logits.square() / beta
    target_logit = logits.gather(1, gold[:, None])
    target_term = ps[gold][:, None] * (target_logit - 1).square() / beta
    return torch.logsumexp(terms.scatter(1, gold[:, None], target_term), dim=1).mean()


def sequence_loss(model: SequentialRecommender, batch: SequenceBatch, cfg: TrainConfig,
                  generator: torch.Generator, ps: torch.Tensor | None = None) -> torch.Tensor:
    """The training loss of one batch; with ``cfg.dro_alpha > 0`` plus ``dro_alpha`` x :func:`dro_loss`
    (``ps``: :func:`propensity`)."""
    targets, mask = position_targets(batch, cfg.all_positions)
    hidden = model.encode(batch.seqs)[mask]  # (P, d)
    gold = targets[mask]  # (P,)
    items = model.item_vectors()
    logits = hidden @ items.T if cfg.loss == "ce" or cfg.dro_alpha > 0 else None
    loss = F.cross_entropy(logits, gold) if cfg.loss == "ce" else _sampled_bce(hidden, gold, items, cfg, generator)
    if cfg.dro_alpha > 0:
        if ps is None:
            raise ValueError("dro_alpha > 0 needs the propensity scores (propensity())")
        loss = loss + cfg.dro_alpha * dro_loss(logits, gold, ps, cfg.dro_beta)
    return loss


def _sampled_bce(hidden: torch.Tensor, gold: torch.Tensor, items: torch.Tensor, cfg: TrainConfig,
                 generator: torch.Generator) -> torch.Tensor:
    """BCE of the positive against ``num_negatives`` uniformly sampled items per position."""
    negatives = torch.randint(0, items.shape[0], (gold.shape[0], cfg.num_negatives), generator=generator,
                              device="cpu").to(gold.device)
    valid_negative = negatives != gold[:, None]  # a negative that hits the positive is dropped
    pos_logit = (hidden * items[gold]).sum(-1)
    neg_logit = torch.einsum("pd,pnd->pn", hidden, items[negatives])
    pos_loss = F.binary_cross_entropy_with_logits(pos_logit, torch.ones_like(pos_logit))
    neg_loss = F.binary_cross_entropy_with_logits(neg_logit, torch.zeros_like(neg_logit), reduction="none")
    return pos_loss + (neg_loss * valid_negative).sum() / valid_negative.sum().clamp(min=1)


#: Settings that only say when to stop (or how fast to score): a run may resume under new values.
_STOPPING_FIELDS = ("max_epochs", "patience", "max_train_seconds", "eval_batch_size")


def _config_hash(model_cfg: ModelConfig, train_cfg: TrainConfig, fingerprint: dict[str, Any], data_hash: str) -> str:
    train = {k: v for k, v in train_cfg.recorded().items() if k not in _STOPPING_FIELDS}
    payload = {"model": dataclasses.asdict(model_cfg), "train": train,
               "catalogue": {k: fingerprint[k] for k in ("n_items", "info_sha256")}, "data": data_hash}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def data_hash(*batches: SequenceBatch) -> str:
    """A short hash of training/validation tensors (a resumed run must see the same data)."""
    digest = hashlib.sha256()
    for batch in batches:
        for t in (batch.seqs, batch.lengths, batch.targets):
            digest.update(t.numpy().tobytes())
    return digest.hexdigest()


def train_sequential_model(
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    train: SequenceBatch,
    valid: SequenceBatch,
    catalogue: Catalogue,
    out_dir: str | Path | None = None,
    device: str = "auto",
    resume: bool = True,
) -> TrainResult:
    """Train on ``train``, select the epoch with the best ``select_metric`` on ``valid``.

    Early stopping after ``patience`` epochs without improvement or at ``max_epochs``; the optional
    ``max_train_seconds`` safety valve (0 = off) stops earlier, and the result says so.  With ``out_dir``, the best model is saved there (safetensors + JSON)
    whenever it improves, and the training state after every epoch, so an interrupted run
    resumes where it stopped.  There is no test argument on purpose.
    """
    if len(train) == 0 or len(valid) == 0:
        raise InputError("training needs non-empty train and valid splits")
    dev = resolve_device(device)
    torch.manual_seed(train_cfg.seed)
    generator = torch.Generator().manual_seed(train_cfg.seed)
    model = build_model(model_cfg).to(dev)
    optimizer = torch.optim.AdamW(model.parameters(), lr=train_cfg.learning_rate, weight_decay=train_cfg.weight_decay)
    fingerprint = catalogue.fingerprint()
    run_hash = _config_hash(model_cfg, train_cfg, fingerprint, data_hash(train, valid))
    ks = sorted({1, 3, 5, 10, 20, parse_metric(train_cfg.select_metric)[1]})

    state = {"epoch": 0, "best_epoch": 0, "best_value": -1.0, "bad_epochs": 0, "history": [], "seconds": 0.0}
    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    state_path = Path(out_dir) / TRAIN_STATE if out_dir else None
    if resume and state_path is not None and state_path.is_file():
        # On CPU: RNG states must stay CPU tensors; load_state_dict copies weights to ``dev``.
        saved = load_torch_file(state_path, "baseline training state", "delete it to train this model from scratch")
        if saved.get("run_hash") == run_hash:
            model.load_state_dict(saved["model"])
            optimizer.load_state_dict(saved["optimizer"])
            best_state = saved["best_model"]
            generator.set_state(saved["generator"])
            torch.set_rng_state(saved["torch_rng"])
            state = json.loads(saved["state_json"])
            logger.info("resumed %s from %s at epoch %d", model_cfg.model_type, state_path, state["epoch"])
        else:
            logger.info("ignoring %s: it belongs to a run with other settings or data", state_path)

    train = train.to(dev)
    ps = propensity(train, model_cfg.n_items).to(dev) if train_cfg.dro_alpha > 0 else None
    started = time.monotonic() - state["seconds"]
    progress = tqdm(total=train_cfg.max_epochs, initial=state["epoch"], desc=f"train {model_cfg.model_type}",
                    unit="epoch", leave=False)
    while (stopped := stop_reason(state, train_cfg)) is None:
        train_loss = train_one_epoch(model, optimizer, train, train_cfg, generator, ps)
        valid_metrics = hr_ndcg(target_ranks(model, valid, train_cfg.eval_batch_size, dev), ks)
        value = valid_metrics[train_cfg.select_metric]
        state["epoch"] += 1
        state["history"].append({"epoch": state["epoch"], "train_loss": train_loss, "valid": valid_metrics})
        improved = value > state["best_value"]
        if improved:
            state.update(best_epoch=state["epoch"], best_value=value, bad_epochs=0)
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            state["bad_epochs"] += 1
        state["seconds"] = time.monotonic() - started
        progress.update(1)
        progress.set_postfix(loss=f"{train_loss:.4f}", **{f"valid_{train_cfg.select_metric}": f"{value:.4f}"})
        logger.info("%s epoch %d: train loss %.4f, valid %s %.4f (best %.4f at epoch %d)", model_cfg.model_type,
                    state["epoch"], train_loss, train_cfg.select_metric, value, state["best_value"], state["best_epoch"])
        if out_dir is not None:
            if improved:
                save_model(out_dir, model, catalogue, meta={"train": train_cfg.recorded(),
                                                            "best_epoch": state["best_epoch"], "best_valid": valid_metrics})
            _save_train_state(state_path, model, optimizer, best_state, generator, state, run_hash)  # type: ignore[arg-type]
    progress.close()

    model.load_state_dict(best_state)
    model.eval()
    best_valid = state["history"][state["best_epoch"] - 1]["valid"] if state["history"] else {}
    if out_dir is not None:
        save_model(out_dir, model, catalogue, meta={"train": train_cfg.recorded(), "best_epoch": state["best_epoch"],
                                                    "best_valid": best_valid, "valid_history": state["history"],
                                                    "stopped": stopped, "train_seconds": state["seconds"]})
    logger.info("%s: best valid %s %.4f at epoch %d (%s, %.1fs)", model_cfg.model_type, train_cfg.select_metric,
                state["best_value"], state["best_epoch"], stopped, state["seconds"])
    cap = None
    if stopped == _cap_reason(state, train_cfg):
        cap = wall_clock_cap(f"max_train_seconds={train_cfg.max_train_seconds:g}", state["epoch"], train_cfg.max_epochs)
    return TrainResult(model, state["best_epoch"], best_valid, state["history"], state["seconds"], stopped, cap)


def stop_reason(state: dict[str, Any], cfg: TrainConfig) -> str | None:
    """Why training stops now (checked before every epoch, so a resumed run honours new limits)."""
    if state["epoch"] > 0 and state["bad_epochs"] >= cfg.patience:
        return f"early stop: {cfg.patience} epochs without a better valid {cfg.select_metric}"
    if state["epoch"] >= cfg.max_epochs:
        return f"max_epochs ({cfg.max_epochs}) reached"
    if 0 < cfg.max_train_seconds <= state["seconds"]:  # the optional safety valve (0 = off)
        return _cap_reason(state, cfg)
    return None


def _cap_reason(state: dict[str, Any], cfg: TrainConfig) -> str:
    return f"max_train_seconds={cfg.max_train_seconds:g} fired at epoch {state['epoch']} of {cfg.max_epochs}"


def train_one_epoch(model: SequentialRecommender, optimizer: torch.optim.Optimizer, train: SequenceBatch,
                    cfg: TrainConfig, generator: torch.Generator, ps: torch.Tensor | None = None) -> float:
    """One pass over ``train`` in a seeded random order; returns the mean loss per row."""
    model.train()
    order = torch.randperm(len(train), generator=generator).to(train.seqs.device)
    total = 0.0
    for start in range(0, len(train), cfg.batch_size):
        batch = train.subset(order[start : start + cfg.batch_size])
        loss = sequence_loss(model, batch, cfg, generator, ps)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += float(loss.detach()) * len(batch)
    return total / len(train)


def _save_train_state(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, best_state: dict[str, torch.Tensor],
                      generator: torch.Generator, state: dict[str, Any], run_hash: str) -> None:
    with atomic_path(path) as tmp:
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "best_model": best_state,
                    "generator": generator.get_state(), "torch_rng": torch.get_rng_state(), "state_json": json.dumps(state), "run_hash": run_hash}, tmp)
