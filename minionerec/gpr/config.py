"""The ``gpr:`` section: one section of the same config file as every stage, off by default.

The plain stages read it with :func:`load_gpr_config` (the same config path and command-line
overrides they got); ``gpr.enabled`` switches the variant on.  The upstream-named alias scripts
(``sft_gpr.py`` ...) run the plain stage with the switch forced on (:func:`run_gpr_stage`).

Overrides that reach the section: ``--gpr.key v``, ``--common.key v`` and the bare common keys
(``--workdir``, ``--seed``, ``--dataset`` ...), exactly as they reach a stage section, so
``${common.workdir}`` inside ``gpr.data_dir`` follows ``--workdir`` (before, a bare ``--workdir X``
was dropped and the side files were looked for under the YAML's workdir).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from minionerec.config import CommonConfig
from minionerec.errors import InputError
from minionerec.gpr.tokens import CONTEXT_TOKENS, ITEM_TYPE_RULES, USER_RULES


@dataclass
class GPRConfig:
    """The ``gpr:`` section: GPR-inspired heterogeneous tokens, VAFT and HEPO as a switch on the plain stages."""

    section: ClassVar[str] = "gpr"

    enabled: bool = field(default=False, metadata={"help": "Switch the GPR variant on in the plain stages "
                                                   "(the *_gpr.py alias scripts force it on)."})
    dataset: str = field(default="", metadata={"help": "Dataset name (from common)."})
    workdir: str = field(default="runs/default", metadata={"help": "Experiment root (from common)."})
    seed: int = field(default=42, metadata={"help": "Seed of the random context rule (the other rules need none)."})
    data_dir: str = field(default="${common.workdir}/data/${common.dataset}",
                          metadata={"help": "Folder of the data stage's outputs and the GPR side files."})
    user_rule: str = field(default="rating", metadata={"help": "U token rule: rating (mean training-period rating bucket)."})
    user_high: float = field(default=4.5, metadata={"help": "Mean rating above this -> [USER_HIGH_RATING]."})
    user_mid: float = field(default=3.5, metadata={"help": "Mean rating above this -> [USER_MID_RATING] (else LOW)."})
    context_rule: str = field(default="gap", metadata={"help": "E token rule: gap, weekday or random (seeded noise, a control)."})
    item_type_rule: str = field(default="price", metadata={"help": "I/O rule: price or popularity (>= the quantile below -> I)."})
    item_type_quantile: float = field(default=0.5, metadata={"help": "Quantile (over training-period items) that makes an item I."})
    use_tokens: bool = field(default=True, metadata={"help": "Inject U/E and the history items' type tokens into the next-item prompt."})
    target_type_prefix: bool = field(default=False, metadata={"help": "The response starts with the target's type token (decoding uses a type-prefixed trie)."})
    vaft: bool = field(default=False, metadata={"help": "SFT: weight next-item samples by their target's value (mean 1)."})
    vaft_floor: float = field(default=0.5, metadata={"help": "VAFT weight before normalisation is floor + value (value in [0, 1])."})
    hepo: bool = field(default=False, metadata={"help": "RL: level-wise rewards and advantages over the SID levels (off = rl.py)."})
    hepo_alphas: list[float] = field(default_factory=lambda: [0.1, 0.1, 0.1],
                                     metadata={"help": "Process reward per level before the last (prefix right); the last level gets the terminal reward."})
    hepo_gamma: float = field(default=1.0, metadata={"help": "Discount over levels of the level returns."})
    hepo_coefs: list[float] = field(default_factory=lambda: [1.0, 1.0, 1.0, 1.0],
                                    metadata={"help": "c_l: scale of the level-l advantage (levels beyond the list use its last value)."})

    def check(self) -> None:
        if self.user_rule not in USER_RULES:
            raise InputError(f"gpr.user_rule must be one of {', '.join(USER_RULES)}, got {self.user_rule!r}")
        if self.context_rule not in CONTEXT_TOKENS:
            raise InputError(f"gpr.context_rule must be one of {', '.join(CONTEXT_TOKENS)}, got {self.context_rule!r}")
        if self.item_type_rule not in ITEM_TYPE_RULES:
            raise InputError(f"gpr.item_type_rule must be one of {', '.join(ITEM_TYPE_RULES)}, got {self.item_type_rule!r}")
        if not 0.0 <= self.item_type_quantile <= 1.0:
            raise InputError(f"gpr.item_type_quantile must be in [0, 1], got {self.item_type_quantile}")
        if not (math.isfinite(self.vaft_floor) and self.vaft_floor >= 0):
            raise InputError(f"gpr.vaft_floor must be a finite number >= 0, got {self.vaft_floor}")
        for name in ("hepo_alphas", "hepo_coefs"):
            values = getattr(self, name)
            if not values or any(not math.isfinite(v) for v in values):
                raise InputError(f"gpr.{name} must be a non-empty list of finite numbers, got {values}")
        if not 0.0 <= self.hepo_gamma <= 1.0:
            raise InputError(f"gpr.hepo_gamma must be in [0, 1], got {self.hepo_gamma}")


_COMMON_KEYS = frozenset(f.name for f in dataclasses.fields(CommonConfig))


def gpr_overrides(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The command-line overrides that concern the ``gpr`` section: ``gpr.*``, ``common.*`` and bare common keys.

    A bare stage key (``--learning_rate``) belongs to the stage, not here, and is left out.
    """
    return {k: v for k, v in overrides.items() if k.startswith(("gpr.", "common.")) or k in _COMMON_KEYS}


