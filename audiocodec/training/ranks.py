"""What the ranks of a DDP run check with each other: the process group's timeout, the checkpoint they start
from, and that they still hold bit-identical models.

Correctness under DDP rests on every rank computing bitwise the same codebook updates (replacement draws, k-means,
EMA of all-reduced statistics). Two things break that without any error of their own:
- ranks that start from different checkpoints (nodes without a shared `output_dir`: the node that finds none starts
  from scratch and dies later in a collective of another size), caught by `agree_on_checkpoint` before any step;
- ranks whose arithmetic differs (GPUs of different kinds, a non-deterministic kernel), caught by
  `check_in_sync`, which compares per-tensor checksums every `sync_check_every` steps and before each checkpoint.
moshi broadcasts rank 0's buffers after such a check; here a mismatch stops the run instead, naming the first
tensor that differs, since a silent repair would hide a fault that keeps recurring.
"""

from __future__ import annotations

import dataclasses
import datetime
import socket
from collections.abc import Iterable

import torch
from torch import distributed as dist

from ..errors import AudioCodecError


class RanksDivergedError(AudioCodecError):
    """The ranks of a DDP run no longer hold the same weights or codebook buffers."""


class LostRankError(AudioCodecError):
    """A collective failed: another rank died, its node went away, or it stopped answering within the timeout."""


def join_process_group(backend: str, timeout_seconds: float) -> None:
    """`init_process_group` with the run's collective timeout, its failures in one line.

    The timeout bounds every later collective too: when a rank dies mid-step, the others leave the collective it
    never joins with `LostRankError` within that time (at once with gloo, whose connections close) instead of
    waiting for torch's default of 30 minutes (gloo) or 10 (NCCL)."""
    try:
        dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_seconds))
    except (dist.DistError, RuntimeError, ValueError) as error:
        raise LostRankError(f"cannot join the other ranks ({one_line(error)}): check MASTER_ADDR/MASTER_PORT or "
                            f"torchrun's --rdzv_endpoint, and that every node can reach it") from None


def one_line(error: BaseException, limit: int = 160) -> str:
    """The first line of an error's message, shortened: gloo's and NCCL's messages run over many lines."""
    text = next((line.strip() for line in str(error).splitlines() if line.strip()), type(error).__name__)
    text = text.rstrip(".")  # it goes inside parentheses
    return text if len(text) <= limit else text[: limit - 3] + "..."


#: Words of the errors gloo and NCCL raise (as plain `RuntimeError`s, or `DistError`s) when a peer is gone.
_PEER_GONE = ("gloo", "nccl", "connection reset", "connection closed", "timed out", "broken pipe")


def is_collective_failure(error: BaseException) -> bool:
    """Whether `error` is a collective's failure (another rank gone), not a fault of this rank's own."""
    if isinstance(error, dist.DistError):
        return True
    text = str(error).lower()
    return isinstance(error, RuntimeError) and dist.is_initialized() and any(word in text for word in _PEER_GONE)


def lost_rank(error: BaseException, step: int) -> LostRankError:
    """What a rank says when a collective fails under it."""
    return LostRankError(f"step {step}: a collective with the other ranks failed ({one_line(error)}): a rank died "
                         "or its node went away; the last checkpoint is intact and --resume continues from it")


@dataclasses.dataclass(frozen=True)
class Found:
    """The checkpoint one rank found to start from: its step (None: none), and where it looked or what it read."""

    step: int | None
    where: str
    host: str = dataclasses.field(default_factory=socket.gethostname)

    def describe(self) -> str:
        if self.step is None:
            return f"none (in {self.host}:{self.where})"
        return f"step {self.step} ({self.host}:{self.where})"


def agree_on_checkpoint(mine: Found, resume: bool) -> None:
    """Stop every rank, in one line, unless all found the same checkpoint step (or all found none).

    Each rank reads checkpoints from its own `output_dir` (or `--resume-from`): ranks on nodes that do not share the
    folder find different ones, or none. Called on every rank, before any other collective of the run, so that the
    refusal comes within seconds rather than as a hang in a collective of mismatched size."""
    if not dist.is_initialized() or dist.get_world_size() == 1:
        return
    everyone: list[Found | None] = [None] * dist.get_world_size()
    dist.all_gather_object(everyone, mine)
    if len({found.step for found in everyone}) == 1:
        return
    groups: dict[tuple, list[int]] = {}
    for rank, found in enumerate(everyone):
        groups.setdefault((found.step, found.where, found.host), []).append(rank)
    summary = "; ".join(f"{_ranks(ranks)} found {Found(*key).describe()}" for key, ranks in groups.items())
    if resume:
        raise AudioCodecError(f"the ranks found different checkpoints to resume from: {summary}. Every node must "
                              "see the same output_dir (a shared folder), or give --resume-from PATH with the same "
                              "checkpoint on every node")
    raise AudioCodecError(f"some ranks' output_dir holds a run's checkpoints and some do not: {summary}. Every node "
                          "must see the same output_dir (a shared folder); --resume continues the run there")


def _ranks(ranks: list[int]) -> str:
    if len(ranks) == 1:
        return f"rank {ranks[0]}"
    if ranks == list(range(ranks[0], ranks[-1] + 1)):
        return f"ranks {ranks[0]}-{ranks[-1]}"
    return "ranks " + ",".join(map(str, ranks))


def tensor_checksums(tensors: Iterable[torch.Tensor]) -> torch.Tensor:
    """Two int64 checksums per tensor, of its exact bits: their sum, and their sum weighted by position (which
    also sees two values swapped). Integer sums do not depend on the order of addition, so they are the same
    on every rank whatever the kernel; one `[n, 2]` tensor, on the tensors' device, for one small all-gather."""
    sums = []
    for tensor in tensors:
        bits = tensor.detach()
        if bits.dtype == torch.bool:
            bits = bits.to(torch.uint8)
        elif bits.is_floating_point():
            bits = bits.contiguous().view({1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}[
                bits.element_size()])
        bits = bits.reshape(-1).to(torch.int64)
        weights = torch.arange(bits.numel(), device=bits.device) % 65_521 + 1
        sums.append(torch.stack([bits.sum(), (bits * weights).sum()]))
    return torch.stack(sums) if sums else torch.zeros(0, 2, dtype=torch.int64)


def check_in_sync(named: list[tuple[str, torch.Tensor]], step: int) -> None:
    """Raise `RanksDivergedError` on every rank, naming the first tensor that differs, unless all ranks hold the
    same bits in `named` (parameters and buffers, quantizer included). One all-gather of 16 bytes a tensor."""
    if not dist.is_initialized() or dist.get_world_size() == 1 or not named:
        return
    mine = tensor_checksums(tensor for _, tensor in named)
    everyone = [torch.empty_like(mine) for _ in range(dist.get_world_size())]
    dist.all_gather(everyone, mine)
    stacked = torch.stack(everyone).cpu()  # [world, n, 2]
    differs = (stacked != stacked[0]).any(dim=2)  # [world, n]
    if not differs.any():
        return
    first = int(differs.any(dim=0).nonzero()[0])
    ranks = differs[:, first].nonzero().flatten().tolist()
    count = int(differs.any(dim=0).sum())
    raise RanksDivergedError(
        f"step {step}: the ranks diverged: {named[first][0]} differs between rank 0 and {_ranks(ranks)} ({count} of "
        f"{len(named)} tensors differ). Ranks must compute bit-identical updates: run every node with the same "
        "GPU kind and the same torch and audiocodec versions, without non-deterministic kernels; --resume "
        "continues from the last checkpoint, which was checked before it was written")
