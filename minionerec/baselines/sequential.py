"""SASRec and GRU4Rec: sequential recommenders over item ids that score the whole catalogue.

Both read a history of catalogue items (:mod:`minionerec.baselines.tensors`) and score every
item of the catalogue as the next one; the item embeddings are tied with the output layer.
"""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from minionerec.baselines.tensors import PAD, SequenceBatch
from minionerec.errors import InputError

MODEL_TYPES = ("sasrec", "gru4rec")


@dataclass
class ModelConfig:
    """Hyperparameters of a sequential model (saved in model.json)."""

    model_type: str = "sasrec"
    n_items: int = 0
    hidden_size: int = 64
    num_blocks: int = 2
    num_heads: int = 2
    dropout: float = 0.5
    max_history: int = 10

    def __post_init__(self) -> None:
        if self.model_type not in MODEL_TYPES:
            raise InputError(f"unknown model_type {self.model_type!r}; choose one of {', '.join(MODEL_TYPES)}")
        if self.model_type == "sasrec" and self.hidden_size % self.num_heads:
            raise InputError(f"hidden_size {self.hidden_size} must be divisible by num_heads {self.num_heads}")


class SequentialRecommender(nn.Module, abc.ABC):
    """Shared parts: item embeddings (tied with the output layer) and catalogue scoring."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.item_embedding = nn.Embedding(cfg.n_items + 1, cfg.hidden_size, padding_idx=PAD)
        self.input_dropout = nn.Dropout(cfg.dropout)
        nn.init.normal_(self.item_embedding.weight, std=0.02)
        with torch.no_grad():
            self.item_embedding.weight[PAD].zero_()

    @abc.abstractmethod
    def encode(self, seqs: torch.Tensor) -> torch.Tensor:
        """(B, L) embedding rows -> (B, L, d) causal hidden states (SASRec: attention; GRU4Rec: a GRU)."""

    def item_vectors(self) -> torch.Tensor:
        """(n_items, d) output vectors, in catalogue order."""
        return self.item_embedding.weight[1:]

    def last_hidden(self, seqs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        hidden = self.encode(seqs)
        return hidden[torch.arange(seqs.shape[0], device=seqs.device), lengths - 1]

    def score_all(self, seqs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, n_items) logits of every catalogue item being next."""
        return self.last_hidden(seqs, lengths) @ self.item_vectors().T


class CausalBlock(nn.Module):
    """Pre-LayerNorm transformer block with causal multi-head self-attention."""

    def __init__(self, d: int, heads: int, dropout: float):
        super().__init__()
        self.heads = heads
        self.ln_attn = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.ln_ffn = nn.LayerNorm(d)
        self.ffn = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Dropout(dropout), nn.Linear(4 * d, d))
        self.dropout = nn.Dropout(dropout)
        self.attn_dropout = dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, length, d = x.shape
        q, k, v = self.qkv(self.ln_attn(x)).split(d, dim=-1)
        q, k, v = (t.view(b, length, self.heads, d // self.heads).transpose(1, 2) for t in (q, k, v))
        attended = F.scaled_dot_product_attention(
            q, k, v, is_causal=True, dropout_p=self.attn_dropout if self.training else 0.0
        )
        x = x + self.dropout(self.proj(attended.transpose(1, 2).reshape(b, length, d)))
        return x + self.dropout(self.ffn(self.ln_ffn(x)))


class SASRec(SequentialRecommender):
    """Self-attentive sequential recommendation (Kang & McAuley 2018), pre-LN variant."""

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        self.position_embedding = nn.Embedding(cfg.max_history, cfg.hidden_size)
        nn.init.normal_(self.position_embedding.weight, std=0.02)
        self.blocks = nn.ModuleList(CausalBlock(cfg.hidden_size, cfg.num_heads, cfg.dropout) for _ in range(cfg.num_blocks))
        self.final_norm = nn.LayerNorm(cfg.hidden_size)

    def encode(self, seqs: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(seqs.shape[1], device=seqs.device)
        x = self.item_embedding(seqs) * math.sqrt(self.cfg.hidden_size) + self.position_embedding(positions)
        x = self.input_dropout(x)
        for block in self.blocks:
            x = block(x)
        return self.final_norm(x)


class GRU4Rec(SequentialRecommender):
    """GRU over the history (Hidasi et al. 2016) with a tied softmax output layer."""

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        self.gru = nn.GRU(cfg.hidden_size, cfg.hidden_size, num_layers=cfg.num_blocks, batch_first=True,
                          dropout=cfg.dropout if cfg.num_blocks > 1 else 0.0)
        self.output = nn.Linear(cfg.hidden_size, cfg.hidden_size)

    def encode(self, seqs: torch.Tensor) -> torch.Tensor:
        # Right padding: a GRU is causal, so outputs up to len - 1 never see the padding.
        out, _ = self.gru(self.input_dropout(self.item_embedding(seqs)))
        return self.output(out)


def build_model(cfg: ModelConfig) -> SequentialRecommender:
    return SASRec(cfg) if cfg.model_type == "sasrec" else GRU4Rec(cfg)


# --------------------------------------------------------------------------------------------
# Ranking on a split
# --------------------------------------------------------------------------------------------

@torch.no_grad()
def target_ranks(model: SequentialRecommender, data: SequenceBatch, batch_size: int = 1024,
                 device: torch.device | str = "cpu") -> torch.Tensor:
    """0-based rank of each target among all catalogue items (ties count against the target)."""
    model.eval()
    ranks = []
    for start in range(0, len(data), batch_size):
        batch = data.subset(slice(start, start + batch_size)).to(device)
        scores = model.score_all(batch.seqs, batch.lengths)
        target_scores = scores.gather(1, batch.targets.clamp(min=0)[:, None])
        rank = (scores > target_scores).sum(1) + (scores == target_scores).sum(1) - 1
        ranks.append(rank.cpu())
    return torch.cat(ranks) if ranks else torch.zeros(0, dtype=torch.long)


@torch.no_grad()
def top_items(model: SequentialRecommender, data: SequenceBatch, k: int, batch_size: int = 1024,
              device: torch.device | str = "cpu") -> torch.Tensor:
    """(B, k) catalogue indices of the k best items for each history, best first."""
    model.eval()
    out = []
    for start in range(0, len(data), batch_size):
        batch = data.subset(slice(start, start + batch_size)).to(device)
        out.append(model.score_all(batch.seqs, batch.lengths).topk(k, dim=1).indices.cpu())
    return torch.cat(out) if out else torch.zeros((0, k), dtype=torch.long)
