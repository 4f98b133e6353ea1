"""Nearest-code search, written exactly as EnCodec writes it.

Loaded EnCodec checkpoints must reproduce EnCodec's codes bit for bit, and a float argmax over near-ties depends
on the order of floating-point operations. So the score is EnCodec's `EuclideanCodebook.quantize` expression,
term for term: `-(|x|^2 - 2 x E^T + |E|^2)` on a contiguous `[N, D]` input against the transposed `[K, D]`
codebook, with ties resolved by `max(dim=-1).indices`.
"""

from __future__ import annotations

import torch


def squared_norms(embedding: torch.Tensor) -> torch.Tensor:
    """`|E|^2` `[1, K]` of codes `embedding` [K, D], as EnCodec computes it (a caller may keep it)."""
    return embedding.t().pow(2).sum(0, keepdim=True)


def negative_distances(x: torch.Tensor, embedding: torch.Tensor, norms: torch.Tensor | None = None) -> torch.Tensor:
    """Scores `[N, K]` (higher is nearer) of rows `x` [N, D] against codes `embedding` [K, D]; `norms`: their
    `squared_norms`, if already computed."""
    x = x.contiguous()
    norms = squared_norms(embedding) if norms is None else norms
    return -(x.pow(2).sum(1, keepdim=True) - 2 * x @ embedding.t() + norms)


def nearest_codes(x: torch.Tensor, embedding: torch.Tensor, chunk: int = 16384,
                  norms: torch.Tensor | None = None) -> torch.Tensor:
    """Index `[N]` of the nearest code for each row of `x` [N, D]; chunked so large N stays in memory.

    Chunking along rows changes nothing numerically: each row's scores depend only on that row.
    """
    norms = squared_norms(embedding) if norms is None else norms
    if x.shape[0] <= chunk:
        return negative_distances(x, embedding, norms).max(dim=-1).indices
    return torch.cat([negative_distances(part, embedding, norms).max(dim=-1).indices for part in x.split(chunk)])
