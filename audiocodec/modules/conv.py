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
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import weight_norm

NORMS = ("none", "weight_norm", "time_group_norm")


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


def pad1d(x: torch.Tensor, left: int, right: int, mode: str) -> torch.Tensor:
    """`F.pad` that also reflects inputs shorter than the padding (zero-extending them first, as EnCodec does).

    Reflection of a long enough input is built from flipped slices: the same samples as `F.pad(..., "reflect")`,
    several times faster on the CPU, where reflection padding is a large share of the encoder's time.
    """
    if mode != "reflect":
        return F.pad(x, (left, right), mode)
    length = x.shape[-1]
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


class PaddedConv1d(nn.Module):
    """Conv1d `[B, C_in, T] -> [B, C_out, ceil(T / stride)]` with causal or centred padding and optional norm."""

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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        extra = extra_padding_for_conv1d(x.shape[-1], self.kernel_size, self.stride, self.padding_total)
        if self.causal:
            left, right = self.padding_total, extra
        else:
            right = self.padding_total // 2
            left, right = self.padding_total - right, right + extra
        return self.norm(self.conv(pad1d(x, left, right, self.pad_mode)))


class PaddedConvTranspose1d(nn.Module):
    """ConvTranspose1d `[B, C_in, F] -> [B, C_out, F * stride]` trimming its padding like EnCodec.

    When the kernel is a multiple of the stride (always so in SEANet, where it is twice the stride), the
    transposed convolution runs as its polyphase equivalent: an ordinary convolution with `kernel / stride` taps
    producing `stride` output phases per input frame, then interleaved. Same maths, summed in another order (so
    equal to float rounding), and two to three times faster on the CPU than `conv_transpose1d`.
    """

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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kernel_size, stride = self.convtr.kernel_size[0], self.convtr.stride[0]
        if kernel_size % stride:
            y = self.convtr(x)
        else:
            y = self._polyphase(x, self.convtr.weight, self.convtr.bias, kernel_size // stride, stride)
        y = self.norm(y)
        return y[..., self.trim_left : y.shape[-1] - self.trim_right]

    @staticmethod
    def _polyphase(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, taps: int, stride: int):
        """`conv_transpose1d(x, weight, bias, stride)` for `kernel = taps * stride`, as a convolution.

        Output sample `stride * i + j` is `sum_m weight[:, :, j + m * stride] . x[i - m]`: for each phase j, a
        `taps`-long convolution over x padded by `taps - 1` frames on both sides.
        """
        in_channels, out_channels, _ = weight.shape
        # [C_in, C_out, taps, stride] -> [C_out * stride, C_in, taps], with the taps reversed (x[i - m]).
        kernel = weight.view(in_channels, out_channels, taps, stride).flip(2).permute(1, 3, 0, 2)
        kernel = kernel.reshape(out_channels * stride, in_channels, taps)
        y = F.conv1d(x, kernel, None if bias is None else bias.repeat_interleave(stride), padding=taps - 1)
        batch, _, frames = y.shape
        return y.view(batch, out_channels, stride, frames).transpose(2, 3).reshape(batch, out_channels, -1)


def fold_weight_norm(module: nn.Module) -> nn.Module:
    """Replace every weight-norm parametrisation under `module` by the plain weight it computes (in place).

    The folded model gives the same outputs, but no longer recomputes `g * v / ||v||` at each call; it is for
    inference only, since training needs the parametrisation.
    """
    for child in module.modules():
        if parametrize.is_parametrized(child, "weight"):
            parametrize.remove_parametrizations(child, "weight", leave_parametrized=True)
    return module
