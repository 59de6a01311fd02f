"""The SFT stage: :class:`SFTConfig` (the ``sft:`` section) and :func:`main` (train, then save).

Teaches a causal LM to generate the SID of the next item (plus the alignment tasks).  Inputs:
``{data_dir}/{train,valid}/<dataset>*.csv`` (upstream format), the SID index, and the item texts.
Output: ``output_dir`` holds the final (best by validation loss) model, the tokenizer with the SID
tokens, ``sft.config.yaml`` and ``sft.summary.json``; Trainer checkpoints live in
``output_dir/checkpoint-N``; a rerun of a killed run with the same config continues from the newest
(``resume_from_checkpoint: auto``, the default; ``none`` starts fresh), while a finished run
(``sft.done.json`` present) is never trained further: a rerun starts from scratch.  Loss is on the
response only; with bf16 (``auto``: a bf16 GPU or a CPU with native bf16) weights stay fp32 and the
forward pass runs under bf16 autocast, the loss's log-softmax in fp32.  The saved model has the base
model's dtype (``save_dtype``) and a greedy/beam ``generation_config``.

The pieces: data in :mod:`minionerec.llm.sft_data`, model building in :mod:`minionerec.llm.build`,
collator/loss/Trainer/arguments in :mod:`minionerec.llm.training`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch

from minionerec.budget import WALL_CLOCK_CAP
from minionerec.checkpoints import remove_stale_checkpoints, resolve_resume, resume_errors
from minionerec.cli import seed_everything
from minionerec.config import CommonConfig, save_resolved_config
from minionerec.io import find_llm_data_files, write_json
from minionerec.llm.build import build_model
from minionerec.llm.efficient import apply_efficiency_keys, merge_lora
from minionerec.llm.modeling import TINY_QWEN2, save_dtype_of, save_in_dtype
from minionerec.llm.sft_data import load_sft_data
from minionerec.llm.tasks import DEFAULT_TASK_WEIGHTS, TASK_NAMES
from minionerec.llm.tokenization import tokenize_samples
from minionerec.llm.training import (
    PaddingCollator,
    check_history_label_weight,
    check_label_smoothing,
    encode_train_samples,
    response_only_trainer_class,
    set_attention_dropout,
    time_limit_callback,
    to_dataset,
    training_arguments,
)
from minionerec.records import begin_stage, previous_run

__all__ = ["SFTConfig", "main"]

logger = logging.getLogger("minionerec.sft")


@dataclass
class SFTConfig(CommonConfig):
    """The ``sft:`` section: the base model, the task mixture and the Trainer settings of supervised fine-tuning."""

    section: ClassVar[str] = "sft"

    # data
    data_dir: str = field(default="${common.workdir}/llm", metadata={"help": "Folder with {train,valid,test,info}/ CSVs."})
    train_subdir: str = field(default="train", metadata={"help": "Sub-folder of data_dir holding the train CSV."})
    train_file: str = field(default="", metadata={"help": "Explicit train CSV (overrides data_dir lookup)."})
    valid_file: str = field(default="", metadata={"help": "Explicit valid CSV (overrides data_dir lookup)."})
    index_path: str = field(default="${common.workdir}/data/${common.dataset}/${common.dataset}.index.json",
                            metadata={"help": "SID index {item: [tokens]}."})
    item_json_path: str = field(default="${common.workdir}/data/${common.dataset}/${common.dataset}.item.json",
                                metadata={"help": "Item texts (title, description); empty: titles from the info file."})
    info_file: str = field(default="", metadata={"help": "Info file, used for titles when item_json_path is empty."})
    task_weights: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_TASK_WEIGHTS),
                                           metadata={"help": "Per-task copies in the mixture (0 = off); tasks: "
                                                     + ", ".join(TASK_NAMES)})
    description_chars: int = field(default=300, metadata={"help": "Character budget of descriptions in prompts."})
    eval_samples: int = field(default=0, metadata={"help": "Valid rows used for the validation loss: every row of a seeded set of "
                              "users, at least this many rows (whole users, so no target leaks via sliding windows); 0 = all."})
    train_samples: int = field(default=-1, metadata={"help": "Keep a seeded random N of the train CSV rows "
                               "before the task mixture (upstream's --sample; -1 = all)."})
    train_on_valid: bool = field(default=False, metadata={"help": "Also train on the valid rows outside the eval slice."})
    max_len: int = field(default=512, metadata={"help": "Max tokens per sample (left-truncated)."})
    sequence_loss: bool = field(default=False, metadata={"help": "Sequence objective: next_sid rows also carry a loss "
                                "on "
                                "the SID tokens of every history item after the first (every next item of the row in "
                                "one causal pass); the validation loss stays on the response only."})
    history_label_weight: float = field(default=1.0, metadata={"help": "With sequence_loss: the training weight of "
                                        "each history label against the row's own target (1 = every next item "
                                        "alike; 0.2 = the target leads; 0 = next-SID only)."})
    # model
    output_dir: str = field(default="${common.workdir}/sft", metadata={"help": "Where the model is saved."})
    base_model: str = field(default=TINY_QWEN2, metadata={"help": "tiny-qwen2 (embedded default), smollm2, a local folder or a hub id."})
    gguf_file: str = field(default="", metadata={"help": "GGUF file inside base_model to load (de-quantised)."})
    tokenizer: str = field(default="bpe", metadata={"help": "tiny-qwen2 only: bpe (small, trained on item texts) or qwen (real vocabulary)."})
    train_from_scratch: bool = field(default=False, metadata={"help": "Keep base_model's architecture, re-initialise its weights."})
    hidden_size: int = field(default=128, metadata={"help": "tiny-qwen2: hidden size."})
    num_layers: int = field(default=2, metadata={"help": "tiny-qwen2: decoder layers."})
    num_heads: int = field(default=4, metadata={"help": "tiny-qwen2: attention heads."})
    num_kv_heads: int = field(default=2, metadata={"help": "tiny-qwen2: key/value heads."})
    intermediate_size: int = field(default=512, metadata={"help": "tiny-qwen2: MLP width."})
    tie_word_embeddings: bool = field(default=True, metadata={"help": "tiny-qwen2: share input embeddings and LM head."})
    template_tokens: bool = field(default=True, metadata={"help": "tiny-qwen2 + bpe: add the constant pieces of the prompt templates as whole tokens (the fixed prompt text becomes ~3 tokens instead of ~70)."})
    bpe_vocab_size: int = field(default=4000, metadata={"help": "tiny-qwen2 + bpe: vocabulary size before SID tokens."})
    sid_init: str = field(default="random", metadata={"choices": ("random", "text"),
                          "help": "New SID token rows: random (drawn like the existing rows) or text (each token "
                          "from the mean text embedding of its items, projected: "
                          "minionerec.llm.modeling.init_sid_rows_from_text)."})
    item_tokens: bool = field(default=False, metadata={"help": "History items enter prompts as one token each "
                              "(<item_12_3_200>, one per catalogue item; its row starts at the scaled sum of its SID "
                              "level rows, half from its projected text embedding when text_embedding_path exists); "
                              "responses stay SID tokens.  The saved tokenizer carries the tokens, so RL and "
                              "evaluation build the same prompts.  With sequence_loss the history item tokens are "
                              "its labels."})
    text_embedding_path: str = field(
        default="${common.workdir}/data/${common.dataset}/${common.dataset}.emb-minilm.npy",
        metadata={"help": "Item text embeddings (.npy from text2emb) used by sid_init=text and item_tokens."})
    freeze_llm: bool = field(default=False, metadata={"help": "Train only the SID rows of embeddings / untied head."})
    freeze_layers: int = field(default=0, metadata={"help": "Freeze the first N decoder layers and the non-SID embedding "
                               "rows (weight decay forced to 0); 0 = off."})
    lora_r: int = field(default=0, metadata={"help": "LoRA rank (peft; 0 = off): adapters on lora_target_modules plus "
                        "trainable SID token rows; the saved model is the merged model."})
    lora_alpha: float = field(default=32.0, metadata={"help": "LoRA scaling numerator (scale = lora_alpha / lora_r)."})
    lora_dropout: float = field(default=0.05, metadata={"help": "Dropout on the LoRA adapters' input."})
    lora_target_modules: str = field(default="all-linear", metadata={"help": "all-linear (every linear layer but the "
                                     "LM head) or comma-separated module names (q_proj,v_proj,...)."})
    # optimisation
    per_device_train_batch_size: int = field(default=32, metadata={"help": "Micro-batch per process."})
    per_device_eval_batch_size: int = field(default=64, metadata={"help": "Eval micro-batch per process."})
    gradient_accumulation_steps: int = field(default=1, metadata={"help": "Micro-batches per optimizer step."})
    learning_rate: float = field(default=3e-4, metadata={"help": "Peak learning rate."})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay (forced to 0 with freeze_llm)."})
    label_smoothing: float = field(default=0.0, metadata={"help": "Label smoothing of the training loss (0 = off, "
                                   "upstream); the validation loss stays the plain cross-entropy."})
    attention_dropout: float = field(default=-1.0, metadata={"help": "Dropout on the attention weights while "
                                     "training; -1 = the base model's own (0 for Qwen2, SmolLM2 and the tiny model)."})
    num_train_epochs: float = field(default=10.0, metadata={"help": "Epochs over the mixture."})
    max_steps: int = field(default=-1, metadata={"help": "Stop after this many optimizer steps (-1 = epochs decide)."})
    warmup_steps: int = field(default=20, metadata={"help": "Linear warm-up steps."})
    lr_scheduler_type: str = field(default="cosine", metadata={"help": "HF scheduler name (linear, cosine, ...)."})
    max_grad_norm: float = field(default=1.0, metadata={"help": "Gradient clipping."})
    eval_steps: float = field(default=0.1, metadata={"help": "Evaluate (and checkpoint) every N steps, or this fraction of all steps if < 1."})
    early_stopping_patience: int = field(default=3, metadata={"help": "Evaluations without a better validation loss before stopping (0 = off)."})
    save_total_limit: int = field(default=2, metadata={"help": "Trainer checkpoints kept (the best is always kept)."})
    group_by_length: bool = field(default=True, metadata={"help": "Batch samples of similar length together."})
    bf16: str = field(default="auto", metadata={"help": "auto (bf16 autocast on a bf16-capable GPU or a CPU with "
                      "native bf16: AVX512-BF16/AMX), true, false."})
    save_dtype: str = field(default="auto", metadata={"help": "dtype of the saved model: auto (the base model's), "
                            "float32, bfloat16."})
    logging_steps: int = field(default=20, metadata={"help": "Log the training loss every N steps."})
    dataloader_num_workers: int = field(default=0, metadata={"help": "DataLoader workers."})
    resume_from_checkpoint: str = field(default="auto", metadata={"help": "auto: continue an interrupted run of "
                                        "this config from its newest checkpoint (a finished run is not trained "
                                        "further: it starts fresh); none: start fresh; or a checkpoint folder."})
    max_train_minutes: float = field(default=0.0, metadata={"help": "Safety valve: stop training (evaluate + checkpoint first) "
                                     "after this many minutes; 0 = off. Epochs/steps are the budget; when it fires, "
                                     "sft.summary.json and results.md say the model is not comparable."})
    num_threads: int = field(default=0, metadata={"help": "CPU threads for torch (0 = torch's default; 1 is fastest on a busy shared CPU)."})
    report_to: str = field(default="none", metadata={"help": "HF report_to (none, tensorboard, wandb)."})


def main(cfg: SFTConfig, variant: Any = None) -> dict[str, Any]:
    """Train and save.  ``variant`` (``minionerec.gpr.GPRVariant``, the ``gpr:`` section) changes the data
    (prompts, per-sample weights) and adds its tokens; None or a switched-off variant is plain SFT."""
    from transformers import EarlyStoppingCallback

    seed_everything(cfg.seed)
    if cfg.num_threads > 0:
        torch.set_num_threads(cfg.num_threads)
    if (cfg.freeze_llm or cfg.freeze_layers) and cfg.weight_decay:
        logger.info("freeze_llm/freeze_layers: weight_decay %.3g -> 0 so that frozen rows keep their values",
                    cfg.weight_decay)
    output_dir = Path(cfg.output_dir)
    sft_data = load_sft_data(cfg, variant)
    extra_tokens: Sequence[str] = ()
    extra_pieces: Sequence[str] = ()
    if variant is not None and variant.enabled:
        extra_tokens = variant.special_tokens(find_llm_data_files(cfg.data_dir, cfg.dataset, cfg.train_subdir).info)
        extra_pieces = variant.template_pieces()
    model, tokenizer, sid_ids = build_model(cfg, sft_data.items, extra_tokens, extra_pieces)
    model = apply_efficiency_keys(cfg, model, sid_ids)
    set_attention_dropout(model, cfg.attention_dropout)
    train_encoded = encode_train_samples(cfg, tokenizer, sft_data.train, set(sid_ids))
    if sft_data.train_weights is not None:
        train_encoded["sample_weight"] = list(sft_data.train_weights)
    train_set = to_dataset(train_encoded)
    eval_set = to_dataset(tokenize_samples(tokenizer, sft_data.valid, cfg.max_len)) if sft_data.valid else None
    tokens_per_epoch = sum(train_set["length"])
    logger.info("train: %d samples, %d tokens per epoch; eval: %d samples", len(train_set), tokens_per_epoch,
                len(eval_set) if eval_set is not None else 0)

    callbacks = []
    if eval_set is not None and cfg.early_stopping_patience > 0:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=cfg.early_stopping_patience))
    time_limit = time_limit_callback(cfg.max_train_minutes) if cfg.max_train_minutes > 0 else None
    if time_limit is not None:
        callbacks.append(time_limit)
    trainer_class = response_only_trainer_class()
    trainer_class.label_smoothing = check_label_smoothing(cfg.label_smoothing)
    trainer_class.history_label_weight = check_history_label_weight(cfg.history_label_weight)
    trainer = trainer_class(
        model=model,
        args=training_arguments(cfg, eval_set is not None),
        train_dataset=train_set,
        eval_dataset=eval_set,
        data_collator=PaddingCollator(tokenizer.pad_token_id, tokenizer.padding_side),
        processing_class=tokenizer,
        callbacks=callbacks,
    )
    previous = previous_run(cfg, output_dir)
    trainer.accelerator.wait_for_everyone()  # every rank has read the folder before rank 0 changes it
    resume = resolve_resume(cfg.resume_from_checkpoint, output_dir, "sft", previous)
    if trainer.is_world_process_zero():
        if resume is None:
            remove_stale_checkpoints(output_dir)
        begin_stage(cfg, output_dir)
    start = time.time()
    with resume_errors(resume):
        result = trainer.train(resume_from_checkpoint=resume)
    wall = time.time() - start
    summary: dict[str, Any] = {
        "train_loss": result.training_loss,
        "global_step": trainer.state.global_step,
        "epochs": trainer.state.epoch,
        "train_wall_s": wall,
        "num_processes": trainer.accelerator.num_processes,
        "distributed_type": trainer.accelerator.distributed_type.value,
        "train_samples": len(train_set),
        "train_tokens_per_epoch": tokens_per_epoch,
        "tokens_per_s": tokens_per_epoch * float(trainer.state.epoch or 0) / max(wall, 1e-9),
        "best_checkpoint": trainer.state.best_model_checkpoint,
        "best_eval_loss": trainer.state.best_metric,
    }
    if time_limit is not None and time_limit.record is not None:
        summary[WALL_CLOCK_CAP] = time_limit.record
    if eval_set is not None:
        summary["final_eval_loss"] = trainer.evaluate()["eval_loss"]
    merge_lora(trainer)
    save_in_dtype(trainer, save_dtype_of(cfg.save_dtype, cfg.base_model, cfg.gguf_file, "sft.save_dtype"))
    trainer.save_model(cfg.output_dir)
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(cfg.output_dir)
        write_json(output_dir / "sft.summary.json", summary)
        if variant is not None:
            variant.save_config(cfg.output_dir)
        save_resolved_config(cfg, cfg.output_dir)  # the done-record: last
        logger.info("saved model + tokenizer to %s: %s", cfg.output_dir, summary)
    return summary
