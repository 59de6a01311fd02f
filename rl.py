"""RL stage: GRPO on an SFT checkpoint with constrained rollouts (every rollout a catalogue item).

    bash rl.sh configs/ml-100k.yaml [--key value ...]          # see rl.sh for multi-process

Reads ``${common.workdir}/llm/{train,valid,info}/<dataset>*`` and the SFT checkpoint, trains
with :class:`minionerec_trainer.MiniOneRecGRPOTrainer`, and writes the policy + tokenizer to
``rl.output_dir`` (Trainer checkpoints in ``checkpoint-N``; a rerun of a killed run with the same
config continues the newest, a finished run starts fresh, see sft.py) with ``rl.config.yaml`` and
``rl_summary.json`` beside them.

RL data (``rl.tasks``): the next-SID prompt (the same string SFT and evaluation use), title ->
SID over all items, and title history -> SID (a seeded sample of ``title_history_samples``
rows, as upstream's 10k), all from ``data.py`` and none containing its answer.  Each rollout's
reward reads its own row (``rewards.py``).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import torch

import data
from minionerec.checkpoints import (
    from_pretrained_checked,
    read_model_weights,
    remove_stale_checkpoints,
    resolve_resume,
    resume_errors,
)
from minionerec.cli import run_stage, seed_everything
from minionerec.config import CommonConfig, save_resolved_config
from minionerec.errors import InputError
from minionerec.holdout import holdout_seed_of, split_valid_by_user
from minionerec.io import (
    CatalogueItem,
    LLMDataFiles,
    SplitRow,
    find_llm_data_files,
    read_info,
    read_split_csv,
    require_file,
    write_json,
)
from minionerec.metrics import DEFAULT_KS
from minionerec.modeling import save_dtype_of, save_in_dtype, use_bf16
from minionerec.records import begin_stage, previous_run
from minionerec.sid import check_shared_sids, check_sid_tokens, sid_vocabulary, try_parse_sid

logger = logging.getLogger("minionerec.rl")

#: Tasks whose answer is a SID (the only ones a SID reward can score).
SID_TASKS = ("next_sid", "title2sid", "title_history2sid", "description2sid")


@dataclass
class RLConfig(CommonConfig):
    """The ``rl:`` section: GRPO on an SFT checkpoint with constrained rollouts (rewards, data, trainer settings)."""

    section: ClassVar[str] = "rl"

    # inputs
    model_path: str = field(default="${common.workdir}/sft", metadata={"help": "SFT checkpoint (model + tokenizer with SID tokens)."})
    data_dir: str = field(default="${common.workdir}/llm", metadata={"help": "Folder with {train,valid,info}/ files."})
    train_subdir: str = field(default="train", metadata={"help": "Sub-folder of data_dir holding the train CSV."})
    item_json_path: str = field(default="", metadata={"help": "Item texts for the title prompts (with index_path); empty: titles from the info file."})
    index_path: str = field(default="${common.workdir}/data/${common.dataset}/${common.dataset}.index.json",
                            metadata={"help": "SID index read with item_json_path."})
    tasks: list[str] = field(default_factory=lambda: ["next_sid", "title2sid", "title_history2sid"],
                             metadata={"help": "RL tasks (SID answers only): " + ", ".join(SID_TASKS)})
    title_history_samples: int = field(default=10000, metadata={"help": "Rows sampled for title_history2sid (upstream 10000); 0 = all."})
    train_on_valid: bool = field(
        default=False, metadata={"help": "Also train on the valid rows outside the validation users (as sft.train_on_valid): "
                                 "RL then sees exactly SFT's rows when validation_samples equals sft.eval_samples."})
    recent_rows: int = field(
        default=0, metadata={"help": "Keep only the N most recent rows (the split CSVs are in time order; with "
                             "train_on_valid the valid rows are the most recent); 0 = all rows."})
    train_subset: int = field(default=-1, metadata={"help": "Keep a seeded random N of the RL prompts (-1 = all)."})
    validation_samples: int = field(
        default=0, metadata={"help": "Valid rows for periodic HR/NDCG (0 = no validation): every row of a seeded set of users, "
                             "the same users as SFT's held-out slice when equal to sft.eval_samples (same seed)."})
    # rewards
    rewards: dict[str, float] = field(default_factory=lambda: {"ranking": 1.0},
                                      metadata={"help": "{reward: weight}; rule, ranking, ranking_only, prefix, semantic, sasrec."})
    embedding_path: str = field(default="", metadata={"help": "semantic reward: item-embedding .npy (row = item id)."})
    cf_model_path: str = field(default="", metadata={"help": "sasrec reward: model folder written by baselines.py."})
    cf_score_kind: str = field(default="logit", metadata={"help": "sasrec reward: logit (upstream), prob or log_prob."})
    # GRPO
    num_generations: int = field(default=16, metadata={"help": "G, completions per prompt."})
    rollout_mode: str = field(default="beam_search", metadata={"help": "beam_search, beam_sample or sample."})
    temperature: float = field(default=1.0, metadata={"help": "Temperature of sampling rollouts."})
    normalization: str = field(default="full", metadata={"help": "Decoder scores: full-vocabulary softmax or trie-only."})
    beta: float = field(default=1e-3, metadata={"help": "KL coefficient (k3)."})
    loss_type: str = field(default="grpo", metadata={"help": "grpo, dapo or gspo."})
    epsilon: float = field(default=0.2, metadata={"help": "PPO clip below 1."})
    epsilon_high: float = field(default=0.2, metadata={"help": "PPO clip above 1."})
    num_iterations: int = field(default=1, metadata={"help": "Policy updates per rollout."})
    advantage_epsilon: float = field(default=1e-4, metadata={"help": "Added to the group std."})
    scale_rewards: bool = field(default=True, metadata={"help": "Divide advantages by the group std."})
    sync_ref_model: bool = field(default=True, metadata={"help": "EMA-sync the reference model (rl.sh: true)."})
    ref_model_sync_steps: int = field(default=512, metadata={"help": "Steps between reference syncs."})
    ref_model_mixup_alpha: float = field(default=0.6, metadata={"help": "EMA weight of the policy at a sync."})
    dynamic_sampling: bool = field(default=False, metadata={"help": "Drop all-zero-advantage groups and refill."})
    max_refill_rounds: int = field(default=3, metadata={"help": "Refill rollouts per micro-step."})
    add_gt: bool = field(default=False, metadata={"help": "Put the target in place of the last rollout of a group that misses it."})
    select_best: bool = field(
        default=False,
        metadata={"help": "With validation: checkpoint at every validation and end on the checkpoint with the best "
                  "validation NDCG@10 (NDCG@K, K <= validation_beams; HF load_best_model_at_end); validation also runs "
                  "once before the first step."},
    )
    validation_beams: int = field(default=20, metadata={"help": "Beams of the periodic validation."})
    # optimisation
    output_dir: str = field(default="${common.workdir}/rl", metadata={"help": "Where the policy is saved."})
    per_device_train_batch_size: int = field(default=64, metadata={"help": "Completions per process per micro-step (multiple of G)."})
    gradient_accumulation_steps: int = field(default=2, metadata={"help": "Micro-steps per optimizer step."})
    learning_rate: float = field(default=1e-5, metadata={"help": "Peak learning rate."})
    num_train_epochs: float = field(default=2.0, metadata={"help": "Epochs over the RL prompts."})
    max_steps: int = field(default=-1, metadata={"help": "Stop after this many optimizer steps (-1 = epochs decide)."})
    warmup_ratio: float = field(default=0.03, metadata={"help": "Warm-up as a fraction of all steps."})
    lr_scheduler_type: str = field(default="cosine", metadata={"help": "HF scheduler name."})
    max_grad_norm: float = field(default=0.3, metadata={"help": "Gradient clipping."})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay."})
    eval_steps: float = field(default=0.1, metadata={"help": "Validate every N steps, or this fraction of all steps if < 1."})
    save_steps: float = field(default=0.1, metadata={"help": "Checkpoint every N steps, or this fraction of all steps if < 1."})
    save_total_limit: int = field(default=3, metadata={"help": "Trainer checkpoints kept."})
    logging_steps: int = field(default=1, metadata={"help": "Log every N optimizer steps."})
    bf16: str = field(default="auto", metadata={"help": "auto (bf16 autocast on a bf16 GPU or a CPU with native "
                      "bf16) for updates, rollouts and the reference model; true, false."})
    save_dtype: str = field(default="auto", metadata={"help": "dtype of the saved policy: auto (the SFT "
                            "checkpoint's), float32, bfloat16."})
    resume_from_checkpoint: str = field(default="auto", metadata={"help": "auto: continue an interrupted run of "
                                        "this config from its newest checkpoint (a finished run is not trained "
                                        "further: it starts fresh); none: start fresh; or a checkpoint folder."})
    report_to: str = field(default="none", metadata={"help": "HF report_to (none, tensorboard, wandb)."})


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------

def catalogue_items(catalogue: list[CatalogueItem], cfg: RLConfig) -> list[data.ItemText]:
    """Items for the item tasks: the info file's SIDs and titles, or ``item_json_path`` + the SID index."""
    if cfg.item_json_path:
        return data.load_items(cfg.index_path, cfg.item_json_path)
    return [data.ItemText(c.item_id, c.sid_string, c.title) for c in catalogue]


