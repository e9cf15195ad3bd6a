"""Sequences drawn from a next-token model: autoregressive from [CLS], type first, then codes coarse to fine.

Each step runs the causal backbone on the rows' prefixes (batched over rows, a loop over positions only),
draws the next type from the type head, then each level's code from its head restricted to that type's
vocabulary range (the same factorisation the model was trained on, `next_token`). The rows follow the
exported grouped layout (DESIGN.md, "Sequence layouts"), compact slots: `[CLS, EMPTY..]` at position 0, a
type-0 step writes `[SEP, EMPTY..]`, an object writes its codes and EMPTY above its collection's levels, and
after END (or at `max_len`) every position is PAD with mask False; `TokenizerSet.decode` reads them back to
physical features. Constraints: a type whose collection has filled its `slots` (`slots_of`) is never drawn,
nor a type id without a vocabulary range, nor END right after CLS. The order of collections and the places of
[SEP] are what the model learned, not enforced. The same generator state gives the same rows. A model
pretrained with `sequence.type_ids: false` (every type 0) or on the flat layout cannot be sampled this way.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from ..errors import ConfigError
from ..vocabulary import CLS, EMPTY, PAD, SEP
from .next_token import NextTokenModel
from .pretrain import range_logits


def slots_of(token_set) -> dict[int, int]:
    """Positions each type id may fill in one row of a `TokenizerSet`'s layout: a collection's `max_objects`, and
    type 0 the number of [SEP] positions."""
    slots = {g.type_id: g.slots for g in token_set.groups}
    slots[0] = sum(token_set._sep(g) for g in token_set.groups)
    return slots


def type_ranges(model: NextTokenModel) -> tuple[torch.Tensor, torch.Tensor]:
    """(first id, size) [n_types, Q] of each type id's vocabulary range per level (size 0: no code there)."""
    cfg = model.backbone.cfg
    starts = torch.zeros(cfg.n_types, cfg.levels, dtype=torch.long)
    sizes = torch.zeros(cfg.n_types, cfg.levels, dtype=torch.long)
    names = model.hparams.type_names
    for t in range(1, cfg.n_types):
        name = names.get(str(t))
        for r in model.hparams.ranges:
            if name is None or not (r["collection"] == name or name in (r.get("members") or ())):
                continue
            if r["level"] >= cfg.levels:
                raise ConfigError(
                    f"sampling writes the grouped layout: '{name}' has {r['level'] + 1}+ levels but the model's "
                    f"backbone has {cfg.levels} (it was pretrained on the flat layout; pretrain on grouped tokens)"
                )
            starts[t, r["level"]], sizes[t, r["level"]] = r["start"], r["size"]
    return starts, sizes


def _draw(logits: torch.Tensor, temperature: float, generator: torch.Generator) -> torch.Tensor:
    probs = torch.softmax(logits.float() / temperature, -1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(1)


@torch.no_grad()
def sample(
    model: NextTokenModel,
    n: int,
    *,
    generator: torch.Generator,
    temperature: float = 1.0,
    max_len: int | None = None,
    slots: Mapping[int, int] | None = None,
) -> dict[str, torch.Tensor]:
    """`n` rows: `tokens` int64 [n, L, Q], `type_ids` int64 [n, L], `mask` bool [n, L], L = `max_len` (default and
    at most the backbone's). `slots`: type id -> positions it may fill per row (`slots_of`; None: no limit).
    `generator` lives on the model's device."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    cfg = model.backbone.cfg
    L = int(max_len or cfg.max_len)
    if not 1 <= L <= cfg.max_len:
        raise ValueError(f"max_len must lie in 1..{cfg.max_len} (the backbone's), got {max_len}")
    was = model.training
    model.eval()
    try:
        return _sample(model, n, generator, temperature, L, slots)
    finally:
        model.train(was)


def _sample(model: NextTokenModel, n: int, generator, temperature: float, L: int, slots) -> dict[str, torch.Tensor]:
    cfg = model.backbone.cfg
    Q, end = cfg.levels, model.end
    device = next(model.parameters()).device
    starts, sizes = (t.to(device) for t in type_ranges(model))
    tokens = torch.full((n, L, Q), PAD, dtype=torch.long, device=device)
    types = torch.zeros(n, L, dtype=torch.long, device=device)
    mask = torch.zeros(n, L, dtype=torch.bool, device=device)
    tokens[:, 0, 0], tokens[:, 0, 1:], mask[:, 0] = CLS, EMPTY, True
    drawable = sizes[:, 0] > 0  # a type with codes, or 0 (SEP)
    drawable[0] = True
    limit = torch.full((cfg.n_types,), L, dtype=torch.long, device=device)
    for t, k in (slots or {}).items():
        if 0 <= int(t) < cfg.n_types:
            limit[int(t)] = int(k)
    used = torch.zeros(n, cfg.n_types, dtype=torch.long, device=device)
    alive = torch.ones(n, dtype=torch.bool, device=device)
    for p in range(1, L):
        if not alive.any():
            break
        hidden = model.backbone({"tokens": tokens[:, :p], "type_ids": types[:, :p], "mask": mask[:, :p]})[:, p - 1]
        allowed = drawable & (used < limit)
        allowed = torch.cat([allowed, (~allowed.any(1, keepdim=True)) | (p > 1)], 1)  # END: never right after CLS
        kind = _draw(model.type_head(hidden).masked_fill(~allowed, float("-inf")), temperature, generator)
        alive &= kind != end
        kind = torch.where(alive, kind, 0)
        used[alive, kind[alive]] += 1
        code = torch.full((n, Q), EMPTY, dtype=torch.long, device=device)
        code[:, 0] = torch.where(kind == 0, SEP, EMPTY)
        context = hidden + model.backbone.type_embed(kind)
        for q in range(Q):
            has = alive & (kind > 0) & (sizes[kind, q] > 0)
            if has.any():
                z = model.level_mlps[q](context)
                for rows, logits, s in range_logits(z, model.code_heads[q], has, starts[kind, q], sizes[kind, q]):
                    code[rows, q] = s + _draw(logits, temperature, generator)
            context = model.code_context(context, code[:, q])
        tokens[alive, p], types[alive, p], mask[alive, p] = code[alive], kind[alive], True
    return {"tokens": tokens, "type_ids": types, "mask": mask}
