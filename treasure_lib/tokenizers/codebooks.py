"""Codebook upkeep for residual VQ: k-means initialisation from a sample, and dead-code replacement.

vector-quantize-pytorch initialises codebooks by k-means on the first batch and replaces a code
when its EMA count falls below a fixed number. Both are wrong for rare objects: a first batch of
electrons is smaller than the codebook, and with one or two electrons per code per batch a fixed
threshold of 2 replaces most of a healthy codebook every step. Here the library does the EMA
updates only; this module

- initialises each level by (residual) k-means on a mixed reservoir sample of several times K
  training objects, with EMA counts scaled to the objects of one batch, and
- calls a code dead when its EMA count falls below `fraction` of a uniform share
  (sum of EMA counts / K, i.e. objects per batch / K), which does not depend on batch size,
  and re-draws it from valid objects of the current batch (padding never enters: the caller
  passes valid latents only). A re-drawn code starts at a uniform share, so it has
  log(fraction) / log(decay) steps to attract objects before it can be called dead again.

Under DDP (`distribute`) the library's EMA statistics are summed over ranks, so every rank holds
the same counts and agrees on which codes are dead; the re-drawn codes come from the main
process's batch and are broadcast, so the codebooks never diverge (`same_on_every_rank` checks).
"""

from __future__ import annotations

import torch

from .search import nearest

KMEANS_MAX_PER_CODE = 64  # k-means sees at most this many objects per code (more changes little, costs time)


def _layers(quantizer) -> list:
    return list(getattr(quantizer, "layers", []))


def has_codebooks(quantizer) -> bool:
    """ResidualVQ has learned codebooks; ResidualFSQ has an implicit grid (nothing to initialise or replace)."""
    return bool(_layers(quantizer)) and hasattr(_layers(quantizer)[0], "_codebook")


def _residual(x: torch.Tensor, codes: torch.Tensor, cosine: bool) -> torch.Tensor:
    """What the next level quantizes: x minus its nearest code (cosine: nearest in direction)."""
    return x - codes[nearest(torch.nn.functional.normalize(x, dim=-1) if cosine else x, codes, cosine)]


@torch.no_grad()
def level_inputs(quantizer, latents: torch.Tensor) -> list[torch.Tensor]:
    """The input each level quantizes: the projected latent minus the codes of the levels before it."""
    x = quantizer.project_in(latents.float())
    out = []
    for layer in _layers(quantizer):
        out.append(x)
        book = layer._codebook
        embed = book.embed[0]
        x = _residual(x, embed, book.use_cosine_sim)
    return out


@torch.no_grad()
def kmeans(x: torch.Tensor, k: int, iters: int, generator: torch.Generator, cosine: bool = False):
    """Lloyd's k-means with memory-bounded assignment; returns (centres [k, d], counts [k])."""
    n = x.shape[0]
    if cosine:
        x = torch.nn.functional.normalize(x, dim=-1)
    pick = torch.randperm(n, generator=generator)[:k] if n >= k else torch.randint(n, (k,), generator=generator)
    centres = x[pick.to(x.device)].clone()
    for _ in range(iters):
        assign = nearest(x, centres, cosine)
        counts = torch.bincount(assign, minlength=k).to(x.dtype)
        sums = torch.zeros_like(centres).index_add_(0, assign, x)
        filled = counts > 0
        centres[filled] = sums[filled] / counts[filled, None]
        if cosine:
            centres = torch.nn.functional.normalize(centres, dim=-1)
    counts = torch.bincount(nearest(x, centres, cosine), minlength=k).to(x.dtype)
    return centres, counts


@torch.no_grad()
def init_from_sample(quantizer, latents: torch.Tensor, iters: int, seed: int, objects_per_batch: int) -> list[dict]:
    """Residual k-means on `latents` [M, D] (valid objects only), level by level; returns per-level stats.

    EMA counts start at each code's share of one batch of `objects_per_batch` objects.
    """
    generator = torch.Generator().manual_seed(seed)
    x = quantizer.project_in(latents.float())
    k_max = max(layer._codebook.codebook_size for layer in _layers(quantizer)) if has_codebooks(quantizer) else 1
    if len(x) > KMEANS_MAX_PER_CODE * k_max:
        x = x[torch.randperm(len(x), generator=generator)[: KMEANS_MAX_PER_CODE * k_max].to(x.device)]
    stats = []
    for layer in _layers(quantizer):
        book = layer._codebook
        k = book.codebook_size
        centres, counts = kmeans(x, k, iters, generator, book.use_cosine_sim)
        size = counts * (objects_per_batch / max(len(x), 1))
        book.embed.data[0].copy_(centres)
        book.embed_avg.data[0].copy_(centres * size[:, None])
        book.cluster_size.data[0].copy_(size)
        book.initted.data.fill_(True)
        stats.append({"objects": int(len(x)), "codes_empty_after_init": int((counts == 0).sum())})
        x = _residual(x, centres, book.use_cosine_sim)
    return stats


