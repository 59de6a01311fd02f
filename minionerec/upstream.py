"""Upstream MiniOneRec's command-line flags, and what each one is here.

:data:`ALIASES` is the one table: ``{section: {upstream flag: Alias | Convert | Rejected}}``.
:func:`translate` rewrites a stage's command-line overrides with it before the keys are checked
(:func:`minionerec.config.load_config`), so ``python sft.py --micro_batch_size 8`` sets
``sft.per_device_train_batch_size`` and logs that once.  A flag whose meaning differs here is
refused with the project key to use instead.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from minionerec.errors import InputError

logger = logging.getLogger(__name__)

_TRUE = {"true", "yes", "1", "on"}


@dataclass(frozen=True)
class Alias:
    """Upstream's flag is the project key ``key`` under another name (same meaning, same value)."""

    key: str

    def describe(self) -> str:
        return f"is --{self.key}"


@dataclass(frozen=True)
class Convert:
    """Upstream's flag sets project keys through ``apply(value, current)`` -> ``{key: value}`` ({} = no effect).

    ``current(key)`` is the key's value before the command line (config file or default).
    """

    summary: str
    apply: Callable[[str, Callable[[str], Any]], dict[str, Any]]

    def describe(self) -> str:
        return self.summary


@dataclass(frozen=True)
class Rejected:
    """Upstream's flag means something else here (or nothing): refused with ``message``."""

    message: str

    def describe(self) -> str:
        return f"is refused: {self.message}"


Rule = Alias | Convert | Rejected


def _flag(value: str) -> bool:
    return str(value).strip().lower() in _TRUE


def _total_batch(value: str, current: Callable[[str], Any]) -> dict[str, Any]:
    """Upstream's sft.py: gradient_accumulation_steps = batch_size // micro_batch_size // world_size."""
    micro = int(current("per_device_train_batch_size"))
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    total = int(value)
    steps = total // micro // world
    if steps < 1 or total != steps * micro * world:
        raise InputError(f"upstream's --batch_size {total} must be a multiple of micro_batch_size ({micro}) x "
                         f"world size ({world}); it sets sft.gradient_accumulation_steps = batch/micro/world")
    return {"gradient_accumulation_steps": steps}


def _reward_type(value: str, current: Callable[[str], Any]) -> dict[str, Any]:
    return {"rewards": {str(value): 1.0}}


