"""`CodecConfig`: everything needed to rebuild a codec, checked when it is made (a damaged config.json is a
one-line error before any layer is built)."""

from __future__ import annotations

import dataclasses
from typing import Sequence

from ..config import Config
from ..errors import ConfigError
from ..limits import MAX_CHANNELS
from ..modules.init import INITS
from ..quantization import QuantizerConfig


@dataclasses.dataclass
class CodecConfig(Config):
    """Everything needed to rebuild a codec; saved beside its weights and in every checkpoint.

    The SEANet fields mirror EnCodec's arguments. `segment` (seconds) and `overlap` (fraction) cut long inputs
    into overlapping segments that are encoded independently; with `normalize`, each segment is divided by its
    RMS volume before encoding and the scale travels with the codes (EnCodec's 48 kHz model does both).
    """

    name: str = "audiocodec_24khz"
    sample_rate: int = 24000
    channels: int = 1
    dimension: int = 128
    n_filters: int = 32
    n_residual_layers: int = 1
    ratios: Sequence[int] = (8, 5, 4, 2)
    activation: str = "ELU"
    norm: str = "weight_norm"
    kernel_size: int = 7
    last_kernel_size: int = 7
    residual_kernel_size: int = 3
    dilation_base: int = 2
    causal: bool = True
    pad_mode: str = "reflect"
    true_skip: bool = False
    compress: int = 2
    lstm: int = 2
    trim_right_ratio: float = 1.0
    target_bandwidths: Sequence[float] = (1.5, 3.0, 6.0, 12.0, 24.0)
    normalize: bool = False
    segment: float | None = None
    overlap: float = 0.01
    quantizer: QuantizerConfig = dataclasses.field(default_factory=lambda: QuantizerConfig(n_q=32, bins=1024))
    conv_init: str = "pytorch"  # "lecun": variance-preserving, for short trainings (audiocodec.modules.init)

    def __post_init__(self) -> None:
        # JSON and YAML give lists: store tuples, so a config read back from a saved model equals the recipe's.
        self.ratios = tuple(int(r) for r in self.ratios)
        self.target_bandwidths = tuple(float(b) for b in self.target_bandwidths)
        if self.conv_init not in INITS:
            raise ConfigError(f"conv_init must be one of {', '.join(INITS)}, got {self.conv_init!r}")
        # Upper bounds far beyond any real codec's: a damaged config.json must be refused in one line before its
        # layers are built (a dimension of 1e9 asked for 10 TB; 100,000 residual layers ran for hours).
        checks = [
            ("sample_rate", self.sample_rate >= 1, "at least 1"),
            ("channels", 1 <= self.channels <= MAX_CHANNELS, f"in [1, {MAX_CHANNELS}]"),
            ("dimension", 1 <= self.dimension <= 8192, "in [1, 8192]"),
            ("n_filters", 1 <= self.n_filters <= 4096, "in [1, 4096]"),
            ("n_residual_layers", 0 <= self.n_residual_layers <= 64, "in [0, 64]"),
            ("ratios", len(self.ratios) > 0 and all(r >= 1 for r in self.ratios), "a non-empty list of integers >= 1"),
            ("kernel_size", 1 <= self.kernel_size <= 4096, "in [1, 4096]"),
            ("last_kernel_size", 1 <= self.last_kernel_size <= 4096, "in [1, 4096]"),
            ("residual_kernel_size", 1 <= self.residual_kernel_size <= 4096, "in [1, 4096]"),
            ("dilation_base", self.dilation_base >= 1, "at least 1"),
            ("compress", 1 <= self.compress <= self.n_filters, "in [1, n_filters] (it divides the residual width)"),
            ("lstm", 0 <= self.lstm <= 64, "in [0, 64]"),
            ("target_bandwidths", len(self.target_bandwidths) > 0 and all(b > 0 for b in self.target_bandwidths),
             "a non-empty list of positive numbers"),
            ("segment", self.segment is None or self.segment > 0, "positive, or null"),
            ("overlap", 0 <= self.overlap < 1, "in [0, 1)"),
        ]
        self._check("model", checks)

    @classmethod
    def encodec_24khz(cls) -> "CodecConfig":
        """EnCodec's causal 24 kHz mono model."""
        return cls(name="encodec_24khz")

    @classmethod
    def encodec_48khz(cls) -> "CodecConfig":
        """EnCodec's non-causal 48 kHz stereo model: time group norm, 1 s segments normalised by volume."""
        return cls(
            name="encodec_48khz", sample_rate=48000, channels=2, causal=False, norm="time_group_norm",
            target_bandwidths=(3.0, 6.0, 12.0, 24.0), normalize=True, segment=1.0,
            quantizer=QuantizerConfig(n_q=16, bins=1024),
        )
