"""Long signals through a causal SEANet in long chunks: the whole-signal path's speed, with bounded memory.

A causal SEANet is an LSTM between two convolutional stacks. A causal convolutional stack's output at any time
depends only on a fixed span of its input up to that time (its look-back, `look_back`), so a chunk of output is
exact when the stack runs on the chunk's input plus that much input before it, and the outputs of that extra input
are dropped (overlap-save). The LSTM's memory is unbounded, so its state is carried from chunk to chunk instead.

Each chunk then runs the same tiled code as a whole signal (`run_layers`). `StreamingRunner`, made for small
real-time chunks, instead keeps each layer's held-back input and joins it to every new chunk, layer by layer,
outside the tiled code: on 60 s with 10 s chunks it decoded 16-21% slower than this, with 1.6-2 times the peak
memory (`benchmarks/long_files.py`, docs/performance.md). Outputs equal the whole-signal outputs up to float rounding
(tests/test_chunked.py).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, Sequence

import torch
from torch import nn

from ..modules.lstm import ConvLSTM
from ..modules.seanet import run_layers
from ..modules.streamable import Streaming, streaming_kind

if TYPE_CHECKING:
    from ..model import Codec, EncodedAudio

#: Wraps the range of chunk starts (`iter`, or a progress bar).
Progress = Callable[[range], Iterable[int]]


def input_start(layer: nn.Module, start: int) -> int:
    """The first input index that outputs from index `start` on depend on, for a causal `layer`."""
    kind = _kind(layer)
    if kind is Streaming.CONV:
        if not layer.causal:
            raise TypeError("only causal convolutions can run in chunks")
        return start * layer.stride - layer.padding_total  # all padding on the left: window j starts there
    if kind is Streaming.TRANSPOSED:
        kernel_size, stride = layer.convtr.kernel_size[0], layer.convtr.stride[0]
        if layer.trim_left:
            raise TypeError("a transposed convolution trimmed on the left looks ahead, so it cannot run in chunks")
        # Output sample u sums frames m with 0 <= u - m * stride < kernel_size.
        return -((kernel_size - 1 - start) // stride)  # ceil((start - kernel_size + 1) / stride)
    if kind is Streaming.RESIDUAL:
        return min(stack_input_start(layer.block, start), stack_input_start([layer.shortcut], start))
    if kind is Streaming.POINTWISE:
        return start
    raise TypeError(f"{type(layer).__name__} cannot run in chunks")


def _kind(layer: nn.Module) -> Streaming:
    try:
        return streaming_kind(layer)
    except TypeError:
        raise TypeError(f"{type(layer).__name__} cannot run in chunks") from None


def stack_input_start(layers: Sequence[nn.Module], start: int) -> int:
    for layer in reversed(list(layers)):
        start = input_start(layer, start)
    return start


def _rate(layers: Sequence[nn.Module], kind: Streaming) -> int:
    """Product of the strides of the `kind` (`CONV` or `TRANSPOSED`) layers of `layers` (residual units have none)."""
    strides = [layer.stride if kind is Streaming.CONV else layer.convtr.stride[0]
               for layer in layers if _kind(layer) is kind]
    return math.prod(strides)


class _Stack:
    """Overlap-save over a causal convolutional stack: `push` input chunks, get the outputs they complete.

    Chunks other than the last must be multiples of the stack's down-sampling factor, so that every chunk starts
    on an output boundary.
    """

    def __init__(self, layers: Sequence[nn.Module]):
        self.layers = list(layers)
        self.down, self.up = _rate(self.layers, Streaming.CONV), _rate(self.layers, Streaming.TRANSPOSED)
        if self.down > 1 and self.up > 1:
            raise TypeError("a stack that both down- and up-samples cannot run in chunks")
        #: Input samples before a chunk that its outputs depend on, rounded up to whole output steps.
        self.look_back = max(0, -stack_input_start(self.layers, 0))
        self.context = math.ceil(self.look_back / self.down) * self.down
        self.tail: torch.Tensor | None = None

    def push(self, x: torch.Tensor) -> torch.Tensor:
        if not self.layers:
            return x
        joined = x if self.tail is None else torch.cat([self.tail, x], dim=-1)
        held = 0 if self.tail is None else self.tail.shape[-1]
        y = run_layers(self.layers, joined)
        self.tail = joined[..., max(0, joined.shape[-1] - self.context) :] if self.context else None
        return y[..., held * self.up // self.down :]


class ChunkedRunner:
    """Runs a causal SEANet encoder or decoder (`module.model`) over consecutive chunks of one signal.

    `push` each chunk in order, `length_step` samples (or frames) long or a multiple of it, except the last, which
    may be shorter; the outputs, joined, equal `module(whole signal)` up to float rounding. Raises `TypeError` for
    layouts it cannot run this way (non-causal layers, or more than one LSTM).
    """

    def __init__(self, module: nn.Module):
        layers = list(module.model)
        lstm_at = [i for i, layer in enumerate(layers) if _kind(layer) is Streaming.RECURRENT]
        if len(lstm_at) > 1:
            raise TypeError("only a SEANet with at most one LSTM block can run in chunks")
        split = lstm_at[0] if lstm_at else len(layers)
        self.before = _Stack(layers[:split])
        self.lstm: ConvLSTM | None = layers[split] if lstm_at else None
        self.after = _Stack(layers[split + 1 :])
        if self.after.down > 1:
            raise TypeError("a SEANet that down-samples after its LSTM cannot run in chunks")
        self.state: tuple[torch.Tensor, torch.Tensor] | None = None

    @property
    def length_step(self) -> int:
        """Chunks are multiples of this many input samples (or frames), the last one excepted."""
        return self.before.down

    @property
    def min_length(self) -> int:
        """The shortest first chunk, in input samples (or frames): every layer must see more samples than it pads
        on the left, or it pads a short signal with zeros where the whole signal is reflected. A layer's padding,
        scaled to the input's rate, is part of the look-back, so a chunk longer than the look-back is enough."""
        return max(self.before.context, self.after.context * self.before.down) + self.before.down

    def push(self, x: torch.Tensor) -> torch.Tensor:
        y = self.before.push(x)
        if self.lstm is None:
            return y
        y, self.state = self.lstm.resume(y, self.state)
        return self.after.push(y)


