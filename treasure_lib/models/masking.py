"""Masked-token corruption for pretraining, seeded and vectorised.

- flat BERT style: 15% of the code tokens are selected; of those 80% become MASK, 10% a random
  code of the same vocabulary range (same collection and level), 10% stay; the targets are the
  original ids at the selected tokens and -100 elsewhere;
- grouped whole-object: 15% of the object positions are selected and all their real levels
  (never EMPTY) are corrupted together with the same 80/10/10 choice; targets [B, L, Q].
CLS, SEP, PAD, MASK and EMPTY are never selected. An object position is a real position whose
level-0 id is a code (equivalent to type_id > 0 and mask True, and still right when a leakage
study writes every type id as 0). `lookup` is `range_lookup(vocabulary.ranges, vocab_size)`.
The functions are pure: the same tokens and generator state give the same corruption.
"""

from __future__ import annotations

import torch

from ..vocabulary import MASK, N_SPECIAL

IGNORE = -100


def range_lookup(ranges: list[dict], vocab_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per id: the start and size of its range and its level (specials: start 0, size 0, level -1)."""
    start = torch.zeros(vocab_size, dtype=torch.long)
    size = torch.zeros(vocab_size, dtype=torch.long)
    level = torch.full((vocab_size,), -1, dtype=torch.long)
    for r in ranges:
        sl = slice(r["start"], r["start"] + r["size"])
        start[sl], size[sl], level[sl] = r["start"], r["size"], r["level"]
    return start, size, level


def _check_rates(rate: float, p_mask: float, p_random: float) -> None:
    if not (0 <= rate <= 1 and 0 <= p_mask and 0 <= p_random and p_mask + p_random <= 1):
        raise ValueError(
            f"masking rates must be probabilities with p_mask + p_random <= 1: "
            f"rate={rate}, p_mask={p_mask}, p_random={p_random}"
        )


def _corrupt(
    tokens: torch.Tensor,
    selected: torch.Tensor,
    choice: torch.Tensor,
    lookup,
    generator: torch.Generator,
    p_mask: float,
    p_random: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, targets): the selected ids replaced, MASK where choice < p_mask, a random id of the same range where
    choice < p_mask + p_random; the targets are the original ids at the selected tokens, IGNORE elsewhere."""
    start, size, _ = lookup
    out = tokens.clone()
    to_mask = selected & (choice < p_mask)
    to_random = selected & (choice >= p_mask) & (choice < p_mask + p_random)
    u = torch.rand(tokens.shape, generator=generator, device=tokens.device)
    s, n = start.to(tokens.device)[tokens], size.to(tokens.device)[tokens]
    random_ids = s + (u * n).long().clamp_max((n - 1).clamp_min(0))
    out[to_random] = random_ids[to_random].to(out.dtype)
    out[to_mask] = MASK
    return out, torch.where(selected, tokens, torch.full_like(tokens, IGNORE))


def mask_flat(
    tokens: torch.Tensor,
    lookup,
    generator: torch.Generator,
    rate: float = 0.15,
    p_mask: float = 0.8,
    p_random: float = 0.1,
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT masking of single tokens. tokens [B, L, 1] (or any shape); returns (inputs, targets)."""
    _check_rates(rate, p_mask, p_random)
    codes = tokens >= N_SPECIAL
    selected = codes & (torch.rand(tokens.shape, generator=generator, device=tokens.device) < rate)
    choice = torch.rand(tokens.shape, generator=generator, device=tokens.device)
    return _corrupt(tokens, selected, choice, lookup, generator, p_mask, p_random)


def mask_objects(
    tokens: torch.Tensor,
    mask: torch.Tensor,
    lookup,
    generator: torch.Generator,
    rate: float = 0.15,
    p_mask: float = 0.8,
    p_random: float = 0.1,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Whole-object masking in the grouped layout: tokens [B, L, Q]; returns (inputs, targets [B, L, Q])."""
    _check_rates(rate, p_mask, p_random)
    objects = mask & (tokens[..., 0] >= N_SPECIAL)  # object positions (CLS/SEP/PAD excluded)
    picked = objects & (torch.rand(objects.shape, generator=generator, device=tokens.device) < rate)
    codes = tokens >= N_SPECIAL  # real levels (EMPTY excluded)
    selected = picked[..., None] & codes
    choice = torch.rand(objects.shape, generator=generator, device=tokens.device)[..., None].expand_as(tokens)
    return _corrupt(tokens, selected, choice, lookup, generator, p_mask, p_random)
