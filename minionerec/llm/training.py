"""SFT training pieces: the padding collator, the response-only loss and Trainer, the regularisation keys,
the wall-clock safety valve, the encoding of the mixture and the Trainer's arguments."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch

from minionerec.budget import wall_clock_cap
from minionerec.checkpoints import TiedWeightsLoadMixin
from minionerec.device import use_bf16
from minionerec.errors import InputError
from minionerec.llm.tasks import TaskSample
from minionerec.llm.tokenization import tokenize_samples

if TYPE_CHECKING:
    from minionerec.llm.sft import SFTConfig

__all__ = [
    "PaddingCollator", "check_history_label_weight", "check_label_smoothing", "encode_train_samples", "response_loss",
    "response_only_trainer_class", "set_attention_dropout", "time_limit_callback", "to_dataset", "training_arguments",
]

logger = logging.getLogger("minionerec.sft")


class PaddingCollator:
    """Pads ``input_ids``/``labels`` on the tokenizer's side and passes explicit position ids.

    Position ids count only real tokens, so left and right padding give the same loss and
    match what generation computes from the attention mask.
    """

    def __init__(self, pad_token_id: int, padding_side: str = "left", pad_to_multiple_of: int = 8):
        if padding_side not in ("left", "right"):
            raise ValueError(f"padding_side must be left or right, got {padding_side!r}")
        self.pad_token_id = pad_token_id
        self.padding_side = padding_side
        self.pad_to_multiple_of = pad_to_multiple_of

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        longest = max(len(f["input_ids"]) for f in features)
        width = math.ceil(longest / self.pad_to_multiple_of) * self.pad_to_multiple_of
        input_ids = torch.full((len(features), width), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(features), width), -100, dtype=torch.long)
        attention = torch.zeros((len(features), width), dtype=torch.long)
        for row, f in enumerate(features):
            n = len(f["input_ids"])
            span = slice(width - n, width) if self.padding_side == "left" else slice(0, n)
            input_ids[row, span] = torch.as_tensor(f["input_ids"])
            labels[row, span] = torch.as_tensor(f["labels"])
            attention[row, span] = 1
        position_ids = (attention.cumsum(dim=1) - 1).clamp(min=0)
        batch = {"input_ids": input_ids, "attention_mask": attention, "position_ids": position_ids, "labels": labels}
        if "sample_weight" in features[0]:
            batch["sample_weight"] = torch.tensor([float(f["sample_weight"]) for f in features], dtype=torch.float32)
        if "response_len" in features[0]:  # the sequence objective: which labels are the row's own target
            response = torch.zeros((len(features), width), dtype=torch.bool)
            for row, f in enumerate(features):
                end = width if self.padding_side == "left" else len(f["input_ids"])
                response[row, end - int(f["response_len"]):end] = True
            batch["response_mask"] = response
        return batch


def response_loss(model: Any, batch: dict[str, torch.Tensor], label_smoothing: float = 0.0,
                  history_label_weight: float = 1.0) -> tuple[torch.Tensor, Any]:
    """Mean cross-entropy over the response tokens, with the LM head applied only where it is needed.

    Prompt positions carry no loss, so computing their logits (a vocabulary-wide matmul per
    token) is wasted work: with left padding every response sits in the last columns, and
    ``logits_to_keep`` limits the head to the columns from the earliest response onwards.

    With ``batch["sample_weight"]`` (B,) each response token's cross-entropy is multiplied by its
    sample's weight before the same token mean (VAFT); weights of 1 give the unweighted loss.
    ``label_smoothing`` spreads that share of each target over the whole vocabulary (torch's definition).
    With ``batch["response_mask"]`` (the sequence objective) the history labels outside it count
    ``history_label_weight`` each and the row's own target 1, in a weighted mean (0 = next-SID only,
    1 = every next item alike).
    """
    labels = batch["labels"]
    width = labels.shape[1]
    labelled = (labels != -100).any(dim=0).nonzero()
    first = int(labelled[0]) if len(labelled) else width - 1
    keep = min(width, width - first + 1)
    outputs = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                    position_ids=batch.get("position_ids"), logits_to_keep=keep, use_cache=False)
    logits = outputs.logits[:, :-1].float()
    targets = labels[:, width - keep + 1:]
    weights = batch.get("sample_weight")
    response = batch.get("response_mask")
    weigh_history = response is not None and history_label_weight != 1.0
    if weights is None and not weigh_history:
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                                                 ignore_index=-100, label_smoothing=label_smoothing)
        return loss, outputs
    per_token = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                                                  ignore_index=-100, reduction="none",
                                                  label_smoothing=label_smoothing).view(targets.shape)
    counted = (targets != -100).to(per_token.dtype)
    if weigh_history:
        on_response = response[:, width - keep + 1:].to(per_token.dtype)
        counted = counted * (on_response + (1 - on_response) * history_label_weight)
    weighted = per_token * counted
    if weights is not None:
        weighted = weighted * weights.to(per_token.dtype).unsqueeze(1)
    return weighted.sum() / counted.sum().clamp(min=1e-8), outputs


def response_only_trainer_class() -> type:
    """HF Trainer whose loss is :func:`response_loss` (a per-batch mean; the Trainer scales it for accumulation).

    ``label_smoothing`` (a class attribute, set by the SFT stage) applies to the training loss only, so the
    validation loss that early stopping and checkpoint selection read stays the plain cross-entropy."""
    from transformers import Trainer

    class ResponseOnlyTrainer(TiedWeightsLoadMixin, Trainer):
        loss_is_scaled_for_ga = False
        label_smoothing = 0.0
        history_label_weight = 1.0

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):  # noqa: D102
            loss, outputs = response_loss(model, inputs, self.label_smoothing if model.training else 0.0,
                                          self.history_label_weight)
            return (loss, outputs) if return_outputs else loss

    return ResponseOnlyTrainer


def check_history_label_weight(value: float) -> float:
    """``sft.history_label_weight``, checked: a weight >= 0."""
    if not value >= 0:
        raise InputError(f"sft.history_label_weight must be >= 0, got {value}")
    return float(value)


def check_label_smoothing(value: float) -> float:
    """``sft.label_smoothing``, checked: a share in [0, 1)."""
    if not 0.0 <= value < 1.0:
        raise InputError(f"sft.label_smoothing must be in [0, 1), got {value}")
    return value


def set_attention_dropout(model: Any, rate: float) -> int:
    """Set the attention-weight dropout of every attention module of ``model`` (and its config) to ``rate``;
    a negative rate keeps the model's own.  Returns how many modules were changed.

    HF attention modules read ``self.attention_dropout`` at each forward and apply it only in training mode,
    so evaluation and decoding are unaffected."""
    if rate < 0:
        return 0
    if rate >= 1:
        raise InputError(f"sft.attention_dropout must be < 1 (or -1 for the model's own), got {rate}")
    changed = 0
    for module in model.modules():
        if isinstance(getattr(module, "attention_dropout", None), (int, float)):
            module.attention_dropout = float(rate)
            changed += 1
    if changed == 0:
        raise InputError(f"sft.attention_dropout {rate}: {type(model).__name__} has no attention module with an "
                         "attention_dropout attribute; leave the key at -1")
    config = getattr(model, "config", None)
    if config is not None and hasattr(config, "attention_dropout"):
        config.attention_dropout = float(rate)
    logger.info("attention dropout %g on %d attention modules", rate, changed)
    return changed


def time_limit_callback(minutes: float) -> Any:
    """A safety valve: stops training after ``minutes`` of wall time, evaluating and checkpointing at that step.

    The callback's ``record`` (None unless it fired) goes into ``sft.summary.json``; the report marks the row."""
    from transformers import TrainerCallback

    class TimeLimit(TrainerCallback):
        def __init__(self) -> None:
            self.start = time.time()
            self.record: dict[str, Any] | None = None  # set when the cap fires

        def on_train_begin(self, args, state, control, **kwargs):  # noqa: D102
            self.start = time.time()

        def on_step_end(self, args, state, control, **kwargs):  # noqa: D102
            if time.time() - self.start > minutes * 60:
                logger.warning("max_train_minutes=%g fired at step %d of %d: the model is not comparable to a "
                               "complete run", minutes, state.global_step, state.max_steps)
                self.record = wall_clock_cap(f"max_train_minutes={minutes:g}", state.epoch or 0.0,
                                             state.num_train_epochs, step=state.global_step, max_steps=state.max_steps)
                control.should_training_stop = True
                control.should_evaluate = args.eval_strategy != "no"
                control.should_save = True
            return control

    return TimeLimit()


