"""Running a causal SEANet chunk by chunk, with results equal to running it on the whole signal.

Live audio (calls, a microphone) must be coded as it comes, and a causal model can be: each layer only needs a
little of its past (long files go through `coding.chunked`, which runs whole chunks through the same idea).
`StreamingRunner` walks the layers of an encoder or decoder and keeps, per layer, exactly what the whole-signal
computation would have seen:

* `PaddedConv1d`: the input samples not yet consumed by a full window (the first chunk is reflect-padded on the
  left as the whole signal is; the last is padded on the right, by `flush`, as the whole signal is);
* `ConvLSTM`: the LSTM's hidden and cell states;
* `PaddedConvTranspose1d`: the overlapping tail of the last chunk's output, added to the next chunk's head
  (the bias is added once, when samples are final).

Outputs equal the whole-signal outputs up to float rounding (convolution kernels may sum in another order on
inputs of other lengths); see tests/test_streaming.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import torch
from torch import nn

from ..modules.conv import PaddedConv1d, PaddedConvTranspose1d, extra_padding_for_conv1d, pad1d
from ..modules.lstm import ConvLSTM
from ..modules.streamable import Streaming, streaming_kind, sublayers

if TYPE_CHECKING:
    from .codec import Codec


class _ConvState:
    def __init__(self) -> None:
        self.pending: torch.Tensor | None = None  # input not yet consumed by a full window
        self.started = False  # left padding applied
        self.seen = 0  # input samples received


class _TransposedState:
    def __init__(self) -> None:
        self.tail: torch.Tensor | None = None
        self.to_drop = -1  # samples still to trim on the left; -1 = not set yet


class _ResidualState:
    """The shortcut answers at once, while the block may hold samples back (its convolutions wait for enough
    input to pad, on very short signals): each side's output waits here until the other's catches up."""

    def __init__(self) -> None:
        self.skip: torch.Tensor | None = None
        self.branch: torch.Tensor | None = None

    def add(self, skip: torch.Tensor | None, branch: torch.Tensor | None) -> torch.Tensor | None:
        self.skip, self.branch = _append(self.skip, skip), _append(self.branch, branch)
        if self.skip is None or self.branch is None:
            return None
        ready = min(self.skip.shape[-1], self.branch.shape[-1])
        if not ready:
            return None
        out = self.skip[..., :ready] + self.branch[..., :ready]
        self.skip, self.branch = self.skip[..., ready:], self.branch[..., ready:]
        return out


def _append(held: torch.Tensor | None, new: torch.Tensor | None) -> torch.Tensor | None:
    if held is None or not held.shape[-1]:
        return new
    return held if new is None else torch.cat([held, new], dim=-1)


class StreamingRunner:
    """Feeds chunks `[B, C, t]` through `module` (a causal SEANet encoder or decoder), keeping per-layer state."""

    def __init__(self, module: nn.Module):
        self.module = module
        self.states: dict[int, object] = {}
        self.flushed = False

    def push(self, x: torch.Tensor) -> torch.Tensor | None:
        """The outputs `x` completes; None when it completes none (an empty `x` among them)."""
        self._check_open()
        return self._run(self.module, x, final=False) if x.shape[-1] else None

    def flush(self) -> torch.Tensor:
        """Everything still held back, once the input has ended (pads the end as whole-signal processing does)."""
        self._check_open()
        self.flushed = True
        return self._run(self.module, None, final=True)

    def _check_open(self) -> None:
        """A flushed stream has padded its end like a whole signal's; more audio after it would be coded wrongly."""
        if self.flushed:
            raise RuntimeError("this stream was flushed: start a new one (codec.streaming_encoder() or "
                               "streaming_decoder()) for more audio")

    # -- dispatch ---------------------------------------------------------------------------------------------
    def _run(self, module: nn.Module, x: torch.Tensor | None, final: bool) -> torch.Tensor | None:
        try:
            kind = streaming_kind(module)
        except TypeError:
            raise TypeError(f"{type(module).__name__} cannot run in streaming mode") from None
        if kind is Streaming.SEQUENCE:
            for layer in sublayers(module):
                x = self._run(layer, x, final)
            return x
        if kind is Streaming.CONV:
            return self._conv(module, x, final)
        if kind is Streaming.TRANSPOSED:
            return self._transposed(module, x, final)
        if kind is Streaming.RECURRENT:
            return self._lstm(module, x)
        if kind is Streaming.RESIDUAL:
            state: _ResidualState = self._state(module, _ResidualState)
            return state.add(self._run(module.shortcut, x, final), self._run(module.block, x, final))
        return None if x is None else module(x)  # Streaming.POINTWISE

    def _state(self, module: nn.Module, factory: Callable[[], object]) -> object:
        return self.states.setdefault(id(module), factory())

    # -- layers -----------------------------------------------------------------------------------------------
    def _conv(self, conv: PaddedConv1d, x: torch.Tensor | None, final: bool) -> torch.Tensor | None:
        if not conv.causal:
            raise TypeError("only causal models can be streamed")
        state: _ConvState = self._state(conv, _ConvState)
        if x is not None:
            state.seen += x.shape[-1]
            state.pending = x if state.pending is None else torch.cat([state.pending, x], dim=-1)
        if state.pending is None:
            return None
        if not state.started:
            if final and state.pending.shape[-1] <= conv.padding_total:
                return conv(state.pending)  # too short to ever stream: the whole-signal path handles it
            if state.pending.shape[-1] <= conv.padding_total:
                return None  # reflection needs more samples than the padding
            state.pending = pad1d(state.pending, conv.padding_total, 0, conv.pad_mode)
            state.started = True
        if final:
            extra = extra_padding_for_conv1d(state.seen, conv.kernel_size, conv.stride, conv.padding_total)
            state.pending = pad1d(state.pending, 0, extra, conv.pad_mode)
        span = (conv.kernel_size - 1) * conv.dilation + 1
        available = state.pending.shape[-1]
        windows = (available - span) // conv.stride + 1 if available >= span else 0
        if windows <= 0:
            return None
        used = (windows - 1) * conv.stride + span
        out = conv.norm(conv.conv(state.pending[..., :used]))
        state.pending = state.pending[..., windows * conv.stride :]
        return out

    def _lstm(self, block: ConvLSTM, x: torch.Tensor | None) -> torch.Tensor | None:
        if x is None:
            return None
        y, self.states[id(block)] = block.resume(x, self.states.get(id(block)))
        return y

    def _transposed(self, layer: PaddedConvTranspose1d, x: torch.Tensor | None, final: bool) -> torch.Tensor | None:
        state: _TransposedState = self._state(layer, _TransposedState)
        kernel_size, stride = layer.convtr.kernel_size[0], layer.convtr.stride[0]
        overlap = kernel_size - stride
        out = None
        if x is not None:
            y = layer.untrimmed_without_bias(x)
            if state.tail is not None:
                y = torch.cat([y[..., :overlap] + state.tail, y[..., overlap:]], dim=-1)
            out, state.tail = y[..., : y.shape[-1] - overlap], y[..., y.shape[-1] - overlap :]
        if final and state.tail is not None:
            end = state.tail[..., : overlap - layer.trim_right]
            out = end if out is None else torch.cat([out, end], dim=-1)
        if out is None:
            return None
        if layer.convtr.bias is not None:
            out = out + layer.convtr.bias.view(1, -1, 1)
        out = layer.norm(out)
        if state.to_drop < 0:
            state.to_drop = layer.trim_left
        if state.to_drop:
            dropped = min(state.to_drop, out.shape[-1])
            out, state.to_drop = out[..., dropped:], state.to_drop - dropped
        return out


