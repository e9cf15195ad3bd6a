"""Index-only residual nearest-code search: what export needs, without one-hot or decoding.

`torch` computes chunked squared distances (no [M, K] one-hot, bounded memory); `faiss`
uses an exact IndexFlatL2 (IndexFlatIP for cosine codebooks), much faster on CPU. Both give
the same indices up to exact distance ties (tested).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

CHUNK_ELEMENTS = 2**24  # rows x codes per distance block (64 MB of float32)
GPU_CHUNK_ELEMENTS = 2**28  # on a GPU (1 GB): small blocks would leave it waiting on kernel launches


def nearest(x: torch.Tensor, codebook: torch.Tensor, cosine: bool = False) -> torch.Tensor:
    """argmin_k ||x - c_k||^2 (cosine: argmax_k x . c_k) for each row of x [M, d], chunked over rows.

    Chunking bounds memory to CHUNK_ELEMENTS distances whatever M and K are (a full [M, K] matrix
    at GPU batch sizes would be tens of GB).
    """
    c2 = (codebook * codebook).sum(-1)
    chunk = CHUNK_ELEMENTS if x.device.type == "cpu" else GPU_CHUNK_ELEMENTS
    rows = max(1, chunk // max(codebook.shape[0], 1))
    out = torch.empty(x.shape[0], dtype=torch.long, device=x.device)
    for start in range(0, x.shape[0], rows):
        xb = x[start : start + rows]
        if cosine:
            out[start : start + rows] = (xb @ codebook.T).argmax(-1)
        else:
            dist = c2[None, :] - 2.0 * (xb @ codebook.T)  # ||x||^2 is the same for every code
            out[start : start + rows] = dist.argmin(-1)
    return out


def _faiss_nearest(x: np.ndarray, codebook: np.ndarray, cosine: bool) -> np.ndarray:
    import faiss

    index = faiss.IndexFlatIP(codebook.shape[1]) if cosine else faiss.IndexFlatL2(codebook.shape[1])
    index.add(np.ascontiguousarray(codebook, dtype=np.float32))
    _, idx = index.search(np.ascontiguousarray(x, dtype=np.float32), 1)
    return idx[:, 0]


def residual_indices(
    x: torch.Tensor, codebooks: list[torch.Tensor], cosine: bool = False, backend: str = "torch"
) -> torch.Tensor:
    """Residual quantization indices [M, Q]: level q quantizes what levels < q left over."""
    residual = x.float()
    out = []
    for cb in codebooks:
        cb = cb.float()
        query = F.normalize(residual, dim=-1) if cosine else residual
        if backend == "faiss" and residual.device.type == "cpu":
            idx = torch.from_numpy(_faiss_nearest(query.numpy(), cb.numpy(), cosine).astype(np.int64))
        elif backend in ("torch", "faiss"):
            idx = nearest(query, cb, cosine)
        else:
            raise ValueError(f"unknown search backend {backend!r}; use torch or faiss")
        out.append(idx)
        residual = residual - cb[idx]
    return torch.stack(out, dim=-1) if out else torch.zeros(x.shape[0], 0, dtype=torch.long)
