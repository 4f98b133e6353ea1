"""Models that code in segments (EnCodec's 48 kHz model): long signals one segment at a time.

Such a model cuts its input into overlapping segments (1 s, 1% overlap for EnCodec's), codes each on its own, and
joins the decoded segments with a linear cross-fade. The segments being independent, a file's blocks can be cut
into segments as they arrive and each decoded segment joined to the last as it comes: memory then holds a block
and a segment, where `Codec.encode` / `decode` on the whole signal hold it several times over. The codes and the
audio are those of `encode` / `decode` exactly, which run through the same code (`encode_segments`,
`decoded_segments`, `OverlapAdd`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Iterable, Iterator

import torch

if TYPE_CHECKING:
    from .codec import Codec, EncodedAudio


class OverlapAdd:
    """EnCodec's join of decoded segments that start `stride` apart, pushed one at a time.

    Each segment is weighted by a triangle peaking at its middle (the first segment's length sets the triangle)
    and the sum is divided by the summed weights, so a sample covered once passes unchanged and overlaps fade
    linearly from one segment to the next. A sample is finished once the next segment starts after it: `push`
    returns the samples it finished, `flush` the rest. Sums run in the order a whole-signal sum would take, so the
    samples are the same to the bit.
    """

    def __init__(self, stride: int):
        self.stride = stride
        self.weight: torch.Tensor | None = None
        self.out: torch.Tensor | None = None  # weighted sums from sample `start` on, not yet finished
        self.weight_sum: torch.Tensor | None = None
        self.start = self.offset = 0  # where `out` begins; where the next segment begins

    def push(self, segment: torch.Tensor) -> torch.Tensor:
        """Add the next decoded segment `[..., n]`; the finished samples `[..., t]`."""
        n = segment.shape[-1]
        if self.weight is None:
            t = torch.linspace(0, 1, n + 2, device=segment.device, dtype=segment.dtype)[1:-1]
            self.weight = 0.5 - (t - 0.5).abs()
            self.out = segment.new_zeros(*segment.shape[:-1], 0)
            self.weight_sum = segment.new_zeros(0)
        grow = self.offset + n - self.start - self.out.shape[-1]
        if grow > 0:
            self.out = torch.cat([self.out, self.out.new_zeros(*self.out.shape[:-1], grow)], dim=-1)
            self.weight_sum = torch.cat([self.weight_sum, self.weight_sum.new_zeros(grow)])
        begin = self.offset - self.start
        self.out[..., begin : begin + n] += self.weight[:n] * segment
        self.weight_sum[begin : begin + n] += self.weight[:n]
        self.offset += self.stride
        return self._take(self.offset - self.start)

    def flush(self) -> torch.Tensor:
        """The samples not yet returned."""
        return self._take(self.out.shape[-1])

    def _take(self, count: int) -> torch.Tensor:
        finished = self.out[..., :count] / self.weight_sum[:count]
        self.out, self.weight_sum = self.out[..., count:], self.weight_sum[count:]
        self.start += finished.shape[-1]
        return finished


def decoded_segments(codec: Codec, encoded: EncodedAudio) -> Iterator[torch.Tensor]:
    """`codec.decode(encoded)` in pieces `[B, C, t]`, one per segment (one in all for a model without segments),
    `encoded.length` samples together; `encoded` as `decode` checks it."""
    parts = encoded.codes.split(codec.segment_frames(encoded.length), dim=-1)
    scales = [None] * len(parts) if encoded.scales is None else encoded.scales.unbind(dim=1)
    if len(parts) == 1:
        yield codec.decode_segment(parts[0], scales[0])[..., : encoded.length]
        return
    joiner, remaining = OverlapAdd(codec.segment_stride), encoded.length
    for part, scale in zip(parts, scales):
        finished = joiner.push(codec.decode_segment(part, scale))[..., :remaining]
        remaining -= finished.shape[-1]
        yield finished
    yield joiner.flush()[..., :remaining]


def encode_segments(codec: Codec, blocks: Iterable[torch.Tensor], length: int,
                    progress: Callable[[list[tuple[int, int]]], Iterable[tuple[int, int]]] = iter,
                    bandwidth: float | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The codes `[B, n_q, frames]` and scales (`[B, segments]`, or None) of the signal made of `blocks`
    (`[B, C, t]` each, `length` samples together) at `bandwidth` (None: the codec's), coding each segment
    (`codec.segments`; the whole signal for a model without segments) as soon as its samples have come:
    `codec.encode` is this on one block. `progress` wraps the list of segments (a progress bar)."""
    device = next(codec.parameters()).device
    pieces = iter(blocks)
    held, held_start = None, 0  # the samples read and not yet coded past, from `held_start` on
    codes, scales = [], []
    for offset, n in progress(codec.segments(length)):
        while held is None or held_start + held.shape[-1] < offset + n:
            block = next(pieces, None)
            if block is None:
                raise ValueError(f"the blocks hold fewer than the {length} samples promised")
            held = block if held is None else torch.cat([held, block], dim=-1)
        segment = held[..., offset - held_start : offset + n - held_start]
        segment_codes, scale = codec.encode_segment(segment.to(device), bandwidth)
        codes.append(segment_codes)
        scales.append(scale)
        drop = min(offset + (codec.segment_stride or length) - held_start, held.shape[-1])
        held, held_start = held[..., drop:], held_start + drop
    return torch.cat(codes, dim=-1), None if scales[0] is None else torch.stack(scales, dim=1)
