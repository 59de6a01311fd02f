"""The RL stage: GRPO on an SFT checkpoint with constrained rollouts (every rollout a catalogue item).

:func:`main` reads the data (:mod:`minionerec.rl.samples`), the SFT checkpoint and the rewards,
trains :class:`~minionerec.rl.trainer.MiniOneRecGRPOTrainer` with the arguments built from the
stage's config (:func:`~minionerec.rl.arguments.grpo_arguments`), and writes the policy +
tokenizer to ``rl.output_dir`` (Trainer checkpoints in ``checkpoint-N``; a rerun of a killed run
with the same config continues the newest, a finished run starts fresh) with ``rl.config.yaml``
and ``rl_summary.json`` beside them.  A variant (:class:`~minionerec.rl.variant.RLVariant`)
replaces the rows, prompts, trie or trainer class.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import torch

from minionerec.catalogue import CatalogueItem, read_info
from minionerec.checkpoints import (
    from_pretrained_checked,
    read_model_weights,
    remove_stale_checkpoints,
    resolve_resume,
    resume_errors,
)
from minionerec.cli import seed_everything
from minionerec.config import save_resolved_config
from minionerec.decoding import check_num_beams, pad_token_id_of
from minionerec.device import resolve_device
from minionerec.errors import InputError
from minionerec.io import require_file, write_json
from minionerec.llm import save_dtype_of, save_in_dtype
from minionerec.records import begin_stage, previous_run
from minionerec.rl.arguments import grpo_arguments, selection_metric
from minionerec.rl.config import RLConfig
from minionerec.rl.distributed import load_full_state_dict
from minionerec.rl.rewards import RewardSet, build_reward_set
from minionerec.rl.rollout import TrieRollout
from minionerec.rl.samples import catalogue_items, rl_data_files
from minionerec.rl.variant import RLVariant
from minionerec.sid import check_shared_sids, check_sid_tokens, sid_vocabulary

logger = logging.getLogger("minionerec.rl")

#: Logged trainer values averaged into the summary as ``mean_<key>``.
TIMING_KEYS = ("time/rollout", "time/scoring", "time/update", "reward", "kl", "zero_adv_frac", "valid_rate")


def load_policy(cfg: RLConfig, catalogue: list[CatalogueItem]) -> tuple[Any, Any]:
    """The SFT checkpoint and its tokenizer; InputError if the SID tokens are missing."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(cfg.model_path)
    require_file(path / "config.json", "model checkpoint", "run sft.py first or set rl.model_path to its output_dir")
    fix = "re-run sft.py, or set rl.model_path to a complete SFT output folder"
    tokenizer = from_pretrained_checked(AutoTokenizer, path, fix)
    check_sid_tokens(tokenizer, sid_vocabulary(c.sid for c in catalogue), source=f"the tokenizer of {path}")
    if tokenizer.eos_token is None:
        raise InputError(f"the tokenizer of {path} has no EOS token")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    model = from_pretrained_checked(AutoModelForCausalLM, path, fix, dtype=torch.float32)
    if model.get_input_embeddings().weight.shape[0] < len(tokenizer):
        raise InputError(f"{path}: the model has {model.get_input_embeddings().weight.shape[0]} embedding rows but "
                         f"the tokenizer {len(tokenizer)} tokens; save model and tokenizer together (sft.py does)")
    return model, tokenizer


def check_beam_counts(cfg: RLConfig, trie: Any, info_path: Path, validating: bool) -> None:
    """Beam rollouts and validation need at most as many beams as the catalogue has SIDs (named by RL's keys)."""
    if cfg.rollout_mode in ("beam_search", "beam_sample"):
        check_num_beams(cfg.num_generations, trie, info_path, option="rl.num_generations")
    if validating:
        check_num_beams(cfg.validation_beams, trie, info_path, option="rl.validation_beams")


def build_rewards(cfg: RLConfig, catalogue: list[CatalogueItem], info_path: Path) -> RewardSet:
    """The weighted rewards of ``rl.rewards`` (the CF model is loaded only when a reward needs it)."""

    def cf_scorer() -> Any:
        from minionerec.baselines import CFScorer

        return CFScorer.load(cfg.cf_model_path, info_path, str(resolve_device("auto")))

    return build_reward_set(
        cfg.rewards, catalogue, cfg.embedding_path or None, cf_scorer if cfg.cf_model_path else None,
        cf_source=cfg.cf_model_path, cf_score_kind=cfg.cf_score_kind,
    )


def step_zero_is_best(curve: list[dict[str, float]], metric: str) -> bool:
    """Whether the validation before any RL step is at least as good as every later validation."""
    if not curve or curve[0]["step"] != 0:
        return False
    return all(curve[0][metric] >= point[metric] for point in curve[1:])


def restore_policy(model: Any, path: str | Path) -> None:
    """Load the weights of the checkpoint at ``path`` into ``model`` in place."""
    load_full_state_dict(model, read_model_weights(path), path)


def sid_to_item_ids(catalogue: list[CatalogueItem]) -> dict[str, list[int]]:
    """``{sid_string: [item ids]}`` (several items when SIDs are shared) for item-level validation metrics."""
    out: dict[str, list[int]] = {}
    for c in catalogue:
        out.setdefault(c.sid_string, []).append(c.item_id)
    return out


