"""Gumbel-softmax residual level: a categorical distribution over codes instead of a hard nearest neighbour.

Following the wav2vec 2.0 quantizer used by jkyl/vq-vae: in training each vector samples a code from
`softmax((logits + Gumbel noise) / temperature)`, takes the hard one-hot forward and the soft probabilities
backward (straight-through), and a diversity loss `(K - perplexity of the batch-averaged probabilities) / K`
keeps every code in play. At inference the code is the plain argmax.

The logits are scaled negative squared distances to the codebook, so the inference argmax is exactly the nearest
code (the same search as the EMA codebook, hence the same encode/decode and the same file format) and the
codebook can still be k-means initialised. The codebook itself is a parameter learnt by gradient.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn
from torch.nn import functional as F

from .kmeans import kmeans
from .nearest import nearest_codes, negative_distances


@dataclasses.dataclass
class GumbelSample:
    """One training pass of a Gumbel level over rows `[N, D]`."""

    quantized: torch.Tensor  # [N, D], hard code vectors forward, soft gradient backward
    codes: torch.Tensor  # [N]
    diversity: torch.Tensor  # scalar, (K - perplexity) / K of the batch-averaged probabilities
    codebook_loss: torch.Tensor  # scalar, pulls chosen codes towards their inputs


class GumbelCodebook(nn.Module):
    """Gumbel-softmax level.

    Parameters and buffers:
        embedding [K, D]: the codes (a parameter).
        logit_scale []: divides squared distances into logits; set at initialisation to the inverse mean
            squared quantization error, so the temperature schedule means the same at every level.
        inited [1]: 1.0 once the codes have been k-means initialised (or randomly, without k-means).
    """

    def __init__(self, dimension: int, bins: int, kmeans_init: bool = True):
        super().__init__()
        self.dimension = dimension
        self.bins = bins
        embedding = torch.zeros(bins, dimension)
        if not kmeans_init:
            nn.init.kaiming_uniform_(embedding)
        self.embedding = nn.Parameter(embedding)
        self.register_buffer("logit_scale", torch.tensor(1.0 / dimension))
        self.register_buffer("inited", torch.tensor([float(not kmeans_init)]))

    @property
    def is_initialized(self) -> bool:
        return bool(self.inited.item())

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
        probs = logits.softmax(dim=-1).mean(0)
        perplexity = torch.exp(-(probs * torch.log(probs + 1e-7)).sum())
        diversity = (self.bins - perplexity) / self.bins
        codebook_loss = F.mse_loss(self.decode(codes), x.detach())
        return GumbelSample(quantized, codes, diversity, codebook_loss)
