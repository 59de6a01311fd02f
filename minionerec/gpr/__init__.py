"""GPR-inspired variants as ONE switch on the plain stages: heterogeneous U/E/I/O tokens, VAFT, HEPO.

Reference ``gpr-and-amazon23.md`` §2, §5, §6.  The ``gpr:`` section (:class:`GPRConfig`, off by
default; ``gpr.enabled``) builds a :class:`GPRVariant`, whose hooks the plain stages call
(:mod:`minionerec.gpr.variant` lists them).  Layout:

- :mod:`~minionerec.gpr.tokens`: the token sets;  :mod:`~minionerec.gpr.config`: the section and its loading;
- :mod:`~minionerec.gpr.features`: features from training-period signals (data stage);
- :mod:`~minionerec.gpr.sidefiles`: side files, ours and upstream's (4-column ``.inter``, item.json fields);
- :mod:`~minionerec.gpr.rows`: GPR CSV rows (our token columns or upstream's ``user_id_original_str``/``e_token``);
- :mod:`~minionerec.gpr.convert`: the converter hook;  :mod:`~minionerec.gpr.prompts`: the prompt and the trie;
- :mod:`~minionerec.gpr.vaft`: SFT weights;  :mod:`~minionerec.gpr.hepo`,
  :mod:`~minionerec.gpr.rl`, :mod:`~minionerec.gpr.trainer`: RL.

Importing this package stays light (no torch, no trainer): :class:`HEPOTrainer` and
:class:`GPRRLVariant` load on first use.
"""

from __future__ import annotations

from typing import Any

from minionerec.gpr.config import GPRConfig, gpr_overrides, gpr_stale_reason, load_gpr_config, run_gpr_stage
from minionerec.gpr.convert import GPRConverter, gpr_rows
from minionerec.gpr.features import (
    GPRFeatures,
    context_token,
    dataset_features,
    extract_features,
    item_features,
    parse_price,
    previous_timestamps,
    quantile,
    training_interactions,
    user_tokens,
    write_side_files,
)
from minionerec.gpr.hepo import (
    HEPOSettings,
    level_advantages,
    level_returns,
    level_rewards,
    sid_levels,
    token_level_advantages,
)
from minionerec.gpr.prompts import (
    PROMPT_SETTINGS,
    check_checkpoint_prompt,
    gpr_next_item_prompt,
    gpr_next_sid_samples,
    gpr_template_pieces,
    info_side_path,
    read_info_side,
    sid_types,
    type_prefixed_trie,
    typed_history,
    write_info_side,
)
from minionerec.gpr.rows import GPR_COLUMNS, UPSTREAM_GPR_COLUMNS, GPRRow, read_gpr_csv, write_gpr_csv
from minionerec.gpr.sidefiles import (
    SIDE_FILES_FIX,
    UPSTREAM_INTER_HEADER,
    ItemFeature,
    SideFeatures,
    SideFiles,
    load_side_features,
    read_contexts,
    read_inter_with_contexts,
    read_item_features,
    read_user_tokens,
    upstream_item_features,
    upstream_user_tokens,
)
from minionerec.gpr.tokens import (
    CONTEXT_TOKENS,
    ITEM_TYPE_RULES,
    ITEM_TYPE_TOKENS,
    UPSTREAM_DEFAULT_CONTEXT,
    USER_RULES,
    USER_TOKENS,
    USER_UNKNOWN,
    check_token,
    gpr_vocabulary,
)
from minionerec.gpr.vaft import sample_weights, vaft_weights
from minionerec.gpr.variant import GPRVariant, run_with_variant

_LAZY = {"HEPOTrainer": "minionerec.gpr.trainer", "GPRRLVariant": "minionerec.gpr.rl"}


def __getattr__(name: str) -> Any:
    """The heavy names (torch/TRL) load on first use, so data scripts importing the package stay light."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'minionerec.gpr' has no attribute {name!r}")


__all__ = [
    "CONTEXT_TOKENS", "GPR_COLUMNS", "ITEM_TYPE_RULES", "ITEM_TYPE_TOKENS", "PROMPT_SETTINGS", "SIDE_FILES_FIX",
    "UPSTREAM_DEFAULT_CONTEXT", "UPSTREAM_GPR_COLUMNS", "UPSTREAM_INTER_HEADER", "USER_RULES", "USER_TOKENS",
    "USER_UNKNOWN",
    "GPRConfig", "GPRConverter", "GPRFeatures", "GPRRLVariant", "GPRRow", "GPRVariant", "HEPOSettings",
    "HEPOTrainer", "ItemFeature", "SideFeatures", "SideFiles",
    "check_checkpoint_prompt", "check_token", "context_token", "dataset_features", "extract_features",
    "gpr_next_item_prompt", "gpr_next_sid_samples", "gpr_overrides", "gpr_stale_reason", "gpr_rows", "gpr_template_pieces",
    "gpr_vocabulary", "info_side_path", "item_features", "level_advantages", "level_returns", "level_rewards",
    "load_gpr_config", "load_side_features", "parse_price", "previous_timestamps",
    "quantile", "read_contexts", "read_gpr_csv", "read_info_side",
    "read_inter_with_contexts", "read_item_features", "read_user_tokens", "run_gpr_stage", "run_with_variant", "sample_weights",
    "sid_levels", "sid_types", "token_level_advantages", "training_interactions", "type_prefixed_trie",
    "typed_history", "upstream_item_features", "upstream_user_tokens", "user_tokens", "vaft_weights",
    "write_gpr_csv", "write_info_side", "write_side_files",
]
