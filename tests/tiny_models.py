"""Tiny codecs for fast tests."""

import torch

from audiocodec import Codec, CodecConfig
from audiocodec.quantization import QuantizerConfig


def tiny_config(**changes) -> CodecConfig:
    base = CodecConfig(
        name="tiny", sample_rate=8000, n_filters=4, dimension=8, ratios=(4, 2), lstm=1,
        target_bandwidths=(4.0, 8.0), quantizer=QuantizerConfig(n_q=4, bins=16, kmeans_init=False),
    )
    return base.replace(**changes)


def tiny_codec(**changes) -> Codec:
    torch.manual_seed(0)
    codec = Codec(tiny_config(**changes))
    for level in codec.quantizer.levels:  # give the codebooks distinct vectors
        level.embedding.normal_()
    return codec.eval()