def _eval_batch_size(value: str, current: Callable[[str], Any]) -> dict[str, Any]:
    """Upstream's rl.py: the eval batch counts completions (G per prompt); here validation batches count prompts."""
    return {"validation_batch_prompts": max(1, int(value) // max(1, int(current("num_generations"))))}


def _beam_search(value: str, current: Callable[[str], Any]) -> dict[str, Any]:
    return {"rollout_mode": "beam_search" if _flag(value) else "sample"}


def _loss_switch(name: str) -> Callable[[str, Callable[[str], Any]], dict[str, Any]]:
    def apply(value: str, current: Callable[[str], Any]) -> dict[str, Any]:
        return {"loss_type": name} if _flag(value) else {}
    return apply


def _only(accepted: Callable[[str], bool], why: str) -> Callable[[str, Callable[[str], Any]], dict[str, Any]]:
    """A flag accepted only with values that behave as here (then it has no effect), refused otherwise."""

    def apply(value: str, current: Callable[[str], Any]) -> dict[str, Any]:
        try:
            ok = accepted(str(value))
        except ValueError:
            ok = False
        if not ok:
            raise InputError(why.format(value=value))
        return {}
    return apply


def _num_emb_list(value: str, current: Callable[[str], Any]) -> dict[str, Any]:
    parts = value if isinstance(value, list) else str(value).strip("[]").replace(",", " ").split()
    sizes = [int(v) for v in parts]
    if not sizes or min(sizes) < 1:
        raise InputError(f"upstream's --num_emb_list {value}: give one codebook size >= 1 per level")
    if len(set(sizes)) == 1:
        return {"codebook_size": sizes[0], "num_levels": len(sizes)}
    return {"codebook_sizes": sizes, "num_levels": len(sizes)}


def _off(why: str) -> Callable[[str, Callable[[str], Any]], dict[str, Any]]:
    """A switch accepted when false (then it has no effect, the behaviour here), refused when true."""

    def apply(value: str, current: Callable[[str], Any]) -> dict[str, Any]:
        if _flag(value):
            raise InputError(why)
        return {}
    return apply


def _environment(variable: str) -> Convert:
    """An upstream wandb flag: sets the environment variable that wandb / HF's WandbCallback read."""

    def apply(value: str, current: Callable[[str], Any]) -> dict[str, Any]:
        os.environ[variable] = str(value)
        return {}
    return Convert(f"sets ${variable} (used with --report_to wandb)", apply)


_WANDB_PROJECT, _WANDB_NAME = _environment("WANDB_PROJECT"), _environment("WANDB_NAME")
_FIXED_MAX_NEW = Convert("is accepted with no effect: constrained decoding stops after the SID",
                         _only(lambda v: int(v) > 0, "--max_new_tokens {value}: must be positive"))
ALIASES: dict[str, dict[str, Rule]] = {
    "sft": {
        "eval_file": Alias("valid_file"),
        "sid_index_path": Alias("index_path"),
        "item_meta_path": Alias("item_json_path"),
        "freeze_LLM": Alias("freeze_llm"),
        "micro_batch_size": Alias("per_device_train_batch_size"),
        "batch_size": Convert("(total batch) sets --gradient_accumulation_steps = batch_size / micro_batch_size "
                              "/ world size", _total_batch),
        "cutoff_len": Alias("max_len"),
        "num_epochs": Alias("num_train_epochs"),
        "sample": Alias("train_samples"),
        "wandb_project": _WANDB_PROJECT,
        "wandb_run_name": _WANDB_NAME,
        "wandb_watch": _environment("WANDB_WATCH"),
        "wandb_log_model": _environment("WANDB_LOG_MODEL"),
    },
    "rl": {
        "sid_index_path": Alias("index_path"),
        "item_meta_path": Alias("item_json_path"),
        "train_batch_size": Alias("per_device_train_batch_size"),
        "eval_step": Alias("eval_steps"),
        "test_beam": Alias("validation_beams"),
        "reward_type": Convert("NAME sets --rewards {NAME: 1.0}", _reward_type),
        "beam_search": Convert("true sets --rollout_mode beam_search, false --rollout_mode sample", _beam_search),
        "dapo": Convert("true sets --loss_type dapo", _loss_switch("dapo")),
        "gspo": Convert("true sets --loss_type gspo", _loss_switch("gspo")),
        "train_file": Alias("train_file"),
        "eval_file": Alias("valid_file"),
        "info_file": Alias("info_file"),
        "eval_batch_size": Convert("N (completions) sets --validation_batch_prompts N / num_generations",
                                   _eval_batch_size),
        "sample_train": Convert("false has no effect; true is refused", _off(
            "upstream's --sample_train True (drop 20% of prompts when the path contains 'sft') is --rl.train_subset N "
            "here (a seeded random N prompts)")),
        "test_during_training": Convert("false has no effect (validation is off by default); true is refused", _off(
            "upstream's --test_during_training True is --rl.eval_samples N here "
            "(validation every --eval_steps)")),
        "mask_all_zero": Convert("false has no effect; true is refused", _off(
            "upstream's --mask_all_zero True has no counterpart here; --rl.dynamic_sampling drops all-zero groups")),
        "wandb_project": _WANDB_PROJECT,
        "wandb_run_name": _WANDB_NAME,
    },
    "evaluate": {
        "base_model": Alias("model_path"),
        "test_data_path": Alias("test_file"),
        "result_json_data": Alias("result_json"),
        "exp_name": Alias("name"),
        "max_new_tokens": _FIXED_MAX_NEW,
        "length_penalty": Alias("length_penalty"),
        "temperature": Rejected("evaluation is beam search here (upstream's evaluate.py refused it too)"),
        "guidance_scale": Rejected("evaluation is beam search here (upstream's evaluate.py refused it too)"),
        "cuda_list": Rejected("one process per device: accelerate launch --num_processes N evaluate.py"),
    },
    "convert": {
        "dataset_name": Alias("dataset"),
        "category": Alias("name"),
    },
    "data": {
        "output_path": Alias("output_dir"),
        "metadata_file": Rejected("put meta_<dataset>.json in --data.input_path (the raw-files folder)"),
        "reviews_file": Rejected("put <dataset>_5.json in --data.input_path (the raw-files folder)"),
    },
    "sid": {
        "num_emb_list": Convert("K0 K1 K2 sets --codebook_sizes [K0, K1, K2] --num_levels 3 (equal sizes: "
                                "--codebook_size K)", _num_emb_list),
        "dropout_prob": Alias("dropout"),
        "bn": Alias("batch_norm"),
        "pretrained_codebook_path": Alias("codebook_path"),
        "ckpt_path": Rejected("upstream's --ckpt_path is --sid.ckpt_dir (folder) with --sid.checkpoint (which one) "
                              "here"),
        "output_root": Rejected("upstream's --output_root is --sid.output_path (the index file) here"),
        "iters": Rejected("upstream ignored --iters; faiss k-means iterations are --sid.kmeans_iters here"),
        "num_workers": Rejected("embeddings are read in memory here; drop the flag"),
    },
    "text2emb": {
        "plm_name": Alias("encoder_name"),
        "plm_checkpoint": Alias("model_path"),
        "max_sent_len": Alias("max_length"),
        "root": Rejected("upstream's --root is --text2emb.item_json_path (the .item.json) with --text2emb.output_path"),
        "gpu_id": Rejected("upstream's --gpu_id is --text2emb.device (cuda:N) here"),
    },
}

_announced: set[tuple[str, str]] = set()


def translate(section: str, overrides: dict[str, Any], current: Callable[[str], Any]) -> dict[str, Any]:
    """``overrides`` with upstream's flags of ``section`` (bare or ``section.``-qualified) turned into project keys.

    A project key given explicitly on the same command line wins over one an upstream flag sets.
    """
    rules = ALIASES.get(section, {})
    out: dict[str, Any] = {}
    derived: dict[str, Any] = {}
    converts: list[tuple[str, Convert, Any]] = []
    for key, value in overrides.items():
        flag = key[len(section) + 1:] if key.startswith(section + ".") else key
        rule = rules.get(flag)
        if rule is None:
            out[key] = value
        elif isinstance(rule, Rejected):
            raise InputError(f"--{key} (command line): {rule.message}")
        elif isinstance(rule, Alias):
            derived[rule.key] = value
            _announce(section, flag, f"is --{section}.{rule.key} here")
        else:
            converts.append((key, rule, value))
    for key, rule, value in converts:  # after the aliases: --batch_size reads --micro_batch_size in any order
        try:
            derived.update(rule.apply(value, lambda k: out.get(k, derived.get(k, current(k)))))
        except (InputError, ValueError) as exc:
            shown = " ".join(map(str, value)) if isinstance(value, list) else value
            raise InputError(f"--{key} {shown} (command line): {exc}") from None
        _announce(section, key.rsplit(".", 1)[-1], f"{rule.summary}")
    for key, value in derived.items():
        if key not in out and f"{section}.{key}" not in out:
            out[key] = value
    return out


def _announce(section: str, flag: str, what: str) -> None:
    if (section, flag) not in _announced:
        _announced.add((section, flag))
        logger.info("upstream's --%s %s", flag, what)


def help_text(section: str) -> str:
    """The alias table of one section for ``--help`` ("" when it has none)."""
    rules = ALIASES.get(section, {})
    if not rules:
        return ""
    lines = [f"upstream MiniOneRec flags accepted by the '{section}' section:"]
    lines += [f"  --{flag:<24} {rule.describe()}" for flag, rule in rules.items()]
    return "\n".join(lines)


def markdown_table() -> str:
    """Every section's aliases as a Markdown table (the README's "Coming from upstream")."""
    rows = ["| section | upstream flag | here |", "|---|---|---|"]
    for section, rules in ALIASES.items():
        rows += [f"| {section} | `--{flag}` | {rule.describe()} |" for flag, rule in rules.items()]
    return "\n".join(rows)
