"""GRPO for generative recommendation, with constrained rollouts that are always valid items.

:class:`MiniOneRecGRPOTrainer` is a ``transformers.Trainer`` (the optimizer, schedule,
checkpointing, resuming, DDP and DeepSpeed ZeRO-2 come from there) composed with TRL pieces
(``selective_log_softmax``, ``prepare_deepspeed``,
``SyncRefModelCallback``).  TRL's own ``GRPOTrainer`` is not subclassed: its generation path is
built around free-text sampling, vLLM and tool calls, and the parts that differ here — a
rollout that returns G distinct constrained beams per prompt, rewards that read each rollout's
own row, dynamic sampling with refill — reach into the middle of it.

One training micro-step on a batch of prompts (rows):

1. **Rollout** (``rollout_fn``, from ``LogitProcessor.py``): G completions per prompt —
   the top-G constrained beams (``beam_search``, deterministic, the paper's setting),
   constrained beam sampling (``beam_sample``) or constrained sampling (``sample``).  Every
   completion is a catalogue item.
2. **Scoring**: rewards (``rewards.RewardSet``) on ``(completion, its row)`` pairs;
   group-normalised advantages ``A = (r - mean_g) / (std_g + eps)`` (unbiased std, eps 1e-4 as
   upstream); with ``dynamic_sampling`` the groups whose advantages are all zero are dropped and
   replaced by fresh prompts; reference (and, with ``num_iterations > 1``, rollout-policy)
   log-probs.
3. **Update**: per-token ``-min(rho * A, clip(rho, 1-eps, 1+eps_high) * A) + beta * k3`` with
   ``rho = pi / pi_rollout`` (exactly 1 with one update per rollout, where the gradient equals
   upstream's ``exp(logp - sg(logp)) * A``), ``k3 = exp(ref - logp) - (ref - logp) - 1``,
   aggregated as ``grpo`` (mean per sequence, then over sequences), ``dapo`` (sum over all
   tokens / number of tokens) or ``gspo`` (sequence-level ratio ``exp(mean_t(logp - logp_old))``
   and sequence-mean KL).

``per_device_train_batch_size`` counts completions, as upstream: it must be a multiple of
``num_generations`` and each device rolls out ``per_device_train_batch_size / G`` prompts.
Groups never straddle devices, so advantages need no cross-process communication.

Logged (averaged over processes): ``reward``, ``reward_std`` (mean within-group std),
``rewards/<name>``, ``kl``, ``zero_adv_frac`` (groups with all-zero advantage, before dynamic
sampling), ``dropped_frac`` (groups dropped by dynamic sampling), ``valid_rate``,
``completion_length``, ``clip_frac``, and ``time/rollout``, ``time/scoring``, ``time/update``
(seconds per micro-step).
"""

from __future__ import annotations

import copy
import logging
import math
import random
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler
from transformers import DynamicCache, PreTrainedModel, Trainer, TrainingArguments
from trl.models.utils import prepare_deepspeed, unwrap_model_for_generation
from trl.trainer.callbacks import SyncRefModelCallback
from trl.trainer.utils import selective_log_softmax

from LogitProcessor import completion_token_ids, left_pad
from minionerec.checkpoints import TiedWeightsLoadMixin, load_torch_file
from minionerec.errors import InputError
from minionerec.metrics import normalise_prediction

logger = logging.getLogger("minionerec.rl")

ROLLOUT_MODES = ("beam_search", "beam_sample", "sample")
LOSS_TYPES = ("grpo", "dapo", "gspo")
REF_MODEL_FILE = "ref_model.pt"


