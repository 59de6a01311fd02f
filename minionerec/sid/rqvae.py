"""RQ-VAE and RQ-Kmeans+ in one model: MLP encoder, residual vector quantiser, MLP decoder.

- RQ-VAE (upstream ``rq/rqvae.py``): encoder ``in_dim -> layers -> e_dim``, codebooks
  initialised by seeded k-means on the latents of *all* items (upstream used unseeded sklearn
  k-means on the first batch), optional Sinkhorn-balanced assignment per level.
- RQ-Kmeans+ (GPR, reference gpr-and-amazon23 section 4.5): ``e_dim == in_dim``, encoder
  ``z = x + g(x)`` with the last layer of ``g`` zero-initialised (identity at the start) and
  codebooks warm-started from the constrained RQ-Kmeans ``.npz``.

Loss = MSE(decoder(zq), x) (or L1, upstream's ``--loss_type l1``) + quant_loss_weight *
mean_l(MSE(q_l, sg(r_l)) + beta * MSE(sg(q_l), r_l)), straight-through gradients.  Level l has
its own codebook size (upstream's ``--num_emb_list``).  Checkpoints hold only tensors and plain
values, so they load with ``torch.load(weights_only=True)``; training resumes from ``last.pt``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from minionerec.errors import InputError
from minionerec.io import atomic_path, require_file
from minionerec.sid.index import collision_rate, level_sizes

logger = logging.getLogger(__name__)

__all__ = [
    "LEARNERS", "LOSS_TYPES", "LR_SCHEDULERS", "RQVAE", "RQVAEArch", "ResidualQuantizer", "TrainSettings",
    "arch_of", "build_optimizer", "generate_codes", "lr_factor", "init_codebooks_kmeans", "load_checkpoint", "load_codebooks", "mlp", "model_from_checkpoint",
    "pick_device", "save_checkpoint", "sinkhorn_assign", "squared_l2", "train",
]

#: upstream's rq/trainer.py optimizers (``--learner``), schedules (``--lr_scheduler_type``), losses (``--loss_type``)
LEARNERS = ("adamw", "adam", "sgd", "adagrad", "rmsprop")
LR_SCHEDULERS = ("constant", "linear")
LOSS_TYPES = ("mse", "l1")


@dataclass
class RQVAEArch:
    """Everything needed to rebuild the model from a checkpoint."""

    in_dim: int
    e_dim: int = 32
    layers: list[int] = field(default_factory=lambda: [2048, 1024, 512, 256, 128, 64])
    num_levels: int = 3
    codebook_size: int = 256
    #: per-level sizes; empty: ``codebook_size`` at every level (checkpoints written before this field load as that)
    codebook_sizes: list[int] = field(default_factory=list)
    dropout: float = 0.0
    batch_norm: bool = False
    residual_encoder: bool = False
    beta: float = 0.25
    quant_loss_weight: float = 1.0

    def level_sizes(self) -> list[int]:
        return level_sizes(self.codebook_sizes or self.codebook_size, self.num_levels)


@dataclass
class TrainSettings:
    epochs: int = 10000
    batch_size: int = 20480
    lr: float = 1e-3
    weight_decay: float = 0.0
    warmup_epochs: int = 50
    eval_step: int = 50
    sk_epsilons: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    sk_iters: int = 50
    kmeans_init: bool = True
    kmeans_iters: int = 100
    seed: int = 42
    resume: bool = True
    learner: str = "adamw"
    lr_scheduler_type: str = "constant"
    loss_type: str = "mse"
    save_limit: int = 0  # rolling epoch_<E>.pt checkpoints kept (0: none; upstream kept 5)


def mlp(dims: list[int], dropout: float, batch_norm: bool) -> nn.Sequential:
    """Linear layers with ReLU (and optional dropout / batch norm) between them, Xavier init."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        linear = nn.Linear(a, b)
        nn.init.xavier_normal_(linear.weight)
        nn.init.zeros_(linear.bias)
        layers.append(linear)
        if i < len(dims) - 2:
            if batch_norm:
                layers.append(nn.BatchNorm1d(b))
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def sinkhorn_assign(distances: torch.Tensor, epsilon: float, iters: int) -> torch.Tensor:
    """Balanced assignment: Sinkhorn on exp(-d/eps) with d rescaled to [-1, 1], then argmax."""
    d = distances.double()
    lo, hi = d.min(), d.max()
    d = (d - lo) / (hi - lo).clamp_min(1e-12) * 2 - 1
    q = torch.exp(-d / epsilon)
    b, k = q.shape
    q = q / q.sum()
    for _ in range(iters):
        q = q / q.sum(0, keepdim=True).clamp_min(1e-300) / k
        q = q / q.sum(1, keepdim=True).clamp_min(1e-300) / b
    return q.argmax(1)


