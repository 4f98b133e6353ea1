"""Convolutions whose padding makes output lengths predictable for any input length.

The padding rules are EnCodec's, kept exactly, because loading EnCodec checkpoints and reproducing their codes
bit for bit depends on every layer seeing the same samples:

* a strided conv pads `(kernel_size - 1) * dilation - (stride - 1)` in total, all on the left when causal, split
  (right half rounded down) otherwise, plus just enough extra zeros on the right that the last window is full, so
  that `ceil(T / stride)` frames come out and the decoder can rebuild at least `T` samples;
* a transposed conv trims `kernel_size - stride` samples, on the right when causal (or as `trim_right_ratio`
  says), split otherwise.

Weight normalisation uses `torch.nn.utils.parametrizations.weight_norm`; `fold_weight_norm` bakes it into plain
weights for inference, which removes a norm computation per layer and per call.

On the CPU without autograd, long signals are convolved in time tiles (`tile_length`): each tile reads its window
of the input (padding only at the signal's edges, see `padded_window`), applies the preceding activation and the
convolution while the window is in the cache, and writes its slice of the output. The full-length activated and
padded copies of the input are never built, which at 24 kHz saves several passes over tens of megabytes per layer.
Every output sample is computed from the same inputs and weights, so results equal the untiled ones up to float
rounding. With autograd on (training), and on GPUs, one tile covers the signal: a GPU's cache is not a core's, and
tiles there would only multiply kernel launches.

With `channels_last` set (`Codec.prepare_for_inference` sets it for half precision, and on the CPU), activations
are stored time-major, `[B, T, C]` in memory behind the usual `[B, C, T]` shape, and each convolution runs as a
channels-last 2-D convolution of a `[B, C, 1, T]` view. On GPUs that layout is the tensor cores' own: PyTorch's
1-D convolution instead converts every input to it and back (`conv1d` makes permuted inputs contiguous), and adds
the bias in a separate pass over the output. On the CPU, oneDNN's channels-last kernels run the strided and
transposed convolutions of SEANet 15-40% faster than its channel-major ones. Element-wise operations keep the
layout of their inputs, and the padding below builds time-major outputs from time-major inputs.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import weight_norm

from . import cpu_cache
from .streamable import Streaming

NORMS = ("none", "weight_norm", "time_group_norm")
#: How convolutions pad their input (`F.pad` modes). "circular" is left out: it would pad the start of a causal
#: signal with its end, which a stream has not seen yet.
PAD_MODES = ("reflect", "replicate", "constant")


def _check_norm(norm: str, causal: bool) -> None:
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {', '.join(NORMS)}, got {norm!r}")
    if norm == "time_group_norm" and causal:
        raise ValueError("time_group_norm normalises over the whole signal, so it cannot be causal")


def _normalised(layer: nn.Module, norm: str) -> nn.Module:
    return weight_norm(layer) if norm == "weight_norm" else layer


def _norm_module(norm: str, channels: int) -> nn.Module:
    return nn.GroupNorm(1, channels) if norm == "time_group_norm" else nn.Identity()


def extra_padding_for_conv1d(length: int, kernel_size: int, stride: int, padding_total: int) -> int:
    """Zeros to append on the right so that the last window of a strided conv is full."""
    n_frames = (length - kernel_size + padding_total) / stride + 1
    ideal_length = (math.ceil(n_frames) - 1) * stride + (kernel_size - padding_total)
    return ideal_length - length


def is_time_major(x: torch.Tensor) -> bool:
    """Whether `[B, C, T]` tensor `x` is stored as `[B, T, C]` (each time step's channels side by side)."""
    channels, length = x.shape[1], x.shape[2]
    return (channels == 1 or x.stride(1) == 1) and (length == 1 or x.stride(2) == channels)


def to_time_major(x: torch.Tensor) -> torch.Tensor:
    """`x` stored time-major: itself if it already is, else a copy."""
    return x if is_time_major(x) else x.transpose(1, 2).contiguous().transpose(1, 2)


def conv1d_channels_last(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, stride: int = 1,
                         dilation: int = 1, groups: int = 1) -> torch.Tensor:
    """`F.conv1d` (no padding) of `[B, C, T]` `x` as a channels-last 2-D convolution; the output is time-major."""
    if weight.dim() == 3:
        weight = channels_last_kernel(weight)
    y = F.conv2d(to_time_major(x).unsqueeze(2), weight, bias, (1, stride), 0, (1, dilation), groups)
    return to_time_major(y.squeeze(2))


def new_output(x: torch.Tensor, channels: int, length: int, time_major: bool) -> torch.Tensor:
    """An uninitialised `[B, channels, length]` tensor like `x`, stored time-major or not."""
    if time_major:
        return x.new_empty(x.shape[0], length, channels).transpose(1, 2)
    return x.new_empty(x.shape[0], channels, length)


def _pad_time_major(x: torch.Tensor, left: int, right: int, mode: str) -> torch.Tensor:
    """`pad1d` of a time-major `x` (reflect or constant zeros, input longer than the padding), time-major too:
    `torch.cat` and `F.pad` would return the usual layout."""
    length = x.shape[-1]
    out = x.new_empty(x.shape[0], left + length + right, x.shape[1]).transpose(1, 2)
    out[..., left : left + length] = x
    if mode == "reflect":
        out[..., :left] = x[..., 1 : left + 1].flip(-1)
        out[..., left + length :] = x[..., length - right - 1 : length - 1].flip(-1)
    else:
        out[..., :left] = 0
        out[..., left + length :] = 0
    return out


def pad1d(x: torch.Tensor, left: int, right: int, mode: str) -> torch.Tensor:
    """`F.pad` that also reflects inputs shorter than the padding (zero-extending them first, as EnCodec does).

    Reflection of a long enough input is built from flipped slices: the same samples as `F.pad(..., "reflect")`,
    several times faster on the CPU, where reflection padding is a large share of the encoder's time. A
    time-major input (`is_time_major`, with more than one channel) gives a time-major output.
    """
    if not (left or right):
        return x  # F.pad refuses an empty input in some modes, even with nothing to add
    length = x.shape[-1]
    if mode in ("reflect", "constant") and x.shape[1] > 1 and is_time_major(x) and (
            length > max(left, right)):
        return _pad_time_major(x, left, right, mode)
    if mode != "reflect":
        return F.pad(x, (left, right), mode)
    if length > max(left, right):
        parts = [x[..., 1 : left + 1].flip(-1)] if left else []
        parts.append(x)
        if right:
            parts.append(x[..., length - right - 1 : length - 1].flip(-1))
        return torch.cat(parts, dim=-1) if len(parts) > 1 else x
    extra = max(left, right) - length + 1 if length <= max(left, right) else 0
    if extra:
        x = F.pad(x, (0, extra))
    padded = F.pad(x, (left, right), "reflect")
    return padded[..., : padded.shape[-1] - extra]


#: Elements (channels x time steps) of the largest tensor a tile handles: `cpu_cache.tile_bytes` of floats (512 Ki on
#: a Xeon with 2 MiB of L2 a core, the fastest of 2**17 to 2**21 for the 24 kHz model on one core there: smaller
#: tiles pay more per-call overhead, larger ones leave the cache).
TILE_ELEMENTS = cpu_cache.elements_in(cpu_cache.tile_bytes())
#: The same for time-major activations, whose convolutions (oneDNN's channels-last kernels) gain more from long
#: tiles than they lose to the cache (ELU keeps to the cache on its own, `activations.ELU_PIECE`): four times that
#: (8 MiB on that Xeon, the fastest of 2**19 to 2**23 there, by 2.5% over 2**20 and 4% over 2**19).
TIME_MAJOR_TILE_ELEMENTS = cpu_cache.elements_in(4 * cpu_cache.tile_bytes())


def tiles_apply(x: torch.Tensor) -> bool:
    """Whether `x` is convolved in tiles: on the CPU, without autograd (a GPU's cache is not a core's)."""
    return not torch.is_grad_enabled() and x.device.type == "cpu"


def tile_length(x: torch.Tensor, elements_per_step: int, time_major: bool = False) -> int:
    """Time steps per tile of `x`, when each step involves `elements_per_step` values, in the given layout; the
    whole signal where tiles do not apply (`tiles_apply`)."""
    if not tiles_apply(x):
        return 1 << 62
    return max(1, (TIME_MAJOR_TILE_ELEMENTS if time_major else TILE_ELEMENTS) // elements_per_step)


def padded_window(x: torch.Tensor, left: int, right: int, mode: str, start: int, stop: int,
                  activation: nn.Module | None = None) -> torch.Tensor:
    """`pad1d(activation(x), left, right, mode)[..., start:stop]`, computing only the samples it returns.

    Inside the signal this is `activation` of a slice; near an edge, only the slice that holds the samples the
    padding reflects is activated and padded. `activation` must act on each time step on its own (ELU, ...).
    """
    length = x.shape[-1]
    lo, hi = start - left, stop - left  # the window in x's coordinates
    if lo >= 0 and hi <= length:
        return x[..., lo:hi] if activation is None else activation(x[..., lo:hi])
    # Widen the slice so that it holds every sample a reflection needs, then pad it like the whole signal.
    first = 0 if lo < 0 else max(0, min(lo, length - right - 1))
    last = length if hi > length else min(length, max(hi, left + 1))
    if length <= max(left, right):  # reflecting a short signal pads it with zeros first: pad all of it
        first, last = 0, length
    pad_left, pad_right = (left if first == 0 else 0), (right if last == length else 0)
    segment = x[..., first:last] if activation is None else activation(x[..., first:last])
    segment = pad1d(segment, pad_left, pad_right, mode)
    offset = start - (first + left - pad_left)
    return segment[..., offset : offset + stop - start]


class KeptKernel:
    """A kernel derived from a layer's weights (a polyphase or channels-last rearrangement), kept between calls.

    Only when `keep` is set (`Codec.prepare_for_inference` sets it) and autograd is off: the kernel is rebuilt
    when the weights are other tensors, or the same ones moved or changed in place; writes through `.data` are
    invisible to that check, which is why keeping is for weights that no longer change. With autograd the kernel
    is always rebuilt, to carry the gradient. Inference tensors (weight norm computed under `inference_mode`)
    have no version to compare, and are new at every call anyway.
    """

    def __init__(self):
        self.keep = False
        self._cached: tuple | None = None

    def get(self, tensors: list[torch.Tensor], build: Callable[[], object], *key: object) -> object:
        """`build()`, or what it returned last time for the same `tensors` and `key`."""
        if not self.keep or torch.is_grad_enabled() or any(t.is_inference() for t in tensors):
            self._cached = None
            return build()
        full_key = [(t.data_ptr(), t._version) for t in tensors] + list(key)
        cached = self._cached
        if cached is not None and cached[0] == full_key and all(a is b for a, b in zip(cached[1], tensors)):
            return cached[2]
        value = build()
        self._cached = (full_key, tensors, value)
        return value


def channels_last_kernel(weight: torch.Tensor) -> torch.Tensor:
    """A `[C_out, C_in, taps]` kernel as the `[C_out, C_in, 1, taps]` channels-last 2-D kernel that
    `conv1d_channels_last` convolves with (converting it at every call costs a copy of the weights)."""
    return weight.unsqueeze(2).contiguous(memory_format=torch.channels_last)


class PaddedConv1d(nn.Module):
    """Conv1d `[B, C_in, T] -> [B, C_out, ceil(T / stride)]` with causal or centred padding and optional norm."""

    STREAMING = Streaming.CONV

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        dilation: int = 1,
        groups: int = 1,
        bias: bool = True,
        causal: bool = False,
        norm: str = "none",
        pad_mode: str = "reflect",
    ):
        super().__init__()
        _check_norm(norm, causal)
        if pad_mode not in PAD_MODES:
            raise ValueError(f"pad_mode must be one of {', '.join(PAD_MODES)}, got {pad_mode!r}")
        self.conv = _normalised(
            nn.Conv1d(in_channels, out_channels, kernel_size, stride, dilation=dilation, groups=groups, bias=bias),
            norm,
        )
        self.norm = _norm_module(norm, out_channels)
        self.causal = causal
        self.pad_mode = pad_mode
        self.kernel_size = kernel_size
        self.stride = stride
        self.dilation = dilation
        self.padding_total = (kernel_size - 1) * dilation - (stride - 1)
        #: Time-major activations and channels-last convolutions (module docstring), set for inference.
        self.channels_last = False
        #: The channels-last kernel, kept between calls once `kernel.keep` is set (`KeptKernel`).
        self.kernel = KeptKernel()

    def padding(self, length: int) -> tuple[int, int]:
        """Samples padded on the left and on the right of an input of `length` samples."""
        extra = extra_padding_for_conv1d(length, self.kernel_size, self.stride, self.padding_total)
        if self.causal:
            return self.padding_total, extra
        right = self.padding_total // 2
        return self.padding_total - right, right + extra

    def forward(self, x: torch.Tensor, activation: nn.Module | None = None) -> torch.Tensor:
        """`self(activation(x))`, tiled in time without autograd (see the module docstring)."""
        left, right = self.padding(x.shape[-1])
        span = (self.kernel_size - 1) * self.dilation + 1
        frames = (x.shape[-1] + left + right - span) // self.stride + 1
        step = tile_length(x, max(self.conv.in_channels * self.stride, self.conv.out_channels),
                           self.channels_last)
        if step >= frames:
            return self.norm(self.conv_window(x, left, right, 0, frames, activation))
        out = new_output(x, self.conv.out_channels, frames, self.channels_last)
        for begin in range(0, frames, step):
            end = min(begin + step, frames)
            self.conv_window(x, left, right, begin, end, activation, out[..., begin:end])
        return self.norm(out)

    def conv_window(self, x: torch.Tensor, left: int, right: int, begin: int, end: int,
                    activation: nn.Module | None = None, out: torch.Tensor | None = None) -> torch.Tensor:
        """Output frames `begin:end` of the convolution (before `norm`) of `activation(x)` padded by `left, right`,
        written into `out` when given."""
        span = (self.kernel_size - 1) * self.dilation + 1
        window = padded_window(x, left, right, self.pad_mode, begin * self.stride, (end - 1) * self.stride + span,
                               activation)
        conv = self.conv
        products = (window.device.type == "cpu" and not torch.is_grad_enabled() and conv.groups == 1
                    and self.stride == 1)
        if products and conv.bias is not None and conv.out_channels * self.kernel_size <= 16:
            return self._few_outputs(window, end - begin, out)
        if products and self.channels_last and conv.in_channels == 1:
            return self._one_input(window, end - begin, out)
        if self.channels_last:
            # Kept on the CPU, where tiles would convert it at every call. On GPUs one call converts it once, and
            # the cache's checks would break `torch.compile`'s graphs at every layer.
            kernel = (self.kernel.get([conv.weight], lambda: channels_last_kernel(conv.weight))
                      if window.device.type == "cpu" else conv.weight)
            y = conv1d_channels_last(window, kernel, conv.bias, self.stride, self.dilation, conv.groups)
        else:
            y = conv(window)
        return y if out is None else out.copy_(y)

    def _few_outputs(self, window: torch.Tensor, frames: int, out: torch.Tensor | None) -> torch.Tensor:
        """One output channel (the decoder's last layer), which oneDNN convolves several times slower than this:
        one matrix product gives every tap's contribution to every frame, `[kernel, C_out, frames + span - 1]`,
        then the taps are summed at their shifts, straight into `out`."""
        conv, taps = self.conv, self.kernel_size
        if out is None:
            out = new_output(window, conv.out_channels, frames, self.channels_last)
        # Contiguous: a transposed kernel times a time-major window takes MKL's slow path (ten times slower).
        weight = conv.weight.permute(2, 0, 1).flatten(0, 1).contiguous()
        for b in range(window.shape[0]):
            contributions = (weight @ window[b]).view(taps, conv.out_channels, -1)
            torch.add(contributions[0, :, :frames], conv.bias[:, None], out=out[b])
            for tap in range(1, taps):
                shift = tap * self.dilation
                out[b].add_(contributions[tap, :, shift : shift + frames])
        return out

    def _one_input(self, window: torch.Tensor, frames: int, out: torch.Tensor | None) -> torch.Tensor:
        """One input channel (the encoder's first layer) into a time-major output: each output frame is the
        product of the samples under the kernel with it, twice as fast as oneDNN's channels-last kernel."""
        conv, span = self.conv, (self.kernel_size - 1) * self.dilation + 1
        if out is None:
            out = new_output(window, conv.out_channels, frames, time_major=True)
        kernel = conv.weight[:, 0].t()
        for b in range(window.shape[0]):
            windows = window[b, 0].unfold(0, span, 1)[:, :: self.dilation]
            if conv.bias is None:
                torch.mm(windows, kernel, out=out[b].t())
            else:
                torch.addmm(conv.bias, windows, kernel, out=out[b].t())
        return out


class PaddedConvTranspose1d(nn.Module):
    """ConvTranspose1d `[B, C_in, F] -> [B, C_out, F * stride]` trimming its padding like EnCodec.

    When the kernel is a multiple of the stride (always so in SEANet, where it is twice the stride), the
    transposed convolution runs as its polyphase equivalent: an ordinary convolution with `kernel / stride` taps
    producing `stride` output phases per input frame, then interleaved. Same maths, summed in another order (so
    equal to float rounding), and two to three times faster on the CPU than `conv_transpose1d`.
    """

    STREAMING = Streaming.TRANSPOSED

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        causal: bool = False,
        norm: str = "none",
        trim_right_ratio: float = 1.0,
    ):
        super().__init__()
        _check_norm(norm, causal)
        if not 0.0 <= trim_right_ratio <= 1.0 or (not causal and trim_right_ratio != 1.0):
            raise ValueError("trim_right_ratio must be in [0, 1], and differ from 1 only for causal models")
        self.convtr = _normalised(nn.ConvTranspose1d(in_channels, out_channels, kernel_size, stride), norm)
        self.norm = _norm_module(norm, out_channels)
        padding_total = kernel_size - stride
        if causal:
            self.trim_right = math.ceil(padding_total * trim_right_ratio)
        else:
            self.trim_right = padding_total // 2
        self.trim_left = padding_total - self.trim_right
        #: The polyphase kernel, kept between calls once `kernel.keep` is set (`KeptKernel`): rebuilding the
        #: largest (a flip and a copy of 1 MiB) took 1% of decoding time.
        self.kernel = KeptKernel()
        #: Time-major activations and channels-last convolutions (module docstring), set for inference.
        self.channels_last = False

    def forward(self, x: torch.Tensor, activation: nn.Module | None = None) -> torch.Tensor:
        """`self(activation(x))`; the polyphase form is tiled in time without autograd (see the module docstring)."""
        kernel_size, stride = self.convtr.kernel_size[0], self.convtr.stride[0]
        if kernel_size % stride:
            y = self.norm(self.convtr(x if activation is None else activation(x)))
            return y[..., self.trim_left : y.shape[-1] - self.trim_right]
        taps = kernel_size // stride
        kernel, bias = self._polyphase_weights()
        frames = x.shape[-1] + taps - 1  # polyphase frames, each giving `stride` output samples
        length = frames * stride - self.trim_left - self.trim_right
        step = tile_length(x, max(self.convtr.in_channels, self.convtr.out_channels * stride),
                           self.channels_last)
        if step >= frames or not isinstance(self.norm, nn.Identity):
            # (a group norm sees the untrimmed output)
            y = self._polyphase_window(x, kernel, bias, stride, 0, frames, activation,
                                       channels_last=self.channels_last)
            return self.norm(y)[..., self.trim_left : self.trim_left + length]
        out = new_output(x, self.convtr.out_channels, frames * stride, self.channels_last)
        for begin in range(0, frames, step):
            end = min(begin + step, frames)
            tile = out[..., begin * stride : end * stride]
            self._polyphase_window(x, kernel, bias, stride, begin, end, activation, tile, self.channels_last)
        return out[..., self.trim_left : self.trim_left + length]

    def _polyphase_weights(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """`_polyphase_kernel` of the current weights, in the current layout (see `kernel`)."""
        weight, bias, stride = self.convtr.weight, self.convtr.bias, self.convtr.stride[0]
        tensors = [t for t in (weight, bias) if t is not None]
        build = lambda: self._polyphase_kernel(weight, bias, stride, self.channels_last)  # noqa: E731
        return self.kernel.get(tensors, build, self.channels_last)

    @staticmethod
    def _polyphase_kernel(weight: torch.Tensor, bias: torch.Tensor | None, stride: int, phase_major: bool = False):
        """The convolution kernel and bias of the polyphase form of `conv_transpose1d(., weight, bias, stride)`.

        Output sample `stride * i + j` is `sum_m weight[:, :, j + m * stride] . x[i - m]`: for each phase j, a
        `taps`-long convolution over x padded by `taps - 1` frames on both sides. Output channels are ordered
        channel-major (`c * stride + j`), or phase-major (`j * C_out + c`), which a time-major output interleaves
        for free.
        """
        in_channels, out_channels, kernel_size = weight.shape
        taps = kernel_size // stride
        # [C_in, C_out, taps, stride] -> [C_out * stride, C_in, taps], with the taps reversed (x[i - m]).
        kernel = weight.view(in_channels, out_channels, taps, stride).flip(2)
        kernel = kernel.permute(3, 1, 0, 2) if phase_major else kernel.permute(1, 3, 0, 2)
        kernel = kernel.reshape(out_channels * stride, in_channels, taps)
        if phase_major:
            kernel = channels_last_kernel(kernel)
        if bias is not None:
            bias = bias.repeat(stride) if phase_major else bias.repeat_interleave(stride)
        return kernel, bias

    @staticmethod
    def _polyphase_window(x: torch.Tensor, kernel: torch.Tensor, bias: torch.Tensor | None, stride: int, begin: int,
                          end: int, activation: nn.Module | None = None, out: torch.Tensor | None = None,
                          channels_last: bool = False):
        """Polyphase frames `begin:end` of `activation(x)`, interleaved into output samples `begin * stride:end *
        stride`; written into `out` when given (one copy, instead of a reshaped copy and a copy into `out`).
        `channels_last` takes a phase-major kernel and returns a time-major output (a view of the convolution's)."""
        taps = kernel.shape[-1]
        window = padded_window(x, taps - 1, taps - 1, "constant", begin, end + taps - 1, activation)
        if channels_last:
            y = conv1d_channels_last(window, kernel, bias)  # [B, stride * C_out, F], stored as [B, F, stride, C_out]
            batch, channels, frames = y.shape
            y = y.transpose(1, 2).reshape(batch, frames * stride, channels // stride).transpose(1, 2)
            return y if out is None else out.copy_(y)
        y = F.conv1d(window, kernel, bias)
        batch, _, frames = y.shape
        phases = y.view(batch, -1, stride, frames).transpose(2, 3)
        if out is None:
            return phases.reshape(batch, -1, frames * stride)
        out.view(batch, -1, frames, stride).copy_(phases)
        return out

    def untrimmed_without_bias(self, x: torch.Tensor) -> torch.Tensor:
        """`conv_transpose1d(x, weight, stride)`: untrimmed, without the bias, and with the polyphase kernel kept
        between calls as in `forward`. For the streaming runner, which adds the bias once samples are final;
        rebuilding the kernel at every push took an eighth of real-time streaming's time."""
        kernel_size, stride = self.convtr.kernel_size[0], self.convtr.stride[0]
        if kernel_size % stride:
            return F.conv_transpose1d(x, self.convtr.weight, None, stride)
        kernel, _ = self._polyphase_weights()
        return self._polyphase_window(x, kernel, None, stride, 0, x.shape[-1] + kernel.shape[-1] - 1,
                                      channels_last=self.channels_last)


def fold_weight_norm(module: nn.Module) -> nn.Module:
    """Replace every weight-norm parametrisation under `module` by the plain weight it computes (in place).

    The folded model gives the same outputs, but no longer recomputes `g * v / ||v||` at each call; it is for
    inference only, since training needs the parametrisation.
    """
    for child in module.modules():
        if parametrize.is_parametrized(child, "weight"):
            parametrize.remove_parametrizations(child, "weight", leave_parametrized=True)
    return module
