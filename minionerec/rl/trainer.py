"""GRPO for generative recommendation, with constrained rollouts that are always valid items.

:class:`MiniOneRecGRPOTrainer` is a ``transformers.Trainer`` (the optimizer, schedule,
checkpointing, resuming, DDP and DeepSpeed ZeRO-2 come from there) composed with TRL pieces
(``selective_log_softmax``, ``prepare_deepspeed``,
``SyncRefModelCallback``).  TRL's own ``GRPOTrainer`` is not subclassed: its generation path is
built around free-text sampling, vLLM and tool calls, and the parts that differ here — a
rollout that returns G distinct constrained beams per prompt, rewards that read each rollout's
own row, dynamic sampling with refill — reach into the middle of it.

One training micro-step on a batch of prompts (rows):

1. **Rollout** (``rollout_fn``, :mod:`minionerec.rl.rollout` over :mod:`minionerec.decoding`): G completions per prompt —
   the top-G constrained beams (``beam_search``, deterministic, the paper's setting),
   constrained beam sampling (``beam_sample``) or constrained sampling (``sample``).  Every
   completion is a catalogue item.
2. **Scoring**: rewards (:class:`minionerec.rl.rewards.RewardSet`) on ``(completion, its row)`` pairs;
   group-normalised advantages ``A = (r - mean_g) / (std_g + eps)`` (unbiased std, eps 1e-4 as
   upstream); with ``dynamic_sampling`` the groups whose advantages are all zero are dropped and
   replaced by fresh prompts; reference (and, with ``num_iterations > 1``, rollout-policy)
   log-probs.
3. **Update** (:mod:`minionerec.rl.loss`): per-token ``-min(rho * A, clip(rho, 1-eps, 1+eps_high) * A) + beta * k3`` with
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
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate.utils import gather_object
from torch.utils.data import DataLoader
from transformers import PreTrainedModel, Trainer
from trl.models.utils import prepare_deepspeed, unwrap_model_for_generation
from trl.trainer.callbacks import SyncRefModelCallback

from minionerec.checkpoints import TiedWeightsLoadMixin, load_torch_file
from minionerec.decoding import completion_token_ids, left_pad
from minionerec.llm import encode_prompts
from minionerec.metrics import evaluate_predictions, normalise_prediction
from minionerec.rl.arguments import MiniOneRecGRPOConfig
from minionerec.rl.batches import RepeatChunkSampler, RowDataset, ScoredGroups, collate_rows, right_pad
from minionerec.rl.distributed import full_state_dict, load_full_state_dict, zero3_enabled
from minionerec.rl.loss import full_sequence_logps, group_advantages, grpo_loss, nonzero_groups, shared_prefix_logps
from minionerec.rl.rollout import RolloutFn

logger = logging.getLogger("minionerec.rl")

REF_MODEL_FILE = "ref_model.pt"


def frozen_copy(model: torch.nn.Module) -> torch.nn.Module:
    """A deep copy with gradients off, in eval mode: the reference model."""
    ref = copy.deepcopy(model)
    for param in ref.parameters():
        param.requires_grad_(False)
    return ref.eval()


class MiniOneRecGRPOTrainer(TiedWeightsLoadMixin, Trainer):
    """GRPO with constrained rollouts; see the module docstring.

    Args:
        model: the policy (an SFT checkpoint whose tokenizer carries the SID tokens).
        args: :class:`MiniOneRecGRPOConfig`.
        train_dataset: rows with a ``prompt`` (``minionerec.llm.TaskSample``); rewards read the rest.
        processing_class: the tokenizer (left padding is set here).
        reward_fn: ``(completions, rows, G) -> (total (N,), {name: (N,)})``, e.g. :class:`minionerec.rl.rewards.RewardSet`.
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
        if args.sync_ref_model:  # off with beta 0 (MiniOneRecGRPOConfig): there is then no reference model
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
        """Prompt ids exactly as SFT tokenizes prompts (``minionerec.llm.encode_prompts``), left-truncated."""
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

        The target is tokenized as SFT tokenizes a response (:func:`minionerec.decoding.completion_token_ids`),
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