@dataclass
class MiniOneRecGRPOConfig(TrainingArguments):
    """Training arguments plus the GRPO settings (defaults: the paper's rl.sh)."""

    num_generations: int = field(
        default=16, metadata={"help": "G: completions per prompt (the group). per_device_train_batch_size must be a multiple."}
    )
    rollout_mode: str = field(
        default="beam_search",
        metadata={"help": "beam_search: top-G constrained beams (deterministic, the paper); beam_sample: constrained "
                  "beam sampling (newer upstream); sample: G constrained samples with temperature."},
    )
    temperature: float = field(default=1.0, metadata={"help": "Sampling temperature of beam_sample / sample rollouts."})
    max_prompt_length: int = field(
        default=512, metadata={"help": "Prompts longer than this keep their last tokens (left truncation)."}
    )
    beta: float = field(default=1e-3, metadata={"help": "KL coefficient (k3 estimator) to the reference model; 0 disables the reference model."})
    advantage_epsilon: float = field(default=1e-4, metadata={"help": "Added to the group std before dividing (upstream: 1e-4)."})
    scale_rewards: bool = field(
        default=True, metadata={"help": "Divide advantages by the group std (+eps); false: only subtract the group mean."}
    )
    loss_type: str = field(default="grpo", metadata={"help": "Loss aggregation: grpo, dapo or gspo."})
    epsilon: float = field(default=0.2, metadata={"help": "PPO clip range below 1 for the importance ratio."})
    epsilon_high: float | None = field(
        default=None, metadata={"help": "PPO clip range above 1 (DAPO clip-higher); default: epsilon."}
    )
    num_iterations: int = field(
        default=1,
        metadata={"help": "Policy updates per rollout (PPO epochs). >1 stores the rollout policy's log-probs for the ratio."},
    )
    sync_ref_model: bool = field(default=False, metadata={"help": "EMA-sync the reference model to the policy."})
    ref_model_sync_steps: int = field(default=512, metadata={"help": "Sync the reference model every this many optimizer steps."})
    ref_model_mixup_alpha: float = field(default=0.6, metadata={"help": "ref <- alpha * policy + (1 - alpha) * ref at a sync."})
    dynamic_sampling: bool = field(
        default=False, metadata={"help": "Drop groups whose advantages are all zero and refill with fresh prompts."}
    )
    add_gt: bool = field(
        default=False,
        metadata={"help": "In a group whose rollouts miss the row's target, replace the last (lowest-ranked) rollout by "
                  "the target (upstream's add_gt, which replaced it in every group): every group then holds a hit, "
                  "and the model's own top beams serve as hard negatives."},
    )
    max_refill_rounds: int = field(
        default=3,
        metadata={"help": "Dynamic sampling: refill rollouts per micro-step before keeping zero-advantage groups. Each "
                  "round rolls out missing / (informative rate so far) fresh prompts, at most 4x the batch."},
    )
    share_prompt_prefill: bool = field(
        default=True,
        metadata={"help": "Compute log-probs with one prompt forward per group and a repeated KV cache (same values, "
                  "about G times fewer prompt tokens); false: one full forward per rollout."},
    )
    validation_beams: int = field(default=20, metadata={"help": "Beams of the periodic validation beam search (HR/NDCG@K, K <= beams)."})
    validation_batch_prompts: int = field(default=8, metadata={"help": "Prompts per validation beam-search batch."})

    def __post_init__(self) -> None:
        # Rows are Python objects, not tensors: never let Trainer drop "unused columns".
        self.remove_unused_columns = False
        super().__post_init__()
        if self.rollout_mode not in ROLLOUT_MODES:
            raise InputError(f"rollout_mode must be one of {', '.join(ROLLOUT_MODES)}, got {self.rollout_mode!r}")
        if self.loss_type not in LOSS_TYPES:
            raise InputError(f"loss_type must be one of {', '.join(LOSS_TYPES)}, got {self.loss_type!r}")
        if self.num_generations < 1:
            raise InputError(f"num_generations must be >= 1, got {self.num_generations}")
        if self.per_device_train_batch_size % self.num_generations:
            raise InputError(
                f"per_device_train_batch_size ({self.per_device_train_batch_size}) counts completions and must be a "
                f"multiple of num_generations ({self.num_generations}); e.g. use "
                f"{max(1, self.per_device_train_batch_size // self.num_generations) * self.num_generations}"
            )
        if self.num_iterations < 1:
            raise InputError(f"num_iterations must be >= 1, got {self.num_iterations}")
        if self.epsilon_high is None:
            self.epsilon_high = self.epsilon

    @property
    def prompts_per_device(self) -> int:
        return self.per_device_train_batch_size // self.num_generations


class RolloutFn(Protocol):
    """Constrained rollouts: G valid completions per prompt, grouped by prompt, ranked within.

    ``prompt_ids``/``prompt_mask`` are left-padded (B, P).  Returns right-padded
    ``completion_ids`` and ``completion_mask`` of shape (B * G, L); rows ``b*G .. b*G+G-1`` belong
    to prompt ``b`` (best beam first for beam search).
    """

    def __call__(self, model: PreTrainedModel, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor,
                 num_generations: int, mode: str, temperature: float) -> tuple[torch.Tensor, torch.Tensor]: ...


