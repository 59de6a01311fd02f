"""SASRec and GRU4Rec: sequential recommenders over item ids, and the ``sasrec`` CF reward model.

Both models read a history of catalogue items (the ``history_item_id`` column of the split CSVs)
and score every item of the catalogue (the info file) as the next one.  Items are indexed by
their line in the info file; embedding row 0 is padding, row ``i + 1`` is catalogue item ``i``.
Sequences keep the last ``max_history`` items and are right-padded, so with a causal encoder the
hidden state at position ``len - 1`` summarises the whole history and padding is never attended.

Training (:func:`train_sequential_model`) uses full-softmax cross-entropy (or BCE with
vectorised negative sampling), evaluates on the VALIDATION rows after every epoch, keeps the
best state by a validation metric, stops early, and is resumable from ``train_state.pt``.  The
test split never reaches this module: selection on test was upstream's bug (reference 9.3).

The saved model is ``model.safetensors`` + ``model.json`` (hyperparameters, selection history,
and the catalogue fingerprint: number of items + sha256 of the info file).  RL loads it with
:meth:`CFScorer.load`, which refuses a model trained on another catalogue::

    scorer = CFScorer.load("runs/x/baselines/sasrec", "runs/x/llm/info/X.txt")
    rewards = scorer.score(histories=[[3, 17, 5]], candidates=[[8, 2, -1]], kind="logit")
"""

from __future__ import annotations

import abc
import dataclasses
import hashlib
import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from minionerec.budget import wall_clock_cap
from minionerec.checkpoints import load_safetensors_file, load_torch_file
from minionerec.errors import InputError
from minionerec.io import CatalogueItem, SplitRow, atomic_path, file_sha256, read_info, read_json, write_json

logger = logging.getLogger("minionerec.sasrec")

MODEL_TYPES = ("sasrec", "gru4rec")
MODEL_WEIGHTS = "model.safetensors"
MODEL_META = "model.json"
TRAIN_STATE = "train_state.pt"
PAD = 0


# --------------------------------------------------------------------------------------------
# Catalogue: item ids <-> embedding rows, and its fingerprint
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Catalogue:
    """The item catalogue of an info file: item ids in line order, SID strings, fingerprint."""

    item_ids: tuple[int, ...]
    sid_strings: tuple[str, ...]
    info_sha256: str
    info_path: str
    index_of: dict[int, int] = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "index_of", {item: i for i, item in enumerate(self.item_ids)})

    @classmethod
    def from_info(cls, info_path: str | Path) -> "Catalogue":
        items: list[CatalogueItem] = read_info(info_path)
        ids = tuple(item.item_id for item in items)
        seen: set[int] = set()
        for line, item_id in enumerate(ids, start=1):
            if item_id in seen:
                raise InputError(f"info file {info_path}: item id {item_id} appears on several lines (again on item "
                                 f"line {line}); item ids must be unique")
            seen.add(item_id)
        return cls(ids, tuple(item.sid_string for item in items), file_sha256(info_path), str(info_path))

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def fingerprint(self) -> dict[str, Any]:
        return {"n_items": self.n_items, "info_sha256": self.info_sha256, "info_path": self.info_path}

    def check_fingerprint(self, fingerprint: dict[str, Any], model_dir: str | Path) -> None:
        """Raise InputError when a model trained on ``fingerprint`` does not fit this catalogue."""
        if fingerprint.get("n_items") != self.n_items or fingerprint.get("info_sha256") != self.info_sha256:
            raise InputError(
                f"CF model {model_dir} was trained on another catalogue: {fingerprint.get('n_items')} items, "
                f"info file {fingerprint.get('info_path')} (sha256 {str(fingerprint.get('info_sha256'))[:12]}...), "
                f"but {self.info_path} has {self.n_items} items (sha256 {self.info_sha256[:12]}...); retrain it on "
                f"this catalogue with: bash baselines.sh CONFIG.yaml --model sasrec"
            )

    def to_rows(self, item_ids: Sequence[int], where_: str) -> list[int]:
        """Embedding rows (1-based) of ``item_ids``; InputError naming ``where_`` for unknown ids."""
        index = self.index_of
        try:
            return [index[int(i)] + 1 for i in item_ids]
        except KeyError as exc:
            raise InputError(
                f"{where_}: item id {exc.args[0]} is not in the catalogue {self.info_path}; "
                f"use the info file the split CSVs were converted with"
            ) from None


