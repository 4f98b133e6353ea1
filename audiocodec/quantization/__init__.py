"""Residual vector quantization with codebook learning that works: see docs/quantization.md."""

from .codebook import EMACodebook
from .config import QuantizerConfig
from .gumbel import GumbelCodebook
from .rvq import QuantizerOutput, ResidualVectorQuantizer, build_quantizer

__all__ = [
    "EMACodebook",
    "GumbelCodebook",
    "QuantizerConfig",
    "QuantizerOutput",
    "ResidualVectorQuantizer",
    "build_quantizer",
]
