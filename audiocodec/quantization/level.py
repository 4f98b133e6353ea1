"""What one residual level must do, so that `ResidualVectorQuantizer` chains levels of any kind without asking
which kind they are.

A level maps rows `[N, d]` to codes `[N]` and back (`encode`, `decode`). In a training step the quantizer calls,
for every level used, `train_step` (this rank's pass over its residual), then sums every level's `statistics`
over ranks in ONE all-reduce, then hands each level its synced sums (`apply_statistics`), then, on the
schedule the level asks for (`expire_every`), `expire`. Kinds that learn from data before their first step
(k-means) say so with `is_initialized` and get the ring of recent encoder outputs in `initialize`.

Kinds are registered in `kinds.py`; each has a section of the same name in `QuantizerConfig`.
"""

from __future__ import annotations

import abc
import dataclasses
from typing import TYPE_CHECKING, ClassVar

import torch
from torch import nn

if TYPE_CHECKING:
    from .config import QuantizerConfig


@dataclasses.dataclass
class StepInfo:
    """What a level may need to know about the training step.

    step: the quantizer's step counter (schedules such as a temperature).
    total_rows: rows of the step summed over ranks (known only once the statistics are synced).
    world: number of ranks, whose gradients DDP averages.
    """

    step: int
    total_rows: float = 0.0
    world: int = 1


@dataclasses.dataclass
class LevelStep:
    """One level's pass over this rank's residual rows `[N, d]` in a training step.

    codes [N]: the codes chosen.
    quantized [N, d]: what the level adds to the quantizer's output, with the gradient path its kind wants
        (none for kinds that are `straight_through`).
    loss: scalar, the level's own loss (commitment, codebook); it is averaged over the levels used.
    statistics: tensors to sum over ranks; the first is always the usage counts `[K]` (used for metrics).
    kept: anything the level wants back in `apply_statistics` (e.g. tensors that carry a gradient).
    """

    codes: torch.Tensor
    quantized: torch.Tensor
    loss: torch.Tensor
    statistics: list[torch.Tensor]
    kept: dict[str, torch.Tensor] = dataclasses.field(default_factory=dict)


class QuantizerLevel(nn.Module, abc.ABC):
    """Base of every kind of residual level.

    Class attributes:
        straight_through: the levels' outputs carry no gradient, and the quantizer passes the gradient straight
            through the whole stack (output = input + (sum of levels - input).detach()), as VQ-VAE does.
        uses_recent: the level learns from recent encoder outputs (k-means initialisation, replacements), so the
            quantizer keeps a ring of them; without it the ring is empty and never gathered.
    """

    straight_through: ClassVar[bool] = False
    uses_recent: ClassVar[bool] = True
    #: Weight of the commitment loss `mse(residual, code)`, which eval mode reports as the loss (0: none).
    commitment_weight: float = 0.0

    @classmethod
    @abc.abstractmethod
    def from_config(cls, dimension: int, config: QuantizerConfig, index: int) -> QuantizerLevel:
        """Level `index` (0 for the first) of a quantizer of `config` over features of `dimension`."""

    @classmethod
    def code_dimension(cls, dimension: int, config: QuantizerConfig) -> int:
        """The size d of the rows the levels quantize; if it is not `dimension`, the quantizer projects the
        features into it and back with learnt linear maps."""
        return dimension

    @property
    @abc.abstractmethod
    def dtype(self) -> torch.dtype:
        """The dtype rows must have (float32 unless the whole model was cast)."""

    @property
    def is_initialized(self) -> bool:
        """False until `initialize` has run, for kinds that fit themselves to data first."""
        return True

    def initialize(self, data: torch.Tensor, iters: int, generator: torch.Generator, usage_per_step: float) -> None:
        """Fit to rows `data` [M, d] (identical on every rank); `usage_per_step`: rows per step over all ranks."""

    @abc.abstractmethod
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Codes `[N]` (integers in [0, bins)) for rows `x` [N, d]."""

    @abc.abstractmethod
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Vectors `[..., d]` for `codes` [...]; `decode(encode(x))` is what the level quantizes `x` to."""

    @abc.abstractmethod
    def train_step(self, residual: torch.Tensor, info: StepInfo, generator: torch.Generator) -> LevelStep:
        """This rank's pass over `residual` [N, d]; `generator` differs between ranks (for sampling)."""

    def apply_statistics(self, step: LevelStep, synced: list[torch.Tensor], info: StepInfo) -> dict[str, torch.Tensor]:
        """Use `step.statistics` summed over ranks (`synced`, same order); return named loss terms to add to the
        quantizer's loss (each averaged over the levels used). `info.total_rows` is set."""
        return {}

    @property
    def expire_every(self) -> int:
        """Steps between calls of `expire`; 0: never."""
        return 0

    def expire(self, candidates: torch.Tensor, generator: torch.Generator) -> int:
        """Replace unused codes with rows of `candidates` [M, d] (identical on every rank); returns how many."""
        return 0

    def metrics(self) -> dict[str, float]:
        """This level's metrics after a training step (the quantizer prefixes them with `q{k}/`)."""
        return {}

    def kind_metrics(self, info: StepInfo) -> dict[str, float]:
        """Metrics of the kind as a whole, asked of the first level only (e.g. a temperature)."""
        return {}

    #: Buffers that `restore_statistics` rebuilds, which a compact export leaves out.
    DERIVABLE_BUFFERS: ClassVar[tuple[str, ...]] = ()

    def restore_statistics(self) -> None:
        """Rebuild the `DERIVABLE_BUFFERS` after loading a compact export."""
