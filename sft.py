"""SFT: teach a causal LM to generate the SID of the next item (plus the alignment tasks).

    bash sft.sh configs/ml-100k.yaml [--key value ...]          # one process (CPU or one GPU)
    NUM_PROCESSES=8 bash sft.sh CONFIG                           # multi-GPU (accelerate launch)
    NUM_PROCESSES=8 DEEPSPEED=zero2 bash sft.sh CONFIG           # multi-GPU with DeepSpeed ZeRO-2/3

Inputs: ``{data_dir}/{train,valid}/<dataset>*.csv`` (upstream format), the SID index, and the
item texts.  Output: ``output_dir`` holds the final (best by validation loss) model, the
tokenizer with the SID tokens, ``sft.config.yaml`` and ``sft.summary.json``; Trainer
checkpoints live in ``output_dir/checkpoint-N``; a rerun of a killed run with the same config
continues from the newest (``resume_from_checkpoint: auto``, the default; ``none`` starts fresh), while
a finished run (``sft.done.json`` present) is never trained further: a rerun starts from scratch.
Loss is on the response only; with bf16 (``auto``: a bf16 GPU or a CPU with native bf16) weights stay
fp32 and the forward pass runs under bf16 autocast, the loss's log-softmax in fp32.  The saved model
has the base model's dtype (``save_dtype``) and a greedy/beam ``generation_config``.
"""

from __future__ import annotations

import logging
import math
import random
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch

import data
from minionerec.budget import WALL_CLOCK_CAP, wall_clock_cap
from minionerec.checkpoints import TiedWeightsLoadMixin, remove_stale_checkpoints, resolve_resume, resume_errors
from minionerec.cli import run_stage, seed_everything
from minionerec.config import CommonConfig, save_resolved_config
from minionerec.errors import InputError
from minionerec.holdout import holdout_seed_of, split_valid_by_user
from minionerec.io import SplitRow, find_llm_data_files, load_npy, read_split_csv, require_file, write_json
from minionerec.modeling import (
    TINY_QWEN2,
    TinyModelSpec,
    build_tiny_qwen2,
    extend_with_sid_tokens,
    freeze_llm,
    decoding_generation_config,
    init_sid_rows_from_text,
    load_pretrained,
    qwen_tokenizer,
    save_dtype_of,
    save_in_dtype,
    sid_tokens_of,
    train_bpe_tokenizer,
    use_bf16,
)
from minionerec.records import begin_stage, previous_run
from minionerec.sid import check_shared_sids

logger = logging.getLogger("minionerec.sft")
SID_STRING = re.compile(r"(?:<[a-h]_\d+>)+")


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
    info_path: str = field(default="", metadata={"help": "Info file, used for titles when item_json_path is empty."})
    task_weights: dict[str, float] = field(default_factory=lambda: dict(data.DEFAULT_TASK_WEIGHTS),
                                           metadata={"help": "Per-task copies in the mixture (0 = off); tasks: "
                                                     + ", ".join(data.TASK_NAMES)})
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
                          "minionerec.modeling.init_sid_rows_from_text)."})
    text_embedding_path: str = field(
        default="${common.workdir}/data/${common.dataset}/${common.dataset}.emb-minilm.npy",
        metadata={"help": "Item text embeddings (.npy from text2emb) used by sid_init=text."})
    freeze_llm: bool = field(default=False, metadata={"help": "Train only the SID rows of embeddings / untied head."})
    # optimisation
    per_device_train_batch_size: int = field(default=32, metadata={"help": "Micro-batch per process."})
    per_device_eval_batch_size: int = field(default=64, metadata={"help": "Eval micro-batch per process."})
    gradient_accumulation_steps: int = field(default=1, metadata={"help": "Micro-batches per optimizer step."})
    learning_rate: float = field(default=3e-4, metadata={"help": "Peak learning rate."})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay (forced to 0 with freeze_llm)."})
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


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------

@dataclass
class SFTData:
    train: list[data.TaskSample]
    valid: list[data.TaskSample]
    items: list[data.ItemText]
    train_weights: list[float] | None = None  # per-sample loss weights (VAFT, sft_gpr.py); None = all 1