def build_rl_samples(cfg: RLConfig, rows: list[Any], items: list[data.ItemText],
                     replace: dict[str, list[data.TaskSample]] | None = None) -> list[data.TaskSample]:
    """The RL prompts of ``cfg.tasks`` (SID answers only), subsampled as configured.

    ``replace`` swaps a task's samples (rl_gpr.py: the GPR next-item prompts) before subsampling.
    """
    bad = [t for t in cfg.tasks if t not in SID_TASKS]
    if bad:
        raise InputError(f"rl.tasks {bad} do not answer with a SID; RL tasks: {', '.join(SID_TASKS)}")
    rng = random.Random(cfg.seed)
    category = data.category_phrase(cfg.category, cfg.dataset, cfg.category_phrase)
    per_task = data.build_task_samples(cfg.tasks, rows, items, category)
    per_task.update({task: chunk for task, chunk in (replace or {}).items() if task in per_task})
    samples: list[data.TaskSample] = []
    for task in cfg.tasks:
        chunk = per_task[task]
        if task == "title_history2sid" and 0 < cfg.title_history_samples < len(chunk):
            chunk = rng.sample(chunk, cfg.title_history_samples)
        for s in chunk:
            if try_parse_sid(s.target) is None or s.target_item is None:
                raise InputError(f"rl task {task}: sample target {s.target!r} is not a SID of a catalogue item")
        samples += chunk
        logger.info("rl task %s: %d prompts", task, len(chunk))
    if cfg.train_subset >= 0 and cfg.train_subset < len(samples):
        samples = rng.sample(samples, cfg.train_subset)
        logger.info("train_subset: kept %d prompts", len(samples))
    if not samples:
        raise InputError("the RL training set is empty: check rl.tasks, rl.train_subset and the train CSV")
    return samples