def _join(parts: list[torch.Tensor | None], empty: torch.Tensor) -> torch.Tensor:
    parts = [p for p in parts if p is not None]
    return torch.cat(parts, dim=-1).float() if parts else empty


class StreamingEncoder:
    """`push(wav [B, C, t]) -> codes [B, n_q, f]`, then `flush()`; together equal to `Codec.encode` (causal models).

    Codes come out as soon as the layers have the samples they need: a frame needs its own 320 samples (at 24 kHz),
    and at the very start each layer waits for more samples than it pads on the left (it reflects them), a few
    tens of milliseconds in all. Any chunk size works, down to one sample.
    """

    def __init__(self, codec: Codec):
        check_streamable(codec)
        self.codec = codec
        self.n_q = codec.n_q_for_bandwidth(codec.bandwidth)
        self.batch = 1
        self.runner = StreamingRunner(codec.encoder)

    @torch.no_grad()  # inference only, whatever the caller's mode: the fast paths need autograd off
    def push(self, wav: torch.Tensor) -> torch.Tensor:
        """Codes `[B, n_q, frames]` of the frames `wav` `[B, C, t]` completes (none for a 0-sample read, as from an
        audio device that had nothing yet)."""
        self.codec.check_audio(wav, allow_empty=True)
        self.batch = wav.shape[0]
        return self._codes([self.runner.push(wav.to(self.codec.network_dtype))])

    @torch.no_grad()
    def flush(self) -> torch.Tensor:
        return self._codes([self.runner.flush()])

    def _codes(self, features: list[torch.Tensor | None]) -> torch.Tensor:
        features = [f for f in features if f is not None and f.shape[-1]]
        if not features:
            device = next(self.codec.parameters()).device
            return torch.zeros(self.batch, self.n_q, 0, dtype=torch.long, device=device)
        latent = torch.cat(features, dim=-1).to(self.codec.quantizer.dtype)
        return self.codec.quantizer.encode(latent, self.n_q)


class StreamingDecoder:
    """`push(codes [B, n_q, f]) -> audio [B, C, t]`, then `flush()`; together equal to `Codec.decode` before it
    trims to the original length (`frames * hop_length` samples in all)."""

    def __init__(self, codec: Codec):
        check_streamable(codec)
        self.codec = codec
        self.runner = StreamingRunner(codec.decoder)
        self.batch = 1

    @torch.no_grad()
    def push(self, codes: torch.Tensor) -> torch.Tensor:
        self.batch = codes.shape[0]
        latent = self.codec.quantizer.decode(codes).to(self.codec.network_dtype)
        return _join([self.runner.push(latent)], self._empty())

    @torch.no_grad()
    def flush(self) -> torch.Tensor:
        return _join([self.runner.flush()], self._empty())

    def _empty(self) -> torch.Tensor:
        device = next(self.codec.parameters()).device
        return torch.zeros(self.batch, self.codec.channels, 0, device=device)


def check_streamable(codec: Codec) -> None:
    """Raises ValueError unless `codec` can run chunk by chunk (here, and in `audiocodec.coding.chunked`)."""
    config = codec.config
    if not config.causal or config.normalize or config.segment is not None:
        raise ValueError("streaming needs a causal model without segments or normalisation")