def encode_train_samples(cfg: SFTConfig, tokenizer: Any, samples: Sequence[TaskSample],
                         sid_ids: set[int]) -> dict[str, list[list[int]]]:
    """Token ids and labels of the training mixture; ``sequence_loss`` labels the next_sid rows' history SIDs too."""
    if not cfg.sequence_loss:
        return tokenize_samples(tokenizer, samples, cfg.max_len)
    # Only next_sid prompts are SID sequences in item order; other tasks keep response-only labels.
    sequence = [i for i, s in enumerate(samples) if s.task == "next_sid"]
    other = [i for i, s in enumerate(samples) if s.task != "next_sid"]
    parts = [(sequence, tokenize_samples(tokenizer, [samples[i] for i in sequence], cfg.max_len,
                                              history_label_ids=sid_ids)),
             (other, tokenize_samples(tokenizer, [samples[i] for i in other], cfg.max_len))]
    encoded: dict[str, list[Any]] = {"input_ids": [[]] * len(samples), "labels": [[]] * len(samples),
                                     "response_len": [0] * len(samples)}
    for indices, part in parts:
        for j, i in enumerate(indices):
            encoded["input_ids"][i] = part["input_ids"][j]
            encoded["labels"][i] = part["labels"][j]
            encoded["response_len"][i] = part["response_len"][j] if "response_len" in part else sum(
                1 for label in part["labels"][j] if label != -100)  # no history labels: every label is the response's
    return encoded


