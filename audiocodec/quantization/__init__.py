"""Residual quantization with levels that learn: see docs/quantization.md.

A level kind is a `QuantizerLevel` (level.py) registered in `kinds.KINDS`, with its settings in the
`QuantizerConfig` section of the same name.
"""

from .codebook import EMACodebook
from .config import EMAConfig, FSQConfig, GumbelConfig, QuantizerConfig
from .ema import EMALevel
from .fsq import FSQLevel
from .gumbel import GumbelCodebook
from .kinds import KINDS
from .level import LevelStep, QuantizerLevel, StepInfo
from .rvq import QuantizerOutput, ResidualVectorQuantizer, build_quantizer

__all__ = [
    "EMACodebook",
    "EMAConfig",
    "EMALevel",
    "FSQConfig",
    "FSQLevel",
    "GumbelCodebook",
    "GumbelConfig",
    "KINDS",
    "LevelStep",
    "QuantizerConfig",
    "QuantizerLevel",
    "QuantizerOutput",
    "ResidualVectorQuantizer",
    "StepInfo",
    "build_quantizer",
]