@torch.no_grad()
def dead_codes(quantizer, fraction: float) -> list[torch.Tensor]:
    """Per level, a bool [K] of codes whose EMA count is below `fraction` of a uniform share."""
    out = []
    for layer in _layers(quantizer):
        size = layer._codebook.cluster_size[0]
        out.append(size < fraction * size.sum() / size.numel())
    return out


@torch.no_grad()
def replace_dead_codes(quantizer, latents: torch.Tensor, fraction: float, generator: torch.Generator) -> list[int]:
    """Re-draw every dead code of every level from this batch's valid latents [M, D]; returns counts per level."""
    if fraction <= 0 or not has_codebooks(quantizer) or len(latents) == 0:
        return [0] * len(_layers(quantizer))
    inputs = level_inputs(quantizer, latents)
    replaced = []
    for layer, dead, x in zip(_layers(quantizer), dead_codes(quantizer, fraction), inputs):
        n = int(dead.sum())
        replaced.append(n)
        if not n:
            continue
        book = layer._codebook
        share = book.cluster_size[0].sum() / book.codebook_size
        rows = (
            torch.randperm(len(x), generator=generator)[:n]
            if len(x) >= n
            else torch.randint(len(x), (n,), generator=generator)
        )
        drawn = x[rows.to(x.device)].to(book.embed.dtype)
        if book.use_cosine_sim:
            drawn = torch.nn.functional.normalize(drawn, dim=-1)
        book.embed.data[0][dead] = drawn
        book.cluster_size.data[0][dead] = share
        book.embed_avg.data[0][dead] = drawn * share
    return replaced


def distribute(quantizer, on: bool) -> None:
    """Sum each level's EMA statistics over the DDP group (on), or keep them local again (off, after training).

    vector-quantize-pytorch decides this once, when the quantizer is built, which is before DDP starts."""
    import torch.distributed as dist

    if not has_codebooks(quantizer):
        return  # ResidualFSQ: a fixed grid, nothing to synchronise
    books = [layer._codebook for layer in _layers(quantizer)]
    if not all(hasattr(book, "all_reduce_fn") for book in books):
        raise RuntimeError(
            "vector-quantize-pytorch's codebook has no all_reduce_fn hook: its EMA statistics cannot be "
            "summed over DDP ranks with this version; train the tokenizer on one device"
        )
    for book in books:
        book.all_reduce_fn = dist.all_reduce if on else (lambda *args, **kwargs: None)


@torch.no_grad()
def broadcast(quantizer, src: int = 0) -> None:
    """Every rank takes the main process's codebooks (after dead codes were re-drawn from its batch)."""
    import torch.distributed as dist

    for layer in _layers(quantizer):
        book = layer._codebook
        for buffer in (book.embed, book.embed_avg, book.cluster_size):
            dist.broadcast(buffer.data, src)


@torch.no_grad()
def same_on_every_rank(quantizer) -> bool:
    """Whether codebooks and EMA statistics are identical on every rank (checksums per level, all-gathered).

    Checked right after a training step: DDP copies rank 0's buffers at the start of every forward, so
    only then would statistics that were not summed over ranks show as different."""
    import torch.distributed as dist

    sums = (
        torch.stack(
            [
                t.double().sum()
                for layer in _layers(quantizer)
                for t in (layer._codebook.embed, layer._codebook.cluster_size, layer._codebook.embed_avg)
            ]
        )
        if has_codebooks(quantizer)
        else torch.zeros(1, dtype=torch.float64)
    )
    sums = sums.to(next(iter(quantizer.buffers())).device) if list(quantizer.buffers()) else sums
    gathered = [torch.zeros_like(sums) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, sums)
    return all(torch.equal(g, gathered[0]) for g in gathered)
