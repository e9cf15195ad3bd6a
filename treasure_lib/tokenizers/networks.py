"""Encoders and decoders over a padded set of objects [B, N, D] with a mask [B, N].

`mlp` sees each object alone (no context); `transformer` attends over the set with padding
masked out (in context). Size presets: small, medium, large, or explicit numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

PRESETS = {
    "small": {"width": 128, "depth": 2, "heads": 4},
    "medium": {"width": 256, "depth": 4, "heads": 8},
    "large": {"width": 512, "depth": 6, "heads": 8},
}


@dataclass(frozen=True)
class NetworkConfig:
    kind: str = "mlp"  # mlp | transformer
    width: int = 128
    depth: int = 2
    heads: int = 4
    dropout: float = 0.0

    @classmethod
    def build(cls, kind: str, size: str | None = None, **explicit) -> NetworkConfig:
        base = dict(PRESETS[size]) if size else {}
        base.update({k: v for k, v in explicit.items() if v is not None})
        return cls(kind=kind, **base)


class MLP(nn.Module):
    """Per-object MLP: in -> width x depth -> out (GELU, LayerNorm)."""

    def __init__(self, d_in: int, d_out: int, cfg: NetworkConfig):
        super().__init__()
        layers: list[nn.Module] = []
        d = d_in
        for _ in range(cfg.depth):
            layers += [nn.Linear(d, cfg.width), nn.LayerNorm(cfg.width), nn.GELU()]
            d = cfg.width
        layers.append(nn.Linear(d, d_out))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(x)


class SetTransformer(nn.Module):
    """Pre-norm transformer encoder over the set; padded objects never receive attention."""

    def __init__(self, d_in: int, d_out: int, cfg: NetworkConfig):
        super().__init__()
        self.embed = nn.Linear(d_in, cfg.width)
        layer = nn.TransformerEncoderLayer(
            cfg.width,
            cfg.heads,
            dim_feedforward=2 * cfg.width,
            dropout=cfg.dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.blocks = nn.TransformerEncoder(layer, cfg.depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(cfg.width)
        self.out = nn.Linear(cfg.width, d_out)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        h = self.embed(x)
        if mask is not None:
            # rows with no valid object would attend to nothing (NaN): let them see themselves
            empty = ~mask.any(dim=1, keepdim=True)
            padding = ~(mask | empty)
        else:
            padding = None
        h = self.blocks(h, src_key_padding_mask=padding)
        return self.out(self.norm(h))


def build(d_in: int, d_out: int, cfg: NetworkConfig) -> nn.Module:
    if cfg.kind == "mlp":
        return MLP(d_in, d_out, cfg)
    if cfg.kind == "transformer":
        return SetTransformer(d_in, d_out, cfg)
    raise ValueError(f"unknown network kind {cfg.kind!r}; use mlp or transformer")
