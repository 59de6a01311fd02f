"""The GRPO trainer for generative recommendation: constrained rollouts that are always valid items.

The code lives in :mod:`minionerec.rl` (trainer, rollouts, loss, arguments); this module keeps
the name users import from::

    from minionerec_trainer import MiniOneRecGRPOConfig, MiniOneRecGRPOTrainer, TrieRollout

:class:`MiniOneRecGRPOConfig` is HF ``TrainingArguments`` plus the GRPO settings of
:class:`minionerec.rl.config.GRPOSettings` (the same fields, help texts and defaults as the
``rl:`` section); ``rl.py`` builds it from its config with :func:`minionerec.rl.grpo_arguments`.
See :mod:`minionerec.rl.trainer` for one training step.
"""

from minionerec.rl import (
    LOSS_TYPES,
    REF_MODEL_FILE,
    ROLLOUT_MODES,
    GRPOSettings,
    MiniOneRecGRPOConfig,
    MiniOneRecGRPOTrainer,
    RepeatChunkSampler,
    RolloutFn,
    RowDataset,
    ScoredGroups,
    TrieRollout,
    collate_rows,
    frozen_copy,
    full_sequence_logps,
    full_state_dict,
    gathered_parameters,
    group_advantages,
    grpo_loss,
    k3_kl,
    load_full_state_dict,
    masked_mean,
    nonzero_groups,
    right_pad,
    shared_prefix_logps,
    zero3_enabled,
)

__all__ = [
    "LOSS_TYPES", "REF_MODEL_FILE", "ROLLOUT_MODES", "GRPOSettings", "MiniOneRecGRPOConfig", "MiniOneRecGRPOTrainer",
    "RepeatChunkSampler", "RolloutFn", "RowDataset", "ScoredGroups", "TrieRollout", "collate_rows", "frozen_copy",
    "full_sequence_logps", "full_state_dict", "gathered_parameters", "group_advantages", "grpo_loss", "k3_kl",
    "load_full_state_dict", "masked_mean", "nonzero_groups", "right_pad", "shared_prefix_logps", "zero3_enabled",
]
