"""RL rewards: one score per rollout, computed from the rollout's OWN row.

A reward function has the signature::

    fn(completions: list[str], rows: Sequence[RewardRow], group_size: int) -> list[float]

``completions[i]`` is the decoded SID string of rollout ``i``; ``rows[i]`` is the dataset row
that rollout was generated for (a ``minionerec.llm.TaskSample``: prompt, target SID, target item, history items).  Rollouts arrive in
groups of ``group_size`` consecutive entries sharing one row, ordered by rank inside the group
(beam rank for beam search).  Targets are never looked up through global prompt->target maps:
upstream's dicts collapsed identical histories to one target and let validation rows overwrite
training rows (reference section 10.1.2).

A new reward: a function (or callable class) of that signature, its name in :data:`REWARD_NAMES`
and a branch in :func:`build_reward_set`.

Rewards (config ``rl.rewards: {ranking: 1.0}``, or ``--rl.rewards.semantic 0.5`` on the command line):

- ``rule``: 1 when the rollout is the target SID, else 0.
- ``ranking_only`` (upstream's "NDCG rule"): in a group holding the target, each wrong rollout
  at rank i gets ``-D_i / Z`` with ``D_i = 1 / log2(i + 2)`` and ``Z = sum_j D_j`` over the
  group; the correct one gets 0; a group without the target gets 0 everywhere.
- ``ranking``: ``rule + ranking_only`` (upstream's default ``ranking``).
- ``prefix``: partial credit along the SID hierarchy, ``(leading levels equal to the target's) /
  (levels of the target)``: 1 for the target, 1/3 for a rollout in the target's level-a cluster
  of a 3-level SID.  Residual codes nest, so most groups without the target still carry signal.
- ``semantic``: cosine similarity between the item embeddings (text2emb ``.npy``) of the
  rollout's item and the target item.
- ``sasrec``: the collaborative score of the rollout's item given the row's history, from a
  trained CF model (:class:`minionerec.baselines.CFScorer`, trained by ``baselines.py``).

:class:`RewardSet` combines several with weights and reports each one separately.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from minionerec.catalogue import CatalogueItem
from minionerec.errors import InputError
from minionerec.io import load_npy
from minionerec.metrics import normalise_prediction
from minionerec.sid import try_parse_sid

logger = logging.getLogger(__name__)

__all__ = [
    "REWARD_NAMES", "CFScorer", "CollaborativeReward", "RewardFn", "RewardRow", "RewardSet", "SemanticReward",
    "build_reward_set", "is_hit", "prefix_reward", "rank_discounts", "ranking_only_reward", "ranking_reward",
    "rule_reward", "shared_prefix_levels", "sid_to_item",
]

RewardFn = Callable[[list[str], Sequence["RewardRow"], int], list[float]]

#: Names accepted in ``rl.rewards``.
REWARD_NAMES = ("rule", "ranking", "ranking_only", "prefix", "semantic", "sasrec")


class RewardRow(Protocol):
    """What a reward reads from a row: ``minionerec.llm.TaskSample`` satisfies it."""

    prompt: str
    target: str
    target_item: int | None
    history_items: tuple[int, ...]


# --------------------------------------------------------------------------------------------
# Rule and ranking rewards
# --------------------------------------------------------------------------------------------

def _check_groups(completions: Sequence[str], rows: Sequence[RewardRow], group_size: int) -> None:
    if len(completions) != len(rows):
        raise ValueError(f"{len(completions)} completions for {len(rows)} rows")
    if group_size <= 0 or len(completions) % group_size:
        raise ValueError(f"{len(completions)} completions do not split into groups of {group_size}")


def is_hit(completion: str, row: RewardRow) -> bool:
    return normalise_prediction(completion) == normalise_prediction(row.target)


def rule_reward(completions: list[str], rows: Sequence[RewardRow], group_size: int) -> list[float]:
    """1.0 for a rollout equal to its own row's target SID, else 0.0."""
    _check_groups(completions, rows, group_size)
    return [1.0 if is_hit(c, r) else 0.0 for c, r in zip(completions, rows)]


def rank_discounts(group_size: int) -> list[float]:
    """``D_i / Z`` for ranks ``i = 0..group_size-1``: ``D_i = 1/log2(i+2)``, ``Z = sum D``."""
    discounts = [1.0 / math.log2(i + 2) for i in range(group_size)]
    total = sum(discounts)
    return [d / total for d in discounts]


