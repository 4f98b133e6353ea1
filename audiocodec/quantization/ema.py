"""The EMA kind (`kind: ema`, the default): `EMACodebook` (codebook.py) as a residual level.

The codebook's own life (buffers, k-means, encode/decode, statistics, EMA update, expiry) is in codebook.py;
this adapter only says how a training step uses it: nearest code forward, no gradient through the code (the
quantizer passes it straight through), a commitment loss, usage counts and sums to all-reduce, then the EMA.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch.nn import functional as F

from .codebook import EMACodebook
from .level import LevelStep, QuantizerLevel, StepInfo

if TYPE_CHECKING:
    from .config import QuantizerConfig


class EMALevel(EMACodebook, QuantizerLevel):
    """An `EMACodebook` with a commitment weight and an expiry schedule; the same buffers and state-dict keys."""

    straight_through = True

    def __init__(self, dimension: int, bins: int, decay: float = 0.99, epsilon: float = 1e-5,
                 threshold: float = 0.1, kmeans_init: bool = True, min_window_usage: float = 0.0,
                 commitment_weight: float = 1.0, expire_every: int = 0):
        super().__init__(dimension, bins, decay, epsilon, threshold, kmeans_init, min_window_usage)
        self.commitment_weight = commitment_weight
        self._expire_every = expire_every

    @classmethod
    def from_config(cls, dimension: int, config: QuantizerConfig, index: int) -> EMALevel:
        ema = config.ema
        return cls(dimension, config.bins, ema.decay, ema.epsilon, ema.threshold, config.kmeans_init,
                   ema.expire_min_usage, ema.commitment_weight, ema.expire_every)

    @property
    def dtype(self) -> torch.dtype:
        return self.embedding.dtype

    @property
    def expire_every(self) -> int:
        return self._expire_every

    def train_step(self, residual: torch.Tensor, info: StepInfo, generator: torch.Generator) -> LevelStep:
        codes = self.encode(residual.detach())
        quantized = self.decode(codes)
        loss = self.commitment_weight * F.mse_loss(residual, quantized.detach())
        counts, sums = self.statistics(residual, codes)
        return LevelStep(codes, quantized, loss, [counts, sums])

    def apply_statistics(self, step: LevelStep, synced: list[torch.Tensor], info: StepInfo) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            self.ema_update(synced[0], synced[1])
        return {}

    def metrics(self) -> dict[str, float]:
        return {"dead": float(self.dead_codes().sum())}
