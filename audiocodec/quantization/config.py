"""Quantizer configuration: settings shared by every kind of level, and one section per kind.

```yaml
quantizer:
  kind: ema            # which section applies: ema, gumbel or fsq
  n_q: 16
  bins: 1024
  ema: {decay: 0.99, expire_every: 20, commitment_weight: 0.25}
```

Configs written before the sections existed kept every option flat (`decay`, `temperature_start`, ...); those
keys still load, into the section they belong to, so stored models and checkpoints keep working and keep their
model id (which hashes only `identity()`). The codec passes the feature dimension separately
(`build_quantizer(dimension, config)`), because it is a property of the encoder, not of the quantizer recipe.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar, Mapping

from ..config import Config
from ..errors import ConfigError


@dataclasses.dataclass
class Section(Config):
    """Base of the kinds' sections.

    Class attributes:
        decodes: whether decoding depends on the section's settings, which then enter the model id.
    """

    decodes: ClassVar[bool] = False

    def check_bins(self, bins: int) -> None:
        """Refuse (`ConfigError`) a number of codes per level this kind cannot have."""


@dataclasses.dataclass
class EMAConfig(Section):
    """Nearest-code levels whose codebooks learn by exponential moving averages (`kind: ema`, the default).

    Thresholds are relative (a fraction of uniform usage), and windows are counted in steps and in vectors per
    code, so the same recipe means the same whatever the batch size or the number of ranks (a larger batch only
    fills a window in fewer steps).

    Attributes:
        decay: EMA decay of usage counts and embedding sums.
        epsilon: Laplace smoothing of usage counts.
        expire_every: steps between expiry checks; 0 disables expiry. Each check judges the window since the
            last one, so this is also the window's length: 50 steps of 600 vectors hold about 29 per code, where
            a code kept busy by its data rarely falls below the threshold by chance (in 20-step windows, 11 per
            code, codes serving rare but real clusters were replaced and replaced again; codec-scale benchmark,
            docs/notes/2026-12-07-codebook-learning.md). Stored configs keep the value they were written with.
        expire_min_usage: a level's window is judged only once it has received this many vectors per code on
            average; until then it stays open across checks. This keeps levels that quantizer dropout rarely
            reaches from being judged on a few hundred vectors, where most codes look dead.
        threshold: a code whose usage over the window is below `threshold` times uniform usage is replaced.
        commitment_weight: weight of the commitment loss (encoder pulled towards its codes).
    """

    decay: float = 0.99
    epsilon: float = 1e-5
    expire_every: int = 50
    expire_min_usage: float = 10.0
    threshold: float = 0.1
    commitment_weight: float = 1.0

    def __post_init__(self) -> None:
        self._check("quantizer ema", [
            ("decay", 0.0 < self.decay < 1.0, "in (0, 1)"),
            ("epsilon", self.epsilon > 0, "positive"),
            ("expire_every", self.expire_every >= 0, "non-negative"),
            ("expire_min_usage", self.expire_min_usage >= 0, "non-negative"),
            ("threshold", 0.0 <= self.threshold < 1.0, "in [0, 1)"),
            ("commitment_weight", self.commitment_weight >= 0, "non-negative"),
        ])


@dataclasses.dataclass
class GumbelConfig(Section):
    """Gumbel-softmax levels whose codebooks learn by gradient (`kind: gumbel`).

    Attributes:
        temperature_start, temperature_end, temperature_decay: temperature `max(end, start * decay ** step)`.
        diversity_weight: weight of the diversity loss `(K - perplexity) / K`, computed on the batch-averaged
            probabilities of all ranks together.
        commitment_weight: weight of the commitment loss (encoder pulled towards its codes).
    """

    temperature_start: float = 2.0
    temperature_end: float = 0.5
    temperature_decay: float = 0.9995
    diversity_weight: float = 0.1
    commitment_weight: float = 1.0

    def __post_init__(self) -> None:
        self._check("quantizer gumbel", [
            ("temperature_start", self.temperature_start > 0, "positive"),
            ("temperature_end", 0 < self.temperature_end <= self.temperature_start, "in (0, temperature_start]"),
            ("temperature_decay", 0 < self.temperature_decay <= 1, "in (0, 1]"),
            ("diversity_weight", self.diversity_weight >= 0, "non-negative"),
            ("commitment_weight", self.commitment_weight >= 0, "non-negative"),
        ])


@dataclasses.dataclass
class FSQConfig(Section):
    """Residual finite scalar quantization (`kind: fsq`): fixed grids, no codebook to learn, no auxiliary loss.

    Attributes:
        levels: grid points per projected dimension; a level's code space is their product, which must equal
            the quantizer's `bins`. The FSQ paper's choices: [8, 6, 5] for 2^8 codes, [8, 5, 5, 5] for about
            2^10, [7, 5, 5, 5, 5] for 2^12, [8, 8, 8, 6, 5] for 2^14, [8, 8, 8, 5, 5, 5] for 2^16. The quantizer
            works in `len(levels)` dimensions, projecting the encoder's features in and out.
    """

    decodes: ClassVar[bool] = True
    levels: list[int] = dataclasses.field(default_factory=lambda: [8, 5, 5, 5])

    def __post_init__(self) -> None:
        self._check("quantizer fsq", [
            ("levels", len(self.levels) > 0 and all(isinstance(n, int) and not isinstance(n, bool) and 2 <= n <= 256
                                                    for n in self.levels), "a non-empty list of integers in [2, 256]"),
        ])

    def check_bins(self, bins: int) -> None:
        if math.prod(self.levels) != bins:
            raise ConfigError(f"quantizer bins must be the product of fsq.levels {self.levels} "
                              f"({math.prod(self.levels)}) for kind fsq, got {bins}")


#: Each kind's section: its name in the config is the kind's name.
SECTIONS: dict[str, type[Section]] = {"ema": EMAConfig, "gumbel": GumbelConfig, "fsq": FSQConfig}

#: Options that configs before the sections kept flat, and the sections they now belong to.
LEGACY_KEYS: dict[str, tuple[str, ...]] = {
    "decay": ("ema",), "epsilon": ("ema",), "expire_every": ("ema",), "expire_min_usage": ("ema",),
    "threshold": ("ema",), "commitment_weight": ("ema", "gumbel"),
    "temperature_start": ("gumbel",), "temperature_end": ("gumbel",), "temperature_decay": ("gumbel",),
    "diversity_weight": ("gumbel",),
}


@dataclasses.dataclass
class QuantizerConfig(Config):
    """Residual quantizer settings: what every kind shares, and a section per kind (only `kind`'s applies).

    Attributes:
        kind: "ema" (nearest code, codebook learnt by EMA with expiry), "gumbel" (Gumbel-softmax levels whose
            codebooks learn by gradient, with a diversity loss) or "fsq" (residual finite scalar quantization).
        n_q: number of residual levels.
        bins: codes per level (for fsq: the product of `fsq.levels`).
        kmeans_init: fit the codebooks with k-means on gathered data before using them (kinds with a codebook).
        kmeans_iters: Lloyd iterations of that k-means.
        kmeans_factor: vectors per code gathered before k-means runs (across ranks and, if needed, steps); the
            ring of recent encoder outputs (k-means data, replacement vectors) holds `kmeans_factor * bins` rows.
        rows_per_step: at most this many encoder frames of a step (all ranks together, each rank's share in
            proportion to its rows) go into that ring.
        quantizer_dropout: in training, use a random number of levels per batch (bandwidth scalability).
        dropout_levels: the level counts quantizer dropout draws from, uniformly (EnCodec draws one of its
            target bandwidths); empty: every count from 1 to n_q (descript-audio-codec's choice).
        seed: seeds every random decision (dropout, k-means, replacement, sampling); decisions derive from it
            and the step counter, so they are identical on all ranks and resume exactly.
        ema, gumbel, fsq: the sections of each kind (`EMAConfig`, `GumbelConfig`, `FSQConfig`).
    """

    kind: str = "ema"
    n_q: int = 8
    bins: int = 1024
    kmeans_init: bool = True
    kmeans_iters: int = 50
    kmeans_factor: int = 4
    rows_per_step: int = 4096
    quantizer_dropout: bool = False
    dropout_levels: list[int] = dataclasses.field(default_factory=list)
    seed: int = 0
    ema: EMAConfig = dataclasses.field(default_factory=EMAConfig)
    gumbel: GumbelConfig = dataclasses.field(default_factory=GumbelConfig)
    fsq: FSQConfig = dataclasses.field(default_factory=FSQConfig)

    def __post_init__(self) -> None:
        if self.kind not in SECTIONS:
            raise ConfigError(f"quantizer kind must be one of {', '.join(SECTIONS)}, got {self.kind!r}")
        for name, section_class in SECTIONS.items():  # sections given as mappings (from `to_dict`, or by hand)
            section = getattr(self, name)
            if isinstance(section, Mapping):
                setattr(self, name, section_class.from_dict(section, where=f"quantizer.{name}"))
            elif not isinstance(section, section_class):
                raise ConfigError(f"quantizer {name} must be a mapping of its settings, got {section!r}")
        self._check("quantizer", [
            ("n_q", self.n_q >= 1, "at least 1"),
            ("bins", self.bins >= 2, "at least 2"),
            ("kmeans_iters", self.kmeans_iters >= 0, "non-negative"),
            ("kmeans_factor", self.kmeans_factor >= 1, "at least 1"),
            ("dropout_levels", all(isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= self.n_q
                                   for n in self.dropout_levels), f"level counts in [1, {self.n_q}]"),
            ("rows_per_step", self.rows_per_step >= 1, "at least 1"),
        ])
        self.section.check_bins(self.bins)

    @property
    def section(self) -> Section:
        """The settings of this config's kind."""
        return getattr(self, self.kind)

    def identity(self) -> dict[str, Any]:
        """What decoding depends on, which a model id hashes: kind, levels, codes, and for fsq its grid.

        A training option must not change the identity of existing models, or their compressed files would
        stop decoding; so ema and gumbel models hash exactly the keys they hashed before the sections existed.
        """
        identity: dict[str, Any] = {"kind": self.kind, "n_q": self.n_q, "bins": self.bins}
        if self.section.decodes:
            identity[self.kind] = self.section.to_dict()
        return identity

    def to_dict(self) -> dict[str, Any]:
        """All settings; the sections of other kinds only where they differ from their defaults."""
        out = super().to_dict()
        for name, section_class in SECTIONS.items():
            if name != self.kind and getattr(self, name) == section_class():
                del out[name]
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, *, where: str = "") -> "QuantizerConfig":
        """As `Config.from_dict`, with the flat keys of older configs moved into their sections."""
        return super().from_dict(_move_legacy_keys(dict(data or {}), where), where=where)

    @classmethod
    def from_options(cls, **options: Any) -> "QuantizerConfig":
        """`QuantizerConfig(**options)` that also takes the older flat keys (`decay=...`), as scripts pass them."""
        try:
            return cls(**_move_legacy_keys(options, "quantizer"))
        except TypeError as error:
            raise ConfigError(f"quantizer: {error}") from None

    def replace(self, **changes: Any) -> "QuantizerConfig":
        """A copy with `changes`, which may use the older flat keys (`replace(expire_every=7)`)."""
        moved = _move_legacy_keys(changes, "quantizer")
        for name in SECTIONS:
            if isinstance(moved.get(name), Mapping):
                moved[name] = getattr(self, name).replace(**moved[name])
        return dataclasses.replace(self, **moved)


def _move_legacy_keys(data: dict[str, Any], where: str) -> dict[str, Any]:
    """`data` with each flat key of an older config moved into the section(s) it belongs to; a key given both
    flat and in a section written as a mapping is refused, naming both."""
    data = dict(data)
    explicit = {name: set(data[name]) for name in SECTIONS if isinstance(data.get(name), Mapping)}
    for key, sections in LEGACY_KEYS.items():
        if key not in data:
            continue
        value = data.pop(key)
        for name in sections:
            section = data.get(name, {})
            if isinstance(section, Config):
                section = section.to_dict()
            elif not isinstance(section, Mapping):
                break  # `from_dict` or `__post_init__` refuses it, naming it
            if key in explicit.get(name, ()):
                raise ConfigError(f"{where}: '{key}' is given both flat and in its '{name}' section; keep one")
            data[name] = {**section, key: value}
    return data
