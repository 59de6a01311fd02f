"""What every SID method shares: loading embeddings, unique SIDs, the quality report, writing.

Each method (``rq/rqkmeans_faiss.py``, ``rq/rqkmeans_constrained.py``, ``rq/rqvae.py`` +
``rq/generate_indices.py``, ``rq/rqkmeans_plus.py`` + ``rq/generate_indices_plus.py``) turns an
``(N, d)`` embedding matrix into raw codes of shape ``(N, L)``, **0-based** at every level
(upstream mixed 0- and 1-based codes; here ``<a_0>`` is always the first code).  Then:

1. :func:`resolve_collisions` makes every SID unique, either by appending an extra level
   ``<d_k>`` to the members of each colliding group (``extra_level``, upstream's scheme, k =
   0..n-1 by item id) or by moving colliding items to free codes of the last level under the
   same prefix, or of a sibling prefix when that one is full (``reassign``; the SIDs keep a fixed
   length).  If uniqueness is impossible the step raises :class:`InputError`.
2. :func:`write_sid_outputs` writes ``X.index.json`` (upstream format), ``X.index.report.json``
   and one PNG ``X.index.report.png`` (:func:`report_paths`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from minionerec.errors import InputError
from minionerec.io import atomic_path, load_npy, write_index_json, write_json
from minionerec.sid.vocab import codes_to_sid

logger = logging.getLogger(__name__)

__all__ = [
    "COLLISION_MODES", "LastLevelCosts", "check_codebook_fits", "check_distinct_rows", "code_keys",
    "colliding_fraction", "collision_rate", "level_sizes", "level_statistics", "load_embeddings",
    "path_average_similarity", "plot_report", "quality_report", "report_paths", "resolve_collisions",
    "write_sid_outputs",
]

#: one codebook size for every level, or one per level (upstream's ``--num_emb_list``)
CodebookSizes = int | Sequence[int]

COLLISION_MODES = ("extra_level", "reassign")
_CHUNK = 65536
_PAS_MAX_ITEMS = 100_000

#: ``costs(items) -> (len(items), K)`` last-level distances of those items (lower = better).
LastLevelCosts = Callable[[np.ndarray], np.ndarray]


def level_sizes(codebook_size: CodebookSizes, num_levels: int) -> list[int]:
    """``[K_0, ..., K_{L-1}]`` from one K or a per-level list (whose length must be ``num_levels``)."""
    if isinstance(codebook_size, (int, np.integer)):
        return [int(codebook_size)] * num_levels
    sizes = [int(k) for k in codebook_size]
    if len(sizes) != num_levels:
        raise InputError(f"{len(sizes)} codebook sizes {sizes} for {num_levels} levels; give one size per level")
    return sizes


def _largest(codebook_size: CodebookSizes) -> int:
    return int(codebook_size) if isinstance(codebook_size, (int, np.integer)) else max(int(k) for k in codebook_size)


# --------------------------------------------------------------------------------------------
# Embeddings
# --------------------------------------------------------------------------------------------

def load_embeddings(path: str | Path, expected_items: int | None = None,
                    codebook_size: CodebookSizes | None = None) -> np.ndarray:
    """Load an ``(N, d)`` embedding ``.npy`` as float32, refusing degenerate ones before any clustering.

    ``expected_items`` (the number of items of the item file) must equal N when given.  NaN/inf
    rows, all-zero rows (a failed encoding) and fewer distinct rows than ``codebook_size`` (all
    rows identical, or too few for K clusters) are each an InputError naming the file and the rows.
    """
    array = load_npy(path, "embedding file", "run rq/text2emb/amazon_text2emb.sh first")
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise InputError(f"embedding file {path}: expected a non-empty 2-D array (items x dims), got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.floating):
        raise InputError(f"embedding file {path}: expected floats, got dtype {array.dtype}")
    array = np.ascontiguousarray(array, dtype=np.float32)
    if expected_items is not None and array.shape[0] != expected_items:
        raise InputError(
            f"embedding file {path} has {array.shape[0]} rows but the item file has {expected_items} items; "
            "re-run text2emb on the same item file"
        )
    bad = np.flatnonzero(~np.isfinite(array).all(axis=1))
    if bad.size:
        raise InputError(
            f"embedding file {path}: {bad.size} row(s) contain NaN or inf (first rows: {bad[:5].tolist()}); "
            "re-run text2emb (in fp32 if fp16 overflowed)"
        )
    zero = np.flatnonzero(~array.any(axis=1))
    if zero.size:
        raise InputError(
            f"embedding file {path}: {zero.size} of {array.shape[0]} row(s) are all zeros (first rows: "
            f"{zero[:5].tolist()}); an encoder never gives a zero vector, so the encoding failed: re-run text2emb"
        )
    if codebook_size is not None:  # per-level sizes: the largest level needs the most points
        check_codebook_fits(array.shape[0], _largest(codebook_size), f"embedding file {path}")
        check_distinct_rows(array, _largest(codebook_size), path)
    return array


def check_distinct_rows(array: np.ndarray, codebook_size: int, path: str | Path) -> None:
    """k-means with K clusters needs K distinct points; duplicate rows beyond that are only logged."""
    rows = np.ascontiguousarray(array).view(np.dtype((np.void, array.dtype.itemsize * array.shape[1])))
    distinct = int(np.unique(rows.reshape(-1)).size)
    n = array.shape[0]
    if distinct == 1 and n > 1:
        raise InputError(f"embedding file {path}: all {n} rows are identical; the encoder ignored the item texts "
                         "(check the item file's titles and re-run text2emb)")
    if distinct < codebook_size:
        raise InputError(
            f"embedding file {path}: only {distinct} distinct rows among {n} ({n - distinct} duplicates), fewer than "
            f"codebook_size={codebook_size} clusters need; re-run text2emb on richer item texts or use "
            f"--codebook_size <= {distinct}"
        )
    if distinct < n:
        logger.info("embedding file %s: %d of %d rows duplicate another row (items with the same text); "
                    "the collision step separates their SIDs", path, n - distinct, n)


def check_codebook_fits(num_items: int, codebook_size: int, source: str = "embedding file") -> None:
    """k-means with K clusters needs at least K points."""
    if codebook_size < 1:
        raise InputError(f"codebook_size must be >= 1, got {codebook_size}")
    if num_items < codebook_size:
        raise InputError(
            f"{source} has {num_items} items, fewer than codebook_size={codebook_size}; "
            f"use --codebook_size <= {num_items}"
        )


# --------------------------------------------------------------------------------------------
# Collision resolution
# --------------------------------------------------------------------------------------------

def code_keys(codes: np.ndarray) -> np.ndarray:
    """One int64 key per row of ``codes`` (N, L) so that equal rows have equal keys."""
    codes = np.asarray(codes, dtype=np.int64)
    if codes.shape[1] == 0:
        return np.zeros(codes.shape[0], dtype=np.int64)
    base = int(codes.max()) + 1
    if base ** codes.shape[1] < 2**62:
        keys = np.zeros(codes.shape[0], dtype=np.int64)
        for level in range(codes.shape[1]):
            keys = keys * base + codes[:, level]
        return keys
    _, inverse = np.unique(codes, axis=0, return_inverse=True)
    return inverse.reshape(-1).astype(np.int64)


def collision_rate(codes: np.ndarray) -> float:
    """``(N - number of distinct code rows) / N`` (upstream's definition)."""
    n = codes.shape[0]
    return float(n - np.unique(code_keys(codes)).size) / n if n else 0.0


def colliding_fraction(codes: np.ndarray) -> float:
    """Share of items whose code row is shared with at least one other item (the GPR paper's)."""
    _, inverse, counts = np.unique(code_keys(codes), return_inverse=True, return_counts=True)
    return float((counts[inverse] > 1).mean()) if codes.shape[0] else 0.0


def resolve_collisions(
    codes: np.ndarray,
    mode: str,
    codebook_size: CodebookSizes,
    last_level_costs: LastLevelCosts | None = None,
) -> list[tuple[int, ...]]:
    """Return unique code tuples (one per item) from raw ``codes`` (N, L), 0-based.

    ``codebook_size``: K of every level, or one K per level.
    ``extra_level``: items of a colliding group get a fourth (L+1-th) code = their rank 0..n-1
    by item id (at most the last level's K); other items keep L codes, so no complete SID is a
    prefix of another.
    ``reassign``: in each colliding group the item with the lowest last-level cost keeps its
    code; the others move to the cheapest last-level code that no item under the same prefix
    uses (cost order from ``last_level_costs``, else code order).
    """
    codes = np.asarray(codes, dtype=np.int64)
    if mode not in COLLISION_MODES:
        raise InputError(f"collision_mode must be one of {', '.join(COLLISION_MODES)}, got {mode!r}")
    sizes = level_sizes(codebook_size, codes.shape[1])
    if mode == "extra_level":
        return _extra_level(codes, sizes[-1])
    return _reassign_last_level(codes, sizes, last_level_costs)


def _group_ranks(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(group size of each item, rank of each item within its group by item id)``."""
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    starts = np.r_[0, np.flatnonzero(sorted_keys[1:] != sorted_keys[:-1]) + 1]
    sizes = np.diff(np.r_[starts, keys.size])
    group_of_sorted = np.repeat(np.arange(starts.size), sizes)
    rank_sorted = np.arange(keys.size) - starts[group_of_sorted]
    size = np.empty(keys.size, dtype=np.int64)
    rank = np.empty(keys.size, dtype=np.int64)
    size[order] = sizes[group_of_sorted]
    rank[order] = rank_sorted
    return size, rank


def _extra_level(codes: np.ndarray, codebook_size: int) -> list[tuple[int, ...]]:
    size, rank = _group_ranks(code_keys(codes))
    largest = int(size.max()) if size.size else 0
    if largest > codebook_size:
        raise InputError(
            f"{largest} items share one SID, more than the {codebook_size} codes of the extra level; "
            "use collision_mode=reassign, more levels or a larger codebook"
        )
    rows = codes.tolist()
    return [tuple(row) + ((int(r),) if s > 1 else ()) for row, s, r in zip(rows, size.tolist(), rank.tolist())]


def _reassign_last_level(
    codes: np.ndarray, sizes: list[int], last_level_costs: LastLevelCosts | None
) -> list[tuple[int, ...]]:
    n, num_levels = codes.shape
    keys = code_keys(codes)
    size, _ = _group_ranks(keys)
    colliding = np.flatnonzero(size > 1)
    result = codes.copy()
    if colliding.size:
        own_cost = np.zeros(colliding.size)
        if last_level_costs is not None:  # in chunks: (items x K) cost matrices of a million items are large
            for start in range(0, colliding.size, _CHUNK):
                chunk = colliding[start:start + _CHUNK]
                own_cost[start:start + _CHUNK] = last_level_costs(chunk)[np.arange(chunk.size), codes[chunk, -1]]
        # keeper of each group: lowest own cost, then lowest item id
        order = np.lexsort((colliding, own_cost, keys[colliding]))
        sorted_keys = keys[colliding][order]
        is_first = np.r_[True, sorted_keys[1:] != sorted_keys[:-1]]
        movers = np.sort(colliding[order[~is_first]])
        used = _UsedCodes(result, movers)
        for start in range(0, movers.size, _CHUNK):
            chunk = movers[start:start + _CHUNK]
            preferences = (np.argsort(last_level_costs(chunk), axis=1, kind="stable").tolist()
                           if last_level_costs is not None else [range(sizes[-1])] * chunk.size)
            for item, preference in zip(chunk.tolist(), preferences):
                result[item] = used.move(result[item], preference, sizes)
    final = [tuple(row) for row in result.tolist()]
    if len(set(final)) != n:  # pragma: no cover - guarded by construction
        raise RuntimeError("collision resolution left duplicate SIDs")
    return final


class _UsedCodes:
    """Last-level codes in use under each prefix (codes[:-1]), kept up to date while items move.

    Starts with the prefixes of the movers only; the first time a prefix is full it indexes
    every prefix, because the fallback may move an item under any sibling prefix.
    """

    def __init__(self, codes: np.ndarray, movers: np.ndarray):
        self.codes = codes
        self.complete = False
        wanted = {tuple(p) for p in codes[movers, :-1].tolist()}
        self.used: dict[tuple[int, ...], set[int]] = {p: set() for p in wanted}
        prefix_keys = code_keys(codes[:, :-1])
        for item in np.flatnonzero(np.isin(prefix_keys, np.unique(prefix_keys[movers]))).tolist():
            self.used[tuple(codes[item, :-1].tolist())].add(int(codes[item, -1]))

    def _index_all(self) -> None:
        self.used = {}
        for row in self.codes.tolist():
            self.used.setdefault(tuple(row[:-1]), set()).add(row[-1])
        self.complete = True

    def _taken(self, prefix: tuple[int, ...]) -> set[int]:
        return self.used.setdefault(prefix, set())

    def move(self, code: np.ndarray, preference, sizes: list[int]) -> np.ndarray:
        """A free code for an item now at ``code``: its cheapest free last-level code under the same
        prefix; if that prefix is full, the first sibling prefix (next codes of the level above,
        which has ``sizes[-2]`` codes) with a free last-level code."""
        prefix = tuple(code[:-1].tolist())
        old = self._taken(prefix)
        free = next((c for c in preference if c not in old), None)
        if free is not None:
            old.add(int(free))
            return np.array([*prefix, free])
        if len(prefix) == 0:
            raise InputError(f"cannot make SIDs unique by re-assignment: all {sizes[-1]} codes are taken; "
                             "use a larger codebook or more levels")
        if not self.complete:
            self._index_all()
        above = sizes[-2]
        for step in range(1, above):
            sibling = (*prefix[:-1], (prefix[-1] + step) % above)
            taken = self._taken(sibling)
            free = next((c for c in preference if c not in taken), None)
            if free is not None:
                taken.add(int(free))
                logger.debug("prefix %s is full: item moved to %s", prefix, sibling)
                return np.array([*sibling, free])
        raise InputError(
            f"cannot make SIDs unique by re-assignment: every code under prefix {list(prefix[:-1])} is taken "
            f"({above} x {sizes[-1]} items); use collision_mode=extra_level, more levels or a larger codebook"
        )


# --------------------------------------------------------------------------------------------
# Quality report
# --------------------------------------------------------------------------------------------

def level_statistics(codes: np.ndarray, codebook_size: CodebookSizes) -> list[dict[str, Any]]:
    """Per level: codes used, utilisation, entropy (bits, and normalised by log2 K_l), and the
    largest number of items that share the prefix ending at that level."""
    stats = []
    sizes = level_sizes(codebook_size, codes.shape[1])
    for level, codebook_size in enumerate(sizes):
        counts = np.bincount(codes[:, level], minlength=codebook_size)
        p = counts[counts > 0] / codes.shape[0]
        entropy = float(-(p * np.log2(p)).sum())
        _, prefix_counts = np.unique(code_keys(codes[:, : level + 1]), return_counts=True)
        stats.append(
            {
                "level": level,
                "codes_used": int((counts > 0).sum()),
                "utilisation": float((counts > 0).sum() / codebook_size),
                "entropy_bits": entropy,
                "normalised_entropy": entropy / math.log2(codebook_size) if codebook_size > 1 else 0.0,
                "distinct_prefixes": int(prefix_counts.size),
                "max_items_per_prefix": int(prefix_counts.max()),
            }
        )
    return stats


def path_average_similarity(codes: np.ndarray, embeddings: np.ndarray | None) -> float | None:
    """Mean pairwise cosine similarity of items inside each colliding group (GPR's PAS).

    Beyond 100k colliding items it is estimated on the groups of the first 100k (in code order).
    """
    if embeddings is None:
        return None
    keys = code_keys(codes)
    size, _ = _group_ranks(keys)
    colliding = np.flatnonzero(size > 1)
    if colliding.size == 0:
        return None
    colliding = colliding[np.argsort(keys[colliding], kind="stable")]
    if colliding.size > _PAS_MAX_ITEMS:  # whole groups, in key order, to bound memory on huge catalogues
        cut = np.searchsorted(keys[colliding], keys[colliding][_PAS_MAX_ITEMS], side="left")
        colliding = colliding[:max(cut, 2)]
    unit = embeddings[colliding].astype(np.float64)
    unit /= np.maximum(np.linalg.norm(unit, axis=1, keepdims=True), 1e-12)
    sorted_keys = keys[colliding]
    starts = np.r_[0, np.flatnonzero(sorted_keys[1:] != sorted_keys[:-1]) + 1]
    m = np.diff(np.r_[starts, sorted_keys.size]).astype(np.float64)
    sums = np.add.reduceat(unit, starts, axis=0)
    # sum over ordered pairs i != j of u_i . u_j = ||sum u||^2 - sum ||u_i||^2, and ||u_i|| = 1
    pairwise = ((sums**2).sum(1) - m) / (m * (m - 1))
    return float(pairwise.mean())


def quality_report(
    raw_codes: np.ndarray,
    final_codes: Sequence[tuple[int, ...]],
    codebook_size: CodebookSizes,
    seconds: float,
    method: str,
    collision_mode: str,
    embeddings: np.ndarray | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The quality report JSON.  ``codebook_size`` is the largest level's K; with per-level sizes
    ``codebook_sizes`` lists them (the key is absent when every level has the same K)."""
    n = raw_codes.shape[0]
    lengths = np.array([len(c) for c in final_codes])
    distinct_after = len(set(final_codes))
    sizes = level_sizes(codebook_size, raw_codes.shape[1])
    per_level = {"codebook_sizes": sizes} if len(set(sizes)) > 1 else {}
    return {
        "method": method,
        "num_items": int(n),
        "num_levels": int(raw_codes.shape[1]),
        "codebook_size": max(sizes),
        **per_level,
        "collision_mode": collision_mode,
        "codes_base": 0,
        "collision_rate_before": collision_rate(raw_codes),
        "colliding_items_before": int(round(colliding_fraction(raw_codes) * n)),
        "collision_rate_after": float(n - distinct_after) / n,
        "items_with_extra_level": int((lengths > raw_codes.shape[1]).sum()),
        "levels": level_statistics(raw_codes, codebook_size),
        "path_average_similarity": path_average_similarity(raw_codes, embeddings),
        "seconds": float(seconds),
        **(extra or {}),
    }


def plot_report(report: dict[str, Any], raw_codes: np.ndarray, path: Path) -> None:
    """One PNG: items per code at each level (sorted) and the collision rate before/after."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    num_levels = raw_codes.shape[1]
    fig, axes = plt.subplots(1, num_levels + 1, figsize=(4 * (num_levels + 1), 3.2))
    for level, ax in enumerate(axes[:num_levels]):
        size = report.get("codebook_sizes", [report["codebook_size"]] * num_levels)[level]
        counts = np.sort(np.bincount(raw_codes[:, level], minlength=size))[::-1]
        stats = report["levels"][level]
        ax.bar(np.arange(counts.size), counts, width=1.0)
        ax.set_title(f"level {level}: {stats['codes_used']}/{size} used, "
                     f"H={stats['normalised_entropy']:.2f}", fontsize=9)
        ax.set_xlabel("code (sorted by size)")
        ax.set_ylabel("items")
    ax = axes[-1]
    ax.bar(["before", "after"], [report["collision_rate_before"], report["collision_rate_after"]])
    ax.set_title(f"collision rate ({report['collision_mode']})", fontsize=9)
    fig.suptitle(f"{report['method']}: {report['num_items']} items, {report['seconds']:.1f} s", fontsize=10)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=80)
    plt.close(fig)


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------

def report_paths(index_path: str | Path) -> tuple[Path, Path]:
    """``X.index.json -> (X.index.report.json, X.index.report.png)``."""
    index_path = Path(index_path)
    stem = index_path.name[: -len(".json")] if index_path.name.endswith(".json") else index_path.name
    return index_path.with_name(stem + ".report.json"), index_path.with_name(stem + ".report.png")


def write_sid_outputs(
    index_path: str | Path,
    raw_codes: np.ndarray,
    codebook_size: CodebookSizes,
    collision_mode: str,
    seconds: float,
    method: str,
    last_level_costs: LastLevelCosts | None = None,
    embeddings: np.ndarray | None = None,
    extra: dict[str, Any] | None = None,
    item_ids: Sequence[int] | None = None,
) -> dict[str, Any]:
    """Resolve collisions, then write the index, its report JSON and PNG; return the report.

    Row i of ``raw_codes`` is item ``item_ids[i]`` (default: item i).
    """
    raw_codes = np.asarray(raw_codes, dtype=np.int64)
    sizes = np.asarray(level_sizes(codebook_size, raw_codes.shape[1]))
    if raw_codes.min() < 0 or (raw_codes >= sizes[None, :]).any():
        raise RuntimeError(f"{method} produced codes outside 0..K_l - 1 (K per level: {sizes.tolist()})")
    import time

    start = time.perf_counter()
    final = resolve_collisions(raw_codes, collision_mode, codebook_size, last_level_costs)
    seconds += time.perf_counter() - start
    ids = list(range(raw_codes.shape[0])) if item_ids is None else list(item_ids)
    index = {item: codes_to_sid(code) for item, code in zip(ids, final)}
    report = quality_report(raw_codes, final, codebook_size, seconds, method, collision_mode, embeddings, extra)
    json_path, png_path = report_paths(index_path)
    write_index_json(index_path, index)
    write_json(json_path, report)
    plot_report(report, raw_codes, png_path)
    logger.info(
        "%s: %d items, collision rate %.4f -> %.4f (%s), level-0 utilisation %.3f, %.1f s -> %s",
        method, raw_codes.shape[0], report["collision_rate_before"], report["collision_rate_after"],
        collision_mode, report["levels"][0]["utilisation"], seconds, index_path,
    )
    return report