# --------------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------------

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
    from LogitProcessor import check_num_beams

    if cfg.rollout_mode in ("beam_search", "beam_sample"):
        check_num_beams(cfg.num_generations, trie, info_path, option="rl.num_generations")
    if validating:
        check_num_beams(cfg.validation_beams, trie, info_path, option="rl.validation_beams")


def selection_metric(validation_beams: int) -> str:
    """``NDCG@10``, or NDCG at the largest reported K that ``validation_beams`` beams can fill."""
    return f"NDCG@{max(k for k in DEFAULT_KS if k <= max(validation_beams, 1) and k <= 10)}"


def grpo_arguments(cfg: RLConfig, has_validation: bool) -> Any:
    from minionerec_trainer import MiniOneRecGRPOConfig

    if cfg.select_best and not has_validation:
        raise InputError("rl.select_best needs validation: set rl.validation_samples > 0 (and a valid CSV)")
    select_best = cfg.select_best
    return MiniOneRecGRPOConfig(
        output_dir=cfg.output_dir,
        num_generations=cfg.num_generations,
        rollout_mode=cfg.rollout_mode,
        temperature=cfg.temperature,
        beta=cfg.beta,
        loss_type=cfg.loss_type,
        epsilon=cfg.epsilon,
        epsilon_high=cfg.epsilon_high,
        num_iterations=cfg.num_iterations,
        advantage_epsilon=cfg.advantage_epsilon,
        scale_rewards=cfg.scale_rewards,
        sync_ref_model=cfg.sync_ref_model and cfg.beta > 0,
        ref_model_sync_steps=cfg.ref_model_sync_steps,
        ref_model_mixup_alpha=cfg.ref_model_mixup_alpha,
        dynamic_sampling=cfg.dynamic_sampling,
        max_refill_rounds=cfg.max_refill_rounds,
        add_gt=cfg.add_gt,
        validation_beams=cfg.validation_beams,
        per_device_train_batch_size=cfg.per_device_train_batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        learning_rate=cfg.learning_rate,
        num_train_epochs=cfg.num_train_epochs,
        max_steps=cfg.max_steps,
        warmup_steps=cfg.warmup_ratio,
        lr_scheduler_type=cfg.lr_scheduler_type,
        max_grad_norm=cfg.max_grad_norm,
        weight_decay=cfg.weight_decay,
        eval_strategy="steps" if has_validation else "no",
        eval_steps=cfg.eval_steps if has_validation else None,
        save_strategy="steps",
        save_steps=cfg.eval_steps if select_best else cfg.save_steps,
        load_best_model_at_end=select_best,
        metric_for_best_model=selection_metric(cfg.validation_beams) if select_best else None,
        greater_is_better=True if select_best else None,
        eval_on_start=select_best,
        save_total_limit=cfg.save_total_limit,
        logging_steps=cfg.logging_steps,
        bf16=use_bf16(cfg.bf16, "rl.bf16"),
        report_to=[] if cfg.report_to in ("", "none") else [cfg.report_to],
        seed=cfg.seed,
        use_cpu=not torch.cuda.is_available(),
        ddp_find_unused_parameters=False,
    )


