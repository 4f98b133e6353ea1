"""8-bit storage of a model's large weight matrices, for models that must ship small.

Each chosen tensor is stored as int8 with one float32 scale per row (its first dimension: an output channel of a
convolution, an input channel of a transposed one, a gate unit of an LSTM), the scale being the row's largest
magnitude over 127, so the integers lie in -127..127. Rounding a row to 255 levels moves each weight by at most half
a step, about 0.4% of the row's largest weight, which leaves a trained model's quality where it was (the default
model's measurements are in docs/notes/2026-11-27-default-model-rounds.md). The loaded model is float32, so
training and inference see an ordinary model whose identity is that of the rounded weights.
"""

from __future__ import annotations

from typing import Iterable

import torch

from ..errors import ModelMismatchError

#: Suffix of the key that holds a stored tensor's per-row scales.
SCALE_SUFFIX = ".int8_scale"
#: Smaller tensors (biases, weight-norm gains, the first and last convolutions) stay float16: they weigh little.
MIN_ELEMENTS = 4096


def worth_storing(name: str, tensor: torch.Tensor) -> bool:
    """The encoder's and decoder's weight matrices; not the codebooks, which set the codes directly, nor any
    tensor a future part of the model adds until it is measured."""
    return (name.startswith(("encoder.", "decoder.")) and tensor.is_floating_point() and tensor.dim() >= 2
            and tensor.numel() >= MIN_ELEMENTS)


def holds_int8(keys: Iterable[str]) -> bool:
    """Whether a state with these keys has tensors stored in 8 bits."""
    return any(key.endswith(SCALE_SUFFIX) for key in keys)


def quantize(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`state` with the tensors `worth_storing` as int8 beside their scales."""
    stored = {}
    for name, tensor in state.items():
        if not worth_storing(name, tensor):
            stored[name] = tensor
            continue
        rows = tensor.float().reshape(tensor.shape[0], -1)
        scale = (rows.abs().amax(dim=1) / 127).clamp_min(torch.finfo(torch.float32).tiny)  # a zero row: not 0
        stored[name] = (rows / scale[:, None]).round().clamp(-127, 127).to(torch.int8).reshape(tensor.shape)
        stored[name + SCALE_SUFFIX] = scale
    return stored


def dequantize(state: dict[str, torch.Tensor], source: str) -> dict[str, torch.Tensor]:
    """`state` with each int8 tensor and its scales made one float32 tensor again (a state without any: as is)."""
    restored = {name: tensor for name, tensor in state.items() if not name.endswith(SCALE_SUFFIX)}
    for key in state:
        if not key.endswith(SCALE_SUFFIX):
            continue
        name, scale = key[: -len(SCALE_SUFFIX)], state[key]
        values = restored.get(name)
        if (values is None or values.dtype != torch.int8 or scale.dim() != 1 or values.dim() < 1
                or scale.shape[0] != values.shape[0] or scale.dtype != torch.float32):
            raise ModelMismatchError(f"{source}: damaged weights: {key} does not scale an int8 tensor {name}")
        if values.eq(-128).any() or not (scale > 0).all():  # `quantize` writes neither
            raise ModelMismatchError(f"{source}: damaged weights: {name} holds values 8-bit storage never writes")
        restored[name] = values.float() * scale.float().view(-1, *[1] * (values.dim() - 1))
    unscaled = sorted(name for name, tensor in restored.items() if tensor.dtype == torch.int8)
    if unscaled:  # a model holds no int8 tensor: loading would cast the raw integers into float weights
        raise ModelMismatchError(f"{source}: damaged weights: {', '.join(unscaled)} int8 without scales")
    return restored
