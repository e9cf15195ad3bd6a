"""Next-token (generative) pretraining: a causal backbone predicts each next object, its type, then its codes
coarse to fine, so the model is a likelihood of whole sequences (and a sampler of them, `generation`).

Factorisation. Tokens `[B, L, Q]` (grouped layout; the flat layout is Q = 1, one token per position, and
works the same). The hidden state h_i of a real position i (causal: a function of positions 0..i) predicts
the next real position j (i + 1 in a compact row; padding inside a fixed-slot row is skipped):
- its type among `n_types + 1` classes: the type ids (0: a special position, [SEP]) and END = `n_types`,
  "no further real position", the target of a row's last real position;
- then its codes level by level, coarse to fine: level q from h_i + the type embedding of j's true type + the
  token embeddings of j's true codes below q (teacher forcing; the backbone's own tables), through a per-level
  head (LayerNorm, Linear, GELU, then a Linear over the vocabulary read only at the target's range, as the
  masked model's heads: `pretrain.range_logits`).
Special positions (CLS, SEP) and EMPTY levels carry no code target. The loss is the mean negative
log-likelihood per predicted term (type terms + code terms); `sequence_nll` sums them per row. Nothing is
drawn at random (no corruption): `seed` is recorded for provenance only.

Logged: `train/loss`, `train/probe_loss`; every validation epoch `val/loss` (NLL per term), `val/next_accuracy`
(codes: the argmax within the target's range), `val/next_accuracy/level_<q>` (q = 1 for the first level, the
vocabulary range's level), `val/next_accuracy/<collection>` (the next position's type name), `val/type_accuracy`
(type terms, END included) and `val/probe_auc`, merged over DDP ranks.

Checkpoint: as `MaskedTokenModel`'s (`backbone.*` is a `SequenceBackbone`, `hyper_parameters` with `backbone`
(its `causal` true), `ranges`, `vocabulary_hash`, `type_names`) with `type_head.*`, `level_mlps.<q>.*`,
`code_heads.<q>.*`, `probe.*` and `objective: "next_token"`.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..distributed import gather, merge_tallies
from ..vocabulary import EMPTY, N_SPECIAL, PAD
from .backbone import BackboneConfig, SequenceBackbone, init_weights
from .masking import range_lookup
from .pretrain import PretrainingModel, check_objective, range_logits


def next_positions(mask: torch.Tensor) -> torch.Tensor:
    """[B, L]: the index of each position's next real position, L where none follows."""
    B, L = mask.shape
    index = torch.where(mask, torch.arange(L, device=mask.device), L)
    from_here = index.flip(1).cummin(1).values.flip(1)  # the first real position at or after each one
    return torch.cat([from_here[:, 1:], torch.full((B, 1), L, dtype=index.dtype, device=mask.device)], 1)


