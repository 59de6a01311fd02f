"""The RL stage: GRPO on an SFT checkpoint with constrained rollouts.

Where things live (follow the imports from ``rl.py``):

- :mod:`~minionerec.rl.config`: ``RLConfig`` (the ``rl:`` section) and ``GRPOSettings`` (the algorithm's
  settings, declared once and shared with the trainer's arguments);
- :mod:`~minionerec.rl.arguments`: ``MiniOneRecGRPOConfig`` (HF TrainingArguments + GRPOSettings) and
  ``grpo_arguments`` (built from an ``RLConfig``), the optimizer choice;
- :mod:`~minionerec.rl.stage`: the stage's ``main``; :mod:`~minionerec.rl.variant`: ``RLVariant`` (its hooks);
- :mod:`~minionerec.rl.samples`: input files, rows, validation users, the RL prompts;
- :mod:`~minionerec.rl.trainer`: ``MiniOneRecGRPOTrainer``; :mod:`~minionerec.rl.rollout`: constrained rollouts;
  :mod:`~minionerec.rl.loss`: advantages, KL, the clipped loss, log-probs; :mod:`~minionerec.rl.batches`: data
  plumbing; :mod:`~minionerec.rl.distributed`: full state dicts under ZeRO-3;
- :mod:`~minionerec.rl.rewards`: the rewards (how to add one: that module's docstring).
"""

from minionerec.rl.arguments import (
    BNB_OPTIMS,
    DERIVED,
    STAGE_ONLY,
    MiniOneRecGRPOConfig,
    derived_arguments,
    grpo_arguments,
    passed_through_keys,
    resolve_optim,
    selection_metric,
)
from minionerec.rl.batches import RepeatChunkSampler, RowDataset, ScoredGroups, collate_rows, right_pad
from minionerec.rl.config import LOSS_TYPES, ROLLOUT_MODES, SID_TASKS, GRPOSettings, RLConfig
from minionerec.rl.distributed import full_state_dict, gathered_parameters, load_full_state_dict, zero3_enabled
from minionerec.rl.loss import (
    full_sequence_logps,
    group_advantages,
    grpo_loss,
    k3_kl,
    masked_mean,
    nonzero_groups,
    shared_prefix_logps,
)
from minionerec.rl.rewards import (
    REWARD_NAMES,
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
from minionerec.rl.rollout import RolloutFn, TrieRollout
from minionerec.rl.samples import (
    build_rl_samples,
    catalogue_items,
    rl_data_files,
    rows_to_train_on,
    split_validation_users,
)
from minionerec.rl.stage import (
    build_rewards,
    check_beam_counts,
    load_policy,
    main,
    restore_policy,
    step_zero_is_best,
)
from minionerec.rl.trainer import REF_MODEL_FILE, MiniOneRecGRPOTrainer, frozen_copy
from minionerec.rl.variant import RLVariant

__all__ = [
    "BNB_OPTIMS", "DERIVED", "LOSS_TYPES", "REF_MODEL_FILE", "REWARD_NAMES", "ROLLOUT_MODES", "SID_TASKS",
    "STAGE_ONLY", "CollaborativeReward", "GRPOSettings", "MiniOneRecGRPOConfig", "MiniOneRecGRPOTrainer",
    "RLConfig", "RLVariant", "RepeatChunkSampler", "RewardFn", "RewardRow", "RewardSet", "RolloutFn", "RowDataset",
    "ScoredGroups", "SemanticReward", "TrieRollout", "build_reward_set", "build_rewards", "build_rl_samples",
    "catalogue_items", "check_beam_counts", "collate_rows", "derived_arguments", "frozen_copy", "full_sequence_logps",
    "full_state_dict", "gathered_parameters", "group_advantages", "grpo_arguments", "grpo_loss", "is_hit", "k3_kl",
    "load_full_state_dict", "load_policy", "main", "masked_mean", "nonzero_groups", "passed_through_keys",
    "prefix_reward", "rank_discounts", "ranking_only_reward", "ranking_reward", "resolve_optim", "restore_policy",
    "right_pad", "rl_data_files", "rows_to_train_on", "rule_reward", "selection_metric", "shared_prefix_levels",
    "shared_prefix_logps", "sid_to_item", "split_validation_users", "step_zero_is_best", "zero3_enabled",
]
