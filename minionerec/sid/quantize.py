"""Residual k-means quantisers: plain (faiss, optionally with Sinkhorn uniform mapping), exactly
balanced (k-means-constrained) and scalably balanced (faiss k-means + capacity-constrained assignment).

All produce :class:`ResidualCodebooks`: one ``(K_l, d)`` codebook per level and 0-based codes
``(N, L)``.  Level ``l`` clusters the global residual ``x - sum_{j<l} C_j[code_j]`` (as upstream:
children are not clustered per parent).  ``codebook_size`` is one K for every level or one K per
level (upstream's ``--num_emb_list``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from minionerec.errors import InputError
from minionerec.io import atomic_path
from minionerec.sid.index import level_sizes

logger = logging.getLogger(__name__)

__all__ = [
    "ResidualCodebooks", "balance_bounds", "balanced_assign", "cluster_means", "faiss_kmeans", "nearest",
    "load_codebooks_npz", "residual_kmeans", "rq_kmeans_balanced_scalable", "rq_kmeans_constrained",
    "rq_kmeans_faiss", "sinkhorn_temperature", "sinkhorn_uniform_assign", "squared_distances",
]

#: Sinkhorn uniform mapping: an item may take one of its ``_UNIFORM_TOPK`` highest-mass codes (upstream's 32)
_UNIFORM_TOPK = 32


@dataclass
class ResidualCodebooks:
    codebooks: list[np.ndarray]
    codes: np.ndarray

    def residual_before_level(self, x: np.ndarray, level: int, rows: np.ndarray | None = None) -> np.ndarray:
        """``x[rows] - sum_{j<level} C_j[codes[rows, j]]``."""
        rows = np.arange(x.shape[0]) if rows is None else rows
        residual = x[rows].astype(np.float32, copy=True)
        for j in range(level):
            residual -= self.codebooks[j][self.codes[rows, j]]
        return residual

    def last_level_costs(self, x: np.ndarray):
        """A ``costs(items)`` function for :func:`minionerec.sid.index.resolve_collisions`."""
        last = len(self.codebooks) - 1

        def costs(items: np.ndarray) -> np.ndarray:
            return squared_distances(self.residual_before_level(x, last, items), self.codebooks[last])

        return costs

    def save_npz(self, path: str | Path) -> Path:
        """``codebook_0 ... codebook_{L-1}`` (float32, K x d), upstream's file layout, plus ``codes``."""
        arrays = {f"codebook_{i}": c.astype(np.float32) for i, c in enumerate(self.codebooks)}
        arrays["codes"] = self.codes.astype(np.int64)
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)
        return Path(path)


def load_codebooks_npz(path: str | Path, num_levels: int, codebook_size: int | Sequence[int],
                       dim: int) -> list[np.ndarray]:
    """Read ``codebook_i`` arrays and check their shapes (level count, K_l, d)."""
    from minionerec.io import require_file

    sizes = level_sizes(codebook_size, num_levels)
    path = require_file(path, "codebook file (.npz)", "run rq/rqkmeans_constrained.py first")
    with np.load(path, allow_pickle=False) as data:
        books = []
        for level in range(num_levels):
            key = f"codebook_{level}"
            if key not in data:
                raise InputError(f"codebook file {path} has no {key}; it must hold {num_levels} levels")
            book = np.asarray(data[key], dtype=np.float32)
            if book.shape != (sizes[level], dim):
                raise InputError(
                    f"codebook file {path}: {key} has shape {book.shape}, expected ({sizes[level]}, {dim}); "
                    "rebuild it with the same --codebook_size / --codebook_sizes on the same embeddings"
                )
            books.append(book)
    return books


