"""SEANet encoder and decoder, laid out exactly as EnCodec's so its checkpoints map one tensor to one tensor.

The encoder turns `[B, channels, T]` into `[B, dimension, ceil(T / hop_length)]` with strided convolutions
(strides = `ratios` in reverse), residual units with growing dilations, and an LSTM at the lowest rate; the
decoder mirrors it with transposed convolutions. Layers sit in one `nn.Sequential` called `model`, at the same
indices as in EnCodec.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from .activations import ELU
from .conv import PaddedConv1d, PaddedConvTranspose1d, new_output, tile_length, tiles_apply, to_time_major
from .lstm import ConvLSTM
from .streamable import Streaming, is_pointwise


def _activation(name: str, params: dict | None) -> nn.Module:
    try:
        return (ELU if name == "ELU" else getattr(nn, name))(**(params or {}))
    except AttributeError:
        raise ValueError(f"unknown activation {name!r}: expected the name of a torch.nn module such as 'ELU'") from None


def _default_params(activation: str) -> dict:
    """EnCodec's default `activation_params` ({"alpha": 1.0}) are ELU's: other activations take none by default
    (`activation: Sigmoid` in a config failed to build)."""
    return {"alpha": 1.0} if activation == "ELU" else {}


class ResidualUnit(nn.Module):
    """`x + block(x)`, the block squeezing channels by `compress` (from Demucs v3) to save compute."""

    STREAMING = Streaming.RESIDUAL

    def __init__(
        self,
        dim: int,
        kernel_sizes: Sequence[int] = (3, 1),
        dilations: Sequence[int] = (1, 1),
        activation: str = "ELU",
        activation_params: dict | None = None,
        norm: str = "weight_norm",
        causal: bool = False,
        pad_mode: str = "reflect",
        compress: int = 2,
        true_skip: bool = True,
    ):
        super().__init__()
        hidden = dim // compress
        layers: list[nn.Module] = []
        for i, (kernel_size, dilation) in enumerate(zip(kernel_sizes, dilations)):
            in_channels = dim if i == 0 else hidden
            out_channels = dim if i == len(kernel_sizes) - 1 else hidden
            layers += [
                _activation(activation, activation_params),
                PaddedConv1d(in_channels, out_channels, kernel_size, dilation=dilation, norm=norm, causal=causal,
                             pad_mode=pad_mode),
            ]
        self.block = nn.Sequential(*layers)
        self.shortcut: nn.Module = (
            nn.Identity() if true_skip else PaddedConv1d(dim, dim, 1, norm=norm, causal=causal, pad_mode=pad_mode)
        )
        # Tiles need a time-local block: pointwise activations, 1x1 convolutions after the first, no group norm.
        self.tileable = (norm != "time_group_norm" and len(kernel_sizes) > 1 and all(k == 1 for k in kernel_sizes[1:])
                         and all(is_pointwise(layer) for layer in layers[0::2]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """`shortcut(x) + block(x)`; without autograd, in time tiles that keep the block's intermediates in cache.

        In a tile, the last 1x1 convolution and the shortcut are two matrix products accumulated straight into
        the output (`addmm` writes into a strided slice): no separate sum, and no copies of the input or output.
        """
        length = x.shape[-1]
        first = self.block[1]
        time_major = first.channels_last
        if time_major:
            x = to_time_major(x)
        if not self.tileable or not tiles_apply(x):
            return self.shortcut(x) + self.block(x)
        # One tile or more: even a single tile gains from products accumulated in place, where a separate 1x1
        # convolution and sum would take PyTorch's slow path for 1x1 channels-last convolutions.
        step = min(length, tile_length(x, x.shape[1], time_major))
        last = self.block[-1].conv
        left, right = first.padding(length)
        weight = last.weight[:, :, 0]
        bias = last.bias if last.bias is not None else x.new_zeros(x.shape[1])
        skip_weight = None
        if not isinstance(self.shortcut, nn.Identity):
            skip_weight = self.shortcut.conv.weight[:, :, 0]
            if self.shortcut.conv.bias is not None:
                bias = bias + self.shortcut.conv.bias
        bias = bias[:, None]
        if time_major:  # the same products, transposed: [time, channels] rows are contiguous
            bias, weight = bias.t(), weight.t()
            skip_weight = None if skip_weight is None else skip_weight.t()
        out = new_output(x, x.shape[1], length, time_major)  # dense, so that `addmm` writes its rows in place
        for begin in range(0, length, step):
            end = min(begin + step, length)
            y = first.conv_window(x, left, right, begin, end, self.block[0])
            for i in range(2, len(self.block) - 2, 2):
                y = self.block[i + 1].conv(self.block[i](y))
            y = self.block[-2](y)
            for b in range(x.shape[0]):
                tile, skip, hidden = out[b, :, begin:end], x[b, :, begin:end], y[b]
                if time_major:
                    tile, skip, hidden = tile.t(), skip.t(), hidden.t()
                if skip_weight is None:
                    torch.add(skip, bias, out=tile)
                else:
                    torch.addmm(bias, *((skip, skip_weight) if time_major else (skip_weight, skip)), out=tile)
                tile.addmm_(*((hidden, weight) if time_major else (weight, hidden)))
        return out


class _SEANetBase(nn.Module):
    STREAMING = Streaming.SEQUENCE

    def __init__(self, channels: int, dimension: int, n_filters: int, ratios: Sequence[int]):
        super().__init__()
        self.channels = channels
        self.dimension = dimension
        self.n_filters = n_filters
        self.hop_length = math.prod(ratios)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return run_layers(list(self.model), x)


def run_layers(layers: Sequence[nn.Module], x: torch.Tensor) -> torch.Tensor:
    """`nn.Sequential(*layers)(x)`, with each pointwise activation handed to the convolution after it, which
    applies it window by window (see `PaddedConv1d.forward`) instead of over the whole signal."""
    i = 0
    while i < len(layers):
        layer = layers[i]
        following = layers[i + 1] if i + 1 < len(layers) else None
        if is_pointwise(layer) and isinstance(following, (PaddedConv1d, PaddedConvTranspose1d)):
            x = following(x, layer)
            i += 1
        else:
            x = layer(x)
        i += 1
    return x


class SEANetEncoder(_SEANetBase):
    """`[B, channels, T] -> [B, dimension, ceil(T / hop_length)]`. Arguments as EnCodec's `SEANetEncoder`."""

    def __init__(
        self,
        channels: int = 1,
        dimension: int = 128,
        n_filters: int = 32,
        n_residual_layers: int = 1,
        ratios: Sequence[int] = (8, 5, 4, 2),
        activation: str = "ELU",
        activation_params: dict | None = None,
        norm: str = "weight_norm",
        kernel_size: int = 7,
        last_kernel_size: int = 7,
        residual_kernel_size: int = 3,
        dilation_base: int = 2,
        causal: bool = False,
        pad_mode: str = "reflect",
        true_skip: bool = False,
        compress: int = 2,
        lstm: int = 2,
    ):
        super().__init__(channels, dimension, n_filters, ratios)
        activation_params = _default_params(activation) if activation_params is None else activation_params
        conv = dict(norm=norm, causal=causal, pad_mode=pad_mode)
        mult = 1
        layers: list[nn.Module] = [PaddedConv1d(channels, n_filters, kernel_size, **conv)]
        for ratio in reversed(ratios):
            for j in range(n_residual_layers):
                layers.append(
                    ResidualUnit(mult * n_filters, (residual_kernel_size, 1), (dilation_base**j, 1), activation,
                                 activation_params, compress=compress, true_skip=true_skip, **conv)
                )
            layers += [
                _activation(activation, activation_params),
                PaddedConv1d(mult * n_filters, mult * n_filters * 2, ratio * 2, stride=ratio, **conv),
            ]
            mult *= 2
        if lstm:
            layers.append(ConvLSTM(mult * n_filters, num_layers=lstm))
        layers += [
            _activation(activation, activation_params),
            PaddedConv1d(mult * n_filters, dimension, last_kernel_size, **conv),
        ]
        self.model = nn.Sequential(*layers)