def resolve_csvs(cfg: SFTConfig) -> tuple[Path, Path | None]:
    found = find_llm_data_files(cfg.data_dir, cfg.dataset, cfg.train_subdir)
    train = Path(cfg.train_file) if cfg.train_file else found.train
    valid = Path(cfg.valid_file) if cfg.valid_file else found.valid
    if train is None:
        raise InputError(f"no train CSV {cfg.data_dir}/{cfg.train_subdir}/{cfg.dataset}*.csv: run convert_dataset.py "
                         "or set sft.train_file")
    require_file(train, "train CSV", "run convert_dataset.py or set sft.train_file")
    return train, valid


def load_index_items(cfg: SFTConfig) -> list[data.ItemText]:
    """The SID index's items with their texts; InputError for shared SIDs unless ``allow_shared_sids``."""
    items = data.load_items(cfg.index_path, cfg.item_json_path or None, cfg.info_path or None, cfg.description_chars)
    check_shared_sids({item.item_id: item.sid for item in items}, cfg.index_path, cfg.allow_shared_sids)
    return items


def sample_rows(rows: list[SplitRow], n: int, seed: int) -> list[SplitRow]:
    """A seeded random ``n`` of ``rows`` in their file order (all of them when ``n`` < 0 or >= len)."""
    if n < 0 or n >= len(rows):
        return rows
    keep = sorted(random.Random(seed).sample(range(len(rows)), n))
    logger.info("train_samples=%d: training on %d of %d train rows", n, n, len(rows))
    return [rows[i] for i in keep]


def load_sft_data(cfg: SFTConfig) -> SFTData:
    train_path, valid_path = resolve_csvs(cfg)
    items = load_index_items(cfg)
    train_rows = sample_rows(read_split_csv(train_path), cfg.train_samples, cfg.seed)
    data.check_rows_against_index(train_rows, items, train_path)
    eval_rows: list[SplitRow] = []
    if valid_path is not None:
        valid_rows = read_split_csv(valid_path)
        data.check_rows_against_index(valid_rows, items, valid_path)
        eval_rows, rest = split_valid_by_user(valid_rows, cfg.eval_samples, holdout_seed_of(cfg))
        if cfg.train_on_valid:
            if not rest:
                raise InputError("sft.train_on_valid needs sft.eval_samples smaller than the valid CSV "
                                 f"({len(valid_rows)} rows) so that a held-out slice remains")
            train_rows = train_rows + rest
            logger.info("training also on %d valid rows; %d valid rows held out for early stopping",
                        len(rest), len(eval_rows))
    elif cfg.train_on_valid:
        raise InputError(f"sft.train_on_valid is set but there is no valid CSV under {cfg.data_dir}/valid")
    category = data.category_phrase(cfg.category, cfg.dataset, cfg.category_phrase)
    train = data.build_task_mixture(cfg.task_weights, train_rows, items, category, cfg.seed)
    if not train:
        raise InputError(f"the training set is empty ({len(train_rows)} rows in {train_path}, task weights "
                         f"{cfg.task_weights}): give at least one task a positive weight and a non-empty CSV")
    return SFTData(train, data.next_sid_samples(eval_rows), items)


# --------------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------------

def tokenizer_corpus(items: list[data.ItemText]) -> list[str]:
    """Texts the embedded BPE is trained on: every prompt template once, then the item texts."""
    sid = items[0].sid
    row = SplitRow("A0", (items[0].title,), items[0].title, (items[0].item_id,), items[0].item_id, (sid,), sid)
    templates = [s.prompt for samples in data.build_task_samples(data.TASK_NAMES, [row], items[:1], "items").values()
                 for s in samples]
    texts = templates * 50 + [i.title for i in items] + [i.description for i in items if i.description]
    return [SID_STRING.sub("", text) for text in texts]  # SIDs become added tokens; no merges wasted on them


def tiny_spec(cfg: SFTConfig) -> TinyModelSpec:
    return TinyModelSpec(cfg.hidden_size, cfg.num_layers, cfg.num_heads, cfg.num_kv_heads, cfg.intermediate_size,
                         max(1024, cfg.max_len), cfg.tie_word_embeddings, cfg.bpe_vocab_size)


