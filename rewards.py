"""RL rewards: one score per rollout, computed from the rollout's OWN row.

The code lives in :mod:`minionerec.rl.rewards` (the signature of a reward, the six rewards and how
to add one are documented there); this module keeps the name users import from::

    from rewards import build_reward_set, ranking_reward
"""

from minionerec.rl.rewards import (
    REWARD_NAMES,
    CFScorer,
    CollaborativeReward,
    RewardFn,
    RewardRow,
    RewardSet,
    SemanticReward,
    build_reward_set,
    is_hit,
    prefix_reward,
    rank_discounts,
    ranking_only_reward,
    ranking_reward,
    rule_reward,
    shared_prefix_levels,
    sid_to_item,
)

__all__ = [
    "REWARD_NAMES", "CFScorer", "CollaborativeReward", "RewardFn", "RewardRow", "RewardSet", "SemanticReward",
    "build_reward_set", "is_hit", "prefix_reward", "rank_discounts", "ranking_only_reward", "ranking_reward",
    "rule_reward", "shared_prefix_levels", "sid_to_item",
]
