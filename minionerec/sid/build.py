"""The ``sid:`` config section and the entry points of every SID method.

Per-method scripts (``rq/rqkmeans_faiss.py``, ``rq/rqkmeans_constrained.py``, ``rq/rqvae.py``,
``rq/generate_indices.py``, ``rq/rqkmeans_plus.py``, ``rq/generate_indices_plus.py``) and the
config-driven ``rq/build_sids.py`` (which runs ``sid.method`` end to end) all call into here.
Codes are 0-based for every method.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np

from minionerec.config import save_resolved_config
from minionerec.errors import InputError
from minionerec.io import read_item_json
from minionerec.records import stage_outputs
from minionerec.sid.index import COLLISION_MODES, LastLevelCosts, collision_rate, load_embeddings, write_sid_outputs
from minionerec.sid.index import level_sizes as _level_sizes

logger = logging.getLogger(__name__)

__all__ = [
    "METHODS", "SidConfig", "balanced_solver", "build_sids", "ckpt_folder", "codebook_file", "generate_index",
    "level_sizes", "load_inputs", "run_kmeans_method", "train_rq_model",
]

# the RQ training choices (upstream rq/trainer.py); literal here so the config module needs no torch
_LEARNERS = ("adamw", "adam", "sgd", "adagrad", "rmsprop")
_LR_SCHEDULERS = ("constant", "linear")
_LOSS_TYPES = ("mse", "l1")

METHODS = ("rqkmeans_faiss", "rqkmeans_constrained", "rqvae", "rqkmeans_plus")
_DATA_DIR = "${common.workdir}/data/${common.dataset}"


@dataclass
class SidConfig:
    """Semantic-ID construction (any method)."""

    section: ClassVar[str] = "sid"

    method: str = field(default="rqkmeans_faiss", metadata={"help": f"SID method: {', '.join(METHODS)}.",
                                                                  "choices": METHODS})
    data_path: str = field(default=f"{_DATA_DIR}/${{common.dataset}}.emb-minilm.npy",
                           metadata={"help": "Item embeddings (.npy, row i = item i)."})
    output_path: str = field(default=f"{_DATA_DIR}/${{common.dataset}}.index.json",
                             metadata={"help": "SID index to write; the report goes beside it (.index.report.json/.png)."})
    item_json_path: str = field(default="", metadata={"help": "Optional .item.json: its item count must equal the embedding rows."})
    num_levels: int = field(default=3, metadata={"help": "Code levels per SID (before collision resolution)."})
    codebook_size: int = field(default=256, metadata={"help": "Codes per level (K)."})
    codebook_sizes: list[int] = field(default_factory=list, metadata={
        "help": "Codes of each level (K_0 ... K_{L-1}, upstream's --num_emb_list), e.g. [256, 256, 128]; its length "
                "must equal num_levels. Empty: codebook_size at every level."})
    seed: int = field(default=42, metadata={"help": "Seed of every k-means / training run."})
    collision_mode: str = field(default="reassign", metadata={
        "choices": COLLISION_MODES,
        "help": "How SIDs are made unique: 'reassign' (move colliding items to free last-level codes; fixed length) "
                "or 'extra_level' (upstream: append <d_k> to colliding items)."})
    codebook_path: str = field(default="", metadata={
        "help": "Codebooks .npz written by the k-means methods and read by rqkmeans_plus. Empty: <output stem>.codebooks.npz; "
                "for rqkmeans_plus <output stem>.constrained.codebooks.npz, i.e. what rqkmeans_constrained writes for "
                "--output_path <output stem>.constrained.index.json (build_sids runs it for you)."})
    kmeans_iters: int = field(default=20, metadata={"help": "faiss k-means iterations per level (faiss and scalable balanced)."})
    uniform: bool = field(default=False, metadata={
        "help": "rqkmeans_faiss: upstream's --uniform 'Sinkhorn uniform mapping': at every level, codes from an entropic "
                "transport plan with equal code capacities (N//K or N//K+1 items per code) instead of the nearest "
                "centroid. Dense N x K float64 plan and up to 1000 Sinkhorn rounds per level (20k items x K=256: about 20 s a "
                "level on one core), so meant for catalogues up to about 10^5 items."})
    # balanced k-means
    balance: str = field(default="auto", metadata={
        "help": "Balanced k-means solver: 'exact' (k-means-constrained, min-cost flow), 'scalable' (faiss + capacity "
                "assignment) or 'auto' (exact up to exact_max_items items)."})
    exact_max_items: int = field(default=20000, metadata={"help": "Largest catalogue 'auto' sends to the exact solver."})
    balance_slack: int = field(default=1, metadata={"help": "Cluster sizes within [N//K - slack, N//K + slack] (upstream 1)."})
    constrained_max_iter: int = field(default=100, metadata={"help": "k-means-constrained max_iter."})
    constrained_n_init: int = field(default=3, metadata={"help": "k-means-constrained n_init."})
    constrained_n_jobs: int = field(default=1, metadata={"help": "k-means-constrained n_jobs."})
    refine_iters: int = field(default=3, metadata={"help": "Scalable balanced: centroid updates after balanced assignment."})
    candidates: int = field(default=32, metadata={"help": "Scalable balanced: nearest centroids each item may take."})
    # RQ-VAE / RQ-Kmeans+
    ckpt_dir: str = field(default="", metadata={"help": "Checkpoint folder. Empty: <output stem>.<method>/ beside the index."})
    checkpoint: str = field(default="best_collision", metadata={"help": "Checkpoint generate_indices uses: best_collision, best_loss or last."})
    e_dim: int = field(default=32, metadata={"help": "RQ-VAE latent size (RQ-Kmeans+ always uses the embedding size)."})
    layers: list[int] = field(default_factory=lambda: [2048, 1024, 512, 256, 128, 64], metadata={"help": "Hidden MLP widths."})
    epochs: int = field(default=10000, metadata={"help": "Training epochs."})
    batch_size: int = field(default=20480, metadata={"help": "Training batch size (>= items: full batch)."})
    lr: float = field(default=1e-3, metadata={"help": "AdamW learning rate (upstream: 1e-3 RQ-VAE, 1e-4 RQ-Kmeans+)."})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay."})
    warmup_epochs: int = field(default=50, metadata={"help": "Linear warm-up epochs, then lr_scheduler_type."})
    learner: str = field(default="adamw", metadata={
        "help": f"RQ-VAE / RQ-Kmeans+ optimizer (upstream --learner, any case): {', '.join(_LEARNERS)}."})
    lr_scheduler_type: str = field(default="constant", metadata={
        "choices": _LR_SCHEDULERS, "help": "After the warm-up: constant, or linear decay to 0 at the last epoch."})
    loss_type: str = field(default="mse", metadata={"choices": _LOSS_TYPES, "help": "Reconstruction loss: mse or l1."})
    save_limit: int = field(default=0, metadata={
        "help": "Also keep the newest N per-eval checkpoints <ckpt_dir>/epoch_<E>.pt (upstream kept 5); 0: only "
                "best_collision.pt, best_loss.pt and last.pt."})
    eval_step: int = field(default=50, metadata={"help": "Epochs between collision-rate checks and checkpoints."})
    beta: float = field(default=0.25, metadata={"help": "Commitment weight."})
    quant_loss_weight: float = field(default=1.0, metadata={"help": "Weight of the quantisation loss."})
    dropout: float = field(default=0.0, metadata={"help": "Dropout before each Linear."})
    batch_norm: bool = field(default=False, metadata={"help": "BatchNorm between hidden layers."})
    kmeans_init: bool = field(default=True, metadata={"help": "RQ-VAE: seeded k-means codebook initialisation."})
    sk_epsilons: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0],
                                     metadata={"help": "Per-level Sinkhorn epsilon in training (0 = argmin)."})
    sk_iters: int = field(default=50, metadata={"help": "Sinkhorn iterations."})
    collision_rounds: int = field(default=20, metadata={"help": "generate_indices: Sinkhorn re-encoding rounds for colliding groups."})
    collision_sk_epsilon: float = field(default=0.003, metadata={"help": "Last-level Sinkhorn epsilon of those rounds."})
    device: str = field(default="auto", metadata={"help": "Torch device for RQ-VAE / RQ-Kmeans+ (auto: cuda if present)."})
    resume: bool = field(default=True, metadata={"help": "Resume training from <ckpt_dir>/last.pt when present."})


# --------------------------------------------------------------------------------------------
# Paths and inputs
# --------------------------------------------------------------------------------------------

def _stem(cfg: SidConfig) -> Path:
    out = Path(cfg.output_path)
    name = out.name[: -len(".index.json")] if out.name.endswith(".index.json") else out.stem
    return out.with_name(name)


def codebook_file(cfg: SidConfig, method: str) -> Path:
    if cfg.codebook_path:
        return Path(cfg.codebook_path)
    stem = _stem(cfg)
    if method == "rqkmeans_plus":
        return stem.with_name(stem.name + ".constrained.codebooks.npz")
    return stem.with_name(stem.name + ".codebooks.npz")


def ckpt_folder(cfg: SidConfig, method: str) -> Path:
    if cfg.ckpt_dir:
        return Path(cfg.ckpt_dir)
    stem = _stem(cfg)
    return stem.with_name(f"{stem.name}.{method}")


def level_sizes(cfg: SidConfig) -> list[int]:
    """Codes per level: ``sid.codebook_sizes`` when given, else ``sid.codebook_size`` at every level."""
    if not cfg.codebook_sizes:
        return _level_sizes(cfg.codebook_size, cfg.num_levels)
    if len(cfg.codebook_sizes) != cfg.num_levels or min(cfg.codebook_sizes) < 1:
        raise InputError(f"sid.codebook_sizes {list(cfg.codebook_sizes)} must give one size >= 1 for each of the "
                         f"sid.num_levels={cfg.num_levels} levels")
    return [int(k) for k in cfg.codebook_sizes]


def _sizes_arg(cfg: SidConfig) -> int | list[int]:
    """What the quantisers take: one K (every level the same; the path all existing configs run) or the list."""
    sizes = level_sizes(cfg)
    return sizes[0] if len(set(sizes)) == 1 else sizes


def load_inputs(cfg: SidConfig) -> np.ndarray:
    if cfg.collision_mode not in COLLISION_MODES:
        raise InputError(f"sid.collision_mode must be one of {', '.join(COLLISION_MODES)}, got {cfg.collision_mode!r}")
    if cfg.num_levels < 1:
        raise InputError(f"sid.num_levels must be >= 1, got {cfg.num_levels}")
    if cfg.learner.lower() not in _LEARNERS:
        raise InputError(f"sid.learner must be one of {', '.join(_LEARNERS)} (any case), got {cfg.learner!r}")
    if cfg.save_limit < 0:
        raise InputError(f"sid.save_limit must be >= 0, got {cfg.save_limit}")
    expected = len(read_item_json(cfg.item_json_path)) if cfg.item_json_path else None
    return load_embeddings(cfg.data_path, expected, _sizes_arg(cfg))


def _finish(cfg: SidConfig, method: str, raw_codes: np.ndarray, seconds: float, costs: LastLevelCosts | None,
            x: np.ndarray, extra: dict | None = None) -> dict:
    index_path = Path(cfg.output_path)
    # the index, its report JSON and PNG are published together, the done-record last
    with stage_outputs(dataclasses.replace(cfg, method=method), index_path.parent) as staging:
        report = write_sid_outputs(staging / index_path.name, raw_codes, _sizes_arg(cfg), cfg.collision_mode,
                                   seconds, method, last_level_costs=costs, embeddings=x, extra=extra)
    return report


# --------------------------------------------------------------------------------------------
# k-means methods
# --------------------------------------------------------------------------------------------

def balanced_solver(cfg: SidConfig, num_items: int) -> str:
    if cfg.balance not in ("auto", "exact", "scalable"):
        raise InputError(f"sid.balance must be auto, exact or scalable, got {cfg.balance!r}")
    if cfg.balance == "auto":
        return "exact" if num_items <= cfg.exact_max_items else "scalable"
    return cfg.balance


def run_kmeans_method(cfg: SidConfig, method: str, x: np.ndarray | None = None) -> dict:
    """RQ-Kmeans (faiss) or balanced RQ-Kmeans: codebooks .npz + index + report."""
    from minionerec.sid import quantize

    x = load_inputs(cfg) if x is None else x
    start = time.perf_counter()
    extra = {}
    sizes = _sizes_arg(cfg)
    if cfg.uniform and method != "rqkmeans_faiss":
        raise InputError(f"sid.uniform (Sinkhorn uniform mapping) is an rqkmeans_faiss option; {method} does not take it "
                         "(rqkmeans_constrained is balanced already)")
    if method == "rqkmeans_faiss":
        books = quantize.rq_kmeans_faiss(x, cfg.num_levels, sizes, cfg.seed, cfg.kmeans_iters, uniform=cfg.uniform)
        if cfg.uniform:
            extra["uniform"] = True
    elif method == "rqkmeans_constrained":
        solver = balanced_solver(cfg, x.shape[0])
        extra["balance"] = solver
        if solver == "exact":
            books = quantize.rq_kmeans_constrained(
                x, cfg.num_levels, sizes, cfg.seed, cfg.constrained_max_iter, cfg.constrained_n_init,
                slack=cfg.balance_slack, n_jobs=cfg.constrained_n_jobs)
        else:
            books = quantize.rq_kmeans_balanced_scalable(
                x, cfg.num_levels, sizes, cfg.seed, cfg.kmeans_iters, cfg.refine_iters,
                cfg.balance_slack, cfg.candidates)
    else:
        raise InputError(f"unknown k-means method {method!r}")
    seconds = time.perf_counter() - start
    books.save_npz(codebook_file(cfg, method))
    return _finish(cfg, method, books.codes, seconds, books.last_level_costs(x), x, extra)


# --------------------------------------------------------------------------------------------
# RQ-VAE and RQ-Kmeans+
# --------------------------------------------------------------------------------------------

def _settings(cfg: SidConfig, kmeans_init: bool):
    from minionerec.sid.rqvae import TrainSettings

    return TrainSettings(
        epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, weight_decay=cfg.weight_decay,
        warmup_epochs=cfg.warmup_epochs, eval_step=max(1, cfg.eval_step), sk_epsilons=list(cfg.sk_epsilons),
        sk_iters=cfg.sk_iters, kmeans_init=kmeans_init, kmeans_iters=cfg.kmeans_iters if cfg.kmeans_iters > 0 else 100,
        seed=cfg.seed, resume=cfg.resume, learner=cfg.learner, lr_scheduler_type=cfg.lr_scheduler_type,
        loss_type=cfg.loss_type, save_limit=cfg.save_limit,
    )


def train_rq_model(cfg: SidConfig, method: str, x: np.ndarray | None = None) -> dict:
    """Train RQ-VAE (``rqvae``) or RQ-Kmeans+ (``rqkmeans_plus``); checkpoints in ckpt_folder."""
    import torch

    from minionerec.sid import rqvae
    from minionerec.sid.quantize import load_codebooks_npz

    x = load_inputs(cfg) if x is None else x
    torch.manual_seed(cfg.seed)
    plus = method == "rqkmeans_plus"
    sizes = _sizes_arg(cfg)
    arch = rqvae.RQVAEArch(
        in_dim=x.shape[1], e_dim=x.shape[1] if plus else cfg.e_dim, layers=list(cfg.layers), num_levels=cfg.num_levels,
        codebook_size=max(level_sizes(cfg)), codebook_sizes=list(sizes) if isinstance(sizes, list) else [],
        dropout=cfg.dropout, batch_norm=cfg.batch_norm, residual_encoder=plus,
        beta=cfg.beta, quant_loss_weight=cfg.quant_loss_weight,
    )
    model = rqvae.RQVAE(arch)
    initial = None
    if plus:
        initial = load_codebooks_npz(codebook_file(cfg, method), cfg.num_levels, sizes, x.shape[1])
    start = time.perf_counter()
    state = rqvae.train(model, x, _settings(cfg, kmeans_init=cfg.kmeans_init and not plus), ckpt_folder(cfg, method),
                        method, rqvae.pick_device(cfg.device), initial)
    save_resolved_config(dataclasses.replace(cfg, method=method), ckpt_folder(cfg, method))
    state["train_seconds"] = time.perf_counter() - start
    return state


def generate_index(cfg: SidConfig, method: str, x: np.ndarray | None = None, train_seconds: float = 0.0) -> dict:
    """Encode every item with a trained checkpoint, Sinkhorn collision rounds, then unique SIDs."""
    import torch

    from minionerec.sid import rqvae
    from minionerec.sid.quantize import squared_distances

    x = load_inputs(cfg) if x is None else x
    if cfg.checkpoint not in ("best_collision", "best_loss", "last"):
        raise InputError(f"sid.checkpoint must be best_collision, best_loss or last, got {cfg.checkpoint!r}")
    path = ckpt_folder(cfg, method) / f"{cfg.checkpoint}.pt"
    model, ckpt = rqvae.model_from_checkpoint(path)
    if ckpt["arch"]["in_dim"] != x.shape[1]:
        raise InputError(f"checkpoint {path} expects {ckpt['arch']['in_dim']}-d embeddings, {cfg.data_path} has {x.shape[1]}")
    trained = rqvae.arch_of(ckpt).level_sizes()
    if trained != level_sizes(cfg):
        raise InputError(f"checkpoint {path} has {len(trained)} levels of {trained} codes, the config "
                         f"{level_sizes(cfg)}; pass the same --num_levels/--codebook_size/--codebook_sizes it was "
                         "trained with")
    start = time.perf_counter()
    argmin_rate = collision_rate(model.codes(torch.from_numpy(x)).numpy())
    codes, rounds = rqvae.generate_codes(model, x, cfg.collision_rounds, cfg.collision_sk_epsilon, cfg.sk_iters)
    last_book = model.quantizer.codebooks[-1].detach().numpy()

    def costs(items: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            residual = model.last_level_residuals(torch.from_numpy(x[items])).numpy()
        return squared_distances(residual, last_book)

    seconds = time.perf_counter() - start + train_seconds
    extra = {"checkpoint": str(path), "checkpoint_epoch": int(ckpt["epoch"]), "sinkhorn_rounds": rounds,
             "collision_rate_argmin": argmin_rate}
    return _finish(cfg, method, codes, seconds, costs, x, extra)


def build_sids(cfg: SidConfig, method: str | None = None) -> dict:
    """Run one method end to end (the config-driven path); returns the quality report."""
    method = method or cfg.method
    if method not in METHODS:
        raise InputError(f"sid.method must be one of {', '.join(METHODS)}, got {method!r}")
    x = load_inputs(cfg)
    if method in ("rqkmeans_faiss", "rqkmeans_constrained"):
        return run_kmeans_method(cfg, method, x)
    if method == "rqkmeans_plus" and not codebook_file(cfg, method).is_file():
        logger.info("no constrained codebooks at %s: running rqkmeans_constrained first", codebook_file(cfg, method))
        constrained_cfg = dataclasses.replace(
            cfg, output_path=str(_stem(cfg).with_name(_stem(cfg).name + ".constrained.index.json")),
            codebook_path=str(codebook_file(cfg, method)))
        run_kmeans_method(constrained_cfg, "rqkmeans_constrained", x)
    state = train_rq_model(cfg, method, x)
    return generate_index(cfg, method, x, state["train_seconds"])
