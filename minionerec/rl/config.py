"""The RL stage's one config: :class:`GRPOSettings` (the algorithm) and :class:`RLConfig` (the ``rl:`` section).

The GRPO settings are declared once, in :class:`GRPOSettings`.  :class:`RLConfig` inherits them (so
they are flat ``rl.*`` keys of the YAML and the command line) and the trainer's
:class:`~minionerec.rl.arguments.MiniOneRecGRPOConfig` inherits the same class, so a setting has
one name, one help text and one default (the paper's ``rl.sh``).  The trainer's arguments are
built from an ``RLConfig`` by :func:`minionerec.rl.arguments.grpo_arguments`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from minionerec.config import CommonConfig

#: Tasks whose answer is a SID (the only ones a SID reward can score).
SID_TASKS = ("next_sid", "title2sid", "title_history2sid", "description2sid")
ROLLOUT_MODES = ("beam_search", "beam_sample", "sample")
LOSS_TYPES = ("grpo", "dapo", "gspo")


@dataclass
class GRPOSettings:
    """GRPO with constrained rollouts: group size, rollout, loss, reference model, validation decoding.

    Defaults are the paper's ``rl.sh``.  Rules between them are checked once, when the trainer's
    arguments are built (:class:`~minionerec.rl.arguments.MiniOneRecGRPOConfig`).
    """

    # rollouts
    num_generations: int = field(
        default=16, metadata={"help": "G: completions per prompt (the group); per_device_train_batch_size must be a "
                              "multiple."})
    rollout_mode: str = field(
        default="beam_search",
        metadata={"help": "beam_search: top-G constrained beams (deterministic, the paper); beam_sample: constrained "
                  "beam sampling (newer upstream); sample: G constrained samples with temperature."})
    temperature: float = field(default=1.0, metadata={"help": "Sampling temperature of beam_sample / sample rollouts."})
    max_prompt_length: int = field(
        default=512, metadata={"help": "Prompts longer than this keep their last tokens (left truncation, TRL's 512)."})
    # advantages and loss
    beta: float = field(
        default=1e-3, metadata={"help": "KL coefficient (k3 estimator) to the reference model; 0 disables the "
                                "reference model."})
    loss_type: str = field(default="grpo", metadata={"help": "Loss aggregation: grpo, dapo or gspo."})
    epsilon: float = field(default=0.2, metadata={"help": "PPO clip range below 1 for the importance ratio."})
    epsilon_high: float = field(default=0.2, metadata={"help": "PPO clip range above 1 (DAPO clip-higher)."})
    num_iterations: int = field(
        default=1, metadata={"help": "Policy updates per rollout (PPO epochs); >1 stores the rollout policy's "
                             "log-probs for the ratio."})
    advantage_epsilon: float = field(
        default=1e-4, metadata={"help": "Added to the group std before dividing (upstream: 1e-4)."})
    scale_rewards: bool = field(
        default=True, metadata={"help": "Divide advantages by the group std (+eps); false: only subtract the group "
                                "mean."})
    # reference model
    sync_ref_model: bool = field(
        default=True, metadata={"help": "EMA-sync the reference model to the policy (rl.sh: true); no effect with "
                                "beta 0 (there is no reference model)."})
    ref_model_sync_steps: int = field(
        default=512, metadata={"help": "Sync the reference model every this many optimizer steps."})
    ref_model_mixup_alpha: float = field(
        default=0.6, metadata={"help": "ref <- alpha * policy + (1 - alpha) * ref at a sync."})
    # groups
    dynamic_sampling: bool = field(
        default=False, metadata={"help": "Drop groups whose advantages are all zero and refill with fresh prompts."})
    max_refill_rounds: int = field(
        default=3,
        metadata={"help": "Dynamic sampling: refill rollouts per micro-step before keeping zero-advantage groups. Each "
                  "round rolls out missing / (informative rate so far) fresh prompts, at most 4x the batch."})
    add_gt: bool = field(
        default=False,
        metadata={"help": "In a group whose rollouts miss the row's target, replace the last (lowest-ranked) rollout by "
                  "the target (upstream's add_gt, which replaced it in every group): every group then holds a hit, "
                  "and the model's own top beams serve as hard negatives."})
    share_prompt_prefill: bool = field(
        default=True,
        metadata={"help": "Compute log-probs with one prompt forward per group and a repeated KV cache (same values, "
                  "about G times fewer prompt tokens); false: one full forward per rollout."})
    # validation decoding
    validation_beams: int = field(
        default=20, metadata={"help": "Beams of the periodic validation beam search (HR/NDCG@K, K <= beams)."})
    validation_batch_prompts: int = field(
        default=8, metadata={"help": "Prompts per validation beam-search batch (upstream's --eval_batch_size counts "
                             "completions: N sets N / num_generations)."})


@dataclass
class RLConfig(GRPOSettings, CommonConfig):
    """The ``rl:`` section: GRPO on an SFT checkpoint with constrained rollouts (data, rewards, GRPO, optimiser)."""

    section: ClassVar[str] = "rl"

    # inputs
    model_path: str = field(default="${common.workdir}/sft", metadata={"help": "SFT checkpoint (model + tokenizer with SID tokens)."})
    data_dir: str = field(default="${common.workdir}/llm", metadata={"help": "Folder with {train,valid,info}/ files."})
    train_subdir: str = field(default="train", metadata={"help": "Sub-folder of data_dir holding the train CSV."})
    train_file: str = field(default="", metadata={"help": "Explicit train CSV (upstream's --train_file; overrides the "
                                                  "data_dir lookup)."})
    valid_file: str = field(default="", metadata={"help": "Explicit valid CSV (upstream's --eval_file; overrides the "
                                                  "data_dir lookup)."})
    info_file: str = field(default="", metadata={"help": "Explicit info .txt (upstream's --info_file; overrides the "
                                                 "data_dir lookup)."})
    item_json_path: str = field(default="", metadata={"help": "Item texts for the title prompts (with index_path); empty: titles from the info file."})
    index_path: str = field(default="${common.workdir}/data/${common.dataset}/${common.dataset}.index.json",
                            metadata={"help": "SID index read with item_json_path."})
    tasks: list[str] = field(default_factory=lambda: ["next_sid", "title2sid", "title_history2sid"],
                             metadata={"help": "RL tasks (SID answers only): " + ", ".join(SID_TASKS)
                                                   + "; next_sid is the evaluated prompt, the others use upstream "
                                                   "rl.py's wording (no instruction header)."})
    title_history_samples: int = field(default=10000, metadata={"help": "Rows sampled for title_history2sid (upstream 10000); 0 = all."})
    train_on_valid: bool = field(
        default=False, metadata={"help": "Also train on the valid rows outside the validation users (as sft.train_on_valid): "
                                 "RL then sees exactly SFT's rows when eval_samples equals sft.eval_samples."})
    recent_rows: int = field(
        default=0, metadata={"help": "Keep only the N most recent rows (the split CSVs are in time order; with "
                             "train_on_valid the valid rows are the most recent); 0 = all rows."})
    train_subset: int = field(default=-1, metadata={"help": "Keep a seeded random N of the RL prompts (-1 = all)."})
    eval_samples: int = field(
        default=0, metadata={"help": "Valid rows for periodic HR/NDCG (0 = no validation): every row of a seeded set of users, "
                             "the same users as SFT's held-out slice when equal to sft.eval_samples (same seed)."})
    # rewards
    rewards: dict[str, float] = field(default_factory=lambda: {"ranking": 1.0},
                                      metadata={"help": "{reward: weight}; rule, ranking, ranking_only, prefix, semantic, sasrec."})
    embedding_path: str = field(default="", metadata={"help": "semantic reward: item-embedding .npy (row = item id)."})
    cf_model_path: str = field(default="", metadata={"help": "sasrec reward: model folder written by baselines.py."})
    cf_score_kind: str = field(default="logit", metadata={"help": "sasrec reward: logit (upstream), prob or log_prob."})
    # rollout decoder (the trainer's rollout_fn)
    normalization: str = field(default="full", metadata={"help": "Rollout decoder scores: full-vocabulary softmax or trie-only."})
    # validation (its size: eval_samples; its beams: validation_beams)
    select_best: bool = field(
        default=False,
        metadata={"help": "With validation: checkpoint at every validation and end on the checkpoint with the best "
                  "validation NDCG@10 (NDCG@K, K <= validation_beams; HF load_best_model_at_end); validation also runs "
                  "once before the first step."},
    )
    # optimisation (HF TrainingArguments of the same name)
    output_dir: str = field(default="${common.workdir}/rl", metadata={"help": "Where the policy is saved."})
    per_device_train_batch_size: int = field(default=64, metadata={"help": "Completions per process per micro-step (multiple of G)."})
    gradient_accumulation_steps: int = field(default=2, metadata={"help": "Micro-steps per optimizer step."})
    learning_rate: float = field(default=1e-5, metadata={"help": "Peak learning rate."})
    num_train_epochs: float = field(default=2.0, metadata={"help": "Epochs over the RL prompts."})
    max_steps: int = field(default=-1, metadata={"help": "Stop after this many optimizer steps (-1 = epochs decide)."})
    warmup_ratio: float = field(default=0.03, metadata={"help": "Warm-up as a fraction of all steps."})
    lr_scheduler_type: str = field(default="cosine", metadata={"help": "HF scheduler name."})
    optim: str = field(
        default="adamw_torch_fused",
        metadata={"help": "HF optimizer name (default: HF's adamw_torch_fused). Upstream's paged_adamw_32bit needs "
                  "bitsandbytes on a CUDA device; without them it runs as adamw_torch (the same AdamW update), "
                  "with an INFO line."})
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