def load_gpr_config(config_path: str | Path | None, overrides: Mapping[str, Any] | None = None,
                    force_on: bool = False) -> GPRConfig:
    """The resolved ``gpr`` section of ``config_path`` with the overrides that reach it; checked.

    ``force_on`` (the alias scripts) sets ``enabled``; otherwise the section's own value decides.
    """
    from minionerec.config import load_config

    cfg = load_config(GPRConfig, config_path, gpr_overrides(overrides or {}))
    if force_on:
        cfg = dataclasses.replace(cfg, enabled=True)
    cfg.check()
    return cfg


_PROMPT_KEYS = ("use_tokens", "target_type_prefix")
#: the keys of the section each recording stage (``gpr.config.yaml`` beside its outputs) depends on
STAGE_KEYS: dict[str, tuple[str, ...]] = {
    "data": ("enabled", "seed", "data_dir", "user_rule", "user_high", "user_mid", "context_rule", "item_type_rule",
             "item_type_quantile"),
    "convert": ("enabled", "data_dir"),
    "sft": ("enabled", "data_dir", *_PROMPT_KEYS, "vaft", "vaft_floor"),
    "rl": ("enabled", *_PROMPT_KEYS, "hepo", "hepo_alphas", "hepo_gamma", "hepo_coefs"),
    "evaluate": ("enabled", *_PROMPT_KEYS),
}


def gpr_stale_reason(section: str, folder: str | Path, config_path: str | Path | None,
                     overrides: Mapping[str, Any]) -> str | None:
    """Why a finished stage's outputs no longer match the ``gpr`` section it would run with now, or None.

    For ``run_all.sh``: switching the variant on, changing one of its keys, or switching it off after a
    GPR run makes the stage stale (its own section may be unchanged); a key only marks the stages that
    use it (:data:`STAGE_KEYS`: ``gpr.hepo`` reruns RL and what follows, not SFT).
    """
    import yaml

    from minionerec.config import to_dict

    if section not in STAGE_KEYS:
        return None
    marker = Path(folder) / f"{GPRConfig.section}.config.yaml"
    saved = (yaml.safe_load(marker.read_text(encoding="utf-8")) or {}).get(GPRConfig.section) if marker.is_file() else None
    now = load_gpr_config(config_path, overrides)
    if not now.enabled:
        return "gpr switched off (the outputs are a GPR run's)" if isinstance(saved, dict) and saved.get("enabled") else None
    if not isinstance(saved, dict):
        return "gpr switched on"
    current = to_dict(now)
    changed = [k for k in STAGE_KEYS[section] if saved.get(k) != current[k]]
    if changed:
        return "config " + ", ".join(f"gpr.{k} changed ({saved.get(k, 'unset')!r} -> {current[k]!r})"
                                     for k in changed[:3])
    return None


def run_gpr_stage(schema: type, main: Callable[[Any, GPRConfig], Any], argv: Sequence[str] | None = None,
                  force_on: bool = True) -> Any:
    """``main(stage cfg, gpr cfg)`` from ``[CONFIG.yaml] [--key v | --gpr.key v ...]``.

    ``force_on`` (the ``*_gpr.py`` aliases) switches the variant on; without it the config's
    ``gpr.enabled`` decides (the plain stages).  ``--help`` lists the stage's keys and the gpr
    section's; InputError -> one line, exit 2.
    """
    from minionerec.cli import run_cli
    from minionerec.config import load_config, parse_cli

    def build_and_run(args: list[str]) -> Any:
        config_path, overrides = parse_cli(args)
        return main(load_config(schema, config_path, overrides),
                    load_gpr_config(config_path, overrides, force_on=force_on))

    return run_cli(build_and_run, None if argv is None else list(argv), schema, GPRConfig)