def build_model(cfg: SFTConfig, items: list[data.ItemText], extra_special_tokens: Sequence[str] = (),
                extra_template_pieces: Sequence[str] = ()) -> tuple[Any, Any, list[int]]:
    """``(model, tokenizer, SID token ids)`` with the catalogue's SID tokens added.

    ``extra_special_tokens`` (e.g. the GPR U/E/I/O tokens) are added before the SIDs, initialised
    like them, trained with them under ``freeze_llm``, and marked special (skipped when decoding).
    ``extra_template_pieces`` are a variant's own constant prompt pieces (with ``template_tokens``).
    """
    if cfg.base_model == TINY_QWEN2:
        if cfg.tokenizer == "bpe":
            category = data.category_phrase(cfg.category, cfg.dataset, cfg.category_phrase)
            pieces = data.prompt_template_pieces(category) if cfg.template_tokens else []
            pieces += list(extra_template_pieces) if cfg.template_tokens else []
            tokenizer = train_bpe_tokenizer(tokenizer_corpus(items), cfg.bpe_vocab_size, pieces)
        elif cfg.tokenizer == "qwen":
            tokenizer = qwen_tokenizer()
        else:
            raise InputError(f"sft.tokenizer must be bpe or qwen, got {cfg.tokenizer!r}")
        model = build_tiny_qwen2(len(tokenizer), tiny_spec(cfg), tokenizer.eos_token_id, cfg.seed)
    else:
        model, tokenizer = load_pretrained(cfg.base_model, cfg.gguf_file, cfg.train_from_scratch, cfg.seed)
    sid_tokens = sid_tokens_of(item.sid for item in items)
    if extra_special_tokens:
        extend_with_sid_tokens(model, tokenizer, list(extra_special_tokens), cfg.seed)
        tokenizer.add_tokens(list(extra_special_tokens), special_tokens=True)
    known = set(tokenizer.get_vocab())
    sid_ids = extend_with_sid_tokens(model, tokenizer, sid_tokens, cfg.seed)
    if cfg.sid_init == "text" and not known.issuperset(sid_tokens):  # a checkpoint's trained rows are kept
        vectors = load_npy(cfg.text_embedding_path, "text embedding file", "run the text2emb stage or set "
                           "sft.text_embedding_path")
        init_sid_rows_from_text(model, tokenizer, {item.item_id: item.sid for item in items}, vectors)
    model.config.pad_token_id = tokenizer.pad_token_id
    model.config.eos_token_id = tokenizer.eos_token_id
    decoding_generation_config(model, tokenizer)
    if cfg.freeze_llm:
        freeze_llm(model, tokenizer, [*extra_special_tokens, *sid_tokens])
    n_params = sum(p.numel() for p in model.parameters())
    logger.info("model %s: %.2fM parameters, vocabulary %d (%d SID tokens)", type(model).__name__, n_params / 1e6,
                len(tokenizer), len(sid_ids))
    return model, tokenizer, sid_ids


# --------------------------------------------------------------------------------------------
# Batches
# --------------------------------------------------------------------------------------------

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
        return batch


def response_loss(model: Any, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, Any]:
    """Mean cross-entropy over the response tokens, with the LM head applied only where it is needed.

    Prompt positions carry no loss, so computing their logits (a vocabulary-wide matmul per
    token) is wasted work: with left padding every response sits in the last columns, and
    ``logits_to_keep`` limits the head to the columns from the earliest response onwards.

    With ``batch["sample_weight"]`` (B,) each response token's cross-entropy is multiplied by its
    sample's weight before the same token mean (VAFT); weights of 1 give the unweighted loss.
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
    if weights is None:
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                                                 ignore_index=-100)
        return loss, outputs
    per_token = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                                                  ignore_index=-100, reduction="none").view(targets.shape)
    labelled = targets != -100
    weighted = per_token * weights.to(per_token.dtype).unsqueeze(1) * labelled
    return weighted.sum() / labelled.sum().clamp(min=1), outputs


def response_only_trainer_class() -> type:
    """HF Trainer whose loss is :func:`response_loss` (a per-batch mean; the Trainer scales it for accumulation)."""
    from transformers import Trainer

    class ResponseOnlyTrainer(TiedWeightsLoadMixin, Trainer):
        loss_is_scaled_for_ga = False

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):  # noqa: D102
            loss, outputs = response_loss(model, inputs)
            return (loss, outputs) if return_outputs else loss

    return ResponseOnlyTrainer


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


def encode_train_samples(cfg: SFTConfig, tokenizer: Any, samples: Sequence[data.TaskSample],
                         sid_ids: set[int]) -> dict[str, list[list[int]]]:
    """Token ids and labels of the training mixture; ``sequence_loss`` labels the next_sid rows' history SIDs too."""
    if not cfg.sequence_loss:
        return data.tokenize_samples(tokenizer, samples, cfg.max_len)
    # Only next_sid prompts are SID sequences in item order; other tasks keep response-only labels.
    sequence = [i for i, s in enumerate(samples) if s.task == "next_sid"]
    other = [i for i, s in enumerate(samples) if s.task != "next_sid"]
    parts = [(sequence, data.tokenize_samples(tokenizer, [samples[i] for i in sequence], cfg.max_len,
                                              history_label_ids=sid_ids)),
             (other, data.tokenize_samples(tokenizer, [samples[i] for i in other], cfg.max_len))]
    encoded: dict[str, list[list[int]]] = {"input_ids": [[]] * len(samples), "labels": [[]] * len(samples)}
    for indices, part in parts:
        for j, i in enumerate(indices):
            encoded["input_ids"][i] = part["input_ids"][j]
            encoded["labels"][i] = part["labels"][j]
    return encoded


