"""The few collectives the quantizer needs, usable with or without a process group.

Without an initialised `torch.distributed` process group every helper is the single-process identity, so the
quantizer runs unchanged in scripts, tests and inference. With one, the quantizer calls each helper exactly once
per training step for all levels together (flatten, reduce, split), whatever the data, so ranks never disagree on
which collectives to enter.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def all_reduce_sum(tensors: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Sums each tensor over ranks with one collective (float64 inside for exactness); identity on one process.

    The flat buffer is float64 so that counts stay exact and sums agree with a single-process run to far better
    than the float32 tolerance, independently of how the batch is split.
    """
    if not is_distributed():
        return [t.detach() for t in tensors]
    flat = torch.cat([t.detach().reshape(-1).to(torch.float64) for t in tensors])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    out = []
    for piece, t in zip(flat.split([t.numel() for t in tensors]), tensors):
        out.append(piece.reshape(t.shape))
    return out


def all_gather_rows(rows: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Concatenates in rank order the `[n_r, D]` rows held by each rank.

    `counts` [world] must already hold every rank's `n_r` (the quantizer gets them from its one all-reduce), so
    the rows can be padded to a common length for `all_gather`.
    """
    if not is_distributed():
        return rows
    counts_list = [int(c) for c in counts.tolist()]
    longest = max(counts_list)
    padded = rows.new_zeros(longest, rows.shape[1])
    padded[: rows.shape[0]] = rows
    gathered = [torch.empty_like(padded) for _ in counts_list]
    dist.all_gather(gathered, padded.contiguous())
    return torch.cat([g[:n] for g, n in zip(gathered, counts_list)])


def broadcast_(tensors: Sequence[torch.Tensor], src: int = 0) -> None:
    """Overwrites each tensor in place with rank `src`'s copy (one collective for all of them)."""
    if not is_distributed():
        return
    flat = torch.cat([t.detach().reshape(-1).to(torch.float64) for t in tensors])
    dist.broadcast(flat, src=src)
    for piece, t in zip(flat.split([t.numel() for t in tensors]), tensors):
        t.data.copy_(piece.reshape(t.shape).to(t.dtype))