class SEANetDecoder(_SEANetBase):
    """`[B, dimension, F] -> [B, channels, F * hop_length]`. Arguments as EnCodec's `SEANetDecoder`."""

    def __init__(
        self,
        channels: int = 1,
        dimension: int = 128,
        n_filters: int = 32,
        n_residual_layers: int = 1,
        ratios: Sequence[int] = (8, 5, 4, 2),
        activation: str = "ELU",
        activation_params: dict | None = None,
        final_activation: str | None = None,
        final_activation_params: dict | None = None,
        norm: str = "weight_norm",
        kernel_size: int = 7,
        last_kernel_size: int = 7,
        residual_kernel_size: int = 3,
        dilation_base: int = 2,
        causal: bool = False,
        pad_mode: str = "reflect",
        true_skip: bool = False,
        compress: int = 2,
        lstm: int = 2,
        trim_right_ratio: float = 1.0,
    ):
        super().__init__(channels, dimension, n_filters, ratios)
        activation_params = _default_params(activation) if activation_params is None else activation_params
        conv = dict(norm=norm, causal=causal, pad_mode=pad_mode)
        mult = 2 ** len(ratios)
        layers: list[nn.Module] = [PaddedConv1d(dimension, mult * n_filters, kernel_size, **conv)]
        if lstm:
            layers.append(ConvLSTM(mult * n_filters, num_layers=lstm))
        for ratio in ratios:
            layers += [
                _activation(activation, activation_params),
                PaddedConvTranspose1d(mult * n_filters, mult * n_filters // 2, ratio * 2, stride=ratio, norm=norm,
                                      causal=causal, trim_right_ratio=trim_right_ratio),
            ]
            for j in range(n_residual_layers):
                layers.append(
                    ResidualUnit(mult * n_filters // 2, (residual_kernel_size, 1), (dilation_base**j, 1), activation,
                                 activation_params, compress=compress, true_skip=true_skip, **conv)
                )
            mult //= 2
        layers += [
            _activation(activation, activation_params),
            PaddedConv1d(n_filters, channels, last_kernel_size, **conv),
        ]
        if final_activation is not None:
            layers.append(_activation(final_activation, final_activation_params))
        self.model = nn.Sequential(*layers)