def to_dataset(encoded: dict[str, list[list[int]]]) -> Any:
    """A ``datasets.Dataset`` of the encoded samples with their ``length`` (for ``group_by_length``)."""
    from datasets import Dataset

    return Dataset.from_dict({**encoded, "length": [len(ids) for ids in encoded["input_ids"]]})


def training_arguments(cfg: SFTConfig, has_eval: bool) -> Any:
    """HF ``TrainingArguments`` from the ``sft`` keys (evaluation, checkpoints and best-model selection only
    with a validation set)."""
    from transformers import TrainingArguments

    strategy = "steps" if has_eval else "no"
    eval_steps = cfg.eval_steps if cfg.eval_steps >= 1 else max(cfg.eval_steps, 1e-3)
    return TrainingArguments(
        output_dir=cfg.output_dir,
        per_device_train_batch_size=cfg.per_device_train_batch_size,
        per_device_eval_batch_size=cfg.per_device_eval_batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        learning_rate=cfg.learning_rate,
        weight_decay=0.0 if cfg.freeze_llm or cfg.freeze_layers else cfg.weight_decay,
        num_train_epochs=cfg.num_train_epochs,
        max_steps=cfg.max_steps,
        warmup_steps=cfg.warmup_steps,
        lr_scheduler_type=cfg.lr_scheduler_type,
        max_grad_norm=cfg.max_grad_norm,
        eval_strategy=strategy,
        save_strategy="steps" if has_eval else "epoch",
        eval_steps=eval_steps if has_eval else None,
        save_steps=eval_steps,
        save_total_limit=cfg.save_total_limit,
        load_best_model_at_end=has_eval,
        metric_for_best_model="eval_loss" if has_eval else None,
        greater_is_better=False if has_eval else None,
        train_sampling_strategy="group_by_length" if cfg.group_by_length else "random",
        length_column_name="length",
        remove_unused_columns=False,
        bf16=use_bf16(cfg.bf16, "sft.bf16"),
        logging_steps=cfg.logging_steps,
        dataloader_num_workers=cfg.dataloader_num_workers,
        report_to=[] if cfg.report_to in ("", "none") else [cfg.report_to],
        seed=cfg.seed,
        data_seed=cfg.seed,
        use_cpu=not torch.cuda.is_available(),
        ddp_find_unused_parameters=False,
        prediction_loss_only=True,
        average_tokens_across_devices=False,
        disable_tqdm=False,
    )
