"""LSTM over convolutional layout `[B, C, T]`, with a skip connection, as in EnCodec's SEANet."""

from __future__ import annotations

import torch
from torch import nn


class ConvLSTM(nn.Module):
    """`[B, C, T] -> [B, C, T]`: a stack of LSTM layers along time plus the input (a residual block).

    The LSTM gives the encoder and decoder a long receptive field at the lowest frame rate, where it is cheap.
    """

    def __init__(self, dimension: int, num_layers: int = 2, skip: bool = True):
        super().__init__()
        self.skip = skip
        self.lstm = nn.LSTM(dimension, dimension, num_layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(2, 0, 1)
        y, _ = self.lstm(x)
        if self.skip:
            y = y + x
        return y.permute(1, 2, 0)
