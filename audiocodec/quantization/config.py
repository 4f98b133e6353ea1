"""Quantizer configuration: one dataclass that the codec config nests and checkpoints store.

The codec passes the feature dimension separately (`build_quantizer(dimension, config)`), because it is a
property of the encoder, not of the quantizer recipe.
"""

from __future__ import annotations

import dataclasses

from ..config import Config
from ..errors import ConfigError

KINDS = ("ema", "gumbel")


@dataclasses.dataclass
class QuantizerConfig(Config):
    """Residual vector quantizer settings.

    Thresholds are relative (a fraction of uniform usage), and windows are counted in steps and in vectors per
    code, so the same recipe means the same whatever the batch size or the number of ranks (a larger batch only
    fills a window in fewer steps).

    Attributes:
        kind: "ema" (nearest code, codebook learnt by EMA with expiry) or "gumbel" (Gumbel-softmax level whose
            codebook is learnt by gradient, with a diversity loss).
        n_q: number of residual levels.
        bins: codes per level.
        decay: EMA decay of usage counts and embedding sums.
        epsilon: Laplace smoothing of usage counts.
        kmeans_init: fit the codebooks with k-means on gathered data before using them.
        kmeans_iters: Lloyd iterations of that k-means.
        kmeans_factor: vectors per code gathered before k-means runs (across ranks and, if needed, steps).
        expire_every: steps between expiry checks; 0 disables expiry.
        expire_min_usage: a level's window is judged only once it has received this many vectors per code on
            average; until then it stays open across checks. This keeps levels that quantizer dropout rarely
            reaches from being judged on a few hundred vectors, where most codes look dead. Expiry must still come
            often: with 100 (windows of hundreds of steps on a CPU batch) the default model's codes died faster
            than they were replaced, and the share of codes used fell at every level.
        threshold: a code whose usage over the window is below `threshold` times uniform usage is replaced.
        rows_per_step: at most this many encoder frames per rank and step go into the buffer of recent outputs
            from which k-means data and replacement vectors are drawn.
        commitment_weight: weight of the commitment loss (encoder pulled towards its codes).
        quantizer_dropout: in training, use a random number of levels per batch (bandwidth scalability).
        dropout_levels: the level counts quantizer dropout draws from, uniformly (EnCodec draws one of its
            target bandwidths); empty: every count from 1 to n_q (descript-audio-codec's choice).
        seed: seeds every random decision (dropout, k-means, replacement); decisions derive from it and the step
            counter, so they are identical on all ranks and resume exactly.
        temperature_start, temperature_end, temperature_decay: Gumbel temperature
            `max(end, start * decay ** step)`.
        diversity_weight: weight of the Gumbel diversity loss `(K - perplexity) / K`.
    """

    kind: str = "ema"
    n_q: int = 8
    bins: int = 1024
    decay: float = 0.99
    epsilon: float = 1e-5
    kmeans_init: bool = True
    kmeans_iters: int = 50
    kmeans_factor: int = 4
    expire_every: int = 20
    expire_min_usage: float = 10.0
    threshold: float = 0.1
    rows_per_step: int = 4096
    commitment_weight: float = 1.0
    quantizer_dropout: bool = False
    dropout_levels: list[int] = dataclasses.field(default_factory=list)
    seed: int = 0
    temperature_start: float = 2.0
    temperature_end: float = 0.5
    temperature_decay: float = 0.9995
    diversity_weight: float = 0.1

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"quantizer kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        checks = [
            ("n_q", self.n_q >= 1, "at least 1"),
            ("bins", self.bins >= 2, "at least 2"),
            ("decay", 0.0 < self.decay < 1.0, "in (0, 1)"),
            ("epsilon", self.epsilon > 0, "positive"),
            ("kmeans_iters", self.kmeans_iters >= 0, "non-negative"),
            ("kmeans_factor", self.kmeans_factor >= 1, "at least 1"),
            ("expire_every", self.expire_every >= 0, "non-negative"),
            ("expire_min_usage", self.expire_min_usage >= 0, "non-negative"),
            ("dropout_levels", all(isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= self.n_q
                                   for n in self.dropout_levels), f"level counts in [1, {self.n_q}]"),
            ("threshold", 0.0 <= self.threshold < 1.0, "in [0, 1)"),
            ("rows_per_step", self.rows_per_step >= 1, "at least 1"),
            ("commitment_weight", self.commitment_weight >= 0, "non-negative"),
            ("temperature_start", self.temperature_start > 0, "positive"),
            ("temperature_end", 0 < self.temperature_end <= self.temperature_start, "in (0, temperature_start]"),
            ("temperature_decay", 0 < self.temperature_decay <= 1, "in (0, 1]"),
            ("diversity_weight", self.diversity_weight >= 0, "non-negative"),
        ]
        for name, ok, expected in checks:
            if not ok:
                raise ConfigError(f"quantizer {name} must be {expected}, got {getattr(self, name)!r}")
