"""The sequence backbone: token (or raw-feature) embeddings -> pre-LN transformer blocks -> hidden states.

One readable file, nanoGPT style. Inputs follow the model batch contract (DESIGN.md): `tokens`
int64 [B, L, Q] (grouped layout; flat has Q = 1) or `features` float32 [B, L, F] for the raw
baseline, `type_ids` [B, L], `mask` [B, L] (True = a real position). A position's embedding is
the sum of its levels' token embeddings (PAD and EMPTY add nothing), plus type and position
embeddings. Attention is `scaled_dot_product_attention` with padding masked out of the keys;
`causal` (the next-token objective) also hides every later position from a query, so the hidden
state of position i is a function of positions 0..i only (CLS, position 0, stays visible to all).
The optional group attention (seed design) splits each position's token (or object) embedding
into `groups` sub-vectors that attend to each other (residual + LayerNorm) before the type and
position embeddings are added. A padded query attends to the real positions of its row (every row
starts with CLS), so no position produces NaN; padded outputs are meaningless and never read.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..vocabulary import EMPTY, PAD


@dataclass
class BackboneConfig:
    """Everything that fixes the backbone's function (saved in checkpoints as `hyper_parameters["backbone"]`)."""

    vocab_size: int  # max(start + size) over the vocabulary ranges
    n_types: int  # type ids 0 (special) .. n_types - 1
    max_len: int  # longest sequence L (learned position embeddings)
    levels: int = 1  # Q of the grouped layout (1: flat); > 1 selects whole-object masking
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    d_ff: int = 128  # width of each block's MLP
    dropout: float = 0.1  # after the embeddings and on each residual branch (not on attention weights)
    inputs: str = "tokens"  # tokens | features (the raw baseline)
    feature_dim: int = 0  # raw baseline: features per position
    feature_hidden: int = 0  # raw baseline: width of the object-embedding MLP (raw_config_matching sets it)
    group_attention: bool = False  # seed design: attention among sub-vectors of each token embedding
    group_attention_groups: int = 4  # sub-vectors per embedding (d_model must divide)
    level_dropout: float = 0.0  # training: with this probability an object keeps only its first k levels
    causal: bool = False  # a query attends only to its own and earlier positions (next-token pretraining)

    def to_dict(self) -> dict:
        return asdict(self)


class TokenEmbedding(nn.Module):
    """Sum over a position's levels of one shared table (ids are unique per level); PAD and EMPTY are zero.

    `level_dropout` (training only): with that probability an object keeps only its first k levels (k uniform in
    1..Q-1), the rest read as PAD. Residual levels refine the coarse ones; fine codes of a few thousand events are
    nearly unique per event, so without it a small classifier memorises them instead of learning from coarse ones."""

    def __init__(self, vocab_size: int, d: int, level_dropout: float = 0.0):
        super().__init__()
        self.table = nn.Embedding(vocab_size, d, padding_idx=PAD)  # PAD's row is zero and never trained
        self.level_dropout = level_dropout

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        tokens = tokens.masked_fill(tokens == EMPTY, PAD)
        levels = tokens.shape[-1]
        if self.training and self.level_dropout > 0 and levels > 1:
            shape = tokens.shape[:-1]
            drop = torch.rand(shape, device=tokens.device) < self.level_dropout
            keep = torch.where(drop, torch.randint(1, levels, shape, device=tokens.device), levels)
            tokens = tokens.masked_fill(torch.arange(levels, device=tokens.device) >= keep[..., None], PAD)
        return self.table(tokens).sum(-2)


class FeatureEmbedding(nn.Module):
    """The raw baseline's object embedding: an MLP over a position's scaled features."""

    def __init__(self, feature_dim: int, hidden: int, d: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(feature_dim, hidden), nn.GELU(), nn.Linear(hidden, d))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(features)


