"""The HEPO trainer: rl's GRPO trainer with one advantage per SID level (see :mod:`minionerec.gpr.hepo`).

Imported lazily by :mod:`minionerec.gpr` (it pulls in torch, transformers and TRL).
"""

from __future__ import annotations

from typing import Any

import torch

from minionerec.errors import InputError
from minionerec.gpr.hepo import HEPOSettings, level_advantages, level_returns, level_rewards, sid_levels, token_level_advantages
from minionerec.rl import MiniOneRecGRPOTrainer
from minionerec.sid import check_sid_tokens, sid_vocabulary


class HEPOTrainer(MiniOneRecGRPOTrainer):
    """GRPO with level-wise advantages over the SID levels; ``hepo=None`` is rl's trainer step for step.

    A beam that got only level a right is pushed up on its level-a token, where plain GRPO saw a 0 reward.
    """

    def __init__(self, *args: Any, hepo: HEPOSettings | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.hepo = hepo
        if hepo is None:
            return
        if self.args.loss_type == "gspo":
            raise InputError("gpr.hepo needs per-token advantages: use rl.loss_type grpo or dapo (gspo is sequence-level)")
        if not self.valid_sids:
            raise InputError("HEPO needs the catalogue SIDs (valid_sids) to locate the level tokens")
        levels = [sid_levels(s) for s in self.valid_sids]
        self.num_levels = max(len(s) for s in levels)
        vocab = sid_vocabulary(levels)
        self.sid_token_ids = torch.tensor(check_sid_tokens(self.processing_class, vocab), dtype=torch.long)

    def compute_advantages(self, rewards: torch.Tensor, completions: list[str], rows: list[Any]) -> torch.Tensor:
        if self.hepo is None:
            return super().compute_advantages(rewards, completions, rows)
        per_level = level_rewards(completions, [r.target for r in rows], rewards.tolist(), self.hepo.alphas,
                                  self.num_levels)
        returns = level_returns(per_level, self.hepo.gamma)
        return level_advantages(returns, self.G, self.args.advantage_epsilon, self.args.scale_rewards)

    def _build_update_batch(self, groups: Any) -> dict[str, torch.Tensor]:
        batch = super()._build_update_batch(groups)
        if self.hepo is not None:
            batch["advantages"] = token_level_advantages(batch["advantages"], batch["completion_ids"],
                                                         batch["completion_mask"], self.sid_token_ids, self.hepo.coefs)
        return batch