def build_rewards(cfg: RLConfig, catalogue: list[CatalogueItem], info_path: Path) -> Any:
    from rewards import build_reward_set

    def cf_scorer():
        from sasrec import CFScorer

        return CFScorer.load(cfg.cf_model_path, info_path, "cuda" if torch.cuda.is_available() else "cpu")

    return build_reward_set(
        cfg.rewards, catalogue, cfg.embedding_path or None, cf_scorer if cfg.cf_model_path else None,
        cf_source=cfg.cf_model_path, cf_score_kind=cfg.cf_score_kind,
    )


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------

Row = TypeVar("Row")


def rows_to_train_on(cfg: RLConfig, train_rows: list[Row], valid_rows: list[Row] | None,
                     plain: Callable[[Row], SplitRow] = lambda r: r) -> list[Row]:
    """The train rows, plus the valid rows outside the validation users (``train_on_valid``), cut to ``recent_rows``.

    Rows stay in file order (time order), train first.  ``plain`` maps a variant's row to its SplitRow.
    """
    rows = list(train_rows)
    if cfg.train_on_valid:
        if valid_rows is None:
            raise InputError(f"rl.train_on_valid is set but there is no valid CSV under {cfg.data_dir}/valid")
        if not 0 < cfg.validation_samples < len(valid_rows):
            raise InputError(f"rl.train_on_valid needs 0 < rl.validation_samples < {len(valid_rows)} (the valid rows): "
                             "set it to sft.eval_samples so that RL holds out the users SFT held out")
        _, rest = split_validation_users(cfg, valid_rows, plain)
        rows += rest
        logger.info("train_on_valid: %d train rows + %d valid rows outside the validation users", len(train_rows), len(rest))
    if 0 < cfg.recent_rows < len(rows):
        rows = rows[-cfg.recent_rows:]
        logger.info("recent_rows: kept the %d most recent rows", len(rows))
    return rows


