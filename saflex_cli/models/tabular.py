"""Tabular backbones of the paper's Table 2: an MLP and SAINT (without contrastive pre-training).

Both read one float tensor (B, n_cat + n_cont): the first n_cat columns are categorical codes
(0 = missing or unseen), cast to long here for the embeddings; the rest are standardised
continuous values. Both are Classifiers (features + linear head), so the trainer and the SAflex
core treat them like any image model.

SAINT follows somepago/saint `models/model.py` + `train.py` as read (facts, not code):
- a CLS token (a categorical column with one category) leads every row; categoricals share one
  embedding table with per-column offsets; each continuous column has its own MLP 1 -> 100 -> dim;
- 'colrow' blocks: column attention + GEGLU feed-forward on (B, n, dim), then the batch folded
  to (1, B, n*dim) for intersample attention (dim_head 64) + feed-forward; each sub-layer is
  PreNorm(Residual(f)), i.e. f(LN(x)) + LN(x): the residual adds the *normalised* input;
- train.py for 'colrow' forces depth 1, 4 heads, embedding <= 32 (<= 8 beyond 100 features)
  and dropout 0.8; its Attention defines a dropout it never applies, so only the feed-forward
  dropout (0.8) acts, as here;
- the head is mlpfory = Linear(dim, 1000), ReLU, Linear(1000, K) on the CLS output: the first two
  are our `features`, the last our `head`.
Not carried over: the missing-value mask embeddings (our imputed cells carry no mask).
Attention is written with matmul + softmax, which have forward-AD formulas (exact Pi).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..registry import BACKBONES
from .base import Classifier


class CategoricalEmbedding(nn.Module):
    """One embedding table for all categorical columns, offset per column (SAINT's layout)."""

    def __init__(self, cardinalities: list[int], dim: int):
        super().__init__()
        sizes = torch.tensor(cardinalities, dtype=torch.long)
        self.register_buffer("offsets", torch.cumsum(sizes, 0) - sizes, persistent=False)
        self.register_buffer("max_code", sizes - 1, persistent=False)
        self.table = nn.Embedding(int(sizes.sum()), dim)

    def forward(self, codes: Tensor) -> Tensor:
        # Codes travel as floats (one input tensor); an out-of-range code becomes the last code.
        index = torch.minimum(codes.round().long().clamp_min(0), self.max_code)
        return self.table(index + self.offsets)


def split_columns(x: Tensor, n_cat: int) -> tuple[Tensor, Tensor]:
    return x[:, :n_cat], x[:, n_cat:].float()


class TabularMLPBody(nn.Module):
    """Embedded categoricals + continuous columns -> hidden layers (Linear, [BN], ReLU, Dropout)."""

    def __init__(self, cardinalities: list[int], n_cont: int, hidden=(256, 256), dropout: float = 0.1,
                 batchnorm: bool = False, embed_dim: int = 8):
        super().__init__()
        self.n_cat = len(cardinalities)
        self.embed = CategoricalEmbedding(cardinalities, embed_dim) if cardinalities else None
        layers, width = [], self.n_cat * embed_dim + n_cont
        for size in hidden:
            layers += [nn.Linear(width, size)] + ([nn.BatchNorm1d(size)] if batchnorm else []) + [nn.ReLU()]
            layers += [nn.Dropout(dropout)] if dropout else []
            width = size
        self.layers = nn.Sequential(*layers)
        self.out_dim = width

    def forward(self, x: Tensor) -> Tensor:
        codes, cont = split_columns(x, self.n_cat)
        parts = [self.embed(codes).flatten(1)] if self.embed is not None else []
        return self.layers(torch.cat(parts + [cont], dim=1))


@BACKBONES.register("tabular_mlp")
def tabular_mlp(cardinalities: list[int], n_cont: int, num_classes: int, dropout: float = 0.1,
                batchnorm: bool = False) -> Classifier:
    """Paper Sec. 4: an MLP with two hidden layers of 256, dropout and optional BatchNorm."""
    body = TabularMLPBody(cardinalities, n_cont, (256, 256), dropout, batchnorm)
    return Classifier(body, body.out_dim, num_classes)


class ColumnMLPs(nn.Module):
    """SAINT's continuous embedding: an MLP 1 -> hidden -> dim per column, batched over columns."""

    def __init__(self, columns: int, dim: int, hidden: int = 100):
        super().__init__()
        self.w1, self.b1 = nn.Parameter(torch.empty(columns, hidden)), nn.Parameter(torch.empty(columns, hidden))
        self.w2, self.b2 = nn.Parameter(torch.empty(columns, hidden, dim)), nn.Parameter(torch.empty(columns, dim))
        for tensor, fan_in in ((self.w1, 1), (self.b1, 1), (self.w2, hidden), (self.b2, hidden)):
            nn.init.uniform_(tensor, -1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in))  # nn.Linear's default range

    def forward(self, cont: Tensor) -> Tensor:
        hidden = F.relu(cont.unsqueeze(-1) * self.w1 + self.b1)  # (B, n, hidden)
        return torch.einsum("bnh,nhd->bnd", hidden, self.w2) + self.b2