def resume_or_start(trainer: Any, cfg: RLConfig, output_dir: Path) -> str | None:
    """The checkpoint to resume from (its synced reference model restored), or None after clearing stale ones."""
    previous = previous_run(cfg, output_dir)
    trainer.accelerator.wait_for_everyone()  # every rank has read the folder before rank 0 changes it
    resume = resolve_resume(cfg.resume_from_checkpoint, output_dir, "rl", previous)
    if resume:
        trainer.load_synced_ref_model(resume)
        logger.info("resuming from %s", resume)
    elif trainer.is_world_process_zero():
        remove_stale_checkpoints(output_dir)
    return resume


def training_summary(trainer: Any, result: Any, n_prompts: int, elapsed: float) -> dict[str, Any]:
    """Steps, loss, processes and the means of the logged :data:`TIMING_KEYS`."""
    summary: dict[str, Any] = {"train_prompts": n_prompts, "steps": trainer.state.global_step,
                               "train_seconds": elapsed, "train_loss": result.training_loss,
                               "num_processes": trainer.accelerator.num_processes,
                               "distributed_type": trainer.accelerator.distributed_type.value}
    logged = [h for h in trainer.state.log_history if "time/rollout" in h]
    for key in TIMING_KEYS:
        values = [h[key] for h in logged if key in h]
        if values:
            summary[f"mean_{key}"] = sum(values) / len(values)
    return summary


def add_validation_curve(summary: dict[str, Any], trainer: Any, cfg: RLConfig) -> None:
    """The validation curve; with ``select_best`` the chosen checkpoint (the SFT policy when step 0 stays best)."""
    metric = selection_metric(cfg.validation_beams)
    curve = [{"step": h["step"], metric: h[f"eval_{metric}"]}
             for h in trainer.state.log_history if f"eval_{metric}" in h]
    summary["validation_curve"] = curve
    if not cfg.select_best:
        return
    summary["best_checkpoint"] = trainer.state.best_model_checkpoint
    if step_zero_is_best(curve, metric):
        # HF only loads saved checkpoints; step 0 is the SFT policy, which no RL checkpoint beat
        restore_policy(trainer.model, cfg.model_path)
        summary["best_checkpoint"] = str(cfg.model_path)
        summary["kept_initial_policy"] = True
        logger.info("no RL checkpoint beat step 0 on validation: keeping the SFT policy of %s", cfg.model_path)


def main(cfg: RLConfig, variant: RLVariant | None = None) -> dict[str, Any]:
    """Run the RL stage of ``cfg`` (with ``variant``'s hooks); returns the summary written to rl_summary.json."""
    variant = variant or RLVariant()
    seed_everything(cfg.seed)
    output_dir = Path(cfg.output_dir)
    files = rl_data_files(cfg)
    if files.train is None or files.info is None:
        raise InputError(f"need {cfg.data_dir}/{cfg.train_subdir}/{cfg.dataset}*.csv and {cfg.data_dir}/info/"
                         f"{cfg.dataset}*.txt: run convert_dataset.py, or set rl.data_dir (or rl.train_file and "
                         "rl.info_file)")
    catalogue = read_info(files.info)
    check_shared_sids({c.item_id: c.sid for c in catalogue}, files.info, cfg.allow_shared_sids)
    items = catalogue_items(catalogue, cfg)
    samples, validation = variant.samples(cfg, files, items)

    reward_set = build_rewards(cfg, catalogue, files.info)
    model, tokenizer = load_policy(cfg, catalogue)
    trie = variant.build_trie(catalogue, tokenizer)
    check_beam_counts(cfg, trie, files.info, bool(validation))
    args = grpo_arguments(cfg, bool(validation))
    trainer = variant.trainer_class()(
        model=model, args=args, train_dataset=samples, processing_class=tokenizer, reward_fn=reward_set,
        rollout_fn=TrieRollout(trie, pad_token_id_of(tokenizer), cfg.normalization, cfg.seed + args.process_index),
        valid_sids={c.sid_string for c in catalogue}, eval_dataset=validation or None,
        catalogue=sid_to_item_ids(catalogue), **variant.trainer_kwargs(),
    )
    resume = resume_or_start(trainer, cfg, output_dir)
    if trainer.is_world_process_zero():
        begin_stage(cfg, output_dir)
    start = time.perf_counter()
    with resume_errors(resume):
        result = trainer.train(resume_from_checkpoint=resume)
    summary = training_summary(trainer, result, len(samples), time.perf_counter() - start)
    if validation:
        add_validation_curve(summary, trainer, cfg)
    save_in_dtype(trainer, save_dtype_of(cfg.save_dtype, str(cfg.model_path), "", "rl.save_dtype"))
    trainer.save_model(str(output_dir))
    if validation:
        summary["validation"] = trainer.evaluate()
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(str(output_dir))
        write_json(output_dir / "rl_summary.json", summary)
        variant.save_outputs(output_dir)
        save_resolved_config(cfg, output_dir)  # the done-record: last
        logger.info("RL done: %s", {k: (round(v, 4) if isinstance(v, float) else v) for k, v in summary.items()
                                    if k != "validation"})
    return summary
