"""Nearest-code search, written exactly as EnCodec writes it.

Loaded EnCodec checkpoints must reproduce EnCodec's codes bit for bit, and a float argmax over near-ties depends
on the order of floating-point operations. So the score is EnCodec's `EuclideanCodebook.quantize` expression,
term for term: `-(|x|^2 - 2 x E^T + |E|^2)` on a contiguous `[N, D]` input against the transposed `[K, D]`
codebook, with ties resolved by `max(dim=-1).indices`.
"""

from __future__ import annotations

import torch


def negative_distances(x: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
    """Scores `[N, K]` (higher is nearer) of rows `x` [N, D] against codes `embedding` [K, D]."""
    x = x.contiguous()
    embed = embedding.t()
    return -(x.pow(2).sum(1, keepdim=True) - 2 * x @ embed + embed.pow(2).sum(0, keepdim=True))


def nearest_codes(x: torch.Tensor, embedding: torch.Tensor, chunk: int = 16384) -> torch.Tensor:
    """Index `[N]` of the nearest code for each row of `x` [N, D]; chunked so large N stays in memory.

    Chunking along rows changes nothing numerically: each row's scores depend only on that row.
    """
    if x.shape[0] <= chunk:
        return negative_distances(x, embedding).max(dim=-1).indices
    return torch.cat([negative_distances(part, embedding).max(dim=-1).indices for part in x.split(chunk)])