def split_validation_users(cfg: RLConfig, valid_rows: list[Row],
                           plain: Callable[[Row], SplitRow] = lambda r: r) -> tuple[list[Row], list[Row]]:
    """The valid rows of the validation users (SFT's held-out users when ``validation_samples`` equals
    ``sft.eval_samples``) and the other valid rows, both in file order."""
    held_out, _ = split_valid_by_user([plain(r) for r in valid_rows], cfg.validation_samples, holdout_seed_of(cfg))
    held = {id(r) for r in held_out}
    return [r for r in valid_rows if id(plain(r)) in held], [r for r in valid_rows if id(plain(r)) not in held]


def step_zero_is_best(curve: list[dict[str, float]], metric: str) -> bool:
    """Whether the validation before any RL step is at least as good as every later validation."""
    if not curve or curve[0]["step"] != 0:
        return False
    return all(curve[0][metric] >= point[metric] for point in curve[1:])


def restore_policy(model: Any, path: str | Path) -> None:
    """Load the weights of the checkpoint at ``path`` into ``model`` in place."""
    from minionerec_trainer import load_full_state_dict

    load_full_state_dict(model, read_model_weights(path), path)


class RLVariant:
    """The parts of the RL stage a variant (rl_gpr.py) may replace; these defaults are plain rl.py."""

    def read_rows(self, path: Path) -> list[Any]:
        """A split CSV's rows in this variant's row type."""
        return read_split_csv(path)

    def plain_row(self, row: Any) -> SplitRow:
        return row

    def samples_from_rows(self, cfg: RLConfig, rows: list[Any], items: list[data.ItemText]) -> list[data.TaskSample]:
        return build_rl_samples(cfg, [self.plain_row(r) for r in rows], items)

    def next_sid_samples(self, rows: list[Any]) -> list[data.TaskSample]:
        return data.next_sid_samples([self.plain_row(r) for r in rows])

    def checked_rows(self, path: Path, items: list[data.ItemText]) -> list[Any]:
        rows = self.read_rows(path)
        data.check_rows_against_index([self.plain_row(r) for r in rows], items, path)
        return rows

    def samples(self, cfg: RLConfig, files: LLMDataFiles,
                items: list[data.ItemText]) -> tuple[list[data.TaskSample], list[data.TaskSample]]:
        """The RL prompts and the validation prompts (empty without ``validation_samples``); each CSV is read once."""
        needs_valid = files.valid is not None and (cfg.train_on_valid or cfg.validation_samples > 0)
        valid = self.checked_rows(files.valid, items) if needs_valid else None
        rows = rows_to_train_on(cfg, self.checked_rows(files.train, items), valid if cfg.train_on_valid else None,
                                self.plain_row)
        validation = self.validation_samples(cfg, valid) if valid is not None and cfg.validation_samples else []
        return self.samples_from_rows(cfg, rows, items), validation

    def validation_samples(self, cfg: RLConfig, valid_rows: list[Any]) -> list[data.TaskSample]:
        """Every valid row of the held-out users (the users SFT held out)."""
        held_out, _ = split_validation_users(cfg, valid_rows, self.plain_row)
        return self.next_sid_samples(held_out)

    def build_trie(self, catalogue: list[CatalogueItem], tokenizer: Any) -> Any:
        from LogitProcessor import SIDTrie

        return SIDTrie.from_sids([c.sid_string for c in catalogue], tokenizer)

    def trainer_class(self) -> type:
        from minionerec_trainer import MiniOneRecGRPOTrainer

        return MiniOneRecGRPOTrainer

    def trainer_kwargs(self) -> dict[str, Any]:
        return {}


