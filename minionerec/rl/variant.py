"""The parts of the RL stage a variant may replace (``gpr.hepo``: rl_gpr.py's GPR variant).

:func:`minionerec.rl.stage.main` calls only these hooks for rows, prompts, the trie and the
trainer class; :class:`RLVariant`'s defaults are the plain stage.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from minionerec.catalogue import CatalogueItem
from minionerec.decoding import SIDTrie
from minionerec.io import LLMDataFiles, SplitRow, read_split_csv
from minionerec.llm import ItemText, TaskSample, check_rows_against_index, next_sid_samples
from minionerec.rl.config import RLConfig
from minionerec.rl.samples import build_rl_samples, rows_to_train_on, split_validation_users
from minionerec.rl.trainer import MiniOneRecGRPOTrainer


class RLVariant:
    """The parts of the RL stage a variant (rl_gpr.py) may replace; these defaults are the plain stage."""

    def read_rows(self, path: Path) -> list[Any]:
        """A split CSV's rows in this variant's row type."""
        return read_split_csv(path)

    def plain_row(self, row: Any) -> SplitRow:
        return row

    def samples_from_rows(self, cfg: RLConfig, rows: list[Any], items: list[ItemText]) -> list[TaskSample]:
        return build_rl_samples(cfg, [self.plain_row(r) for r in rows], items)

    def next_sid_samples(self, rows: list[Any]) -> list[TaskSample]:
        return next_sid_samples([self.plain_row(r) for r in rows])

    def checked_rows(self, path: Path, items: list[ItemText]) -> list[Any]:
        rows = self.read_rows(path)
        check_rows_against_index([self.plain_row(r) for r in rows], items, path)
        return rows

    def samples(self, cfg: RLConfig, files: LLMDataFiles,
                items: list[ItemText]) -> tuple[list[TaskSample], list[TaskSample]]:
        """The RL prompts and the validation prompts (empty without ``eval_samples``); each CSV is read once."""
        needs_valid = files.valid is not None and (cfg.train_on_valid or cfg.eval_samples > 0)
        valid = self.checked_rows(files.valid, items) if needs_valid else None
        rows = rows_to_train_on(cfg, self.checked_rows(files.train, items), valid if cfg.train_on_valid else None,
                                self.plain_row)
        validation = self.validation_samples(cfg, valid) if valid is not None and cfg.eval_samples else []
        return self.samples_from_rows(cfg, rows, items), validation

    def validation_samples(self, cfg: RLConfig, valid_rows: list[Any]) -> list[TaskSample]:
        """Every valid row of the held-out users (the users SFT held out)."""
        held_out, _ = split_validation_users(cfg, valid_rows, self.plain_row)
        return self.next_sid_samples(held_out)

    def build_trie(self, catalogue: list[CatalogueItem], tokenizer: Any) -> Any:
        return SIDTrie.from_sids([c.sid_string for c in catalogue], tokenizer)

    def trainer_class(self) -> type:
        return MiniOneRecGRPOTrainer

    def trainer_kwargs(self) -> dict[str, Any]:
        return {}

    def save_outputs(self, output_dir: Path) -> None:
        """Rank 0, after the model and before the done-record: the variant's own files (GPR: gpr.config.yaml)."""