def squared_l2(x: torch.Tensor, book: torch.Tensor) -> torch.Tensor:
    """``||x_i - e_k||^2`` as (B, K)."""
    return (x.pow(2).sum(1, keepdim=True) - 2 * x @ book.T + book.pow(2).sum(1)[None, :]).clamp_min(0)


class ResidualQuantizer(nn.Module):
    def __init__(self, sizes: list[int], dim: int, beta: float):
        super().__init__()
        self.beta = beta
        self.codebooks = nn.ParameterList(
            nn.Parameter(torch.empty(size, dim).uniform_(-1 / size, 1 / size)) for size in sizes
        )

    def forward(self, z: torch.Tensor, sk_epsilons: list[float] | None = None, sk_iters: int = 50):
        residual = z
        quantized = torch.zeros_like(z)
        losses, codes = [], []
        for level, book in enumerate(self.codebooks):
            distances = squared_l2(residual, book)
            eps = sk_epsilons[level] if sk_epsilons and level < len(sk_epsilons) else 0.0
            idx = sinkhorn_assign(distances, eps, sk_iters) if eps > 0 else distances.argmin(1)
            q = book[idx]
            losses.append(nn.functional.mse_loss(q, residual.detach()) + self.beta * nn.functional.mse_loss(q.detach(), residual))
            quantized = quantized + residual + (q - residual).detach()
            residual = residual - q.detach()
            codes.append(idx)
        return quantized, torch.stack(losses).mean(), torch.stack(codes, 1)


