"""The GPR variant object: the one thing a plain stage asks about GPR (in the spirit of ``rl.RLVariant``).

Build it from the ``gpr`` section of the stage's own config (:meth:`GPRVariant.from_cli`); with
``gpr.enabled`` false every hook is the plain behaviour, so a stage may call them unconditionally
or skip them when ``not variant.enabled``.  Hook points, by stage:

=========  ====================================================================================
data       :meth:`GPRVariant.data_features` (before writing), :meth:`GPRVariant.write_data_side_files`
text2emb   :meth:`GPRVariant.embedding_texts` (``[EMPTY]`` for items without text)
convert    :meth:`GPRVariant.converter` -> :class:`~minionerec.gpr.convert.GPRConverter`
           (``read_inter``, ``rows``, ``write_info``) and :meth:`GPRVariant.write_csv`
prompts    :meth:`GPRVariant.read_rows`, :meth:`GPRVariant.next_sid_samples`, :meth:`GPRVariant.prompt`
SFT        :meth:`GPRVariant.special_tokens`, :meth:`GPRVariant.template_pieces`,
           :meth:`GPRVariant.sample_weights` (VAFT); ``llm.load_sft_data(cfg, variant)`` calls them
RL         :meth:`GPRVariant.rl_variant` -> an ``RLVariant`` (GPR prompts, type-prefixed trie, HEPO trainer)
evaluate   :meth:`GPRVariant.check_checkpoint`, :meth:`GPRVariant.read_rows` + :meth:`GPRVariant.prompt`
           (``eval.load_test_set(..., variant)``), :meth:`GPRVariant.build_trie`
all        :meth:`GPRVariant.save_config` (``gpr.config.yaml`` beside the stage's outputs, rank 0)
=========  ====================================================================================
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from minionerec.errors import InputError
from minionerec.gpr.config import GPRConfig, load_gpr_config, run_gpr_stage
from minionerec.gpr.convert import GPRConverter
from minionerec.gpr.features import GPRFeatures, dataset_features, write_side_files
from minionerec.gpr.prompts import (
    check_checkpoint_prompt,
    gpr_next_item_prompt,
    gpr_next_sid_samples,
    gpr_template_pieces,
    info_side_path,
    read_info_side,
    sid_types,
    type_prefixed_trie,
)
from minionerec.gpr.rows import GPRRow, read_gpr_csv, write_gpr_csv
from minionerec.gpr.sidefiles import ItemFeature, SideFiles, read_item_features, upstream_item_features
from minionerec.gpr.vaft import sample_weights
from minionerec.io import read_item_json

#: upstream GPR's text of an item without any text (the plain stage embeds its "unknown item" fallback)
EMPTY_TEXT = "[EMPTY]"


class GPRVariant:
    """The ``gpr`` section as hooks for the plain stages (module docstring lists them)."""

    def __init__(self, cfg: GPRConfig | None = None):
        self.cfg = cfg or GPRConfig()

    @classmethod
    def from_cli(cls, config_path: str | Path | None, overrides: Mapping[str, Any] | None = None,
                 force_on: bool = False) -> GPRVariant:
        """The variant of a stage run with this config path and these command-line overrides."""
        return cls(load_gpr_config(config_path, overrides, force_on))

    @property
    def enabled(self) -> bool:
        return self.cfg.enabled

    @property
    def changes_prompt(self) -> bool:
        return self.enabled and (self.cfg.use_tokens or self.cfg.target_type_prefix)

    # ---------------------------------------------------------------------------------- data
    def data_features(self, dataset: Any, raw_items: Mapping[str, Mapping[str, Any]]) -> GPRFeatures:
        """Features of a built dataset, computed before the stage writes anything."""
        return dataset_features(dataset, raw_items, self.cfg)

    def write_data_side_files(self, features: GPRFeatures, staging: Path, name: str) -> SideFiles:
        return write_side_files(features, staging, name)

    # ---------------------------------------------------------------------------------- text2emb
    def embedding_texts(self, records: Mapping[int, Mapping[str, Any]], ids: Sequence[int], texts: Sequence[str],
                        fields: Sequence[str]) -> list[str]:
        """The plain texts, with upstream GPR's literal ``[EMPTY]`` for an item whose embedded fields are all empty."""
        from minionerec.sid import clean_text

        return [EMPTY_TEXT if not any(clean_text(records[i].get(name)) for name in fields) else text
                for i, text in zip(ids, texts)]

    # ---------------------------------------------------------------------------------- convert
    def converter(self, data_dir: str | Path, dataset: str, splits: Sequence[str],
                  items: Mapping[int, Mapping[str, Any]], item_path: Path) -> GPRConverter:
        """Reads every side file now (a missing one fails before the stage writes)."""
        return GPRConverter.load(data_dir, dataset, splits, items, item_path)

    def config_dict(self) -> dict[str, Any]:
        """The resolved section as a plain dict (recorded in ``info/<D>.gpr.json``)."""
        from minionerec.config import to_dict

        return to_dict(self.cfg)

    def write_csv(self, path: Path, rows: Sequence[GPRRow]) -> Path:
        return write_gpr_csv(path, rows)

    # ---------------------------------------------------------------------------------- prompts
    def read_rows(self, path: str | Path, info_path: str | Path | None = None,
                  item_json_path: str | Path | None = None) -> list[GPRRow]:
        """A GPR CSV's rows (ours, or upstream's with types from the info side file or item.json)."""
        return read_gpr_csv(path, self.item_types(info_path, item_json_path))

    def item_types(self, info_path: str | Path | None, item_json_path: str | Path | None = None) -> dict[int, str]:
        """``{item: I|O}``: from ``info/<D>.gpr.json`` when present, else upstream's item.json ``item_type``."""
        if info_path and info_side_path(info_path).is_file():
            return read_info_side(info_path)[1]
        if item_json_path and Path(item_json_path).is_file():
            features = upstream_item_features(read_item_json(item_json_path), str(item_json_path))
            return {i: f.type for i, f in (features or {}).items()}
        return {}

    def prompt(self, row: GPRRow) -> str:
        return gpr_next_item_prompt(row, self.cfg.use_tokens)

    def next_sid_samples(self, rows: Sequence[GPRRow], type_prefix: bool | None = None) -> list[Any]:
        """The next-item samples; the completion carries the type token when ``type_prefix`` (default: the config)."""
        prefix = self.cfg.target_type_prefix if type_prefix is None else type_prefix
        return gpr_next_sid_samples(rows, self.cfg.use_tokens, prefix)

    # ---------------------------------------------------------------------------------- SFT
    def special_tokens(self, info_path: str | Path | None) -> list[str]:
        """The converter's token list (info/<D>.gpr.json) when the prompt or response uses GPR tokens."""
        if not self.changes_prompt:
            return []
        if info_path is None:
            raise InputError("no info file info/<dataset>*.txt beside the CSVs: run convert_dataset_gpr.py")
        if not info_side_path(info_path).is_file():  # upstream's CSVs: every token may occur
            from minionerec.gpr.tokens import gpr_vocabulary

            return gpr_vocabulary()
        return read_info_side(info_path)[0]

    def template_pieces(self) -> list[str]:
        return gpr_template_pieces() if self.enabled and self.cfg.use_tokens else []

    def item_values(self, data_dir: str | Path, dataset: str, item_json_path: str | Path | None) -> dict[int, ItemFeature]:
        """VAFT values: our ``<D>.gpr.items.json``, else upstream's item.json ``final_value``."""
        side = SideFiles.of(data_dir, dataset).items
        if not side.is_file() and item_json_path and Path(item_json_path).is_file():
            upstream = upstream_item_features(read_item_json(item_json_path), str(item_json_path))
            if upstream is not None:
                return upstream
        return read_item_features(side)

    def sample_weights(self, train: Sequence[Any], dataset: str, item_json_path: str | Path | None = None) -> list[float] | None:
        """VAFT per-sample weights of the SFT training set (None when VAFT is off)."""
        if not (self.enabled and self.cfg.vaft):
            return None
        values = self.item_values(self.cfg.data_dir, dataset, item_json_path)
        return sample_weights(train, values, self.cfg.vaft_floor, str(SideFiles.of(self.cfg.data_dir, dataset).items))

    # ---------------------------------------------------------------------------------- RL
    def rl_variant(self, rl_cfg: Any) -> Any:
        """rl's ``RLVariant`` for this config (the plain one when the switch is off)."""
        from minionerec.gpr.rl import GPRRLVariant
        from minionerec.rl import RLVariant

        return GPRRLVariant(rl_cfg, self) if self.enabled else RLVariant()

    # ---------------------------------------------------------------------------------- evaluation
    def check_checkpoint(self, model_path: str | Path) -> None:
        """InputError unless the checkpoint learned the prompt this run decodes from."""
        if self.enabled:
            check_checkpoint_prompt(model_path, self.cfg)

    def build_trie(self, catalogue: Any, tokenizer: Any, device: Any, info_file: str | Path) -> Any:
        """The decoding trie: the plain one, or every SID behind its item's type token (``target_type_prefix``)."""
        from minionerec.decoding import SIDTrie

        if not (self.enabled and self.cfg.target_type_prefix):
            return SIDTrie.from_sids(catalogue.sids, tokenizer, device)
        _, item_types = read_info_side(info_file)
        pairs = [(sid, catalogue.item_ids[r]) for sid, rows in zip(catalogue.sids, catalogue.sid_rows) for r in rows]
        return type_prefixed_trie(catalogue.sids, sid_types(pairs, item_types, str(info_file)), tokenizer, device)

    # ---------------------------------------------------------------------------------- all stages
    def save_config(self, out_dir: str | Path) -> None:
        """``gpr.config.yaml`` (+ done-record) beside a stage's outputs, on rank 0; evaluation checks it later."""
        from minionerec.config import save_resolved_config

        if self.enabled and int(os.environ.get("RANK", "0") or 0) == 0:
            save_resolved_config(self.cfg, out_dir)


def run_with_variant(schema: type, main: Callable[[Any, GPRVariant], Any], argv: Sequence[str] | None = None,
                     force_on: bool = False) -> Any:
    """The entry of a plain stage script: ``main(stage cfg, GPRVariant)`` from the command line.

    The variant is the config's ``gpr:`` section (off unless ``gpr.enabled``); ``force_on`` is the
    upstream-named ``*_gpr.py`` aliases, which run the same stage with the switch on.
    """
    return run_gpr_stage(schema, lambda cfg, gcfg: main(cfg, GPRVariant(gcfg)), argv, force_on=force_on)
