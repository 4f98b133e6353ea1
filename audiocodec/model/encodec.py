"""Renaming EnCodec's state-dict keys to audiocodec's.

The two SEANets have the same layers at the same indices, so only the wrappers' names differ: EnCodec nests
`conv.conv` / `convtr.convtr` and stores weight norm as `weight_g` / `weight_v` (the deprecated
`torch.nn.utils.weight_norm`), where audiocodec uses `torch.nn.utils.parametrizations.weight_norm`, whose
`original0` / `original1` are the same magnitude and direction tensors.
"""

from __future__ import annotations

import re

import torch

_RENAMES = (
    (re.compile(r"\.(conv|convtr)\.\1\.weight_g$"), r".\1.parametrizations.weight.original0"),
    (re.compile(r"\.(conv|convtr)\.\1\.weight_v$"), r".\1.parametrizations.weight.original1"),
    (re.compile(r"\.(conv|convtr)\.\1\.(weight|bias)$"), r".\1.\2"),
    (re.compile(r"\.(conv|convtr)\.norm\.(weight|bias)$"), r".norm.\2"),
)


def convert_encodec_state(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Split an EnCodec model state dict into (encoder/decoder tensors renamed for audiocodec, quantizer tensors
    with the "quantizer." prefix removed, for `ResidualVectorQuantizer.load_encodec_state_dict`)."""
    network: dict[str, torch.Tensor] = {}
    quantizer: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.startswith("quantizer."):
            quantizer[key[len("quantizer."):]] = value
            continue
        for pattern, replacement in _RENAMES:
            key, count = pattern.subn(replacement, key)
            if count:
                break
        network[key] = value
    return network, quantizer
