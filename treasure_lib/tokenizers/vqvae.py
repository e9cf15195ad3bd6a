"""The object VQ-VAE: encoder -> residual quantizer -> decoder, over sets of objects.

Inputs are scaled continuous features [B, N, Fc] and categorical indices [B, N, Fk] with
a mask [B, N]. Categorical features are embedded on the way in and predicted as logits on
the way out. The quantizer is `vector-quantize-pytorch`'s ResidualVQ (or ResidualFSQ); the
mask goes in, so padded objects never enter EMA statistics. The library's own first-batch
k-means and fixed-threshold dead-code replacement are off: `codebooks.py` initialises from a
sample and replaces dead codes with a scale-aware rule. With the `mlp` encoder objects are
independent: only valid ones are computed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from vector_quantize_pytorch import ResidualFSQ, ResidualVQ

from . import networks
from .search import residual_indices

#: Padded objects per encoder or decoder forward at inference when objects see each other (transformer): the
#: attention and feed-forward intermediates of a whole export batch set a transient high-water mark far above the
#: batch itself (about 0.5 GB for 500 jets x 40 tracks at width 256) that stays in resident memory; rows of sets are
#: taken in chunks up to this many objects instead. A GPU takes larger chunks (its throughput needs them).
INFERENCE_OBJECTS = {"cpu": 1024, "cuda": 1 << 18}


def row_chunks(mask: torch.Tensor) -> list[slice]:
    """Slices of whole rows (sets) holding at most INFERENCE_OBJECTS padded objects each (at least one row)."""
    rows, width = mask.shape
    per = max(1, INFERENCE_OBJECTS.get(mask.device.type, INFERENCE_OBJECTS["cpu"]) // max(width, 1))
    return [slice(start, start + per) for start in range(0, rows, per)]


@dataclass(frozen=True)
class VQVAEConfig:
    n_continuous: int
    n_categories: tuple = ()
    encoder: dict = field(default_factory=lambda: {"kind": "mlp", "width": 128, "depth": 2, "heads": 4})
    decoder: dict = field(default_factory=lambda: {"kind": "mlp", "width": 128, "depth": 2, "heads": 4})
    latent_dim: int = 32
    category_embed_dim: int = 4
    quantizer: str = "rvq"  # rvq (ResidualVQ) | rfsq (ResidualFSQ)
    codebook_size: int = 512
    codebook_dim: int | None = None
    num_quantizers: int = 3
    decay: float = 0.9
    kmeans_init: bool = True  # done by codebooks.init_from_sample, not the library
    kmeans_iters: int = 20
    dead_code_fraction: float = 0.05  # codebooks.replace_dead_codes
    rotation_trick: bool = True
    use_cosine_sim: bool = False
    commitment_weight: float = 0.25
    fsq_levels: tuple = (8, 5, 5, 5)

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def codebook_width(self) -> int:
        if self.quantizer == "rfsq":
            return len(self.fsq_levels)
        return self.codebook_dim or self.latent_dim

    @property
    def effective_codebook_size(self) -> int:
        if self.quantizer == "rfsq":
            size = 1
            for level in self.fsq_levels:
                size *= int(level)
            return size
        return self.codebook_size


class ObjectVQVAE(nn.Module):
    def __init__(self, cfg: VQVAEConfig):
        super().__init__()
        self.cfg = cfg
        self.cat_embed = nn.ModuleList(nn.Embedding(n, cfg.category_embed_dim) for n in cfg.n_categories)
        d_in = cfg.n_continuous + cfg.category_embed_dim * len(cfg.n_categories)
        d_out = cfg.n_continuous + sum(cfg.n_categories)
        enc, dec = networks.NetworkConfig(**cfg.encoder), networks.NetworkConfig(**cfg.decoder)
        self.per_object = enc.kind == "mlp" and dec.kind == "mlp"
        self.encoder = networks.build(d_in, cfg.latent_dim, enc)
        self.decoder = networks.build(cfg.latent_dim, d_out, dec)
        if cfg.quantizer == "rvq":
            self.quantizer = ResidualVQ(
                dim=cfg.latent_dim,
                codebook_size=cfg.codebook_size,
                num_quantizers=cfg.num_quantizers,
                codebook_dim=cfg.codebook_dim,
                decay=cfg.decay,
                kmeans_init=False,
                threshold_ema_dead_code=0,
                rotation_trick=cfg.rotation_trick,
                use_cosine_sim=cfg.use_cosine_sim,
                commitment_weight=cfg.commitment_weight,
            )
        elif cfg.quantizer == "rfsq":
            self.quantizer = ResidualFSQ(
                dim=cfg.latent_dim, levels=list(cfg.fsq_levels), num_quantizers=cfg.num_quantizers
            )
        else:
            raise ValueError(f"unknown quantizer {cfg.quantizer!r}; use rvq or rfsq")

    # ------------------------------------------------------------------ pieces
    def embed_inputs(self, cont: torch.Tensor, cat: torch.Tensor) -> torch.Tensor:
        parts = [cont] + [emb(cat[..., i]) for i, emb in enumerate(self.cat_embed)]
        return torch.cat(parts, dim=-1)

    def encode_latent(self, cont, cat, mask) -> torch.Tensor:
        return self.encoder(self.embed_inputs(cont, cat), mask)

    def split_output(self, out: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        cont = out[..., : self.cfg.n_continuous]
        logits, start = [], self.cfg.n_continuous
        for n in self.cfg.n_categories:
            logits.append(out[..., start : start + n])
            start += n
        return cont, logits

    def _quantize(self, z: torch.Tensor, mask: torch.Tensor | None):
        if self.cfg.quantizer == "rvq":
            zq, indices, commit = self.quantizer(z, mask=mask)
            return zq, indices, commit.sum()
        zq, indices = self.quantizer(z)
        return zq, indices, z.new_zeros(())

    # ------------------------------------------------------------------ training forward
    def forward(self, cont: torch.Tensor, cat: torch.Tensor, mask: torch.Tensor) -> dict:
        """Reconstruction of the valid objects: returns compact [Nv, ...] targets and outputs."""
        if self.per_object:
            x = self.embed_inputs(cont[mask], cat[mask])
            z = self.encoder(x)
            zq, indices, commit = self._quantize(z[None], None)
            out = self.decoder(zq[0])
            indices = indices[0]
        else:
            z = self.encode_latent(cont, cat, mask)
            zq, indices, commit = self._quantize(z, mask)
            out = self.decoder(zq, mask)[mask]
            indices = indices[mask]
            z = z[mask]
        rec_cont, logits = self.split_output(out)
        return {
            "cont": rec_cont,
            "logits": logits,
            "indices": indices,
            "commit_loss": commit,
            "latent": z,
            "target_cont": cont[mask],
            "target_cat": cat[mask],
        }

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def encode_latents(self, cont, cat, mask) -> torch.Tensor:
        """Latents of the valid objects [Nv, latent_dim], in float32 whatever autocast is active."""
        with torch.autocast(device_type=mask.device.type, enabled=False):
            cont = cont.float()
            if self.per_object:
                return self.encoder(self.embed_inputs(cont[mask], cat[mask])).float()
            parts = [self.encode_latent(cont[r], cat[r], mask[r])[mask[r]].float() for r in row_chunks(mask)]
            return torch.cat(parts) if len(parts) > 1 else parts[0]

    @torch.no_grad()
    def encode_indices(self, cont, cat, mask, backend: str = "torch") -> torch.Tensor:
        """Indices [B, N, Q] (int64, -1 where masked) without one-hot or decoding.

        Always float32 (autocast off): bf16 latents would move objects across code boundaries,
        so validation under bf16-mixed would not see the indices export writes.
        """
        B, N = mask.shape
        Q = self.cfg.num_quantizers
        out = torch.full((B, N, Q), -1, dtype=torch.long, device=mask.device)
        with torch.autocast(device_type=mask.device.type, enabled=False):
            out[mask] = self._indices_from_latent(self.encode_latents(cont, cat, mask), backend)
        return out

    def _indices_from_latent(self, z: torch.Tensor, backend: str) -> torch.Tensor:
        if self.cfg.quantizer == "rfsq":
            _, indices = self.quantizer(z[None])
            return indices[0].long()
        x = self.quantizer.project_in(z)
        codebooks = [layer._codebook.embed[0] for layer in self.quantizer.layers]
        return residual_indices(x, codebooks, cosine=self.cfg.use_cosine_sim, backend=backend)

    @torch.no_grad()
    def latent_from_indices(self, indices: torch.Tensor, levels: int | None = None) -> torch.Tensor:
        """Sum of the first `levels` codes (all by default), projected back to the latent space."""
        codes = self.quantizer.get_codes_from_indices(indices.clamp_min(0))  # [Q, ..., d]
        levels = levels or self.cfg.num_quantizers
        return self.quantizer.project_out(codes[:levels].sum(0))

    @torch.no_grad()
    def decode_indices(self, indices: torch.Tensor, mask: torch.Tensor, levels: int | None = None):
        """Indices [B, N, Q] -> scaled continuous [B, N, Fc] and categorical indices [B, N, Fk]."""
        with torch.autocast(device_type=mask.device.type, enabled=False):
            zq = self.latent_from_indices(indices, levels).float()
            if self.per_object:
                out = self.decoder(zq)
            else:
                parts = [self.decoder(zq[r], mask[r]) for r in row_chunks(mask)]
                out = torch.cat(parts) if len(parts) > 1 else parts[0]
        cont, logits = self.split_output(out)
        cat = (
            torch.stack([lg.argmax(-1) for lg in logits], -1)
            if logits
            else cont.new_zeros(cont.shape[:-1] + (0,), dtype=torch.long)
        )
        return cont, cat


def reconstruction_loss(result: dict, kind: str = "l1") -> tuple[torch.Tensor, torch.Tensor]:
    """(continuous loss, categorical cross-entropy) on the valid objects of a forward pass."""
    if kind not in ("l1", "mse"):
        raise ValueError(f"unknown reconstruction loss {kind!r}; use l1 or mse")
    fn = F.l1_loss if kind == "l1" else F.mse_loss
    rec = fn(result["cont"], result["target_cont"]) if result["cont"].shape[-1] else result["cont"].new_zeros(())
    ce = result["cont"].new_zeros(())
    for i, logits in enumerate(result["logits"]):
        ce = ce + F.cross_entropy(logits, result["target_cat"][:, i])
    return rec, ce
