"""Lloyd's k-means used to initialise codebooks (and as the offline reference in the benchmark)."""

from __future__ import annotations

import torch

from .nearest import nearest_codes


def sample_rows(data: torch.Tensor, num: int, generator: torch.Generator) -> torch.Tensor:
    """`num` distinct rows of `data` [N, D] when N allows, otherwise rows drawn with replacement.

    Random draws happen on the CPU (`generator` is a CPU generator) so results do not depend on the device.
    """
    n = data.shape[0]
    if n >= num:
        index = torch.randperm(n, generator=generator)[:num]
    else:
        index = torch.randint(0, n, (num,), generator=generator)
    return data[index.to(data.device)]


def kmeans(
    data: torch.Tensor, bins: int, iters: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Centroids `[bins, D]` and their final cluster sizes `[bins]` for `data` [N, D].

    Empty clusters are re-seeded with rows drawn in proportion to their squared distance from their current
    centroid (the k-means++ rule), rather than left in place as EnCodec's k-means does: an empty cluster is a
    dead code from the start. Stops early once assignments no longer change. Deterministic given `generator`,
    so every rank computing it on the same gathered data gets the same codebook.
    """
    data = data.detach().float()
    means = sample_rows(data, bins, generator).clone()
    assign = nearest_codes(data, means)
    for _ in range(iters):
        counts = torch.bincount(assign, minlength=bins)
        sums = torch.zeros_like(means).index_add_(0, assign, data)
        empty = counts == 0
        means = torch.where(empty[:, None], means, sums / counts.clamp(min=1)[:, None].to(data.dtype))
        if empty.any():
            errors = (data - means[assign]).pow(2).sum(1)
            weights = errors if errors.sum() > 0 else torch.ones_like(errors)
            picks = torch.multinomial(weights.cpu(), int(empty.sum()), replacement=True, generator=generator)
            means[empty] = data[picks.to(data.device)]
        new_assign = nearest_codes(data, means)
        if torch.equal(new_assign, assign) and not empty.any():
            break
        assign = new_assign
    return means, torch.bincount(assign, minlength=bins).to(data.dtype)