# --------------------------------------------------------------------------------------------
# Tensors
# --------------------------------------------------------------------------------------------

@dataclass
class SequenceBatch:
    """Right-padded histories (embedding rows, 0 = pad), their lengths and target rows (0-based)."""

    seqs: torch.Tensor  # (B, L) long
    lengths: torch.Tensor  # (B,) long, >= 1
    targets: torch.Tensor  # (B,) long, catalogue index, -1 when unknown

    def to(self, device: torch.device | str) -> "SequenceBatch":
        return SequenceBatch(self.seqs.to(device), self.lengths.to(device), self.targets.to(device))

    def __len__(self) -> int:
        return int(self.seqs.shape[0])

    def subset(self, idx: torch.Tensor | slice) -> "SequenceBatch":
        return SequenceBatch(self.seqs[idx], self.lengths[idx], self.targets[idx])


def pad_histories(history_rows: Sequence[Sequence[int]], max_history: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Keep the last ``max_history`` embedding rows of each history and right-pad with 0.

    An empty history becomes a single padding position (length 1): the model then scores from
    its position embedding alone, i.e. a learned popularity prior.
    """
    seqs = torch.zeros((len(history_rows), max_history), dtype=torch.long)
    lengths = torch.ones(len(history_rows), dtype=torch.long)
    for r, rows in enumerate(history_rows):
        kept = list(rows)[-max_history:]
        if kept:
            seqs[r, : len(kept)] = torch.tensor(kept, dtype=torch.long)
            lengths[r] = len(kept)
    return seqs, lengths


def split_rows_to_batch(rows: Sequence[SplitRow], catalogue: Catalogue, max_history: int, source: str) -> SequenceBatch:
    """Tensors of one split; ``source`` (the CSV path) names the file in errors."""
    histories = [catalogue.to_rows(r.history_item_id, f"{source} row {n + 1}") for n, r in enumerate(rows)]
    targets = [catalogue.to_rows([r.item_id], f"{source} row {n + 1}")[0] - 1 for n, r in enumerate(rows)]
    seqs, lengths = pad_histories(histories, max_history)
    return SequenceBatch(seqs, lengths, torch.tensor(targets, dtype=torch.long))


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------

@dataclass
class ModelConfig:
    """Hyperparameters of a sequential model (saved in model.json)."""

    model_type: str = "sasrec"
    n_items: int = 0
    hidden_size: int = 64
    num_blocks: int = 2
    num_heads: int = 2
    dropout: float = 0.5
    max_history: int = 10

    def __post_init__(self) -> None:
        if self.model_type not in MODEL_TYPES:
            raise InputError(f"unknown model_type {self.model_type!r}; choose one of {', '.join(MODEL_TYPES)}")
        if self.model_type == "sasrec" and self.hidden_size % self.num_heads:
            raise InputError(f"hidden_size {self.hidden_size} must be divisible by num_heads {self.num_heads}")


class SequentialRecommender(nn.Module, abc.ABC):
    """Shared parts: item embeddings (tied with the output layer) and catalogue scoring."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.item_embedding = nn.Embedding(cfg.n_items + 1, cfg.hidden_size, padding_idx=PAD)
        self.input_dropout = nn.Dropout(cfg.dropout)
        nn.init.normal_(self.item_embedding.weight, std=0.02)
        with torch.no_grad():
            self.item_embedding.weight[PAD].zero_()

    @abc.abstractmethod
    def encode(self, seqs: torch.Tensor) -> torch.Tensor:
        """(B, L) embedding rows -> (B, L, d) causal hidden states (SASRec: attention; GRU4Rec: a GRU)."""

    def item_vectors(self) -> torch.Tensor:
        """(n_items, d) output vectors, in catalogue order."""
        return self.item_embedding.weight[1:]

    def last_hidden(self, seqs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        hidden = self.encode(seqs)
        return hidden[torch.arange(seqs.shape[0], device=seqs.device), lengths - 1]

    def score_all(self, seqs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, n_items) logits of every catalogue item being next."""
        return self.last_hidden(seqs, lengths) @ self.item_vectors().T


class CausalBlock(nn.Module):
    """Pre-LayerNorm transformer block with causal multi-head self-attention."""

    def __init__(self, d: int, heads: int, dropout: float):
        super().__init__()
        self.heads = heads
        self.ln_attn = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.ln_ffn = nn.LayerNorm(d)
        self.ffn = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Dropout(dropout), nn.Linear(4 * d, d))
        self.dropout = nn.Dropout(dropout)
        self.attn_dropout = dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, length, d = x.shape
        q, k, v = self.qkv(self.ln_attn(x)).split(d, dim=-1)
        q, k, v = (t.view(b, length, self.heads, d // self.heads).transpose(1, 2) for t in (q, k, v))
        attended = F.scaled_dot_product_attention(
            q, k, v, is_causal=True, dropout_p=self.attn_dropout if self.training else 0.0
        )
        x = x + self.dropout(self.proj(attended.transpose(1, 2).reshape(b, length, d)))
        return x + self.dropout(self.ffn(self.ln_ffn(x)))


class SASRec(SequentialRecommender):
    """Self-attentive sequential recommendation (Kang & McAuley 2018), pre-LN variant."""

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        self.position_embedding = nn.Embedding(cfg.max_history, cfg.hidden_size)
        nn.init.normal_(self.position_embedding.weight, std=0.02)
        self.blocks = nn.ModuleList(CausalBlock(cfg.hidden_size, cfg.num_heads, cfg.dropout) for _ in range(cfg.num_blocks))
        self.final_norm = nn.LayerNorm(cfg.hidden_size)

    def encode(self, seqs: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(seqs.shape[1], device=seqs.device)
        x = self.item_embedding(seqs) * math.sqrt(self.cfg.hidden_size) + self.position_embedding(positions)
        x = self.input_dropout(x)
        for block in self.blocks:
            x = block(x)
        return self.final_norm(x)


class GRU4Rec(SequentialRecommender):
    """GRU over the history (Hidasi et al. 2016) with a tied softmax output layer."""

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        self.gru = nn.GRU(cfg.hidden_size, cfg.hidden_size, num_layers=cfg.num_blocks, batch_first=True,
                          dropout=cfg.dropout if cfg.num_blocks > 1 else 0.0)
        self.output = nn.Linear(cfg.hidden_size, cfg.hidden_size)

    def encode(self, seqs: torch.Tensor) -> torch.Tensor:
        # Right padding: a GRU is causal, so outputs up to len - 1 never see the padding.
        out, _ = self.gru(self.input_dropout(self.item_embedding(seqs)))
        return self.output(out)


def build_model(cfg: ModelConfig) -> SequentialRecommender:
    return SASRec(cfg) if cfg.model_type == "sasrec" else GRU4Rec(cfg)


# --------------------------------------------------------------------------------------------
# Ranking on a split
# --------------------------------------------------------------------------------------------

@torch.no_grad()
def target_ranks(model: SequentialRecommender, data: SequenceBatch, batch_size: int = 1024,
                 device: torch.device | str = "cpu") -> torch.Tensor:
    """0-based rank of each target among all catalogue items (ties count against the target)."""
    model.eval()
    ranks = []
    for start in range(0, len(data), batch_size):
        batch = data.subset(slice(start, start + batch_size)).to(device)
        scores = model.score_all(batch.seqs, batch.lengths)
        target_scores = scores.gather(1, batch.targets.clamp(min=0)[:, None])
        rank = (scores > target_scores).sum(1) + (scores == target_scores).sum(1) - 1
        ranks.append(rank.cpu())
    return torch.cat(ranks) if ranks else torch.zeros(0, dtype=torch.long)


@torch.no_grad()
def top_items(model: SequentialRecommender, data: SequenceBatch, k: int, batch_size: int = 1024,
              device: torch.device | str = "cpu") -> torch.Tensor:
    """(B, k) catalogue indices of the k best items for each history, best first."""
    model.eval()
    out = []
    for start in range(0, len(data), batch_size):
        batch = data.subset(slice(start, start + batch_size)).to(device)
        out.append(model.score_all(batch.seqs, batch.lengths).topk(k, dim=1).indices.cpu())
    return torch.cat(out) if out else torch.zeros((0, k), dtype=torch.long)


def ranks_to_metrics(ranks: torch.Tensor, ks: Sequence[int]) -> dict[str, float]:
    """HR@K / NDCG@K from 0-based ranks (same definition as :func:`minionerec.metrics.hr_ndcg`)."""
    out: dict[str, float] = {}
    n = max(len(ranks), 1)
    for k in ks:
        hit = ranks < k
        out[f"HR@{k}"] = float(hit.sum()) / n
        out[f"NDCG@{k}"] = float((hit / torch.log2(ranks.double() + 2)).sum()) / n
    return out


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------

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

    def __post_init__(self) -> None:
        if self.loss not in ("ce", "bce"):
            raise InputError(f"loss must be 'ce' (full softmax) or 'bce' (sampled negatives), got {self.loss!r}")
        metric, _, k = self.select_metric.partition("@")
        if metric not in ("HR", "NDCG") or not k.isdigit():
            raise InputError(f"select_metric must look like NDCG@10 or HR@5, got {self.select_metric!r}")


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


def sequence_loss(model: SequentialRecommender, batch: SequenceBatch, cfg: TrainConfig,
                  generator: torch.Generator) -> torch.Tensor:
    targets, mask = position_targets(batch, cfg.all_positions)
    hidden = model.encode(batch.seqs)[mask]  # (P, d)
    gold = targets[mask]  # (P,)
    items = model.item_vectors()
    if cfg.loss == "ce":
        return F.cross_entropy(hidden @ items.T, gold)
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
    train = {k: v for k, v in dataclasses.asdict(train_cfg).items() if k not in _STOPPING_FIELDS}
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


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


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
    ks = sorted({1, 3, 5, 10, 20, int(train_cfg.select_metric.split("@")[1])})

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
    started = time.monotonic() - state["seconds"]
    progress = tqdm(total=train_cfg.max_epochs, initial=state["epoch"], desc=f"train {model_cfg.model_type}",
                    unit="epoch", leave=False)
    while (stopped := stop_reason(state, train_cfg)) is None:
        train_loss = train_one_epoch(model, optimizer, train, train_cfg, generator)
        valid_metrics = ranks_to_metrics(target_ranks(model, valid, train_cfg.eval_batch_size, dev), ks)
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
                save_model(out_dir, model, catalogue, meta={"train": dataclasses.asdict(train_cfg),
                                                            "best_epoch": state["best_epoch"], "best_valid": valid_metrics})
            _save_train_state(state_path, model, optimizer, best_state, generator, state, run_hash)  # type: ignore[arg-type]
    progress.close()

    model.load_state_dict(best_state)
    model.eval()
    best_valid = state["history"][state["best_epoch"] - 1]["valid"] if state["history"] else {}
    if out_dir is not None:
        save_model(out_dir, model, catalogue, meta={"train": dataclasses.asdict(train_cfg), "best_epoch": state["best_epoch"],
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
                    cfg: TrainConfig, generator: torch.Generator) -> float:
    """One pass over ``train`` in a seeded random order; returns the mean loss per row."""
    model.train()
    order = torch.randperm(len(train), generator=generator).to(train.seqs.device)
    total = 0.0
    for start in range(0, len(train), cfg.batch_size):
        batch = train.subset(order[start : start + cfg.batch_size])
        loss = sequence_loss(model, batch, cfg, generator)
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


# --------------------------------------------------------------------------------------------
# Saving and loading
# --------------------------------------------------------------------------------------------

def save_model(out_dir: str | Path, model: SequentialRecommender, catalogue: Catalogue,
               meta: dict[str, Any] | None = None) -> Path:
    """Write ``model.safetensors`` and ``model.json`` (hyperparameters + catalogue fingerprint)."""
    from safetensors.torch import save_file

    out_dir = Path(out_dir)
    with atomic_path(out_dir / MODEL_WEIGHTS) as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, str(tmp))
    body = {"model": dataclasses.asdict(model.cfg), "catalogue": catalogue.fingerprint(), **(meta or {})}
    write_json(out_dir / MODEL_META, body)
    return out_dir


def load_model(model_dir: str | Path, catalogue: Catalogue | None = None,
               device: str = "cpu") -> SequentialRecommender:
    """Load a saved model; with ``catalogue``, refuse a model trained on another catalogue."""
    model_dir = Path(model_dir)
    fix = "train one with: bash baselines.sh CONFIG.yaml --model sasrec"
    meta = read_json(model_dir / MODEL_META, "CF model description (model.json)", fix)
    if not isinstance(meta, dict) or "model" not in meta or "catalogue" not in meta:
        raise InputError(f"{model_dir / MODEL_META} lacks the 'model' or 'catalogue' entry; {fix}")
    if catalogue is not None:
        catalogue.check_fingerprint(meta["catalogue"], model_dir)
    try:
        cfg = ModelConfig(**meta["model"])
    except TypeError as exc:
        raise InputError(f"{model_dir / MODEL_META}: bad model hyperparameters ({exc})") from None
    weights_path = model_dir / MODEL_WEIGHTS
    if not weights_path.is_file():
        raise InputError(f"CF model weights not found: {weights_path}; {fix}")
    model = build_model(cfg)
    try:
        model.load_state_dict(load_safetensors_file(weights_path, "CF model weights", fix))
    except RuntimeError as exc:
        raise InputError(f"{weights_path} does not match the hyperparameters in {MODEL_META}: {exc}") from None
    return model.to(resolve_device(device)).eval()


class CFScorer:
    """The ``sasrec`` reward model: collaborative scores of candidate items given histories."""

    def __init__(self, model: SequentialRecommender, catalogue: Catalogue, device: str = "cpu"):
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.catalogue = catalogue

    @classmethod
    def load(cls, model_dir: str | Path, info_path: str | Path, device: str = "cpu") -> "CFScorer":
        """Load ``model_dir`` (from baselines.py) for the catalogue of ``info_path``.

        Raises InputError when the model was trained on another catalogue.
        """
        catalogue = Catalogue.from_info(info_path)
        return cls(load_model(model_dir, catalogue, device), catalogue, device)

    @torch.no_grad()
    def score_all(self, histories: Sequence[Sequence[int]], kind: str = "logit") -> torch.Tensor:
        """(B, n_items) scores of every catalogue item (catalogue order) after each history."""
        if kind not in ("logit", "prob", "log_prob"):
            raise InputError(f"score kind must be 'logit', 'prob' or 'log_prob', got {kind!r}")
        rows = [self.catalogue.to_rows(h, f"history {n}") for n, h in enumerate(histories)]
        seqs, lengths = pad_histories(rows, self.model.cfg.max_history)
        logits = self.model.score_all(seqs.to(self.device), lengths.to(self.device)).float()
        if kind == "prob":
            return logits.softmax(-1)
        if kind == "log_prob":
            return logits.log_softmax(-1)
        return logits

    @torch.no_grad()
    def score(self, histories: Sequence[Sequence[int]], candidates: Sequence[Sequence[int]] | torch.Tensor,
              kind: str = "logit", invalid_score: float = 0.0) -> torch.Tensor:
        """(B, C) scores of ``candidates[b]`` (item ids) after ``histories[b]`` (item ids, oldest first).

        ``kind``: ``logit`` (upstream's reward, the raw output), ``prob`` or ``log_prob`` (softmax
        over the whole catalogue).  A negative candidate id marks an invalid completion and gets
        ``invalid_score``; any other id outside the catalogue raises InputError.
        """
        cand = torch.as_tensor(candidates, dtype=torch.long)
        if cand.dim() != 2 or cand.shape[0] != len(histories):
            raise InputError(f"candidates must be a (batch, n) table with one row per history; got {tuple(cand.shape)}")
        scores = self.score_all(histories, kind).cpu()
        invalid = cand < 0
        index = self.catalogue.index_of
        flat = [index.get(int(i), -1) if i >= 0 else 0 for i in cand.flatten().tolist()]
        unknown = [int(i) for i, r in zip(cand.flatten().tolist(), flat) if i >= 0 and r < 0]
        if unknown:
            raise InputError(f"candidate item id {unknown[0]} is not in the catalogue {self.catalogue.info_path}")
        picked = scores.gather(1, torch.tensor(flat, dtype=torch.long).view_as(cand))
        return picked.masked_fill(invalid, invalid_score)