def runs_in_chunks(codec: Codec) -> bool:
    """Whether `codec` (a causal model without segments or normalisation) can code in chunks."""
    from ..model.streaming import check_streamable

    try:
        check_streamable(codec)
        ChunkedRunner(codec.encoder), ChunkedRunner(codec.decoder)
    except (ValueError, TypeError):
        return False
    return True


def encode_in_chunks(codec: Codec, wav: torch.Tensor, chunk_length: int, progress: Progress = iter,
                     bandwidth: float | None = None) -> EncodedAudio:
    """`codec.encode(wav, bandwidth)` (`runs_in_chunks(codec)`), holding about `chunk_length` samples'
    activations at a time; `progress` wraps the range of chunk starts (a progress bar)."""
    from ..model import EncodedAudio

    step = encoder_chunk_length(codec, chunk_length)
    chunks = (wav[..., begin : begin + step] for begin in progress(range(0, wav.shape[-1], step)))
    return EncodedAudio(encode_chunks(codec, chunks, bandwidth), None, wav.shape[-1])


def encoder_chunk_length(codec: Codec, wanted: int) -> int:
    """The chunk length `encode_chunks` takes that is nearest `wanted` (samples)."""
    return _chunk_length(ChunkedRunner(codec.encoder), wanted)


def encode_chunks(codec: Codec, chunks: Iterable[torch.Tensor], bandwidth: float | None = None) -> torch.Tensor:
    """The codes `[B, n_q, frames]` of the signal made of `chunks` (`[B, C, t]` each, all of
    `encoder_chunk_length(codec, ...)` samples but the last), at `bandwidth` (None: the codec's)."""
    device = next(codec.parameters()).device
    runner = ChunkedRunner(codec.encoder)
    n_q = codec.n_q_for_bandwidth(codec.check_bandwidth(bandwidth))
    codes = []
    for chunk in chunks:
        features = runner.push(chunk.to(device, codec.network_dtype))
        codes.append(codec.quantizer.encode(features.to(codec.quantizer.dtype), n_q))
    return torch.cat(codes, dim=-1)


def decode_in_chunks(codec: Codec, encoded: EncodedAudio, chunk_frames: int, progress: Progress = iter) -> torch.Tensor:
    """`codec.decode(encoded)` as float32 on the CPU (`runs_in_chunks(codec)`), `chunk_frames` frames at a time."""
    codes = encoded.codes
    out = torch.empty(codes.shape[0], codec.channels, encoded.length)
    written = 0
    for part in decoded_chunks(codec, encoded, chunk_frames, progress):
        out[..., written : written + part.shape[-1]] = part
        written += part.shape[-1]
    return out


def decoded_chunks(codec: Codec, encoded: EncodedAudio, chunk_frames: int,
                   progress: Progress = iter) -> Iterator[torch.Tensor]:
    """`decode_in_chunks`, one float32 CPU chunk `[B, C, t]` at a time, `encoded.length` samples in all."""
    runner = ChunkedRunner(codec.decoder)
    chunk_frames = _chunk_length(runner, chunk_frames)
    codes = encoded.codes
    remaining = encoded.length
    for begin in progress(range(0, codes.shape[-1], chunk_frames)):
        latent = codec.quantizer.decode(codes[..., begin : begin + chunk_frames]).to(codec.network_dtype)
        part = runner.push(latent)[..., :remaining].float().cpu()
        remaining -= part.shape[-1]
        yield part


def _chunk_length(runner: ChunkedRunner, wanted: int) -> int:
    """`wanted`, or the runner's shortest first chunk if longer, rounded up to a whole `length_step`."""
    step = runner.length_step
    return -(-max(wanted, runner.min_length) // step) * step
