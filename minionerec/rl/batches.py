"""The trainer's data plumbing: rows as a dataset, the repeated-chunk sampler, padding, scored groups."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import Dataset, Sampler

from minionerec.errors import InputError


class RowDataset(Dataset):
    """A list of rows (``minionerec.llm.TaskSample``) as a torch Dataset."""

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

