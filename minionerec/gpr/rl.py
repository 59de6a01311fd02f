"""RL with the switch on: rl's ``RLVariant`` with GPR next-item prompts, a type-prefixed trie and HEPO."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from minionerec.errors import InputError
from minionerec.gpr.hepo import HEPOSettings
from minionerec.gpr.prompts import read_info_side, sid_types, type_prefixed_trie
from minionerec.io import find_llm_data_files
from minionerec.rl import RLVariant, build_rl_samples

if TYPE_CHECKING:
    from minionerec.gpr.variant import GPRVariant


class GPRRLVariant(RLVariant):
    """The RL stage's hooks (``read_rows``, ``plain_row``, ``samples_from_rows``, ``next_sid_samples``,
    ``build_trie``, ``trainer_class``, ``trainer_kwargs``, ``save_outputs``) for the GPR switch."""

    def __init__(self, cfg: Any, variant: GPRVariant):
        self.variant = variant
        self.gcfg = variant.cfg
        self.info = find_llm_data_files(cfg.data_dir, cfg.dataset, cfg.train_subdir).info

    def read_rows(self, path: Path) -> list[Any]:
        return self.variant.read_rows(path, self.info)

    def plain_row(self, row: Any) -> Any:
        return row.row

    def samples_from_rows(self, cfg: Any, rows: list[Any], items: list[Any]) -> list[Any]:
        replace = {"next_sid": self.next_sid_samples(rows)} if "next_sid" in cfg.tasks else {}
        return build_rl_samples(cfg, [g.row for g in rows], items, replace)

    def next_sid_samples(self, rows: list[Any]) -> list[Any]:
        return self.variant.next_sid_samples(rows, type_prefix=False)  # RL scores the target; the trie adds the type

    def build_trie(self, catalogue: list[Any], tokenizer: Any) -> Any:
        if not self.gcfg.target_type_prefix:
            return super().build_trie(catalogue, tokenizer)
        if self.info is None:
            raise InputError("gpr.target_type_prefix needs info/<dataset>.gpr.json: run convert_dataset_gpr.py")
        _, item_types = read_info_side(self.info)
        types = sid_types(((c.sid_string, c.item_id) for c in catalogue), item_types, str(self.info))
        return type_prefixed_trie([c.sid_string for c in catalogue], types, tokenizer)

    def trainer_class(self) -> type:
        if self.gcfg.hepo:
            from minionerec.gpr.trainer import HEPOTrainer

            return HEPOTrainer
        return super().trainer_class()

    def trainer_kwargs(self) -> dict[str, Any]:
        return {"hepo": HEPOSettings.from_config(self.gcfg)} if self.gcfg.hepo else {}

    def save_outputs(self, output_dir: Path) -> None:
        self.variant.save_config(output_dir)


def run_rl_stage(cfg: Any, gpr: GPRVariant) -> dict[str, Any]:
    """The RL stage with the ``gpr:`` section's hooks (``gpr.enabled``: GPR prompts, ``gpr.hepo``); off: plain RL."""
    from minionerec.rl import main

    gpr.check_checkpoint(cfg.model_path)  # switched on: the SFT checkpoint learned the prompt RL samples from
    return main(cfg, gpr.rl_variant(cfg))
