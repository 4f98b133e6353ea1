"""Variance-preserving initialisation of the SEANet convolutions.

PyTorch initialises a convolution with variance 1/(3 fan_in) (kaiming-uniform with a=sqrt(5)), which shrinks the
signal by about sqrt(3) per layer. Through the ~15 convolutions of a SEANet encoder, the time-varying part of the
output ends up about 100 times smaller than its constant part, and with a training budget of a few thousand steps
the decoder learns to ignore it, and a short training run reconstructs almost nothing. EnCodec keeps PyTorch's init
and trains for hundreds of thousands of steps; `CodecConfig.conv_init = "lecun"` is for everyone else.
"""

from __future__ import annotations

import math

import torch
from torch import nn

INITS = ("pytorch", "lecun")


@torch.no_grad()
def lecun_rescale(module: nn.Module) -> None:
    """Scale every freshly initialised conv weight to variance 1/fan_in (three times PyTorch's default).

    With weight norm, the weight is `g * v / |v|`, so scaling the magnitude `g` scales the weight.
    """
    for layer in module.modules():
        if not isinstance(layer, (nn.Conv1d, nn.ConvTranspose1d)):
            continue
        parametrizations = getattr(layer, "parametrizations", None)
        if parametrizations is not None and "weight" in parametrizations:
            parametrizations.weight.original0.mul_(math.sqrt(3.0))
        else:
            layer.weight.mul_(math.sqrt(3.0))
