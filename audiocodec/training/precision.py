"""bf16 rounding of the convolutions' inputs in fp32 training, for models trained on GPUs in bf16.

The default model was trained under bf16 autocast. Fine-tuned on the CPU in fp32 it got worse from the first steps;
under bf16 autocast it held, but on CPUs without native bf16 kernels autocast is 8-9 times slower than fp32. Rounding
only the inputs of the encoder's and decoder's convolutions to bf16, with fp32 kernels and an fp32 backward, held
it as autocast did; rounding only the weights did not (docs/training.md, "Fine-tuning the default model").
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from ..modules import PaddedConv1d, PaddedConvTranspose1d


def round_to_bf16(x: torch.Tensor) -> torch.Tensor:
    """`x` with bf16's precision in its own dtype; the gradient passes through unchanged (straight-through)."""
    return x + (x.to(torch.bfloat16).to(x.dtype) - x).detach()


def _round_input(module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict] | None:
    """Forward pre-hook: the convolution's input, after its fused activation, rounded to bf16 (training only, so
    that validation measures the fp32 model that is exported)."""
    if not module.training:
        return None
    x, *rest = args
    activation = rest.pop(0) if rest else kwargs.pop("activation", None)
    if activation is not None:
        x = activation(x)
    return (round_to_bf16(x), *rest), kwargs


def round_conv_inputs_to_bf16(model: nn.Module) -> list[RemovableHandle]:
    """Round the input of every padded convolution of `model` to bf16 in training; the handles undo it."""
    return [module.register_forward_pre_hook(_round_input, with_kwargs=True) for module in model.modules()
            if isinstance(module, (PaddedConv1d, PaddedConvTranspose1d))]