class TrieRollout:
    """The :class:`RolloutFn` of the shared decoder (``LogitProcessor.py``) over a SID trie.

    ``beam_search`` -> ``sid_beam_search_batch`` (top-G distinct items, deterministic),
    ``beam_sample`` -> the same with Gumbel-top-k sampling, ``sample`` -> ``sid_sample_batch``.
    Sampling modes draw from a generator seeded with ``seed`` (offset by the process index).
    """

    def __init__(self, trie: Any, pad_token_id: int, normalization: str = "full", seed: int = 42):
        self.trie = trie
        self.pad_token_id = pad_token_id
        self.normalization = normalization
        self.seed = seed
        self._generator: torch.Generator | None = None

    def _generator_on(self, device: torch.device) -> torch.Generator:
        if self._generator is None or self._generator.device != device:
            self._generator = torch.Generator(device=device).manual_seed(self.seed)
        return self._generator

    def decode(self, model: PreTrainedModel, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor,
               num_generations: int, mode: str, temperature: float) -> Any:
        """The decoder's ``Decoded`` (items, scores, completion ids and mask per prompt)."""
        from LogitProcessor import sid_beam_search_batch, sid_sample_batch

        device = prompt_ids.device
        if self.trie.device != device:
            self.trie = self.trie.to(device)
        if mode == "sample":
            return sid_sample_batch(model, self.trie, prompt_ids, prompt_mask, num_generations, self.pad_token_id,
                                    temperature, self.normalization, self._generator_on(device))
        if mode not in ("beam_search", "beam_sample"):
            raise InputError(f"rollout_mode must be one of {', '.join(ROLLOUT_MODES)}, got {mode!r}")
        sample = mode == "beam_sample"
        return sid_beam_search_batch(model, self.trie, prompt_ids, prompt_mask, num_generations, self.pad_token_id,
                                     self.normalization, sample, temperature,
                                     self._generator_on(device) if sample else None)

    def __call__(self, model: PreTrainedModel, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor,
                 num_generations: int, mode: str, temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
        decoded = self.decode(model, prompt_ids, prompt_mask, num_generations, mode, temperature)
        depth = decoded.completion_ids.shape[-1]
        return decoded.completion_ids.reshape(-1, depth), decoded.completion_mask.reshape(-1, depth)


# --------------------------------------------------------------------------------------------
# Pure pieces (tested directly)
# --------------------------------------------------------------------------------------------

def group_advantages(rewards: torch.Tensor, group_size: int, epsilon: float = 1e-4, scale: bool = True) -> torch.Tensor:
    """``(r - mean_g) / (std_g + epsilon)`` per group of ``group_size`` consecutive rewards (unbiased std)."""
    grouped = rewards.view(-1, group_size)
    centred = grouped - grouped.mean(dim=1, keepdim=True)
    if scale:
        std = grouped.std(dim=1, keepdim=True) if group_size > 1 else torch.zeros_like(centred[:, :1])
        centred = centred / (std + epsilon)
    return centred.reshape(-1)


def nonzero_groups(advantages: torch.Tensor, group_size: int) -> torch.Tensor:
    """(n_groups,) bool: groups with at least one non-zero advantage (the ones that carry signal).

    ``advantages`` is (N,) or (N, K) (per-level advantages, rl_gpr.py); rows are grouped by prompt.
    """
    return advantages.reshape(advantages.shape[0] // group_size, -1).abs().amax(dim=1) > 0


def k3_kl(logps: torch.Tensor, ref_logps: torch.Tensor) -> torch.Tensor:
    """Per-token k3 estimator of KL(pi || ref): ``exp(ref - logp) - (ref - logp) - 1`` (>= 0)."""
    delta = ref_logps - logps
    return torch.exp(delta) - delta - 1


def frozen_copy(model: torch.nn.Module) -> torch.nn.Module:
    """A deep copy with gradients off, in eval mode: the reference model."""
    ref = copy.deepcopy(model)
    for param in ref.parameters():
        param.requires_grad_(False)
    return ref.eval()


def masked_mean(x: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    if dim is None:
        return (x * mask).sum() / mask.sum().clamp(min=1)
    return (x * mask).sum(dim) / mask.sum(dim).clamp(min=1)


def grpo_loss(
    logps: torch.Tensor,
    old_logps: torch.Tensor,
    ref_logps: torch.Tensor | None,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    beta: float,
    loss_type: str = "grpo",
    epsilon_low: float = 0.2,
    epsilon_high: float = 0.2,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The clipped policy loss plus ``beta`` times the k3 KL; returns ``(loss, stats)``.

    Shapes: ``logps``/``old_logps``/``ref_logps``/``mask`` are (N, L) over completion tokens,
    ``advantages`` is (N,) (one per sequence) or (N, L) (one per token, e.g. rl_gpr.py's HEPO levels).
    """
    mask = mask.to(logps.dtype)
    adv = advantages.unsqueeze(1) if advantages.dim() == 1 else advantages
    kl = k3_kl(logps, ref_logps) if ref_logps is not None else torch.zeros_like(logps)
    if loss_type == "gspo":
        ratio = torch.exp(masked_mean(logps - old_logps, mask, dim=1)).unsqueeze(1)
    else:
        ratio = torch.exp(logps - old_logps)
    clipped = torch.clamp(ratio, 1 - epsilon_low, 1 + epsilon_high)
    policy = torch.min(ratio * adv, clipped * adv)
    clip_frac = ((ratio * adv) > (clipped * adv)).float()
    if loss_type == "gspo":
        seq_kl = masked_mean(kl, mask, dim=1)
        loss = -(policy.squeeze(1) - beta * seq_kl).mean()
        clip_frac_value = clip_frac.mean()
    else:
        per_token = -(policy - beta * kl)
        if loss_type == "dapo":
            loss = masked_mean(per_token, mask)
        else:
            loss = masked_mean(per_token, mask, dim=1).mean()
        clip_frac_value = masked_mean(clip_frac, mask)
    stats = {"kl": masked_mean(kl, mask).detach(), "clip_frac": clip_frac_value.detach()}
    return loss, stats


def full_sequence_logps(model: torch.nn.Module, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor,
                        completion_ids: torch.Tensor, completion_mask: torch.Tensor) -> torch.Tensor:
    """Completion-token log-probs from one forward over ``prompt + completion`` per rollout, (N, L).

    ``prompt_ids``/``prompt_mask`` hold one left-padded row per group; completions are (N, L)
    with N a multiple of the number of prompts, grouped by prompt.
    """
    group = completion_ids.shape[0] // prompt_ids.shape[0]
    input_ids = torch.cat([prompt_ids.repeat_interleave(group, 0), completion_ids], dim=1)
    attention = torch.cat([prompt_mask.repeat_interleave(group, 0), completion_mask], dim=1)
    positions = (attention.cumsum(dim=1) - 1).clamp(min=0)
    n_completion = completion_ids.shape[1]
    logits = model(input_ids=input_ids, attention_mask=attention, position_ids=positions,
                   logits_to_keep=n_completion + 1).logits
    return selective_log_softmax(logits[:, :-1, :].float(), completion_ids)


def shared_prefix_logps(model: torch.nn.Module, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor,
                        completion_ids: torch.Tensor, completion_mask: torch.Tensor) -> torch.Tensor:
    """Same values as :func:`full_sequence_logps`, running each prompt once instead of G times.

    The prompt is encoded once per group; its KV cache (still attached to the autograd graph)
    is repeated to the G completions, which then run on their own few tokens.  Gradients reach
    the prompt positions through the cache, so the update equals the full-sequence one.
    """
    group = completion_ids.shape[0] // prompt_ids.shape[0]
    positions = (prompt_mask.cumsum(dim=1) - 1).clamp(min=0)
    cache = DynamicCache(config=getattr(model, "module", model).config)  # unwrap DDP / DeepSpeed for the config
    out = model(input_ids=prompt_ids, attention_mask=prompt_mask, position_ids=positions, cache=cache, use_cache=True,
                logits_to_keep=1)
    first = out.logits[:, -1:, :].repeat_interleave(group, 0)
    n_completion = completion_ids.shape[1]
    if n_completion == 1:
        return selective_log_softmax(first.float(), completion_ids)
    cache.batch_repeat_interleave(group)
    prompt_len = prompt_mask.sum(dim=1).repeat_interleave(group)
    steps = torch.arange(n_completion - 1, device=completion_ids.device)
    attention = torch.cat([prompt_mask.repeat_interleave(group, 0), completion_mask[:, :-1]], dim=1)
    rest = model(input_ids=completion_ids[:, :-1], attention_mask=attention,
                 position_ids=prompt_len.unsqueeze(1) + steps.unsqueeze(0), cache=cache, use_cache=True).logits
    logits = torch.cat([first, rest], dim=1)
    return selective_log_softmax(logits.float(), completion_ids)


# --------------------------------------------------------------------------------------------
# Data plumbing
# --------------------------------------------------------------------------------------------

def zero3_enabled() -> bool:
    """True inside a DeepSpeed ZeRO-3 run (parameters are partitioned across ranks)."""
    from transformers.integrations import is_deepspeed_zero3_enabled

    return is_deepspeed_zero3_enabled()


def gathered_parameters(module: torch.nn.Module, modifier_rank: int | None = None) -> Any:
    """Context in which ``module``'s full parameters are present on every rank (ZeRO-3); a no-op otherwise.

    With ``modifier_rank=0`` what rank 0 writes into them is broadcast to the others on exit.
    """
    if not zero3_enabled():
        return nullcontext()
    import deepspeed

    return deepspeed.zero.GatheredParameters(list(module.parameters()), modifier_rank=modifier_rank)


def full_state_dict(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """``module.state_dict()`` on CPU with its full tensors, also under ZeRO-3."""
    with gathered_parameters(module):
        return {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}


def load_full_state_dict(module: torch.nn.Module, state: dict[str, torch.Tensor],
                         source: str | Path = "weights") -> None:
    """Load a full state dict into ``module`` in place, also when ZeRO-3 partitions it.

    A tied weight may be absent from ``state`` (``save_pretrained`` stores it once).
    """
    with gathered_parameters(module, modifier_rank=0):
        result = module.load_state_dict(state, strict=False)
        params = dict(module.named_parameters(remove_duplicate=False))
        loaded = {id(params[k]) for k in state if k in params}
        missing = [k for k in result.missing_keys if k not in params or id(params[k]) not in loaded]
        if missing or result.unexpected_keys:
            raise InputError(f"{source}: its weights do not fit the model (missing {missing[:5]}, unexpected "
                             f"{result.unexpected_keys[:5]}); point it at a checkpoint of the same architecture")


class RowDataset(Dataset):
    """A list of rows (``data.TaskSample``) as a torch Dataset."""

    def __init__(self, rows: Sequence[Any]):
        self.rows = list(rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> Any:
        return self.rows[index]


def collate_rows(rows: list[Any]) -> list[Any]:
    return list(rows)


class RepeatChunkSampler(Sampler[int]):
    """Seeded shuffle, cut into chunks of ``chunk`` indices, each chunk yielded ``repeats`` times.

    With ``chunk = prompts_per_device * gradient_accumulation_steps * num_processes`` the batches
    accelerate hands each process are its A micro-batches, then the same A again ``repeats - 1``
    times: the several policy updates per rollout of ``num_iterations``.  A final partial chunk
    is dropped so every process gets the same number of batches.
    """

    def __init__(self, n: int, chunk: int, repeats: int = 1, seed: int = 42):
        if n < chunk:
            raise InputError(
                f"only {n} training prompts but one optimizer step needs {chunk} "
                "(prompts per device x gradient accumulation x processes): lower the batch size or add data"
            )
        self.n, self.chunk, self.repeats, self.seed, self.epoch = n, chunk, repeats, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        order = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed + self.epoch)).tolist()
        for start in range(0, self.n - self.chunk + 1, self.chunk):
            block = order[start : start + self.chunk]
            for _ in range(self.repeats):
                yield from block

    def __len__(self) -> int:
        return (self.n // self.chunk) * self.chunk * self.repeats


def right_pad(sequences: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(1, max(len(s) for s in sequences))
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for i, s in enumerate(sequences):
        if s:
            ids[i, : len(s)] = torch.tensor(s, dtype=torch.long)
            mask[i, : len(s)] = 1
    return ids, mask


@dataclass
class ScoredGroups:
    """Rollouts of a set of prompts with their rewards, before tensors are built for the update."""

    rows: list[Any]                      # one per prompt
    completion_ids: list[list[int]]      # G per prompt, prompt-major
    completions: list[str]               # decoded SID strings, same order
    rewards: torch.Tensor                # (n * G,)
    parts: dict[str, torch.Tensor]       # each reward function, (n * G,)
    advantages: torch.Tensor             # (n * G,)

    def select(self, keep: Sequence[int], group_size: int) -> ScoredGroups:
        flat = [g * group_size + j for g in keep for j in range(group_size)]
        index = torch.tensor(flat, dtype=torch.long)
        return ScoredGroups(
            rows=[self.rows[g] for g in keep],
            completion_ids=[self.completion_ids[i] for i in flat],
            completions=[self.completions[i] for i in flat],
            rewards=self.rewards[index],
            parts={k: v[index] for k, v in self.parts.items()},
            advantages=self.advantages[index],
        )

    @staticmethod
    def concat(parts: Sequence[ScoredGroups]) -> ScoredGroups:
        return ScoredGroups(
            rows=[r for p in parts for r in p.rows],
            completion_ids=[c for p in parts for c in p.completion_ids],
            completions=[c for p in parts for c in p.completions],
            rewards=torch.cat([p.rewards for p in parts]),
            parts={k: torch.cat([p.parts[k] for p in parts]) for k in parts[0].parts},
            advantages=torch.cat([p.advantages for p in parts]),
        )


# --------------------------------------------------------------------------------------------
# Trainer
# --------------------------------------------------------------------------------------------

class MiniOneRecGRPOTrainer(TiedWeightsLoadMixin, Trainer):
    """GRPO with constrained rollouts; see the module docstring.

    Args:
        model: the policy (an SFT checkpoint whose tokenizer carries the SID tokens).
        args: :class:`MiniOneRecGRPOConfig`.
        train_dataset: rows with a ``prompt`` (``data.TaskSample``); rewards read the rest.
        processing_class: the tokenizer (left padding is set here).
        reward_fn: ``(completions, rows, G) -> (total (N,), {name: (N,)})``, e.g. ``rewards.RewardSet``.
        rollout_fn: :class:`RolloutFn` (the shared constrained decoder).
        valid_sids: catalogue SID strings, for the logged ``valid_rate``.
        eval_dataset: rows for the periodic validation (HR/NDCG@K through ``minionerec.metrics``).
        catalogue: ``{sid_string: [item ids]}`` for item-level validation metrics.
    """

    def __init__(
        self,
        model: PreTrainedModel,
        args: MiniOneRecGRPOConfig,
        train_dataset: Sequence[Any],
        processing_class: Any,
        reward_fn: Callable[[list[str], list[Any], int], tuple[np.ndarray, dict[str, np.ndarray]]],
        rollout_fn: RolloutFn,
        valid_sids: set[str] | None = None,
        eval_dataset: Sequence[Any] | None = None,
        catalogue: dict[str, list[int]] | None = None,
        callbacks: list[Any] | None = None,
    ):
        if processing_class.pad_token_id is None:
            processing_class.pad_token = processing_class.eos_token
        processing_class.padding_side = "left"
        super().__init__(
            model=model,
            args=args,
            train_dataset=RowDataset(train_dataset),
            eval_dataset=RowDataset(eval_dataset) if eval_dataset else None,
            processing_class=processing_class,
            data_collator=collate_rows,
            callbacks=callbacks,
        )
        self.reward_fn = reward_fn
        self.rollout_fn = rollout_fn
        self.valid_sids = valid_sids
        self.catalogue = catalogue
        self.G = args.num_generations
        self._metrics: dict[str, list[float]] = defaultdict(list)
        self._micro_step = 0
        self._timing: dict[str, float] = defaultdict(float)
        self._rollout_buffer: dict[int, dict[str, torch.Tensor]] = {}
        self._refill_rng = random.Random(args.seed + 7919 * (self.accelerator.process_index + 1))
        self._refill_order: list[int] = []
        self.ref_model = None
        if args.beta != 0.0:
            self.ref_model = frozen_copy(model)
            if self.is_deepspeed_enabled:
                self.ref_model = prepare_deepspeed(self.ref_model, self.accelerator)
            else:
                self.ref_model = self.ref_model.to(self.accelerator.device)
            self.ref_model.eval()
        if args.sync_ref_model:
            if self.ref_model is None:
                raise InputError("sync_ref_model needs a reference model: set beta > 0")
            self.add_callback(SyncRefModelCallback(ref_model=self.ref_model, accelerator=self.accelerator))

    # ---------------------------------------------------------------------------------- data

    def get_train_dataloader(self) -> DataLoader:
        args = self.args
        chunk = args.prompts_per_device * args.gradient_accumulation_steps * self.accelerator.num_processes
        sampler = RepeatChunkSampler(len(self.train_dataset), chunk, args.num_iterations, args.seed)
        loader = DataLoader(
            self.train_dataset,
            batch_size=args.prompts_per_device,
            sampler=sampler,
            collate_fn=collate_rows,
            drop_last=True,
            num_workers=0,
        )
        return self.accelerator.prepare(loader)

    def floating_point_ops(self, inputs: Any) -> int:
        return 0

    def _encode_prompts(self, rows: Sequence[Any]) -> list[list[int]]:
        """Prompt ids exactly as SFT tokenizes prompts (``data.encode_prompts``), left-truncated."""
        from data import encode_prompts

        return [x[-self.args.max_prompt_length :] for x in encode_prompts(self.processing_class, [r.prompt for r in rows])]

    def _next_refill_rows(self, n: int) -> list[Any]:
        rows = []
        while len(rows) < n:
            if not self._refill_order:
                self._refill_order = list(range(len(self.train_dataset)))
                self._refill_rng.shuffle(self._refill_order)
            rows.append(self.train_dataset[self._refill_order.pop()])
        return rows

    # ------------------------------------------------------------------------------ rollouts

    @contextmanager
    def _decoding_policy(self) -> Iterator[PreTrainedModel]:
        """The unwrapped policy in eval mode for constrained decoding; under ZeRO-3 its parameters are gathered
        for the duration (the decoder reads the output-embedding rows of the allowed tokens directly)."""
        with unwrap_model_for_generation(self.model_wrapped, self.accelerator,
                                         gradient_checkpointing_kwargs=self.args.gradient_checkpointing_kwargs) as policy:
            was_training = policy.training
            policy.eval()
            try:
                yield policy
            finally:
                policy.train(was_training)

    @torch.no_grad()
    def _rollout(self, rows: Sequence[Any]) -> tuple[list[list[int]], list[str]]:
        """G completions per row (token ids up to and including EOS) and their decoded SID strings."""
        prompt_ids, prompt_mask = left_pad(self._encode_prompts(rows), self.processing_class.pad_token_id)
        device = self.accelerator.device
        with self._decoding_policy() as policy, self.accelerator.autocast():  # bf16 rollouts when bf16 is on
            completion_ids, completion_mask = self.rollout_fn(
                policy, prompt_ids.to(device), prompt_mask.to(device), self.G, self.args.rollout_mode, self.args.temperature
            )
        if completion_ids.shape[0] != len(rows) * self.G:
            raise RuntimeError(f"rollout returned {completion_ids.shape[0]} completions for {len(rows)} prompts x G={self.G}")
        ids = [row[m.bool()].tolist() for row, m in zip(completion_ids.cpu(), completion_mask.cpu())]
        texts = self.processing_class.batch_decode(ids, skip_special_tokens=True)
        return ids, [normalise_prediction(t) for t in texts]

    def _insert_missing_targets(self, rows: Sequence[Any], completion_ids: list[list[int]], completions: list[str]) -> None:
        """add_gt: the last rollout of each group that misses its row's target becomes the target (in place).

        The target is tokenized as SFT tokenizes a response (:func:`LogitProcessor.completion_token_ids`),
        which is also what the constrained decoder emits for a valid item.
        """
        for index, row in enumerate(rows):
            target = normalise_prediction(row.target)
            group = slice(index * self.G, (index + 1) * self.G)
            if target in completions[group]:
                continue
            last = (index + 1) * self.G - 1
            completion_ids[last] = completion_token_ids(self.processing_class, target)
            completions[last] = target

    def _score(self, rows: list[Any]) -> ScoredGroups:
        start = time.perf_counter()
        completion_ids, completions = self._rollout(rows)
        self._timing["rollout"] += time.perf_counter() - start
        start = time.perf_counter()
        if self.args.add_gt:
            self._insert_missing_targets(rows, completion_ids, completions)
        expanded = [r for r in rows for _ in range(self.G)]
        total, parts = self.reward_fn(completions, expanded, self.G)
        rewards = torch.as_tensor(np.asarray(total), dtype=torch.float32)
        advantages = self.compute_advantages(rewards, completions, expanded)
        self._timing["scoring"] += time.perf_counter() - start
        return ScoredGroups(
            rows=list(rows),
            completion_ids=completion_ids,
            completions=completions,
            rewards=rewards,
            parts={k: torch.as_tensor(np.asarray(v), dtype=torch.float32) for k, v in parts.items()},
            advantages=advantages,
        )

    def compute_advantages(self, rewards: torch.Tensor, completions: list[str], rows: list[Any]) -> torch.Tensor:
        """Advantages of one scored batch (rows repeated G times): GRPO's group-normalised rewards, (N,).

        The override point of variants: rl_gpr.py's HEPO returns per-level advantages (N, K).
        """
        return group_advantages(rewards, self.G, self.args.advantage_epsilon, self.args.scale_rewards)

    def _collect_groups(self, rows: list[Any]) -> tuple[ScoredGroups, dict[str, float]]:
        """Score ``rows``; with dynamic sampling replace zero-advantage groups by fresh prompts."""
        first = self._score(rows)
        informative = nonzero_groups(first.advantages, self.G)
        stats = {"zero_adv_frac": 1.0 - informative.float().mean().item()}
        if not self.args.dynamic_sampling:
            return first, stats
        examined, dropped = len(rows), int((~informative).sum())
        kept = [first.select(torch.nonzero(informative).flatten().tolist(), self.G)]
        fallback = [first.select(torch.nonzero(~informative).flatten().tolist(), self.G)]
        n_kept = int(informative.sum())
        rounds = 0
        while n_kept < len(rows) and rounds < self.args.max_refill_rounds:
            rounds += 1
            # Ask for enough prompts to fill the gap at the informative rate seen so far (at most 4x the batch).
            rate = max((examined - dropped) / examined, 1.0 / 16)
            request = min(4 * len(rows), math.ceil((len(rows) - n_kept) / rate))
            extra = self._score(self._next_refill_rows(request))
            good = nonzero_groups(extra.advantages, self.G)
            examined += len(extra.rows)
            dropped += int((~good).sum())
            kept.append(extra.select(torch.nonzero(good).flatten().tolist(), self.G))
            n_kept += int(good.sum())
        batch = ScoredGroups.concat(kept)
        if n_kept < len(rows):
            # Out of refill rounds: top up with zero-advantage groups (they only feel the KL term).
            filler = fallback[0].select(list(range(len(rows) - n_kept)), self.G)
            batch = ScoredGroups.concat([batch, filler])
        elif n_kept > len(rows):
            batch = batch.select(list(range(len(rows))), self.G)
        stats["dropped_frac"] = dropped / examined
        stats["refill_rounds"] = float(rounds)
        return batch, stats

    @torch.no_grad()
    def _build_update_batch(self, groups: ScoredGroups) -> dict[str, torch.Tensor]:
        device = self.accelerator.device
        pad = self.processing_class.pad_token_id
        prompt_ids, prompt_mask = left_pad(self._encode_prompts(groups.rows), pad)  # one row per group
        completion_ids, completion_mask = right_pad(groups.completion_ids, pad)
        batch = {
            "prompt_ids": prompt_ids.to(device),
            "prompt_mask": prompt_mask.to(device),
            "completion_ids": completion_ids.to(device),
            "completion_mask": completion_mask.to(device),
            "advantages": groups.advantages.to(device),
        }
        with self.accelerator.autocast():  # the same precision as the update's forward pass
            if self.ref_model is not None:
                batch["ref_logps"] = self._completion_logps(self.ref_model, batch)
            if self.args.num_iterations > 1:
                batch["old_logps"] = self._completion_logps(self.model, batch)
        return batch

    # ------------------------------------------------------------------------------- update

    def _completion_logps(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Log-probs (unconstrained softmax) of the completion tokens, (N, L)."""
        if self.args.share_prompt_prefill and not self.args.gradient_checkpointing:
            return shared_prefix_logps(model, batch["prompt_ids"], batch["prompt_mask"], batch["completion_ids"],
                                       batch["completion_mask"])
        return full_sequence_logps(model, batch["prompt_ids"], batch["prompt_mask"], batch["completion_ids"],
                                   batch["completion_mask"])

    def _prepare_inputs(self, rows: list[Any]) -> dict[str, torch.Tensor]:
        args = self.args
        if self._micro_step == 0 and self.state.global_step > 0:  # resumed: realign with the repeated batches
            self._micro_step = self.state.global_step * args.gradient_accumulation_steps
        step_in_block = self._micro_step % (args.gradient_accumulation_steps * args.num_iterations)
        slot = step_in_block % args.gradient_accumulation_steps
        self._micro_step += 1
        if step_in_block >= args.gradient_accumulation_steps and slot in self._rollout_buffer:
            return self._rollout_buffer[slot]
        groups, stats = self._collect_groups(list(rows))
        start = time.perf_counter()
        batch = self._build_update_batch(groups)
        self._timing["scoring"] += time.perf_counter() - start
        self._record_rollout_metrics(groups, stats)
        if args.num_iterations > 1:
            self._rollout_buffer[slot] = batch
        return batch

    def training_step(self, model: torch.nn.Module, inputs: Any, num_items_in_batch: Any = None) -> torch.Tensor:
        start = time.perf_counter()
        self._timing = defaultdict(float)
        loss = super().training_step(model, inputs, num_items_in_batch)
        total = time.perf_counter() - start
        rollout, scoring = self._timing["rollout"], self._timing["scoring"]
        self._log_mean({"time/rollout": rollout, "time/scoring": scoring, "time/update": total - rollout - scoring})
        return loss

    def compute_loss(self, model: torch.nn.Module, inputs: dict[str, torch.Tensor], return_outputs: bool = False,
                     num_items_in_batch: Any = None) -> torch.Tensor:
        if return_outputs:
            raise ValueError("MiniOneRecGRPOTrainer.compute_loss does not return outputs")
        logps = self._completion_logps(model, inputs)
        old = inputs.get("old_logps")
        old = logps.detach() if old is None else old
        loss, stats = grpo_loss(
            logps, old, inputs.get("ref_logps"), inputs["advantages"], inputs["completion_mask"], self.args.beta,
            self.args.loss_type, self.args.epsilon, self.args.epsilon_high,
        )
        self._log_mean({k: v.item() for k, v in stats.items()})
        return loss

    # ------------------------------------------------------------------------------ logging

    def _record_rollout_metrics(self, groups: ScoredGroups, stats: dict[str, float]) -> None:
        grouped = groups.rewards.view(-1, self.G)
        values = {
            "reward": groups.rewards.mean().item(),
            "reward_std": (grouped.std(dim=1).mean().item() if self.G > 1 else 0.0),
            "completion_length": float(np.mean([len(c) for c in groups.completion_ids])),
            **stats,
        }
        for name, part in groups.parts.items():
            values[f"rewards/{name}"] = part.mean().item()
        if self.valid_sids is not None:
            values["valid_rate"] = float(np.mean([c in self.valid_sids for c in groups.completions]))
        self._log_mean(values)

    def _log_mean(self, values: dict[str, float]) -> None:
        keys = sorted(values)
        local = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=self.accelerator.device)
        if self.accelerator.num_processes > 1:
            local = self.accelerator.gather(local.unsqueeze(0)).mean(dim=0)
        for k, v in zip(keys, local.tolist()):
            self._metrics[k].append(v)

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if self._metrics and not any(k.startswith("eval_") for k in logs):
            logs = {**logs, **{k: float(np.mean(v)) for k, v in self._metrics.items() if v}}
            self._metrics.clear()
        super().log(logs, start_time)

    # --------------------------------------------------------------------------- validation

    @torch.no_grad()
    def evaluate(self, eval_dataset: Any = None, ignore_keys: Any = None, metric_key_prefix: str = "eval") -> dict[str, float]:
        """HR/NDCG@K of a constrained beam search (``validation_beams`` beams) on the validation rows."""
        from minionerec.metrics import evaluate_predictions

        dataset = eval_dataset if eval_dataset is not None else self.eval_dataset
        if dataset is None:
            return {}
        rows = [dataset[i] for i in range(len(dataset))]
        shard = rows[self.accelerator.process_index :: self.accelerator.num_processes]
        predictions: list[list[str]] = []
        beams = self.args.validation_beams
        step = max(1, self.args.validation_batch_prompts)
        with self._decoding_policy() as policy, self.accelerator.autocast():
            for start in range(0, len(shard), step):
                chunk = shard[start : start + step]
                prompt_ids, prompt_mask = left_pad(self._encode_prompts(chunk), self.processing_class.pad_token_id)
                ids, mask = self.rollout_fn(policy, prompt_ids.to(self.accelerator.device),
                                            prompt_mask.to(self.accelerator.device), beams, "beam_search", 1.0)
                texts = self.processing_class.batch_decode(
                    [r[m.bool()].tolist() for r, m in zip(ids.cpu(), mask.cpu())], skip_special_tokens=True
                )
                predictions += [texts[i * beams : (i + 1) * beams] for i in range(len(chunk))]
        from accelerate.utils import gather_object

        pairs = list(zip(predictions, [(r.target, r.target_item) for r in shard]))
        if self.accelerator.num_processes > 1:
            pairs = gather_object(pairs)
        preds = [p for p, _ in pairs]
        targets = [t for _, (t, _) in pairs]
        items = [i for _, (_, i) in pairs]
        catalogue = self.catalogue or {t: [i] for t, i in zip(targets, items)}
        ks = tuple(k for k in (1, 3, 5, 10, 20, 50) if k <= beams)
        result = evaluate_predictions(preds, targets, catalogue, items if self.catalogue else None, ks)
        metrics = {f"{metric_key_prefix}_{k}": v for k, v in result.item_level.items()}
        metrics[f"{metric_key_prefix}_CC"] = float(result.cc)
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        return metrics

    # ---------------------------------------------------------------------------- checkpoints

    def _save_checkpoint(self, model: Any, trial: Any) -> None:
        super()._save_checkpoint(model, trial)
        if not (self.args.sync_ref_model and self.ref_model is not None):
            return
        if self.args.should_save or zero3_enabled():  # under ZeRO-3 every rank joins the gather
            state = full_state_dict(self.accelerator.unwrap_model(self.ref_model))
            if self.args.should_save:
                folder = Path(self.args.output_dir) / f"checkpoint-{self.state.global_step}"
                torch.save(state, folder / REF_MODEL_FILE)

    def load_synced_ref_model(self, checkpoint: str | Path) -> None:
        """On resume: restore the EMA-synced reference model saved beside the checkpoint (if any)."""
        path = Path(checkpoint) / REF_MODEL_FILE
        if self.ref_model is not None and path.is_file():
            state = load_torch_file(path, "synced reference model", f"delete the checkpoint folder {checkpoint} to "
                                    "resume from an earlier one, or start fresh")
            load_full_state_dict(self.accelerator.unwrap_model(self.ref_model), state, path)
            logger.info("restored the synced reference model from %s", path)

