"""The pretrained model's own anomaly score: the pseudo negative log-likelihood of a row under masked-token
prediction.

Each object of a row is masked in turn (all its real levels become MASK, EMPTY levels stay, as whole-object masking
in pretraining corrupts them; in the flat layout each code position is masked alone, as BERT masking does) and the
model predicts it from the rest of the row. The object's -log p is the sum over its levels of the cross entropy among
the ids of that level's own vocabulary range, exactly the number the training loss scores for a masked target
(`MaskedTokenModel._range_logits`). A row's score is the sum over its objects (`nll`); `nll_per_object` divides by the
objects scored, a score that does not grow with multiplicity by construction.

Vectorised per chunk of rows: every (row, object) pair becomes one copy of its row with that object masked, and the
backbone runs on the chunk's copies together (`max_copies` per pass); the heads run on the masked positions only, one
matrix product per vocabulary range. Eval mode and no gradient: the same rows give the same numbers whatever the
chunking.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..datamodules.in_memory import sequence_lengths
from ..errors import InputFileError
from ..models.masking import IGNORE
from ..vocabulary import MASK, N_SPECIAL
from .positions import object_positions

MAX_COPIES = 1024  # masked copies per backbone pass: bounds memory (a CPU runs ~0.2 ms per copy at d_model 32, L 80)


def range_nll(model, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per masked target [M] (float64): the sum over its levels of -log p(true id) among the ids of that id's own
    range, head q scoring level column q. `hidden` [M, d] at the masked positions, `targets` [M, Q] with IGNORE where
    a level has no code. One matrix product per (level, range), never one per target."""
    start_of, size_of = (t.to(targets.device) for t in model.lookup[:2])
    picked = targets != IGNORE
    safe = targets.clamp_min(0)
    starts, sizes = start_of[safe], size_of[safe]
    out = torch.zeros(len(targets), dtype=torch.float64, device=targets.device)
    for q, head in enumerate(model.heads):
        level_picked = picked[:, q]
        for s in torch.unique(starts[:, q][level_picked]).tolist():
            rows = level_picked & (starts[:, q] == s)
            n = int(sizes[rows, q][0])
            logits = F.linear(hidden[rows], head.weight[s : s + n], head.bias[s : s + n]).float()
            out[rows] += F.cross_entropy(logits, targets[rows, q] - s, reduction="none").double()
    return out


def _checked_tokens(model, rows: dict) -> np.ndarray:
    """The rows' tokens as [N, L, Q] int64, checked against the model's layout and vocabulary."""
    cfg = model.backbone.cfg
    if cfg.inputs != "tokens":
        raise InputFileError(f"masked_pseudo_nll needs a token backbone, this one reads {cfg.inputs!r}")
    if "tokens" not in rows:
        raise InputFileError("rows without 'tokens': read the *.tokens.parquet files (read_split) for this score")
    tokens = np.asarray(rows["tokens"]).astype(np.int64, copy=False)
    if tokens.ndim == 2:
        tokens = tokens[..., None]  # flat layout: Q = 1
    if tokens.ndim != 3 or tokens.shape[-1] != cfg.levels:
        raise InputFileError(
            f"tokens of shape {tokens.shape} do not fit the model: expected [rows, positions, {cfg.levels}] "
            f"({'grouped' if cfg.levels > 1 else 'flat'} layout of its pretraining)"
        )
    if tokens.size and (tokens.min() < 0 or tokens.max() >= cfg.vocab_size):
        raise InputFileError(
            f"token ids {tokens.min()}..{tokens.max()} outside the model's vocabulary 0..{cfg.vocab_size - 1}: "
            "rows tokenized with other cards than the pretraining's"
        )
    if tokens.shape[1] > cfg.max_len:
        raise InputFileError(f"rows of {tokens.shape[1]} positions exceed the model's max_len {cfg.max_len}")
    return tokens


def _copies_nll(model, tokens, type_ids, mask, row, position) -> torch.Tensor:
    """-log p of each (row, position) object [M]: one copy of its row with that object masked, all in one pass."""
    device = next(model.parameters()).device
    copies, copy_types, copy_mask = (torch.as_tensor(a[row], device=device) for a in (tokens, type_ids, mask))
    which = torch.arange(row.size, device=device)
    where = torch.as_tensor(position, device=device)
    original = copies[which, where]  # [M, Q]: the masked objects' true codes
    real = original >= N_SPECIAL  # EMPTY levels are neither masked nor scored
    copies[which, where] = torch.where(real, torch.full_like(original, MASK), original)
    hidden = model.backbone({"tokens": copies, "type_ids": copy_types, "mask": copy_mask})
    targets = torch.where(real, original, torch.full_like(original, IGNORE))
    return range_nll(model, hidden[which, where], targets)


def _chunk_nll(model, tokens, type_ids, mask, objects, max_copies: int) -> np.ndarray:
    """Per row of one chunk (numpy inputs [n, L, ...]): the summed -log p of its objects, the (row, object) copies
    through the backbone `max_copies` at a time."""
    row, position = np.nonzero(objects)
    length = int(np.flatnonzero(mask.any(0))[-1]) + 1 if row.size else 0  # trailing padding of every row: dropped
    inputs = tuple(a[:, :length] for a in (tokens, type_ids, mask))
    per_object = [
        _copies_nll(model, *inputs, row[s : s + max_copies], position[s : s + max_copies]).cpu().numpy()
        for s in range(0, row.size, max_copies)
    ]
    weights = np.concatenate(per_object) if per_object else np.zeros(0)
    return np.bincount(row, weights=weights, minlength=len(mask))


def masked_pseudo_nll(model, rows: dict, batch_size: int = 64, max_copies: int = MAX_COPIES) -> dict[str, np.ndarray]:
    """Per row (float64 [N]): `nll`, the sum over its object positions of -log p(the object's true codes | the rest
    of the row); `objects`, the objects scored (int64); `nll_per_object`, nll / objects (0 for a row without
    objects). `model` is a `MaskedTokenModel` (its backbone, heads and vocabulary lookup); `rows` holds `tokens`
    [N, L, Q], `type_ids`, `mask` (read_split). `batch_size` rows per chunk, rows of similar length together (a chunk
    is trimmed to its longest row); its (row, object) copies go through the backbone `max_copies` at a time (memory
    ~ max_copies x L x (d_ff + n_heads x L) floats)."""
    if batch_size < 1 or max_copies < 1:
        raise ValueError(f"batch_size and max_copies must be >= 1, got {batch_size} and {max_copies}")
    tokens = _checked_tokens(model, rows)
    objects = object_positions({**rows, "tokens": tokens})
    mask = np.asarray(rows["mask"], dtype=bool)
    type_ids = np.asarray(rows["type_ids"]).astype(np.int64, copy=False)
    was_training = model.training
    model.eval()
    order = np.argsort(sequence_lengths(mask), kind="stable")  # padding costs attention passes: short rows together
    try:
        with torch.no_grad():
            parts = [
                _chunk_nll(
                    model, *(a[order[s : s + batch_size]] for a in (tokens, type_ids, mask, objects)), max_copies
                )
                for s in range(0, len(tokens), batch_size)
            ]
    finally:
        model.train(was_training)
    nll = np.zeros(len(tokens))
    if parts:
        nll[order] = np.concatenate(parts)
    count = objects.sum(axis=1).astype(np.int64)
    per_object = np.divide(nll, count, out=np.zeros_like(nll), where=count > 0)
    return {"nll": nll, "objects": count, "nll_per_object": per_object}
