"""The ``sasrec`` CF reward model of rl.py: collaborative scores of candidate items given histories.

    scorer = CFScorer.load("runs/x/baselines/sasrec", "runs/x/llm/info/X.txt")
    rewards = scorer.score(histories=[[3, 17, 5]], candidates=[[8, 2, -1]], kind="logit")
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from minionerec.baselines.model_files import load_model
from minionerec.baselines.sequential import SequentialRecommender
from minionerec.baselines.tensors import pad_histories
from minionerec.catalogue import Catalogue
from minionerec.device import resolve_device
from minionerec.errors import InputError


class CFScorer:
    """The ``sasrec`` reward model: collaborative scores of candidate items given histories."""

    def __init__(self, model: SequentialRecommender, catalogue: Catalogue, device: str = "cpu"):
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.catalogue = catalogue

    @classmethod
    def load(cls, model_dir: str | Path, info_path: str | Path, device: str = "cpu") -> "CFScorer":
        """Load ``model_dir`` (from baselines.py) for the catalogue of ``info_path``.

        Raises InputError when the model was trained on another catalogue.
        """
        catalogue = Catalogue.from_info(info_path)
        return cls(load_model(model_dir, catalogue, device), catalogue, device)

    @torch.no_grad()
    def score_all(self, histories: Sequence[Sequence[int]], kind: str = "logit") -> torch.Tensor:
        """(B, n_items) scores of every catalogue item (catalogue order) after each history."""
        if kind not in ("logit", "prob", "log_prob"):
            raise InputError(f"score kind must be 'logit', 'prob' or 'log_prob', got {kind!r}")
        rows = [self.catalogue.to_rows(h, f"history {n}") for n, h in enumerate(histories)]
        seqs, lengths = pad_histories(rows, self.model.cfg.max_history)
        logits = self.model.score_all(seqs.to(self.device), lengths.to(self.device)).float()
        if kind == "prob":
            return logits.softmax(-1)
        if kind == "log_prob":
            return logits.log_softmax(-1)
        return logits

    @torch.no_grad()
    def score(self, histories: Sequence[Sequence[int]], candidates: Sequence[Sequence[int]] | torch.Tensor,
              kind: str = "logit", invalid_score: float = 0.0) -> torch.Tensor:
        """(B, C) scores of ``candidates[b]`` (item ids) after ``histories[b]`` (item ids, oldest first).

        ``kind``: ``logit`` (upstream's reward, the raw output), ``prob`` or ``log_prob`` (softmax
        over the whole catalogue).  A negative candidate id marks an invalid completion and gets
        ``invalid_score``; any other id outside the catalogue raises InputError.
        """
        cand = torch.as_tensor(candidates, dtype=torch.long)
        if cand.dim() != 2 or cand.shape[0] != len(histories):
            raise InputError(f"candidates must be a (batch, n) table with one row per history; got {tuple(cand.shape)}")
        scores = self.score_all(histories, kind).cpu()
        invalid = cand < 0
        index = self.catalogue.index_of
        flat = [index.get(int(i), -1) if i >= 0 else 0 for i in cand.flatten().tolist()]
        unknown = [int(i) for i, r in zip(cand.flatten().tolist(), flat) if i >= 0 and r < 0]
        if unknown:
            raise InputError(f"candidate item id {unknown[0]} is not in the catalogue {self.catalogue.info_path}")
        picked = scores.gather(1, torch.tensor(flat, dtype=torch.long).view_as(cand))
        return picked.masked_fill(invalid, invalid_score)