def squared_distances(x: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """``||x_i - c_k||^2`` as an (n, K) float32 matrix."""
    d = (x * x).sum(1, keepdims=True) - 2.0 * x @ centroids.T + (centroids * centroids).sum(1)[None, :]
    return np.maximum(d, 0.0, out=d).astype(np.float32, copy=False)


def faiss_gpu_available() -> bool:
    import faiss

    return hasattr(faiss, "get_num_gpus") and faiss.get_num_gpus() > 0


def nearest(x: np.ndarray, centroids: np.ndarray, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """faiss exact search: ``(distances, indices)`` of the k nearest centroids, ascending."""
    import faiss

    index = faiss.IndexFlatL2(centroids.shape[1])
    index.add(np.ascontiguousarray(centroids, dtype=np.float32))
    distances, indices = index.search(np.ascontiguousarray(x, dtype=np.float32), k)
    return distances, indices.astype(np.int64)


def faiss_kmeans(x: np.ndarray, k: int, niter: int, seed: int, max_points_per_centroid: int = 256) -> np.ndarray:
    """Centroids ``(k, d)`` of seeded faiss k-means (GPU when faiss has one)."""
    import faiss

    # min_points_per_centroid only gates faiss's C++ "please provide at least 39*k training points" warning,
    # printed to stderr at every level of every small catalogue; it changes no result
    kmeans = faiss.Kmeans(
        x.shape[1], k, niter=niter, seed=seed, verbose=False, gpu=faiss_gpu_available(),
        max_points_per_centroid=max_points_per_centroid, min_points_per_centroid=1, spherical=False,
    )
    kmeans.train(np.ascontiguousarray(x, dtype=np.float32))
    return np.asarray(kmeans.centroids, dtype=np.float32).copy()


def balance_bounds(n: int, k: int, slack: int) -> tuple[int, int]:
    """``(size_min, size_max)`` of balanced clusters; slack 1 reproduces upstream's [N//K-1, N//K+1]."""
    size_min = max(1, n // k - slack)
    size_max = max(math.ceil(n / k), n // k + slack)
    return size_min, size_max


def residual_kmeans(
    x: np.ndarray,
    num_levels: int,
    codebook_size: int | Sequence[int],
    seed: int,
    cluster_level,
) -> ResidualCodebooks:
    """Run ``cluster_level(residual, level, seed) -> (centroids, codes)`` level by level.

    ``codebook_size`` is only checked here (one size per level); each method's ``cluster_level``
    reads its level's K.
    """
    level_sizes(codebook_size, num_levels)
    residual = np.ascontiguousarray(x, dtype=np.float32).copy()
    books, codes = [], []
    for level in range(num_levels):
        centroids, level_codes = cluster_level(residual, level, seed + level)
        books.append(centroids.astype(np.float32))
        codes.append(level_codes.astype(np.int64))
        residual -= centroids[level_codes]
        logger.info("level %d: %d codes used, residual norm %.4f", level, np.unique(level_codes).size,
                    float(np.sqrt((residual**2).sum(1)).mean()))
    return ResidualCodebooks(books, np.stack(codes, axis=1))


def rq_kmeans_faiss(x: np.ndarray, num_levels: int, codebook_size: int | Sequence[int], seed: int, niter: int = 20,
                    uniform: bool = False) -> ResidualCodebooks:
    """Plain residual k-means: faiss k-means per level, nearest-centroid codes; with ``uniform``
    upstream's "Sinkhorn uniform mapping" (:func:`sinkhorn_uniform_assign`) replaces the nearest
    centroid at every level, so each level's codes are used (near) equally often."""
    sizes = level_sizes(codebook_size, num_levels)

    def cluster(residual: np.ndarray, level: int, level_seed: int) -> tuple[np.ndarray, np.ndarray]:
        centroids = faiss_kmeans(residual, sizes[level], niter, level_seed)
        if uniform:
            return centroids, sinkhorn_uniform_assign(residual, centroids, level_seed)
        return centroids, nearest(residual, centroids)[1][:, 0]

    return residual_kmeans(x, num_levels, codebook_size, seed, cluster)


def rq_kmeans_constrained(
    x: np.ndarray, num_levels: int, codebook_size: int | Sequence[int], seed: int, max_iter: int = 100,
    n_init: int = 3, tol: float = 1e-4, slack: int = 1, n_jobs: int = 1,
) -> ResidualCodebooks:
    """Exactly balanced residual k-means with k-means-constrained (min-cost flow; small catalogues)."""
    from k_means_constrained import KMeansConstrained

    sizes = level_sizes(codebook_size, num_levels)

    def cluster(residual: np.ndarray, level: int, level_seed: int) -> tuple[np.ndarray, np.ndarray]:
        size_min, size_max = balance_bounds(x.shape[0], sizes[level], slack)
        random_state = int(np.random.RandomState(level_seed).randint(0, 2**31 - 1))
        model = KMeansConstrained(
            n_clusters=sizes[level], size_min=size_min, size_max=size_max, max_iter=max_iter, tol=tol,
            n_init=n_init, n_jobs=n_jobs, random_state=random_state,
        )
        level_codes = model.fit_predict(residual.astype(np.float64))
        return np.asarray(model.cluster_centers_, dtype=np.float32), np.asarray(level_codes, dtype=np.int64)

    return residual_kmeans(x, num_levels, codebook_size, seed, cluster)


def balanced_assign(x: np.ndarray, centroids: np.ndarray, capacity: int, candidates: int = 32) -> np.ndarray:
    """Assign each row of ``x`` to a centroid so that no centroid gets more than ``capacity`` rows.

    Rounds of proposals: every unassigned row proposes its r-th nearest centroid; a centroid
    accepts its cheapest proposals up to its remaining capacity.  Rows rejected by all their
    ``candidates`` nearest centroids go to the nearest centroid that still has room.  Memory is
    O(N * candidates), so it scales to millions of rows.
    """
    n, k = x.shape[0], centroids.shape[0]
    if capacity * k < n:
        raise ValueError(f"capacity {capacity} x {k} clusters cannot hold {n} rows")
    m = min(candidates, k)
    dist, cand = nearest(x, centroids, m)
    remaining = np.full(k, capacity, dtype=np.int64)
    assign = np.full(n, -1, dtype=np.int64)
    active = np.arange(n)
    for r in range(m):
        if active.size == 0:
            break
        proposal, cost = cand[active, r], dist[active, r]
        order = np.lexsort((active, cost, proposal))
        sorted_prop = proposal[order]
        starts = np.r_[0, np.flatnonzero(sorted_prop[1:] != sorted_prop[:-1]) + 1]
        seg_sizes = np.diff(np.r_[starts, sorted_prop.size])
        rank = np.arange(sorted_prop.size) - np.repeat(starts, seg_sizes)
        accepted = rank < remaining[sorted_prop]
        assign[active[order[accepted]]] = sorted_prop[accepted]
        remaining -= np.bincount(sorted_prop[accepted], minlength=k)
        active = np.sort(active[order[~accepted]])
    if active.size:
        open_clusters = np.flatnonzero(remaining > 0)
        dist_open = squared_distances(x[active], centroids[open_clusters])
        for row, item in enumerate(active.tolist()):
            for j in np.argsort(dist_open[row], kind="stable").tolist():
                cluster = open_clusters[j]
                if remaining[cluster] > 0:
                    assign[item] = cluster
                    remaining[cluster] -= 1
                    break
    return assign


def cluster_means(x: np.ndarray, codes: np.ndarray, previous: np.ndarray) -> np.ndarray:
    """Mean of the rows of each cluster (empty clusters keep their previous centroid)."""
    from scipy.sparse import csr_matrix

    k = previous.shape[0]
    membership = csr_matrix((np.ones(codes.size, dtype=np.float32), (codes, np.arange(codes.size))), shape=(k, codes.size))
    sums = np.asarray(membership @ x)  # (K, d) without copying x
    counts = np.bincount(codes, minlength=k)
    updated = previous.copy()
    filled = counts > 0
    updated[filled] = (sums[filled] / counts[filled, None]).astype(np.float32)
    return updated


def rq_kmeans_balanced_scalable(
    x: np.ndarray, num_levels: int, codebook_size: int | Sequence[int], seed: int, niter: int = 20,
    refine_iters: int = 3, slack: int = 1, candidates: int = 32,
) -> ResidualCodebooks:
    """Balanced residual k-means for large catalogues: faiss k-means centroids, then a few rounds of
    capacity-constrained assignment and centroid updates (cluster sizes <= size_max)."""
    sizes = level_sizes(codebook_size, num_levels)

    def cluster(residual: np.ndarray, level: int, level_seed: int) -> tuple[np.ndarray, np.ndarray]:
        _, size_max = balance_bounds(x.shape[0], sizes[level], slack)
        centroids = faiss_kmeans(residual, sizes[level], niter, level_seed)
        codes = balanced_assign(residual, centroids, size_max, candidates)
        for _ in range(refine_iters):
            centroids = cluster_means(residual, codes, centroids)
            codes = balanced_assign(residual, centroids, size_max, candidates)
        return centroids, codes

    return residual_kmeans(x, num_levels, codebook_size, seed, cluster)


# --------------------------------------------------------------------------------------------
# Sinkhorn uniform mapping (upstream rqkmeans_faiss.py --uniform)
# --------------------------------------------------------------------------------------------

def sinkhorn_temperature(costs: np.ndarray, seed: int, sample: int = 4000) -> float:
    """Upstream's entropic temperature: 0.1 x the median, over up to ``sample`` seeded rows, of each
    row's 90th percentile of ``cost - row minimum`` (at least 1e-6)."""
    rows = costs
    if costs.shape[0] > sample:
        rows = costs[np.random.RandomState(seed).choice(costs.shape[0], sample, replace=False)]
    spread = np.percentile(rows - rows.min(1, keepdims=True), 90, axis=1)
    return max(1e-6, 0.1 * float(np.median(spread)))


def _transport_plan(costs: np.ndarray, capacity: np.ndarray, tau: float, iters: int, tol: float) -> np.ndarray:
    """Entropic optimal transport (Sinkhorn-Knopp scaling) from uniform item mass ``1/N`` to code mass
    ``capacity/N``; returns the plan P (N, K).

    Each row's cost minimum is subtracted before ``exp(-D/tau)`` (a per-row factor, absorbed by the row
    scaling), so every row keeps an entry of 1 and the kernel cannot underflow to an all-zero row.
    Stops when the item masses are within ``tol`` (L1) or after ``iters`` rounds (POT's defaults: 1e-9, 1000).
    """
    n = costs.shape[0]
    kernel = np.exp(-(costs - costs.min(1, keepdims=True)) / tau)
    a, b = np.full(n, 1.0 / n), capacity / n
    u, v = np.full(n, 1.0 / n), np.full(capacity.size, 1.0 / capacity.size)
    for step in range(iters):
        u = a / np.maximum(kernel @ v, 1e-300)
        v = b / np.maximum(kernel.T @ u, 1e-300)
        if step % 10 == 9 and np.abs(u * (kernel @ v) - a).sum() < tol:
            break
    return kernel * v[None, :] * u[:, None]


def sinkhorn_uniform_assign(x: np.ndarray, centroids: np.ndarray, seed: int, topk: int = _UNIFORM_TOPK,
                            iters: int = 1000, tol: float = 1e-9) -> np.ndarray:
    """Codes with every centroid used ``N // K`` or ``N // K + 1`` times (the first ``N % K`` codes take one more).

    As upstream's ``--uniform``: an entropic transport plan P from the items (mass 1/N each) to the
    codes (mass capacity/N) on squared L2 costs, with :func:`sinkhorn_temperature`; then items, in a
    seeded random order, each take the highest-P code among their ``topk`` that still has room.
    Unlike upstream (which then takes the argmax code even when it is full), an item whose ``topk``
    codes are all full takes the highest-P code that has room, so the capacities always hold.
    Memory and time are O(N x K) (dense plan), as upstream's.
    """
    n, k = x.shape[0], centroids.shape[0]
    capacity = np.full(k, n // k, dtype=np.int64)
    capacity[: n % k] += 1
    costs = squared_distances(x, centroids).astype(np.float64)
    plan = _transport_plan(costs, capacity.astype(np.float64), sinkhorn_temperature(costs, seed), iters, tol)
    m = min(topk, k)
    top = np.argpartition(-plan, m - 1, axis=1)[:, :m] if m < k else np.tile(np.arange(k), (n, 1))
    top = np.take_along_axis(top, np.argsort(-np.take_along_axis(plan, top, 1), axis=1, kind="stable"), 1)
    remaining = capacity.copy()
    codes = np.full(n, -1, dtype=np.int64)
    for item in np.random.RandomState(seed).permutation(n).tolist():
        choice = next((c for c in top[item].tolist() if remaining[c] > 0), None)
        if choice is None:
            open_codes = np.flatnonzero(remaining > 0)
            choice = int(open_codes[np.argmax(plan[item, open_codes])])
        codes[item] = choice
        remaining[choice] -= 1
    return codes
