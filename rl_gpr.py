"""RL with the GPR prompt and HEPO (level-wise rewards and advantages); everything else is rl.py.

    bash rl_gpr.sh configs/synthetic_gpr.yaml [--rl.key value | --gpr.key value ...]

Differences from ``rl.py`` (reference ``gpr-and-amazon23.md`` §6.4):

- the next-item prompts (training and validation) are :func:`minionerec.gpr.gpr_next_item_prompt`
  built from the GPR CSV columns, the string SFT trained on and evaluation decodes from; with
  ``gpr.target_type_prefix`` rollouts go through the type-prefixed trie;
- ``gpr.hepo``: :class:`HEPOTrainer` replaces the single sequence-level advantage by one advantage
  per SID level.  Level rewards (prefix form): ``alpha_l * 1[first l levels right]`` for the
  levels before the candidate's last, and the configured reward (``rl.rewards``, e.g. ranking) at
  its last level; returns ``R_l = sum_{m>=l} gamma^(m-l) r_m``; each level's returns are
  z-scored within the group of G rollouts; the level-l SID token's log-prob is weighted by
  ``c_l * A_l`` (a type token by level 1's, ``\\n``/EOS by the last level's).  A beam that got
  only level a right is now pushed up on its level-a token, where plain GRPO saw a 0 reward.

With ``gpr.hepo false`` the trainer is rl.py's own class, so the update is identical to rl.py's
(``HEPOTrainer`` with ``hepo=None`` also delegates every step to it).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

import data
import rl
from minionerec.config import save_resolved_config
from minionerec.errors import InputError
from minionerec.gpr import (
    GPRConfig,
    check_checkpoint_prompt,
    gpr_next_sid_samples,
    level_advantages,
    level_returns,
    level_rewards,
    read_gpr_csv,
    read_info_side,
    run_gpr_stage,
    sid_levels,
    sid_types,
    token_level_advantages,
    type_prefixed_trie,
)
from minionerec.io import CatalogueItem, find_llm_data_files
from minionerec.sid import check_sid_tokens, sid_vocabulary
from minionerec_trainer import MiniOneRecGRPOTrainer

logger = logging.getLogger("minionerec.rl_gpr")


@dataclass(frozen=True)
class HEPOSettings:
    alphas: tuple[float, ...]
    gamma: float
    coefs: tuple[float, ...]

    @classmethod
    def from_config(cls, gcfg: GPRConfig) -> HEPOSettings:
        return cls(tuple(gcfg.hepo_alphas), gcfg.hepo_gamma, tuple(gcfg.hepo_coefs))


class HEPOTrainer(MiniOneRecGRPOTrainer):
    """GRPO with level-wise advantages over the SID levels (module docstring); ``hepo=None`` = GRPO."""

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


class GPRVariant(rl.RLVariant):
    """rl.py's stage with GPR next-item prompts, an optional type-prefixed trie and HEPO."""

    def __init__(self, cfg: rl.RLConfig, gcfg: GPRConfig):
        self.gcfg = gcfg
        self.info = find_llm_data_files(cfg.data_dir, cfg.dataset, cfg.train_subdir).info

    def read_rows(self, path: Path) -> list[Any]:
        return read_gpr_csv(path)

    def plain_row(self, row: Any) -> Any:
        return row.row

    def samples_from_rows(self, cfg: rl.RLConfig, rows: list[Any], items: list[data.ItemText]) -> list[data.TaskSample]:
        replace = {"next_sid": gpr_next_sid_samples(rows, self.gcfg.use_tokens)} if "next_sid" in cfg.tasks else {}
        return rl.build_rl_samples(cfg, [g.row for g in rows], items, replace)

    def next_sid_samples(self, rows: list[Any]) -> list[data.TaskSample]:
        return gpr_next_sid_samples(rows, self.gcfg.use_tokens)

    def build_trie(self, catalogue: list[CatalogueItem], tokenizer: Any) -> Any:
        if not self.gcfg.target_type_prefix:
            return super().build_trie(catalogue, tokenizer)
        if self.info is None:
            raise InputError("gpr.target_type_prefix needs info/<dataset>.gpr.json: run convert_dataset_gpr.py")
        _, item_types = read_info_side(self.info)
        types = sid_types(((c.sid_string, c.item_id) for c in catalogue), item_types, str(self.info))
        return type_prefixed_trie([c.sid_string for c in catalogue], types, tokenizer)

    def trainer_class(self) -> type:
        return HEPOTrainer if self.gcfg.hepo else MiniOneRecGRPOTrainer

    def trainer_kwargs(self) -> dict[str, Any]:
        return {"hepo": HEPOSettings.from_config(self.gcfg)} if self.gcfg.hepo else {}


def main(cfg: rl.RLConfig, gcfg: GPRConfig) -> dict[str, Any]:
    check_checkpoint_prompt(cfg.model_path, gcfg)
    summary = rl.main(cfg, GPRVariant(cfg, gcfg))
    if int(os.environ.get("RANK", "0") or 0) == 0:
        save_resolved_config(gcfg, cfg.output_dir)
    return summary


if __name__ == "__main__":
    run_gpr_stage(rl.RLConfig, main)