class GroupAttention(nn.Module):
    """Attention among `groups` sub-vectors of each position's embedding, residual + LayerNorm."""

    def __init__(self, d: int, groups: int):
        super().__init__()
        if d % groups:
            raise ValueError(f"d_model {d} is not divisible into {groups} groups")
        self.groups, self.width = groups, d // groups
        self.qkv = nn.Linear(self.width, 3 * self.width)
        self.norm = nn.LayerNorm(d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, L, d = x.shape
        parts = x.reshape(B * L, self.groups, self.width)
        q, k, v = self.qkv(parts).chunk(3, dim=-1)
        mixed = F.scaled_dot_product_attention(q, k, v).reshape(B, L, d)
        return self.norm(x + mixed)


class SelfAttention(nn.Module):
    def __init__(self, d: int, heads: int, dropout: float):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)

    def forward(self, x: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """`keys`: [B, L] (the keys every query sees) or [B, L, L] (per query, causal)."""
        B, L, d = x.shape
        q, k, v = (t.reshape(B, L, self.heads, d // self.heads).transpose(1, 2) for t in self.qkv(x).chunk(3, dim=-1))
        # no dropout on the attention weights: on CPU its [B, H, L, L] random mask costs more than the whole block
        attn_mask = keys[:, None, None, :] if keys.dim() == 2 else keys[:, None]
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        return self.proj(y.transpose(1, 2).reshape(B, L, d))


class Block(nn.Module):
    """Pre-LN transformer block."""

    def __init__(self, cfg: BackboneConfig):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(cfg.d_model), nn.LayerNorm(cfg.d_model)
        self.attn = SelfAttention(cfg.d_model, cfg.n_heads, cfg.dropout)
        self.mlp = nn.Sequential(nn.Linear(cfg.d_model, cfg.d_ff), nn.GELU(), nn.Linear(cfg.d_ff, cfg.d_model))
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        x = x + self.drop(self.attn(self.ln1(x), keys))
        return x + self.drop(self.mlp(self.ln2(x)))


class SequenceBackbone(nn.Module):
    def __init__(self, cfg: BackboneConfig):
        super().__init__()
        if cfg.inputs not in ("tokens", "features"):
            raise ValueError(f"backbone inputs must be tokens or features, got {cfg.inputs!r}")
        if cfg.d_model % cfg.n_heads:
            raise ValueError(f"d_model {cfg.d_model} must be divisible by n_heads {cfg.n_heads}")
        if cfg.inputs == "features" and cfg.feature_dim < 1:
            raise ValueError("a raw-feature backbone needs feature_dim >= 1 (features per position)")
        self.cfg = cfg
        if cfg.inputs == "tokens":
            self.embed = TokenEmbedding(cfg.vocab_size, cfg.d_model, cfg.level_dropout)
        else:
            self.embed = FeatureEmbedding(cfg.feature_dim, cfg.feature_hidden or cfg.d_model, cfg.d_model)
        self.type_embed = nn.Embedding(cfg.n_types, cfg.d_model)
        self.pos_embed = nn.Embedding(cfg.max_len, cfg.d_model)
        self.ln_in = nn.LayerNorm(cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)
        self.group = GroupAttention(cfg.d_model, cfg.group_attention_groups) if cfg.group_attention else None
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.ln_out = nn.LayerNorm(cfg.d_model)

    def forward(self, batch: dict) -> torch.Tensor:
        """Hidden states [B, L, d]; padded positions are computed but never attended to."""
        mask = batch["mask"].bool()
        L = mask.shape[1]
        if L > self.cfg.max_len:
            raise ValueError(f"sequences of length {L} exceed the backbone's max_len {self.cfg.max_len}")
        x = self.embed(batch["tokens"] if self.cfg.inputs == "tokens" else batch["features"].float())
        if self.group is not None:
            x = self.group(x)
        x = x + self.type_embed(batch["type_ids"].long()) + self.pos_embed(torch.arange(L, device=mask.device))[None]
        x = self.drop(self.ln_in(x))
        keys = mask | ~mask.any(1, keepdim=True)  # a row with no real position stays finite whatever the SDPA kernel
        if self.cfg.causal:
            keys = causal_keys(keys)
        for block in self.blocks:
            x = block(x, keys)
        return self.ln_out(x)


def causal_keys(keys: torch.Tensor) -> torch.Tensor:
    """[B, L] real keys -> [B, L (query), L (key)]: the real keys at the query's own or earlier positions, and
    position 0 (CLS) always, so every query (a padded one too) has a key and nothing is NaN."""
    L = keys.shape[1]
    earlier = torch.ones(L, L, dtype=torch.bool, device=keys.device).tril()
    allowed = keys[:, None, :] & earlier
    allowed[..., 0] = True
    return allowed


def pool(hidden: torch.Tensor, mask: torch.Tensor, how: str) -> torch.Tensor:
    """CLS (position 0, which every sequence starts with) or the masked mean over real positions."""
    if how == "cls":
        return hidden[:, 0]
    if how == "mean":
        m = mask.float()[..., None]
        return (hidden * m).sum(1) / m.sum(1).clamp_min(1.0)
    raise ValueError(f"pooling must be cls or mean, got {how!r}")


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def raw_config_matching(token_cfg: BackboneConfig, feature_dim: int, hidden: int | None = None) -> BackboneConfig:
    """The raw-feature twin of a token backbone: same blocks, an object MLP F -> hidden -> d.

    `hidden` None sizes the MLP to match the token table's parameter count (vocab_size x d = (F + 1) h + (h + 1) d):
    a K = 512 x 3-level vocabulary then asks for a ~800-wide layer evaluated at every position, which makes the
    raw model ~10x costlier per step than the token model for no physics reason. A given `hidden`
    (`model.feature_hidden`) is the usual object MLP instead.
    """
    d = token_cfg.d_model
    if hidden is None:
        hidden = max(1, round((token_cfg.vocab_size * d - d) / (feature_dim + 1 + d)))
    values = token_cfg.to_dict()
    values.update(inputs="features", feature_dim=feature_dim, feature_hidden=hidden)
    return BackboneConfig(**values)


def init_weights(module: nn.Module) -> None:
    """GPT-style initialisation: N(0, 0.02) for linear and embedding weights, zero biases (and padding rows)."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)
        if isinstance(m, nn.Embedding) and m.padding_idx is not None:
            with torch.no_grad():
                m.weight[m.padding_idx].zero_()
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)
