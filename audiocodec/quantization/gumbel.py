"""Gumbel-softmax residual level: a categorical distribution over codes instead of a hard nearest neighbour.

Following the wav2vec 2.0 quantizer used by jkyl/vq-vae: in training each vector samples a code from
`softmax((logits + Gumbel noise) / temperature)`, takes the hard one-hot forward and the soft probabilities
backward (straight-through), and a diversity loss `(K - perplexity of the batch-averaged probabilities) / K`
keeps every code in play. At inference the code is the plain argmax.

The diversity is computed on the global batch: each level's summed probabilities go into the step's one
all-reduce, and the gradient each rank gets is its own rows' share of the global term's gradient, scaled so that
DDP's average over ranks is the gradient one process with the whole batch would get.

The logits are scaled negative squared distances to the codebook, so the inference argmax is exactly the nearest
code (the same search as the EMA codebook, hence the same encode/decode and the same file format) and the
codebook can still be k-means initialised. The codebook itself is a parameter learnt by gradient.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.nn import functional as F

from .kmeans import kmeans
from .level import LevelStep, QuantizerLevel, StepInfo
from .nearest import negative_distances, nearest_codes

if TYPE_CHECKING:
    from .config import QuantizerConfig


@dataclasses.dataclass
class GumbelSample:
    """One training pass of a Gumbel level over rows `[N, D]`."""

    quantized: torch.Tensor  # [N, D], hard code vectors forward, soft gradient backward
    codes: torch.Tensor  # [N]
    probabilities: torch.Tensor  # [K], the noise-free code probabilities summed over the rows (with gradient)
    codebook_loss: torch.Tensor  # scalar, pulls chosen codes towards their inputs


def diversity(probabilities: torch.Tensor) -> torch.Tensor:
    """`(K - perplexity) / K` of averaged probabilities `[K]`: 0 when every code is equally likely, near 1 when
    one code takes everything."""
    bins = probabilities.shape[-1]
    perplexity = torch.exp(-(probabilities * torch.log(probabilities + 1e-7)).sum())
    return (bins - perplexity) / bins


class GumbelCodebook(QuantizerLevel):
    """Gumbel-softmax level.

    Parameters and buffers:
        embedding [K, D]: the codes (a parameter).
        logit_scale []: divides squared distances into logits; set at initialisation to the inverse mean
            squared quantization error, so the temperature schedule means the same at every level.
        inited [1]: 1.0 once the codes have been k-means initialised (or randomly, without k-means).
    """

    def __init__(self, dimension: int, bins: int, kmeans_init: bool = True, temperature_start: float = 2.0,
                 temperature_end: float = 0.5, temperature_decay: float = 0.9995, diversity_weight: float = 0.1,
                 commitment_weight: float = 1.0):
        super().__init__()
        self.dimension = dimension
        self.bins = bins
        self.temperature_start, self.temperature_end = temperature_start, temperature_end
        self.temperature_decay = temperature_decay
        self.diversity_weight = diversity_weight
        self.commitment_weight = commitment_weight
        embedding = torch.zeros(bins, dimension)
        if not kmeans_init:
            nn.init.kaiming_uniform_(embedding)
        self.embedding = nn.Parameter(embedding)
        self.register_buffer("logit_scale", torch.tensor(1.0 / dimension))
        self.register_buffer("inited", torch.tensor([float(not kmeans_init)]))

    @classmethod
    def from_config(cls, dimension: int, config: QuantizerConfig, index: int) -> GumbelCodebook:
        g = config.gumbel
        return cls(dimension, config.bins, config.kmeans_init, g.temperature_start, g.temperature_end,
                   g.temperature_decay, g.diversity_weight, g.commitment_weight)

    @property
    def dtype(self) -> torch.dtype:
        return self.embedding.dtype

    @property
    def is_initialized(self) -> bool:
        return bool(self.inited.item())

    def temperature(self, step: int) -> float:
        """`max(end, start * decay ** step)`."""
        return max(self.temperature_end, self.temperature_start * self.temperature_decay ** step)

    def initialize(self, data: torch.Tensor, iters: int, generator: torch.Generator, usage_per_step: float) -> None:
        """K-means codes for `data` [N, D]; `usage_per_step` is unused (kept for a common interface)."""
        means, _ = kmeans(data, self.bins, iters, generator)
        error = (data - means[nearest_codes(data, means)]).pow(2).sum(1).mean()
        with torch.no_grad():
            self.embedding.copy_(means)
            self.logit_scale.fill_(1.0 / max(float(error), 1e-12))
            self.inited.fill_(1.0)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Argmax code `[N]` for rows `x` [N, D] (the nearest code)."""
        return nearest_codes(x.detach(), self.embedding.detach())

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        return F.embedding(codes, self.embedding)

    def sample(self, x: torch.Tensor, temperature: float, generator: torch.Generator) -> GumbelSample:
        """Straight-through Gumbel-softmax sample for rows `x` [N, D]."""
        logits = negative_distances(x, self.embedding) * self.logit_scale
        uniform = torch.rand(logits.shape, generator=generator, dtype=logits.dtype, device=logits.device)
        uniform = uniform.clamp_(1e-10, 1 - 1e-7)
        noisy = (logits - torch.log(-torch.log(uniform))) / temperature
        soft = noisy.softmax(dim=-1)
        codes = soft.argmax(dim=-1)
        hard = F.one_hot(codes, self.bins).to(soft.dtype)
        onehot = hard + soft - soft.detach()
        quantized = onehot @ self.embedding
        probabilities = logits.softmax(dim=-1).sum(0)
        codebook_loss = F.mse_loss(self.decode(codes), x.detach())
        return GumbelSample(quantized, codes, probabilities, codebook_loss)

    # -- a training step, as the quantizer drives it --------------------------------------------------------
    def train_step(self, residual: torch.Tensor, info: StepInfo, generator: torch.Generator) -> LevelStep:
        sample = self.sample(residual, self.temperature(info.step), generator)
        loss = self.commitment_weight * F.mse_loss(residual, sample.quantized.detach()) + sample.codebook_loss
        counts = torch.bincount(sample.codes, minlength=self.bins).to(residual.dtype)
        return LevelStep(sample.codes, sample.quantized, loss, [counts, sample.probabilities.detach()],
                         kept={"probabilities": sample.probabilities})

    def apply_statistics(self, step: LevelStep, synced: list[torch.Tensor], info: StepInfo) -> dict[str, torch.Tensor]:
        """The diversity loss of the probabilities averaged over every rank's rows.

        Its value is the global one on every rank; its gradient flows through this rank's rows only, times
        `world`, so that DDP's average of the ranks' gradients is the gradient of the global term.
        """
        local = step.kept["probabilities"]
        total = max(info.total_rows, 1.0)
        averaged = synced[1].to(local.dtype) / total + (local - local.detach()) * (info.world / total)
        return {"diversity": self.diversity_weight * diversity(averaged)}

    def kind_metrics(self, info: StepInfo) -> dict[str, float]:
        return {"temperature": self.temperature(info.step)}