class Attention(nn.Module):
    """Multi-head self-attention over axis 1, as explicit matmuls (forward-AD friendly)."""

    def __init__(self, dim: int, heads: int, dim_head: int):
        super().__init__()
        self.heads, self.scale = heads, dim_head ** -0.5
        self.to_qkv = nn.Linear(dim, 3 * heads * dim_head, bias=False)
        self.to_out = nn.Linear(heads * dim_head, dim)

    def forward(self, x: Tensor) -> Tensor:
        batch, tokens, _ = x.shape
        q, k, v = (t.reshape(batch, tokens, self.heads, -1).transpose(1, 2) for t in self.to_qkv(x).chunk(3, -1))
        attn = torch.softmax(q @ k.transpose(-1, -2) * self.scale, dim=-1)
        return self.to_out((attn @ v).transpose(1, 2).reshape(batch, tokens, -1))


class FeedForward(nn.Module):
    """Linear -> GEGLU -> Dropout -> Linear, width x4 (SAINT's FeedForward)."""

    def __init__(self, dim: int, dropout: float, mult: int = 4):
        super().__init__()
        self.expand, self.dropout, self.project = nn.Linear(dim, dim * mult * 2), nn.Dropout(dropout), nn.Linear(dim * mult, dim)

    def forward(self, x: Tensor) -> Tensor:
        value, gate = self.expand(x).chunk(2, dim=-1)
        return self.project(self.dropout(value * F.gelu(gate)))


class NormResidual(nn.Module):
    """SAINT's PreNorm(dim, Residual(f)): f(LN(x)) + LN(x)."""

    def __init__(self, dim: int, fn: nn.Module):
        super().__init__()
        self.norm, self.fn = nn.LayerNorm(dim), fn

    def forward(self, x: Tensor) -> Tensor:
        normed = self.norm(x)
        return self.fn(normed) + normed


class ColRowBlock(nn.Module):
    """Column attention + FF per row, then intersample attention + FF across the batch's rows."""

    def __init__(self, dim: int, tokens: int, heads: int, dim_head: int, row_dim_head: int, ff_dropout: float):
        super().__init__()
        row_dim = dim * tokens
        self.col_attn = NormResidual(dim, Attention(dim, heads, dim_head))
        self.col_ff = NormResidual(dim, FeedForward(dim, ff_dropout))
        self.row_attn = NormResidual(row_dim, Attention(row_dim, heads, row_dim_head))
        self.row_ff = NormResidual(row_dim, FeedForward(row_dim, ff_dropout))

    def forward(self, x: Tensor) -> Tensor:
        batch, tokens, dim = x.shape
        x = self.col_ff(self.col_attn(x))
        rows = x.reshape(1, batch, tokens * dim)  # every row of the batch is one token
        return self.row_ff(self.row_attn(rows)).reshape(batch, tokens, dim)


class SaintBody(nn.Module):
    def __init__(self, cardinalities: list[int], n_cont: int, dim: int, depth: int, heads: int,
                 dim_head: int, row_dim_head: int, ff_dropout: float, head_hidden: int):
        super().__init__()
        self.n_cat = len(cardinalities)
        self.embed = CategoricalEmbedding([1] + list(cardinalities), dim)  # column 0: the CLS token
        self.cont_embed = ColumnMLPs(n_cont, dim) if n_cont else None
        tokens = 1 + self.n_cat + n_cont
        self.blocks = nn.ModuleList(ColRowBlock(dim, tokens, heads, dim_head, row_dim_head, ff_dropout)
                                    for _ in range(depth))
        self.hidden = nn.Sequential(nn.Linear(dim, head_hidden), nn.ReLU())  # mlpfory's first layer

    def forward(self, x: Tensor) -> Tensor:
        codes, cont = split_columns(x, self.n_cat)
        codes = torch.cat([codes.new_zeros(len(codes), 1), codes], dim=1)
        tokens = [self.embed(codes)] + ([self.cont_embed(cont)] if self.cont_embed is not None else [])
        x = torch.cat(tokens, dim=1)
        for block in self.blocks:
            x = block(x)
        return self.hidden(x[:, 0])


@BACKBONES.register("saint")
def saint(cardinalities: list[int], n_cont: int, num_classes: int, dim: int | None = None, depth: int = 1,
          heads: int = 4, dim_head: int = 16, row_dim_head: int = 64, ff_dropout: float = 0.8,
          head_hidden: int = 1000) -> Classifier:
    """SAINT 'colrow' with train.py's forced settings (depth 1, 4 heads, dropout 0.8)."""
    if dim is None:  # train.py: embedding_size 32, capped at 8 for more than 100 features
        dim = 8 if len(cardinalities) + n_cont > 100 else 32
    body = SaintBody(cardinalities, n_cont, dim, depth, heads, dim_head, row_dim_head, ff_dropout, head_hidden)
    return Classifier(body, head_hidden, num_classes)
