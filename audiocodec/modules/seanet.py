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

from .conv import PaddedConv1d, PaddedConvTranspose1d
from .lstm import ConvLSTM


def _activation(name: str, params: dict | None) -> nn.Module:
    try:
        return getattr(nn, name)(**(params or {}))
    except AttributeError:
        raise ValueError(f"unknown activation {name!r}: expected the name of a torch.nn module such as 'ELU'") from None


class ResidualUnit(nn.Module):
    """`x + block(x)`, the block squeezing channels by `compress` (from Demucs v3) to save compute."""

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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.block(x)


class _SEANetBase(nn.Module):
    def __init__(self, channels: int, dimension: int, n_filters: int, ratios: Sequence[int]):
        super().__init__()
        self.channels = channels
        self.dimension = dimension
        self.n_filters = n_filters
        self.hop_length = math.prod(ratios)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


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
        activation_params = {"alpha": 1.0} if activation_params is None else activation_params
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
        activation_params = {"alpha": 1.0} if activation_params is None else activation_params
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
