"""A model's identity: the short hash written into every `.ac` file it codes, checked before decoding."""

from __future__ import annotations

import hashlib
import json

import torch

from .config import CodecConfig


def model_id(config: CodecConfig, state: dict[str, torch.Tensor]) -> str:
    """A short hash of the config and every weight: the identity written into compressed files.

    Of the quantizer's config only what decoding depends on is hashed (`QuantizerConfig.identity`): a new
    training option must not change the identity of existing models, or their compressed files would stop
    decoding.
    """
    quantizer = config.quantizer.identity()
    config = config.to_dict()
    config["quantizer"] = quantizer
    digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode())
    for name, tensor in sorted(state.items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]
