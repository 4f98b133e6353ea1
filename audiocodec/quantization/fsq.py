"""Residual finite scalar quantization (`kind: fsq`): fixed grids instead of learnt codebooks.

FSQ (Mentzer et al. 2023, "Finite Scalar Quantization: VQ-VAE Made Simple") bounds each of a few dimensions
with a tanh and rounds it to one of `L_i` values; a code is the tuple of those values, so a level has
`prod(L_i)` codes and nothing to learn, initialise or expire: every grid point is reachable, no code dies, and
there is no commitment or codebook loss. The gradient passes the rounding straight through.

The residual form follows the literature (vector-quantize-pytorch's `ResidualFSQ`, as X-Codec2 and Stable Codec
use FSQ): the quantizer projects the encoder's features into `len(levels)` dimensions with a learnt linear map
(`QuantizerLevel.code_dimension`), level k quantizes the residual divided by `(L_i - 1) ** -k` per dimension and
multiplies the result back, so that each stage's grid is finer by about the previous stage's step, and the sum
is projected back out.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Sequence

import torch

from .level import LevelStep, QuantizerLevel, StepInfo

if TYPE_CHECKING:
    from .config import QuantizerConfig


class FSQLevel(QuantizerLevel):
    """One stage of residual FSQ over rows `[N, len(grid)]`.

    Buffers (derived from the config, so not stored): grid [d] (values per dimension), basis [d] (mixed-radix
    place values of a code), scale [d] (`(grid - 1) ** -stage`).
    """

    uses_recent = False

    def __init__(self, grid: Sequence[int], stage: int = 0):
        super().__init__()
        grid_t = torch.tensor(list(grid), dtype=torch.long)
        self.bins = math.prod(grid)
        self.register_buffer("grid", grid_t, persistent=False)
        self.register_buffer("basis", torch.cumprod(torch.cat([grid_t.new_ones(1), grid_t[:-1]]), 0),
                             persistent=False)
        self.register_buffer("scale", (grid_t.double() - 1).pow(-stage).float(), persistent=False)

    @classmethod
    def from_config(cls, dimension: int, config: QuantizerConfig, index: int) -> FSQLevel:
        return cls(config.fsq.levels, index)

    @classmethod
    def code_dimension(cls, dimension: int, config: QuantizerConfig) -> int:
        return len(config.fsq.levels)

    @property
    def dtype(self) -> torch.dtype:
        return self.scale.dtype

    # -- the grid ---------------------------------------------------------------------------------------------
    def _bound(self, z: torch.Tensor) -> torch.Tensor:
        """Each dimension squashed into the range that rounds to its `L` integers: `{-(L-1)/2 .. (L-1)/2}` for odd
        L, `{-L/2 .. L/2 - 1}` for even L (the paper's shift by half a step)."""
        grid = self.grid.to(z.dtype)
        half = (grid - 1) * (1 + 1e-3) / 2  # a little over, so that the extreme values are reachable
        offset = torch.where(self.grid % 2 == 0, 0.5, 0.0).to(z.dtype)
        return torch.tanh(z + torch.atanh(offset / half)) * half - offset

    def _half_width(self, dtype: torch.dtype) -> torch.Tensor:
        return (self.grid // 2).to(dtype)

    def _codes(self, rounded: torch.Tensor) -> torch.Tensor:
        """Mixed-radix index `[N]` of grid integers `rounded` [N, d]."""
        digits = rounded.long() + self.grid // 2
        return (digits * self.basis).sum(-1)

    # -- inference ------------------------------------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self._codes(torch.round(self._bound(x / self.scale.to(x.dtype))))

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        digits = torch.div(codes[..., None], self.basis, rounding_mode="floor") % self.grid
        half_width = self._half_width(self.scale.dtype)
        return (digits.to(self.scale.dtype) - half_width) / half_width * self.scale

    # -- training ---------------------------------------------------------------------------------------------
    def train_step(self, residual: torch.Tensor, info: StepInfo, generator: torch.Generator) -> LevelStep:
        """Rounds forward, passes the gradient through the rounding (not through the tanh's slope, which it
        keeps); no loss of its own."""
        scale = self.scale.to(residual.dtype)
        bounded = self._bound(residual / scale)
        rounded = torch.round(bounded)
        straight = bounded + (rounded - bounded).detach()
        quantized = straight / self._half_width(residual.dtype) * scale
        codes = self._codes(rounded.detach())
        counts = torch.bincount(codes, minlength=self.bins).to(residual.dtype)
        return LevelStep(codes, quantized, residual.new_zeros(()), [counts])