def main(cfg: RLConfig, variant: RLVariant | None = None) -> dict[str, Any]:
    from LogitProcessor import pad_token_id_of
    from minionerec_trainer import TrieRollout

    variant = variant or RLVariant()
    seed_everything(cfg.seed)
    output_dir = Path(cfg.output_dir)
    files = find_llm_data_files(cfg.data_dir, cfg.dataset, cfg.train_subdir)
    if files.train is None or files.info is None:
        raise InputError(f"need {cfg.data_dir}/{cfg.train_subdir}/{cfg.dataset}*.csv and {cfg.data_dir}/info/"
                         f"{cfg.dataset}*.txt: run convert_dataset.py or set rl.data_dir")
    catalogue = read_info(files.info)
    check_shared_sids({c.item_id: c.sid for c in catalogue}, files.info, cfg.allow_shared_sids)
    items = catalogue_items(catalogue, cfg)
    samples, validation = variant.samples(cfg, files, items)

    reward_set = build_rewards(cfg, catalogue, files.info)
    model, tokenizer = load_policy(cfg, catalogue)
    sid_strings = [c.sid_string for c in catalogue]
    trie = variant.build_trie(catalogue, tokenizer)
    check_beam_counts(cfg, trie, files.info, bool(validation))
    args = grpo_arguments(cfg, bool(validation))
    sid_to_items: dict[str, list[int]] = {}
    for c in catalogue:
        sid_to_items.setdefault(c.sid_string, []).append(c.item_id)
    trainer = variant.trainer_class()(
        model=model, args=args, train_dataset=samples, processing_class=tokenizer, reward_fn=reward_set,
        rollout_fn=TrieRollout(trie, pad_token_id_of(tokenizer), cfg.normalization, cfg.seed + args.process_index),
        valid_sids=set(sid_strings), eval_dataset=validation or None, catalogue=sid_to_items,
        **variant.trainer_kwargs(),
    )
    previous = previous_run(cfg, output_dir)
    trainer.accelerator.wait_for_everyone()  # every rank has read the folder before rank 0 changes it
    resume = resolve_resume(cfg.resume_from_checkpoint, output_dir, "rl", previous)
    if resume:
        trainer.load_synced_ref_model(resume)
        logger.info("resuming from %s", resume)
    elif trainer.is_world_process_zero():
        remove_stale_checkpoints(output_dir)
    if trainer.is_world_process_zero():
        begin_stage(cfg, output_dir)
    start = time.perf_counter()
    with resume_errors(resume):
        result = trainer.train(resume_from_checkpoint=resume)
    elapsed = time.perf_counter() - start
    summary: dict[str, Any] = {"train_prompts": len(samples), "steps": trainer.state.global_step,
                               "train_seconds": elapsed, "train_loss": result.training_loss,
                               "num_processes": trainer.accelerator.num_processes,
                               "distributed_type": trainer.accelerator.distributed_type.value}
    timing_keys = ("time/rollout", "time/scoring", "time/update", "reward", "kl", "zero_adv_frac", "valid_rate")
    logged = [h for h in trainer.state.log_history if "time/rollout" in h]
    for key in timing_keys:
        values = [h[key] for h in logged if key in h]
        if values:
            summary[f"mean_{key}"] = sum(values) / len(values)
    if validation:
        metric = selection_metric(cfg.validation_beams)
        curve = [{"step": h["step"], metric: h[f"eval_{metric}"]}
                 for h in trainer.state.log_history if f"eval_{metric}" in h]
        summary["validation_curve"] = curve
        if cfg.select_best:
            summary["best_checkpoint"] = trainer.state.best_model_checkpoint
            if step_zero_is_best(curve, metric):
                # HF only loads saved checkpoints; step 0 is the SFT policy, which no RL checkpoint beat
                restore_policy(trainer.model, cfg.model_path)
                summary["best_checkpoint"] = str(cfg.model_path)
                summary["kept_initial_policy"] = True
                logger.info("no RL checkpoint beat step 0 on validation: keeping the SFT policy of %s", cfg.model_path)
    save_in_dtype(trainer, save_dtype_of(cfg.save_dtype, str(cfg.model_path), "", "rl.save_dtype"))
    trainer.save_model(str(output_dir))
    if validation:
        summary["validation"] = trainer.evaluate()
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(str(output_dir))
        write_json(output_dir / "rl_summary.json", summary)
        save_resolved_config(cfg, output_dir)  # the done-record: last
        logger.info("RL done: %s", {k: (round(v, 4) if isinstance(v, float) else v) for k, v in summary.items()
                                    if k != "validation"})
    return summary


if __name__ == "__main__":
    run_stage(RLConfig, main)