def ranking_only_reward(completions: list[str], rows: Sequence[RewardRow], group_size: int) -> list[float]:
    """Rank-aware penalty for the wrong rollouts of a group that contains its target."""
    _check_groups(completions, rows, group_size)
    penalties = rank_discounts(group_size)
    hits = [is_hit(c, r) for c, r in zip(completions, rows)]
    rewards: list[float] = []
    for start in range(0, len(completions), group_size):
        group_hits = hits[start : start + group_size]
        if not any(group_hits):
            rewards.extend([0.0] * group_size)
            continue
        rewards.extend(0.0 if hit else -penalties[i] for i, hit in enumerate(group_hits))
    return rewards


def ranking_reward(completions: list[str], rows: Sequence[RewardRow], group_size: int) -> list[float]:
    """``rule + ranking_only``: 1 for the hit, ``-D_i/Z`` for misses in a group with a hit."""
    rule = rule_reward(completions, rows, group_size)
    penalty = ranking_only_reward(completions, rows, group_size)
    return [a + b for a, b in zip(rule, penalty)]


def shared_prefix_levels(a: Sequence[str], b: Sequence[str]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def prefix_reward(completions: list[str], rows: Sequence[RewardRow], group_size: int) -> list[float]:
    """Leading SID levels shared with the row's target, as a fraction of the target's levels."""
    _check_groups(completions, rows, group_size)
    rewards = []
    for completion, row in zip(completions, rows):
        target = try_parse_sid(row.target)
        produced = try_parse_sid(completion)
        if not target or produced is None:
            rewards.append(0.0)
            continue
        rewards.append(shared_prefix_levels(produced, target) / len(target))
    return rewards


# --------------------------------------------------------------------------------------------
# Item-level rewards (need the catalogue)
# --------------------------------------------------------------------------------------------

def sid_to_item(catalogue: Sequence[CatalogueItem]) -> dict[str, int]:
    """SID string -> item id (the first catalogue item carrying it, for colliding SIDs)."""
    mapping: dict[str, int] = {}
    for item in catalogue:
        mapping.setdefault(item.sid_string, item.item_id)
    return mapping


class SemanticReward:
    """Cosine similarity of the rollout's and the target's item embeddings.

    ``embeddings`` row ``k`` is item id ``k`` (the text2emb ``.npy``).  A rollout that is not a
    catalogue SID scores ``invalid_reward``.
    """

    def __init__(self, embeddings: np.ndarray, catalogue: Sequence[CatalogueItem], invalid_reward: float = 0.0,
                 source: str = "embedding matrix") -> None:
        if embeddings.ndim != 2:
            raise InputError(f"{source}: expected a 2-D (items x dim) matrix, got shape {embeddings.shape}")
        max_item = max(item.item_id for item in catalogue)
        if embeddings.shape[0] <= max_item:
            raise InputError(
                f"{source} has {embeddings.shape[0]} rows but the catalogue has item id {max_item}: "
                "use the embeddings of this dataset (rq/text2emb output for the same .item.json)"
            )
        norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
        self.unit = (embeddings / np.maximum(norms, 1e-12)).astype(np.float32)
        self.sid_to_item = sid_to_item(catalogue)
        self.invalid_reward = invalid_reward

    @classmethod
    def from_file(cls, path: str | Path, catalogue: Sequence[CatalogueItem]) -> SemanticReward:
        matrix = load_npy(path, "item embedding file", "run rq/text2emb first or set rl.embedding_path")
        return cls(np.asarray(matrix), catalogue, source=str(path))

    def __call__(self, completions: list[str], rows: Sequence[RewardRow], group_size: int) -> list[float]:
        _check_groups(completions, rows, group_size)
        out = []
        for completion, row in zip(completions, rows):
            item = self.sid_to_item.get(normalise_prediction(completion))
            if item is None or row.target_item is None:
                out.append(self.invalid_reward)
                continue
            out.append(float(self.unit[item] @ self.unit[row.target_item]))
        return out


class CFScorer(Protocol):
    """What the ``sasrec`` reward needs from a collaborative model: ``minionerec.baselines.CFScorer``."""

    def score(self, histories: Sequence[Sequence[int]], candidates: Sequence[Sequence[int]], kind: str = "logit",
              invalid_score: float = 0.0) -> Any: ...


class CollaborativeReward:
    """The CF model's score of each rollout's item after its row's own item history.

    One CF call per group (the group shares its row).  Rows without an item history (the
    title -> SID task) and rollouts that are not catalogue SIDs score ``invalid_reward``.
    ``kind`` is ``logit`` (upstream's raw score), ``prob`` or ``log_prob``.
    """

    def __init__(self, scorer: CFScorer, catalogue: Sequence[CatalogueItem], kind: str = "logit",
                 invalid_reward: float = 0.0, source: str = "CF model") -> None:
        scorer_items = getattr(getattr(scorer, "catalogue", None), "item_ids", None)
        ours = {item.item_id for item in catalogue}
        if scorer_items is not None and set(scorer_items) != ours:
            raise InputError(
                f"{source} was trained on a catalogue of {len(set(scorer_items))} items that differs from this "
                f"dataset's {len(ours)} items: train the CF model (baselines.py / sasrec.py) on this dataset's splits"
            )
        self.scorer = scorer
        self.sid_to_item = sid_to_item(catalogue)
        self.kind = kind
        self.invalid_reward = invalid_reward

    def __call__(self, completions: list[str], rows: Sequence[RewardRow], group_size: int) -> list[float]:
        _check_groups(completions, rows, group_size)
        out = [self.invalid_reward] * len(completions)
        starts, histories, candidates = [], [], []
        for start in range(0, len(completions), group_size):
            history = rows[start].history_items
            if not history:
                continue
            starts.append(start)
            histories.append(list(history))
            candidates.append([self.sid_to_item.get(normalise_prediction(c), -1)
                               for c in completions[start : start + group_size]])
        if starts:
            scores = self.scorer.score(histories, candidates, kind=self.kind, invalid_score=self.invalid_reward)
            for start, group_scores in zip(starts, np.asarray(scores, dtype=np.float64)):
                out[start : start + group_size] = [float(x) for x in group_scores]
        return out


# --------------------------------------------------------------------------------------------
# Combination
# --------------------------------------------------------------------------------------------

@dataclass
class RewardSet:
    """Weighted sum of named rewards; :meth:`__call__` also returns each one for logging."""

    functions: dict[str, RewardFn]
    weights: dict[str, float] = field(default_factory=dict)

    def __call__(self, completions: list[str], rows: Sequence[RewardRow], group_size: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        parts = {name: np.asarray(fn(completions, rows, group_size), dtype=np.float64) for name, fn in self.functions.items()}
        total = np.zeros(len(completions), dtype=np.float64)
        for name, values in parts.items():
            total += self.weights.get(name, 1.0) * values
        return total, parts


def build_reward_set(
    weights: Mapping[str, float],
    catalogue: Sequence[CatalogueItem] | None = None,
    embedding_path: str | Path | None = None,
    cf_scorer_factory: Callable[[], CFScorer] | None = None,
    cf_source: str = "CF model",
    cf_score_kind: str = "logit",
) -> RewardSet:
    """Build the rewards named in ``weights`` (``{name: weight}``); unknown names are an error."""
    if not weights:
        raise InputError(f"rl.rewards is empty: name at least one of {', '.join(REWARD_NAMES)}")
    functions: dict[str, RewardFn] = {}
    for name in weights:
        if name not in REWARD_NAMES:
            raise InputError(f"unknown reward {name!r} in rl.rewards; choose from {', '.join(REWARD_NAMES)}")
        if name == "rule":
            functions[name] = rule_reward
        elif name == "ranking":
            functions[name] = ranking_reward
        elif name == "ranking_only":
            functions[name] = ranking_only_reward
        elif name == "prefix":
            functions[name] = prefix_reward
        elif name == "semantic":
            if not embedding_path or catalogue is None:
                raise InputError("reward 'semantic' needs rl.embedding_path (the text2emb .npy of this dataset)")
            functions[name] = SemanticReward.from_file(embedding_path, catalogue)
        elif name == "sasrec":
            if cf_scorer_factory is None or catalogue is None:
                raise InputError("reward 'sasrec' needs rl.cf_model_path (a CF model trained by baselines.py)")
            functions[name] = CollaborativeReward(cf_scorer_factory(), catalogue, kind=cf_score_kind, source=cf_source)
    return RewardSet(functions, {name: float(w) for name, w in weights.items()})