class NextTokenModel(PretrainingModel):
    def __init__(
        self,
        backbone: dict,
        ranges: list,
        vocabulary_hash: str,
        type_names: dict,
        n_classes: int = 2,
        pooling: str = "mean",
        lr: float = 1e-3,
        weight_decay: float = 0.01,
        warmup_steps: int = 50,
        seed: int = 0,
        objective: str = "next_token",
    ):
        super().__init__()
        check_objective(objective, "next_token")
        backbone = {**dict(backbone), "causal": True}  # what the saved hyper-parameters record
        self.save_hyperparameters()
        cfg = BackboneConfig(**backbone)
        if cfg.inputs != "tokens":
            raise ValueError(
                f"next-token pretraining predicts tokens: the backbone's inputs must be tokens, not {cfg.inputs!r}"
            )
        self.backbone = SequenceBackbone(cfg)
        d = cfg.d_model
        self.type_head = nn.Linear(d, cfg.n_types + 1)
        self.level_mlps = nn.ModuleList(
            nn.Sequential(nn.LayerNorm(d), nn.Linear(d, d), nn.GELU()) for _ in range(cfg.levels)
        )
        self.code_heads = nn.ModuleList(nn.Linear(d, cfg.vocab_size) for _ in range(cfg.levels))
        self.probe = nn.Linear(d, n_classes)
        init_weights(self)
        self.lookup = range_lookup(ranges, cfg.vocab_size)
        self.end = cfg.n_types  # the type class "no further real position"
        self._val: dict = {}

    def code_context(self, context: torch.Tensor, level_tokens: torch.Tensor) -> torch.Tensor:
        """The context of the next level: plus the embedding of this level's code (EMPTY and PAD add nothing)."""
        return context + self.backbone.embed.table(level_tokens.masked_fill(level_tokens == EMPTY, PAD))

    def terms(self, hidden: torch.Tensor, batch: dict) -> dict:
        """Every predicted term of a batch, as flat tensors: `type_row`, `type_nll`, `type_hit`, `type_target` (one
        per real position); `code_row`, `code_nll`, `code_hit`, `code_level` (the vocabulary level), `code_type` (the
        next position's type id), one per real code of a next position. NLLs are float32, natural log."""
        tokens, types, mask = batch["tokens"], batch["type_ids"].long(), batch["mask"].bool()
        L, Q = tokens.shape[1], tokens.shape[2]
        row, at = mask.nonzero(as_tuple=True)
        nxt = next_positions(mask)[row, at]
        has_next = nxt < L
        next_type = torch.where(has_next, types[row, nxt.clamp_max(L - 1)], self.end)
        type_logits = self.type_head(hidden[row, at]).float()
        out = {
            "type_row": row,
            "type_nll": F.cross_entropy(type_logits, next_type, reduction="none"),
            "type_hit": type_logits.argmax(-1) == next_type,
            "type_target": next_type,
        }
        row, at, nxt = row[has_next], at[has_next], nxt[has_next]
        codes, code_types = tokens[row, nxt], types[row, nxt]  # the next positions' true codes and types
        start_of, size_of, level_of = (t.to(tokens.device) for t in self.lookup)
        context = hidden[row, at] + self.backbone.type_embed(code_types)
        parts = []
        for q in range(Q):
            target = codes[:, q]
            chosen = (target >= N_SPECIAL).nonzero().squeeze(1)
            if len(chosen):
                z = self.level_mlps[q](context[chosen])
                picked = torch.ones(len(chosen), dtype=torch.bool, device=tokens.device)
                t = target[chosen]
                for rows, logits, s in range_logits(z, self.code_heads[q], picked, start_of[t], size_of[t]):
                    local = t[rows] - s
                    where = chosen[rows]
                    nll = F.cross_entropy(logits, local, reduction="none")
                    parts.append((row[where], nll, logits.argmax(-1) == local, level_of[t[rows]], code_types[where]))
            if q + 1 < Q:
                context = self.code_context(context, target)
        names = ("code_row", "code_nll", "code_hit", "code_level", "code_type")
        empty = (row[:0], hidden.new_zeros(0, dtype=torch.float32), has_next[:0], row[:0], row[:0])
        for i, name in enumerate(names):
            out[name] = torch.cat([p[i] for p in parts]) if parts else empty[i]
        return out

    def _step(self, batch: dict):
        """(mean NLL per term, probe loss, terms, probe logits)."""
        hidden = self.backbone(batch)
        terms = self.terms(hidden, batch)
        n = len(terms["type_nll"]) + len(terms["code_nll"])
        loss = (terms["type_nll"].sum() + terms["code_nll"].sum()) / max(n, 1)
        probe_loss, probe_logits = self.probe_step(hidden, batch)
        return loss, probe_loss, terms, probe_logits

    def training_step(self, batch, batch_idx):
        loss, probe_loss, *_ = self._step(batch)
        return self.training_loss(loss, probe_loss, batch)

    def on_validation_epoch_start(self):
        self._val = {
            "correct": {},
            "total": {},
            "type_correct": 0,
            "type_total": 0,
            "nll": 0.0,
            "n": 0,
            "probs": [],
            "labels": [],
            "weights": [],
        }

    def validation_step(self, batch, batch_idx):
        _, _, terms, probe_logits = self._step(batch)
        self.tally_accuracy(terms["code_hit"], terms["code_level"], terms["code_type"])
        self._val["type_correct"] += int(terms["type_hit"].sum())
        self._val["type_total"] += len(terms["type_hit"])
        self._val["nll"] += float(terms["type_nll"].sum() + terms["code_nll"].sum())
        self._val["n"] += len(terms["type_nll"]) + len(terms["code_nll"])
        self.record_probe(probe_logits, batch)

    def on_validation_epoch_end(self):
        v = merge_tallies(gather(self._trainer, self._val))  # every DDP rank logs (and early-stops on) the same
        self.log("val/loss", v["nll"] / max(v["n"], 1), prog_bar=True)
        self.log_accuracies("val/next_accuracy", v)
        self.log("val/type_accuracy", v["type_correct"] / max(v["type_total"], 1))
        self.log_probe_auc(v)


@torch.no_grad()
def sequence_nll(model: NextTokenModel, batch: dict) -> dict[str, np.ndarray]:
    """Per row of a batch (one forward pass, eval mode): `nll`, the negative log-likelihood of the whole sequence
    under the model (type terms, END included, + code terms; natural log), `code_nll` its code terms, `n_objects`
    the object positions scored (positions after CLS whose level 0 is a code; SEP not counted) and `n_terms` every
    term summed. float64 (nll) and int64 (counts) numpy arrays [B]."""
    was = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        inputs = {k: torch.as_tensor(batch[k]).to(device) for k in ("tokens", "type_ids", "mask")}
        inputs["tokens"], inputs["type_ids"] = inputs["tokens"].long(), inputs["type_ids"].long()  # Parquet: int32
        terms = model.terms(model.backbone(inputs), inputs)
    finally:
        model.train(was)
    B = len(inputs["mask"])

    def per_row(rows: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        return torch.zeros(B, dtype=torch.float64, device=device).index_add_(0, rows, values.double())

    code_nll = per_row(terms["code_row"], terms["code_nll"])
    nll = per_row(terms["type_row"], terms["type_nll"]) + code_nll
    tokens, mask = inputs["tokens"], inputs["mask"].bool()
    objects = mask & (tokens[..., 0] >= N_SPECIAL)
    n_terms = torch.bincount(terms["type_row"], minlength=B) + torch.bincount(terms["code_row"], minlength=B)
    return {
        "nll": nll.cpu().numpy(),
        "code_nll": code_nll.cpu().numpy(),
        "n_objects": objects[:, 1:].sum(1).cpu().numpy().astype(np.int64),
        "n_terms": n_terms.cpu().numpy().astype(np.int64),
    }