def to_dataset(encoded: dict[str, list[list[int]]]) -> Any:
    from datasets import Dataset

    return Dataset.from_dict({**encoded, "length": [len(ids) for ids in encoded["input_ids"]]})


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------

def training_arguments(cfg: SFTConfig, has_eval: bool) -> Any:
    from transformers import TrainingArguments

    strategy = "steps" if has_eval else "no"
    eval_steps = cfg.eval_steps if cfg.eval_steps >= 1 else max(cfg.eval_steps, 1e-3)
    return TrainingArguments(
        output_dir=cfg.output_dir,
        per_device_train_batch_size=cfg.per_device_train_batch_size,
        per_device_eval_batch_size=cfg.per_device_eval_batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        learning_rate=cfg.learning_rate,
        weight_decay=0.0 if cfg.freeze_llm else cfg.weight_decay,
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


def main(cfg: SFTConfig, load_data: Callable[[SFTConfig], SFTData] = load_sft_data,
         extra_special_tokens: Sequence[str] = (), extra_template_pieces: Sequence[str] = ()) -> dict[str, Any]:
    """Train and save.  ``load_data``/``extra_special_tokens``/``extra_template_pieces`` let a variant
    (sft_gpr.py) change the data (prompts, per-sample weights) and the added tokens; the defaults are plain SFT."""
    from transformers import EarlyStoppingCallback

    seed_everything(cfg.seed)
    if cfg.num_threads > 0:
        torch.set_num_threads(cfg.num_threads)
    if cfg.freeze_llm and cfg.weight_decay:
        logger.info("freeze_llm: weight_decay %.3g -> 0 so that frozen rows keep their values", cfg.weight_decay)
    output_dir = Path(cfg.output_dir)
    sft_data = load_data(cfg)
    model, tokenizer, sid_ids = build_model(cfg, sft_data.items, extra_special_tokens, extra_template_pieces)
    train_encoded = encode_train_samples(cfg, tokenizer, sft_data.train, set(sid_ids))
    if sft_data.train_weights is not None:
        train_encoded["sample_weight"] = list(sft_data.train_weights)
    train_set = to_dataset(train_encoded)
    eval_set = to_dataset(data.tokenize_samples(tokenizer, sft_data.valid, cfg.max_len)) if sft_data.valid else None
    tokens_per_epoch = sum(train_set["length"])
    logger.info("train: %d samples, %d tokens per epoch; eval: %d samples", len(train_set), tokens_per_epoch,
                len(eval_set) if eval_set is not None else 0)

    callbacks = []
    if eval_set is not None and cfg.early_stopping_patience > 0:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=cfg.early_stopping_patience))
    time_limit = time_limit_callback(cfg.max_train_minutes) if cfg.max_train_minutes > 0 else None
    if time_limit is not None:
        callbacks.append(time_limit)
    trainer = response_only_trainer_class()(
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
    save_in_dtype(trainer, save_dtype_of(cfg.save_dtype, cfg.base_model, cfg.gguf_file, "sft.save_dtype"))
    trainer.save_model(cfg.output_dir)
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(cfg.output_dir)
        write_json(output_dir / "sft.summary.json", summary)
        save_resolved_config(cfg, cfg.output_dir)  # the done-record: last
        logger.info("saved model + tokenizer to %s: %s", cfg.output_dir, summary)
    return summary


if __name__ == "__main__":
    run_stage(SFTConfig, main)
