"""Residual vector quantizer: chains codebook levels, one synchronised training step for all of them.

Each level quantizes what the previous levels left over. `encode`/`decode` give EnCodec's codes bit for bit
on EnCodec weights (see `nearest.py`); `forward` in training also lets the levels learn (each kind as its
`QuantizerLevel` says, see `level.py`), and applies quantizer dropout. Nothing here depends on the kind.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import ConfigError, ModelMismatchError, NonFiniteError
from . import distributed
from .codebook import EMACodebook
from .config import QuantizerConfig
from .kinds import KINDS
from .level import LevelStep, StepInfo

# Purposes of the random streams, so that each decision draws from its own generator.
_DROPOUT, _KMEANS, _EXPIRY, _SAMPLE = 1, 2, 3, 4
_ENCODEC_BUFFERS = ("inited", "cluster_size", "embed", "embed_avg")


@dataclasses.dataclass
class QuantizerOutput:
    """What one forward pass returns.

    quantized [B, D, T]: the quantized features; in training the gradient flows straight through to the input.
    codes [B, n_q_used, T]: code indices of the levels used.
    loss: scalar, the mean of the levels' own losses (commitment; codebook for Gumbel) plus `terms`; zero-valued
        but differentiable before the codebooks are initialised.
    metrics: per level `q{k}/perplexity`, `q{k}/used` (share of codes used in this step, over all ranks),
        `q{k}/expired` (codes replaced this step), and the level's own (`q{k}/dead` for EMA levels: codes below
        the expiry threshold in the window so far), plus `n_q`, each term's value and the kind's own
        (`temperature` for Gumbel); plain floats for logging.
    terms: loss terms computed on the global batch after the step's all-reduce (`diversity` for Gumbel), each
        averaged over the levels used, already included in `loss`.
    """

    quantized: torch.Tensor
    codes: torch.Tensor
    loss: torch.Tensor
    metrics: dict[str, float]
    terms: dict[str, torch.Tensor] = dataclasses.field(default_factory=dict)


class ResidualVectorQuantizer(nn.Module):
    """Residual quantizer whose levels are of the kind the config names (`kinds.KINDS`): EMA by default.

    Args:
        dimension: D, feature size of the encoder output.
        n_q: number of levels.
        bins: codes per level.
        **options: any other `QuantizerConfig` field (kind, kmeans_init, quantizer_dropout, ema=..., ...), or
            the flat keys of older configs (decay, expire_every, threshold, temperature_start, ...).

    Buffers besides the levels': `step` (training steps taken, which seeds every random decision),
    `recent` [kmeans_factor * bins, d] (a ring of recent encoder outputs gathered from all ranks: the k-means
    data, and the source of replacement vectors; empty for kinds that use neither), `recent_count` (rows ever
    pushed into it). Kinds whose levels work in fewer dimensions d than D (`code_dimension`) add
    `project_in` (D -> d) and `project_out` (d -> D).
    """

    def __init__(self, dimension: int = 256, n_q: int = 8, bins: int = 1024, **options: Any):
        super().__init__()
        config = QuantizerConfig.from_options(n_q=n_q, bins=bins, **options)
        if dimension < 1:
            raise ConfigError(f"quantizer dimension must be at least 1, got {dimension}")
        self.config = config
        self.dimension = dimension
        self.n_q = n_q
        self.bins = bins
        kind = KINDS[config.kind]
        code_dimension = kind.code_dimension(dimension, config)
        self.project_in = nn.Linear(dimension, code_dimension) if code_dimension != dimension else None
        self.project_out = nn.Linear(code_dimension, dimension) if code_dimension != dimension else None
        self.levels = nn.ModuleList([kind.from_config(code_dimension, config, k) for k in range(n_q)])
        ring = config.kmeans_factor * bins if kind.uses_recent else 0
        self.register_buffer("step", torch.zeros((), dtype=torch.long))
        self.register_buffer("recent", torch.zeros(ring, code_dimension))
        self.register_buffer("recent_count", torch.zeros((), dtype=torch.long))

    # -- inference ------------------------------------------------------------------------------------------
    @property
    def dtype(self) -> torch.dtype:
        """The levels' dtype, which features must have: float32 unless the whole model was cast."""
        return self.levels[0].dtype

    def encode(self, x: torch.Tensor, n_q: int | None = None) -> torch.Tensor:
        """Codes `[B, n_q, T]` for features `x` [B, D, T]: each level encodes the residual (in the levels'
        dtype, under autocast too)."""
        n_q = self._check_n_q(n_q)
        flat, (batch, frames) = self._flatten(self._in_codebook_dtype(x))
        with torch.autocast(flat.device.type, enabled=False):
            codes, _, _ = self._encode_flat(self._project_in(flat), n_q)
        return torch.stack([c.view(batch, frames) for c in codes], dim=1)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Features `[B, D, T]` for codes `[B, k, T]`, k <= n_q: the sum of the first k levels' code vectors."""
        if codes.dim() != 3 or codes.shape[1] > self.n_q or codes.shape[1] < 1:
            raise ValueError(f"codes must be [batch, levels <= {self.n_q}, frames], got {tuple(codes.shape)}")
        if codes.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
            raise ValueError(f"codes must be an integer tensor, got {codes.dtype}")
        if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= self.bins):
            raise ValueError(f"codes must lie in [0, {self.bins}), got values in "
                             f"[{int(codes.min())}, {int(codes.max())}]")
        codes = codes.long()
        out = torch.tensor(0.0, device=codes.device)
        for k in range(codes.shape[1]):
            out = out + self.levels[k].decode(codes[:, k])
        return self._project_out(out).transpose(1, 2)

    # -- training -------------------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, n_q: int | None = None) -> QuantizerOutput:
        """Quantizes `x` [B, D, T]; in training mode also lets the levels learn.

        In eval mode this is `decode(encode(x))`, bit for bit, plus the loss. A training step runs, in order:

        1. choose the levels used: `n_q` if given, else a random count (quantizer dropout, from a generator
           seeded by `seed` and `step`, so identical on all ranks), else all;
        2. each level takes its pass over its residual (`QuantizerLevel.train_step`) as it stands at the start
           of the step, and returns this rank's statistics (usage counts; for EMA levels embedding sums; for
           Gumbel levels summed probabilities);
        3. ONE all-reduce of every level's statistics, non-finite flags and the ranks' row counts;
        4. any NaN/Inf: raise, naming the first bad level; nothing has been modified yet;
        5. ONE all-gather of at most `rows_per_step` of the step's encoder outputs, evenly strided over all ranks'
           rows (each rank's share in proportion to its rows), into the `recent` ring;
        6. before initialisation: once the ring holds `kmeans_factor * bins` vectors, k-means level by level on
           it (each level on the residual the previous ones leave), then broadcast from rank 0; until then the
           step is a pass-through (quantized = x, codes 0);
        7. each level uses the synced statistics (`apply_statistics`: the EMA update of usage and sums, the
           embedding derived from them; Gumbel's diversity loss on the global batch);
        8. every `expire_every` steps of the kind, AFTER the EMA copy: each level replaces its unused codes with
           recent encoder outputs pushed through the earlier levels (EMA levels write usage and sums, so that
           step 7 of later steps keeps them; EnCodec expired before its EMA copy, which undid it);
        9. `step += 1`.

        Autocast is turned off inside, and `x` cast to the levels' dtype: in bf16, the distances picked codes
        other than the nearest for up to a tenth of the vectors at the deepest levels, which the EMA, k-means and
        expiry then learnt from.
        """
        with torch.autocast(x.device.type if isinstance(x, torch.Tensor) else "cpu", enabled=False):
            return self._forward(self._in_codebook_dtype(x), n_q)

    def _in_codebook_dtype(self, x: torch.Tensor) -> torch.Tensor:
        is_float = isinstance(x, torch.Tensor) and x.is_floating_point()
        return x.to(self.dtype) if is_float else x  # anything else is refused by `_flatten`, naming it

    def _forward(self, x: torch.Tensor, n_q: int | None) -> QuantizerOutput:
        flat, (batch, frames) = self._flatten(x)
        if not self.training:
            n_used = self._check_n_q(n_q)
            level_codes, quantized, residuals = self._encode_flat(self._project_in(flat), n_used)
            loss = sum(F.mse_loss(r, q) for r, q in zip(residuals, quantized)) / n_used
            codes = torch.stack([c.view(batch, frames) for c in level_codes], dim=1)
            return QuantizerOutput(self.decode(codes), codes, loss * self.levels[0].commitment_weight,
                                   {"n_q": float(n_used)})
        n_used = self._check_n_q(n_q) if n_q is not None else self._dropout_n_q()
        initialized = all(level.is_initialized for level in self.levels)
        info = StepInfo(step=int(self.step), world=distributed.world_size())
        inner = self._project_in(flat)  # the rows the levels quantize (`flat` itself unless the kind projects)

        # 2. local pass with the levels as they stand
        residual = inner
        passes: list[LevelStep] = []
        finite = [torch.isfinite(inner).all()]
        if initialized:
            for k in range(n_used):
                if k:
                    finite.append(torch.isfinite(residual).all())
                passes.append(self.levels[k].train_step(residual, info, self._generator(_SAMPLE, k, x.device)))
                residual = residual - passes[-1].quantized.detach()

        # 3. one all-reduce for every level, with each rank's number of rows
        sizes = flat.new_zeros(distributed.world_size())
        sizes[distributed.rank()] = flat.shape[0]
        flags = torch.stack([(~f).to(flat.dtype) for f in finite])
        synced = distributed.all_reduce_sum([flags, sizes] + [t for p in passes for t in p.statistics])
        flags, row_counts = synced[0], synced[1].round().long().tolist()
        info.total_rows = float(synced[1].sum())
        level_statistics, start = [], 2
        for p in passes:
            level_statistics.append(synced[start:start + len(p.statistics)])
            start += len(p.statistics)

        # 4. refuse non-finite input before touching any buffer
        if bool((flags > 0).any()):
            bad = int(torch.nonzero(flags > 0)[0])
            raise NonFiniteError(f"quantizer level {bad} received NaN or Inf values in a training step "
                                 f"(input shape {tuple(x.shape)}); the codebooks were left unchanged")

        # 5. one all-gather of recent encoder outputs, every rank's in proportion to its rows
        if self.recent.shape[0]:
            rows, ring_counts = self._rows_for_ring(inner, row_counts)
            self._push_recent(distributed.all_gather_rows(rows, ring_counts))

        metrics: dict[str, float] = {"n_q": float(n_used)}
        if not initialized:
            with torch.no_grad():
                # 6. initialise once enough data has been gathered; pass-through until then
                if int(self.recent_count) >= self.recent.shape[0]:
                    self._initialize(info.total_rows)
                self.step += 1
                codes = torch.zeros(batch, n_used, frames, dtype=torch.long, device=x.device)
                return QuantizerOutput(x, codes, x.sum() * 0.0, metrics)
        # 7. the levels use the synced statistics (EMA update; global loss terms)
        terms: dict[str, torch.Tensor] = {}
        for k in range(n_used):
            for name, term in self.levels[k].apply_statistics(passes[k], level_statistics[k], info).items():
                terms[name] = terms[name] + term if name in terms else term
        with torch.no_grad():
            # 8. expiry, after the EMA copy
            expired = self._expire()
            self.step += 1

        for k in range(n_used):
            counts = level_statistics[k][0]
            probs = counts / counts.sum().clamp(min=1)
            entropy = -(probs * torch.log(probs.clamp(min=1e-12))).sum()
            metrics[f"q{k}/perplexity"] = float(torch.exp(entropy))
            metrics[f"q{k}/used"] = float((counts > 0).to(torch.float64).mean())
            metrics[f"q{k}/expired"] = float(expired[k])
            metrics.update({f"q{k}/{name}": value for name, value in self.levels[k].metrics().items()})
        metrics.update(self.levels[0].kind_metrics(info))

        quantized = torch.stack([p.quantized for p in passes]).sum(0)
        if self.levels[0].straight_through:
            quantized = inner + (quantized - inner).detach()
        quantized = self._project_out(quantized)
        loss = torch.stack([p.loss for p in passes]).mean()
        for name, term in terms.items():
            terms[name] = term / n_used
            loss = loss + terms[name]
            metrics[name] = float(terms[name].detach())
        codes = torch.stack([p.codes.view(batch, frames) for p in passes], dim=1)
        return QuantizerOutput(quantized.view(batch, frames, -1).transpose(1, 2), codes, loss, metrics, terms)

    # -- compatibility --------------------------------------------------------------------------------------
    def load_encodec_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        """Loads an EnCodec quantizer's buffers (keys without the "quantizer." prefix).

        Expects exactly `vq.layers.{i}._codebook.{inited,cluster_size,embed,embed_avg}` for i < n_q; anything
        missing, unexpected or of the wrong shape is a `ModelMismatchError` listing it.
        """
        if not isinstance(self.levels[0], EMACodebook):
            raise ModelMismatchError(f"EnCodec weights need a quantizer of kind ema, not {self.config.kind}")
        expected = {f"vq.layers.{i}._codebook.{name}" for i in range(self.n_q) for name in _ENCODEC_BUFFERS}
        missing = sorted(expected - set(state))
        unexpected = sorted(set(state) - expected)
        if missing or unexpected:
            parts = []
            if missing:
                parts.append(f"missing keys: {', '.join(missing[:8])}{' ...' if len(missing) > 8 else ''}")
            if unexpected:
                parts.append(f"unexpected keys: {', '.join(unexpected[:8])}"
                             f"{' ...' if len(unexpected) > 8 else ''}")
            raise ModelMismatchError(f"EnCodec quantizer state does not fit {self.n_q} levels: {'; '.join(parts)}")
        shapes = {"inited": (1,), "cluster_size": (self.bins,), "embed": (self.bins, self.dimension),
                  "embed_avg": (self.bins, self.dimension)}
        for key in sorted(expected):
            name = key.rsplit(".", 1)[1]
            if tuple(state[key].shape) != shapes[name]:
                raise ModelMismatchError(f"EnCodec quantizer key {key} has shape {tuple(state[key].shape)}, "
                                         f"expected {shapes[name]}")
        with torch.no_grad():
            for i, level in enumerate(self.levels):
                prefix = f"vq.layers.{i}._codebook."
                level.embedding.copy_(state[prefix + "embed"])
                level.inited.copy_(state[prefix + "inited"])
                level.cluster_usage.copy_(state[prefix + "cluster_size"])
                level.embedding_sum.copy_(state[prefix + "embed_avg"])
                level.window_usage.zero_()

    # -- compact exports -------------------------------------------------------------------------------------
    def derivable_state_keys(self) -> list[str]:
        """State-dict keys (relative to this module) that `restore_training_state` rebuilds: the ring of recent
        outputs, which refills within a few steps, and the EMA levels' sums and windows. Inference needs none
        of them, so a compact export leaves them out (a third of a small model's file)."""
        keys = ["recent", "recent_count"]
        for index, level in enumerate(self.levels):
            keys += [f"levels.{index}.{name}" for name in getattr(level, "DERIVABLE_BUFFERS", ())]
        return keys

    @torch.no_grad()
    def restore_training_state(self) -> None:
        """After loading a compact export: an empty ring (refilled by training) and EMA sums consistent with the
        loaded codebooks, so training can go on from them."""
        self.recent.zero_()
        self.recent_count.zero_()
        for level in self.levels:
            level.restore_statistics()

    # -- helpers --------------------------------------------------------------------------------------------
    def _flatten(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """`[B, D, T]` -> contiguous rows `[B*T, D]` (EnCodec's layout, which the bit-exact search relies on)."""
        if not isinstance(x, torch.Tensor) or x.dim() != 3 or x.shape[1] != self.dimension:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"quantizer input must be [batch, {self.dimension}, frames], got {shape}")
        if not x.is_floating_point():
            raise ValueError(f"quantizer input must be a float tensor, got {x.dtype}")
        batch, _, frames = x.shape
        return x.transpose(1, 2).reshape(-1, self.dimension), (batch, frames)

    def _project_in(self, flat: torch.Tensor) -> torch.Tensor:
        """Rows `[N, D]` -> the rows `[N, d]` the levels quantize (unchanged when d = D)."""
        return flat if self.project_in is None else self.project_in(flat)

    def _project_out(self, inner: torch.Tensor) -> torch.Tensor:
        """`[..., d]` -> `[..., D]`, undoing the shape of `_project_in` (unchanged when d = D)."""
        return inner if self.project_out is None else self.project_out(inner)

    def _encode_flat(self, flat: torch.Tensor, n_q: int):
        """Per level: codes [N], code vectors [N, D], and the residual [N, D] that level quantized."""
        codes, quantized, residuals = [], [], []
        residual = flat
        for level in self.levels[:n_q]:
            c = level.encode(residual)
            q = level.decode(c)
            codes.append(c)
            quantized.append(q)
            residuals.append(residual)
            residual = residual - q
        return codes, quantized, residuals

    def _check_n_q(self, n_q: int | None) -> int:
        if n_q is None:
            return self.n_q
        if isinstance(n_q, bool) or not isinstance(n_q, int) or not 1 <= n_q <= self.n_q:
            raise ValueError(f"n_q must be an integer in [1, {self.n_q}], got {n_q!r}")
        return n_q

    def _generator(self, purpose: int, level: int = 0, device: torch.device | str = "cpu") -> torch.Generator:
        """A generator for one decision, seeded from (seed, step, purpose, level): same on every rank, resumable."""
        seed = ((self.config.seed * 1_000_003 + int(self.step)) * 131 + purpose) * 1031 + level
        if purpose == _SAMPLE:  # noise should differ between ranks: each rank samples its own data
            seed = seed * 65537 + distributed.rank()
        return torch.Generator(device=device).manual_seed(seed % (2**63 - 1))

    def _dropout_n_q(self) -> int:
        if not self.config.quantizer_dropout:
            return self.n_q
        choices = self.config.dropout_levels or range(1, self.n_q + 1)
        return int(choices[int(torch.randint(len(choices), (1,), generator=self._generator(_DROPOUT)))])

    def _rows_for_ring(self, inner: torch.Tensor, row_counts: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """This rank's rows for the ring, and how many every rank gives (`[world]`).

        The step's rows of all ranks, in rank order, are one sequence (the batch one process would see); at most
        `rows_per_step` (and the ring's capacity) of them are taken, evenly strided over that sequence, and each
        rank gives those that fall in its part. So every rank's data is in the ring in proportion to its rows, and
        2 ranks with half a batch each push exactly the rows 1 process with the whole batch pushes (on 1 process
        this is the stride it always took). Deterministic, no RNG, no collective: every rank knows `row_counts`.
        """
        limit = min(self.config.rows_per_step, self.recent.shape[0])
        total = sum(row_counts)
        if total > limit:
            index = torch.linspace(0, total - 1, limit, device=inner.device).round().long()
        else:
            index = torch.arange(total, device=inner.device)
        ends = torch.tensor(row_counts, device=inner.device).cumsum(0)
        owner = torch.bucketize(index, ends, right=True)  # the rank each taken row belongs to
        rank = distributed.rank()
        start = int(ends[rank]) - row_counts[rank]
        mine = index[owner == rank] - start
        counts = torch.bincount(owner, minlength=len(row_counts)).cpu()
        return inner.detach()[mine].to(self.recent.dtype), counts

    def _push_recent(self, rows: torch.Tensor) -> None:
        capacity = self.recent.shape[0]
        rows = rows[-capacity:]
        start = int(self.recent_count) % capacity
        end = start + rows.shape[0]
        if end <= capacity:
            self.recent[start:end] = rows
        else:
            split = capacity - start
            self.recent[start:] = rows[:split]
            self.recent[: end - capacity] = rows[split:]
        self.recent_count += rows.shape[0]

    def _filled_recent(self) -> torch.Tensor:
        return self.recent[: min(int(self.recent_count), self.recent.shape[0])]

    def _initialize(self, vectors_per_step: float) -> None:
        """K-means every level on the ring, each on the residual left by the previous ones; sync from rank 0."""
        residual = self._filled_recent()
        for k, level in enumerate(self.levels):
            level.initialize(residual, self.config.kmeans_iters, self._generator(_KMEANS, k), vectors_per_step)
            residual = residual - level.decode(level.encode(residual)).detach()
        distributed.broadcast_([t for level in self.levels for t in level.state_dict(keep_vars=True).values()])

    def _expire(self) -> list[int]:
        """Replaces each level's dead codes if this step closes an expiry window; returns counts per level."""
        every = self.levels[0].expire_every
        if not every or (int(self.step) + 1) % every:
            return [0] * self.n_q
        expired = []
        residual = self._filled_recent()
        for k, level in enumerate(self.levels):
            expired.append(level.expire(residual, self._generator(_EXPIRY, k)))
            residual = residual - level.decode(level.encode(residual))
        return expired


def build_quantizer(dimension: int, config: QuantizerConfig) -> ResidualVectorQuantizer:
    """The quantizer a codec config asks for."""
    options = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
    return ResidualVectorQuantizer(dimension, **options)
