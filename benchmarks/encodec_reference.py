"""EnCodec's own models with random weights and codebooks, the reference the benchmarks compare against (no
published weights can be downloaded here)."""

from __future__ import annotations

import torch


def random_encodec(variant: str, seed: int):
    """EnCodec's `variant` ("24khz" or "48khz") model from the `encodec` package, in eval mode, with its codebooks
    filled with normal noise and marked initialised, all from `seed`."""
    from encodec import EncodecModel

    torch.manual_seed(seed)
    constructor = {"24khz": EncodecModel.encodec_model_24khz, "48khz": EncodecModel.encodec_model_48khz}[variant]
    model = constructor(pretrained=False).eval()
    for layer in model.quantizer.vq.layers:
        layer._codebook.embed.data.normal_()
        layer._codebook.inited.fill_(1)
    return model