class RQVAE(nn.Module):
    def __init__(self, arch: RQVAEArch):
        super().__init__()
        self.arch = arch
        if arch.residual_encoder and arch.e_dim != arch.in_dim:
            raise InputError(f"RQ-Kmeans+ needs e_dim == embedding dim ({arch.in_dim}), got {arch.e_dim}")
        self.encoder = mlp([arch.in_dim, *arch.layers, arch.e_dim], arch.dropout, arch.batch_norm)
        if arch.residual_encoder:
            last = self.encoder[-1]
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
        self.decoder = mlp([arch.e_dim, *reversed(arch.layers), arch.in_dim], arch.dropout, arch.batch_norm)
        self.quantizer = ResidualQuantizer(arch.level_sizes(), arch.e_dim, arch.beta)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        z = self.encoder(x)
        return x + z if self.arch.residual_encoder else z

    def forward(self, x: torch.Tensor, sk_epsilons: list[float] | None = None, sk_iters: int = 50):
        zq, quant_loss, codes = self.quantizer(self.encode(x), sk_epsilons, sk_iters)
        return self.decoder(zq), quant_loss, codes

    def loss(self, x: torch.Tensor, sk_epsilons: list[float] | None = None, sk_iters: int = 50,
             loss_type: str = "mse") -> torch.Tensor:
        recon, quant_loss, _ = self(x, sk_epsilons, sk_iters)
        if loss_type not in LOSS_TYPES:
            raise InputError(f"sid.loss_type must be one of {', '.join(LOSS_TYPES)}, got {loss_type!r}")
        reconstruction = nn.functional.l1_loss if loss_type == "l1" else nn.functional.mse_loss
        return reconstruction(recon, x) + self.arch.quant_loss_weight * quant_loss

    @torch.no_grad()
    def latents(self, x: torch.Tensor, batch_size: int = 8192) -> torch.Tensor:
        was_training = self.training
        self.eval()
        out = torch.cat([self.encode(x[i:i + batch_size]) for i in range(0, x.shape[0], batch_size)])
        self.train(was_training)
        return out

    @torch.no_grad()
    def codes(self, x: torch.Tensor, batch_size: int = 8192) -> torch.Tensor:
        """Argmin codes (N, L) of every row."""
        return torch.cat([self.quantizer(z)[2] for z in self.latents(x, batch_size).split(batch_size)])

    @torch.no_grad()
    def last_level_residuals(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.latents(x)
        for book in list(self.quantizer.codebooks)[:-1]:
            residual = residual - book[squared_l2(residual, book).argmin(1)]
        return residual


@torch.no_grad()
def init_codebooks_kmeans(model: RQVAE, x: torch.Tensor, iters: int, seed: int) -> None:
    """Seeded residual k-means on the latents of all items (faiss)."""
    from minionerec.sid.quantize import faiss_kmeans, nearest

    residual = model.latents(x).cpu().numpy().astype(np.float32)
    for level, book in enumerate(model.quantizer.codebooks):
        centroids = faiss_kmeans(residual, book.shape[0], iters, seed + level)
        book.copy_(torch.from_numpy(centroids))
        residual = residual - centroids[nearest(residual, centroids)[1][:, 0]]


@torch.no_grad()
def load_codebooks(model: RQVAE, books: list[np.ndarray]) -> None:
    for book, values in zip(model.quantizer.codebooks, books):
        book.copy_(torch.from_numpy(values))


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


# --------------------------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------------------------

def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    from minionerec.checkpoints import load_torch_file

    path = require_file(path, "RQ-VAE checkpoint", "train it with rq/rqvae.py (or rq/rqkmeans_plus.py) first")
    return load_torch_file(path, "RQ-VAE checkpoint", "delete it and retrain with rq/rqvae.py (or rq/rqkmeans_plus.py)")


def arch_of(ckpt: dict[str, Any]) -> RQVAEArch:
    """The architecture a checkpoint was trained with (older checkpoints lack the newer fields: their defaults)."""
    return RQVAEArch(**ckpt["arch"])


def model_from_checkpoint(path: str | Path) -> tuple[RQVAE, dict[str, Any]]:
    ckpt = load_checkpoint(path)
    if "arch" not in ckpt or "state_dict" not in ckpt:
        raise InputError(f"checkpoint {path} is not an RQ-VAE checkpoint written by rq/rqvae.py")
    model = RQVAE(arch_of(ckpt))
    model.load_state_dict(ckpt["state_dict"], strict=True)
    model.eval()
    return model, ckpt


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------

def build_optimizer(model: nn.Module, settings: TrainSettings) -> torch.optim.Optimizer:
    """Upstream's ``--learner`` choice, with ``lr`` and ``weight_decay``."""
    optimizers = {"adamw": torch.optim.AdamW, "adam": torch.optim.Adam, "sgd": torch.optim.SGD,
                  "adagrad": torch.optim.Adagrad, "rmsprop": torch.optim.RMSprop}
    learner = settings.learner.lower()
    if learner not in optimizers:
        raise InputError(f"sid.learner must be one of {', '.join(LEARNERS)}, got {settings.learner!r}")
    return optimizers[learner](model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)


def lr_factor(schedule: str, warmup: int, total: int) -> Any:
    """Step -> learning-rate factor: linear warm-up over ``warmup`` steps, then constant (upstream's
    ``constant``) or a linear decay to 0 at the last step ``total - 1`` (``linear``)."""
    if schedule not in LR_SCHEDULERS:
        raise InputError(f"sid.lr_scheduler_type must be one of {', '.join(LR_SCHEDULERS)}, got {schedule!r}")

    def factor(step: int) -> float:
        if step + 1 < warmup or schedule == "constant":
            return min(1.0, (step + 1) / warmup)
        return max(0.0, (total - step - 1) / max(1, total - warmup))

    return factor


def _keep_rolling(ckpt_dir: Path, limit: int) -> None:
    """Delete the oldest ``epoch_<E>.pt`` beyond the newest ``limit`` (upstream's ``--save_limit``)."""
    rolling = sorted(ckpt_dir.glob("epoch_*.pt"), key=lambda p: int(p.stem.split("_", 1)[1]))
    for old in rolling[:-limit] if limit > 0 else rolling:
        old.unlink()


def train(
    model: RQVAE,
    data: np.ndarray,
    settings: TrainSettings,
    ckpt_dir: str | Path,
    method: str,
    device: torch.device,
    initial_codebooks: list[np.ndarray] | None = None,
) -> dict[str, Any]:
    """Train (or resume) and keep ``best_collision.pt``, ``best_loss.pt`` and ``last.pt``."""
    from tqdm import tqdm

    ckpt_dir = Path(ckpt_dir)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    x = torch.from_numpy(data).to(device)
    model.to(device)
    optimizer = build_optimizer(model, settings)
    steps_per_epoch = math.ceil(x.shape[0] / settings.batch_size)
    warmup = max(1, settings.warmup_epochs * steps_per_epoch)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lr_factor(settings.lr_scheduler_type, warmup, settings.epochs * steps_per_epoch))
    generator = torch.Generator().manual_seed(settings.seed)
    state = {"epoch": 0, "best_loss": math.inf, "best_collision_rate": math.inf}
    arch = asdict(model.arch)

    last = ckpt_dir / "last.pt"
    if settings.resume and last.is_file():
        ckpt = load_checkpoint(last)
        if "arch" not in ckpt or asdict(arch_of(ckpt)) != arch or ckpt.get("method") != method:
            raise InputError(
                f"{last} was trained with a different model ({ckpt.get('method')}, {ckpt.get('arch')}); "
                "use another ckpt_dir or --resume false"
            )
        model.load_state_dict(ckpt["state_dict"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        generator.set_state(ckpt["rng"])
        state = {k: ckpt[k] for k in state}
        logger.info("resumed %s at epoch %d", last, state["epoch"])
    elif initial_codebooks is not None:
        load_codebooks(model, initial_codebooks)
    elif settings.kmeans_init:
        torch.manual_seed(settings.seed)
        init_codebooks_kmeans(model, x.cpu(), settings.kmeans_iters, settings.seed)
        model.to(device)

    def payload(epoch_loss: float) -> dict[str, Any]:
        return {
            "method": method, "arch": arch, "state_dict": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(), "rng": generator.get_state(), "epoch": state["epoch"],
            "best_loss": state["best_loss"], "best_collision_rate": state["best_collision_rate"],
            "loss": epoch_loss,
        }

    progress = tqdm(range(state["epoch"], settings.epochs), desc=f"{method} training", initial=state["epoch"],
                    total=settings.epochs, disable=None)
    for epoch in progress:
        model.train()
        total = 0.0
        perm = torch.randperm(x.shape[0], generator=generator).to(device)
        for start in range(0, x.shape[0], settings.batch_size):
            batch = x[perm[start:start + settings.batch_size]]
            loss = model.loss(batch, settings.sk_epsilons, settings.sk_iters, settings.loss_type)
            if not torch.isfinite(loss):
                raise RuntimeError(f"{method}: loss became {loss.item()} at epoch {epoch}; lower --lr")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            total += loss.item() * batch.shape[0]
        epoch_loss = total / x.shape[0]
        state["epoch"] = epoch + 1
        if state["epoch"] % settings.eval_step == 0 or state["epoch"] == settings.epochs:
            rate = collision_rate(model.codes(x).cpu().numpy())
            progress.set_postfix(loss=f"{epoch_loss:.4f}", collision=f"{rate:.4f}")
            if rate < state["best_collision_rate"]:
                state["best_collision_rate"] = rate
                save_checkpoint(ckpt_dir / "best_collision.pt", payload(epoch_loss))
            if epoch_loss < state["best_loss"]:
                state["best_loss"] = epoch_loss
                save_checkpoint(ckpt_dir / "best_loss.pt", payload(epoch_loss))
            save_checkpoint(last, payload(epoch_loss))
            if settings.save_limit > 0:
                save_checkpoint(ckpt_dir / f"epoch_{state['epoch']}.pt", payload(epoch_loss))
                _keep_rolling(ckpt_dir, settings.save_limit)
    logger.info("%s: %d epochs, best collision rate %.4f, best loss %.5f (%s)", method, state["epoch"],
                state["best_collision_rate"], state["best_loss"], ckpt_dir)
    return dict(state)


# --------------------------------------------------------------------------------------------
# Index generation
# --------------------------------------------------------------------------------------------

@torch.no_grad()
def generate_codes(
    model: RQVAE, data: np.ndarray, collision_rounds: int, sk_epsilon: float, sk_iters: int
) -> tuple[np.ndarray, int]:
    """Argmin codes, then up to ``collision_rounds`` rounds that re-encode each colliding group
    with a Sinkhorn-balanced last level (upstream generate_indices).  Returns (codes, rounds run)."""
    from minionerec.sid.index import code_keys

    x = torch.from_numpy(data)
    codes = model.codes(x).numpy()
    eps = [0.0] * (model.arch.num_levels - 1) + [sk_epsilon]
    rounds = 0
    for rounds in range(1, collision_rounds + 1):
        keys = code_keys(codes)
        uniq, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
        groups = np.flatnonzero(counts > 1)
        if groups.size == 0:
            rounds -= 1
            break
        before = codes.copy()
        for g in groups.tolist():
            members = np.flatnonzero(inverse == g)
            _, _, new = model.quantizer(model.latents(x[members]), eps, sk_iters)
            codes[members] = new.numpy()
        if np.array_equal(before, codes):  # only inseparable groups (identical latents) are left
            break
    return codes, rounds
