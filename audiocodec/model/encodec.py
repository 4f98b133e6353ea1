"""Loading EnCodec's checkpoints: renaming their state-dict keys to audiocodec's.

The two SEANets have the same layers at the same indices, so only the wrappers' names differ: EnCodec nests
`conv.conv` / `convtr.convtr` and stores weight norm as `weight_g` / `weight_v` (the deprecated
`torch.nn.utils.weight_norm`), where audiocodec uses `torch.nn.utils.parametrizations.weight_norm`, whose
`original0` / `original1` are the same magnitude and direction tensors.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from ..errors import AudioCodecError, ModelMismatchError
from .config import CodecConfig
from .persistence import key_mismatch

if TYPE_CHECKING:
    from .codec import Codec

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


def from_encodec(cls: type[Codec], path: str | Path, variant: str) -> Codec:
    """Load a state-dict file as EnCodec publishes them (`encodec_24khz-*.th`, `encodec_48khz-*.th`) into a
    `cls` (`Codec`) of EnCodec's layout."""
    presets = {"24khz": CodecConfig.encodec_24khz, "48khz": CodecConfig.encodec_48khz}
    if variant not in presets:
        raise ValueError(f"variant must be '24khz' or '48khz', got {variant!r}")
    path = Path(path)
    if not path.is_file():
        raise AudioCodecError(f"{path}: no such EnCodec weights file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a foreign or damaged file
        raise AudioCodecError(f"{path}: not a PyTorch state-dict file ({type(error).__name__})") from None
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in state.items()):
        raise ModelMismatchError(f"{path}: expected a state dict of tensors")
    model = cls(presets[variant]())
    network, quantizer = convert_encodec_state(state)
    own_network = {k: v for k, v in model.state_dict().items()
                   if not k.startswith("quantizer.") and k != "code_frequencies"}
    problems = key_mismatch(own_network, network)
    if problems:
        raise ModelMismatchError(f"{path} is not an EnCodec {variant} checkpoint: {problems}")
    model.load_state_dict(network, strict=False)
    model.quantizer.load_encodec_state_dict(quantizer)
    return model.eval()
