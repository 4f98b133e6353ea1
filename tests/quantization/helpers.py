"""Small synthetic feature streams for the quantization tests."""

import torch


def cluster_stream(centres: torch.Tensor, steps: int, batch: int, frames: int, spread: float = 0.05,
                   seed: int = 0) -> list[torch.Tensor]:
    """`steps` batches `[batch, D, frames]` of points around `centres` [C, D], each centre equally likely."""
    generator = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(steps):
        pick = torch.randint(0, centres.shape[0], (batch, frames), generator=generator)
        points = centres[pick] + spread * torch.randn(batch, frames, centres.shape[1], generator=generator)
        out.append(points.transpose(1, 2).contiguous())
    return out


def grid_centres(count: int, dimension: int, offset: float, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return offset + 3.0 * torch.randn(count, dimension, generator=generator)
