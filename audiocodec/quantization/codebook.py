"""The EMA codebook of one residual level, its whole life in reading order.

Buffers, k-means initialisation, nearest-code encode/decode, batch statistics, the EMA update, expiry. Training
steps are driven by `ResidualVectorQuantizer.forward`, which gathers the statistics of every level, all-reduces
them once, then calls `ema_update` and `expire` here; the step order is written in that docstring.

The codebook stores usage counts and embedding sums and *derives* the embedding from them (as moshi's codebook
does). Expiry writes the replacement into both sums, so the following EMA steps keep it. EnCodec instead wrote
the replacement into the embedding alone and the EMA copy a few lines later overwrote it, so no dead code was
ever replaced (encodec issue #61).
"""

from __future__ import annotations

import weakref

import torch
from torch import nn

from .kmeans import kmeans
from .nearest import nearest_codes, squared_norms


class EMACodebook(nn.Module):
    """Nearest-neighbour codebook learnt by exponential moving averages, with windowed dead-code expiry.

    Buffers (all in `state_dict`, so training resumes exactly):
        inited [1]: 1.0 once the codebook holds real centroids (EnCodec's name and shape).
        cluster_usage [K]: EMA of how many vectors each code received per step, summed over ranks.
        embedding_sum [K, D]: EMA of the sum of those vectors.
        embedding [K, D]: `embedding_sum / smoothed(cluster_usage)`; derived after every update, stored so
            inference needs no arithmetic and loaded EnCodec weights are used exactly as published.
        window_usage [K]: usage summed (over ranks and steps) since the last expiry check.

    Args:
        dimension: D, size of each code vector.
        bins: K, number of codes.
        decay: EMA decay.
        epsilon: Laplace smoothing of usage, so a code with no usage still has a finite embedding.
        threshold: expiry threshold as a fraction of uniform usage over the window.
        min_window_usage: a window is judged only once it holds at least this many vectors per code; until then
            `expire` leaves it open. Under quantizer dropout the upper levels see data in few steps, and judging
            them on a handful of vectors would call most codes dead and churn them at every check.
    """

    def __init__(self, dimension: int, bins: int, decay: float = 0.99, epsilon: float = 1e-5,
                 threshold: float = 0.1, kmeans_init: bool = True, min_window_usage: float = 0.0):
        super().__init__()
        self.dimension = dimension
        self.bins = bins
        self.decay = decay
        self.epsilon = epsilon
        self.threshold = threshold
        self.min_window_usage = min_window_usage
        embedding = torch.zeros(bins, dimension)
        if not kmeans_init:
            nn.init.kaiming_uniform_(embedding)
        self.register_buffer("inited", torch.tensor([float(not kmeans_init)]))
        self.register_buffer("cluster_usage", torch.ones(bins) if not kmeans_init else torch.zeros(bins))
        self.register_buffer("embedding_sum", embedding.clone())
        self.register_buffer("embedding", embedding)
        self.register_buffer("window_usage", torch.zeros(bins))
        # Dead codes found by the last expiry check: what to report, since the window restarts right after it.
        self.last_dead = 0
        self._norms: tuple | None = None  # (weak reference to the codebook, its version, its squared norms)

    @property
    def is_initialized(self) -> bool:
        return bool(self.inited.item())

    # -- initialisation -------------------------------------------------------------------------------------
    def initialize(self, data: torch.Tensor, iters: int, generator: torch.Generator, usage_per_step: float) -> None:
        """Fits the codes to `data` [N, D] (identical on every rank) with k-means.

        Cluster sizes are rescaled to the EMA's unit (vectors per step, summed over ranks), so the first EMA
        steps neither swamp nor ignore the k-means result.
        """
        means, counts = kmeans(data, self.bins, iters, generator)
        usage = counts * (usage_per_step / max(data.shape[0], 1))
        self.cluster_usage.copy_(usage)
        self.embedding_sum.copy_(means * usage[:, None])
        self.embedding.copy_(means)
        self.window_usage.zero_()
        self.inited.fill_(1.0)

    # -- inference ------------------------------------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Nearest code `[N]` for rows `x` [N, D], bit-identical to EnCodec's choice."""
        return nearest_codes(x, self.embedding, norms=self._kept_norms())

    def _kept_norms(self) -> torch.Tensor | None:
        """The codes' squared norms, kept without autograd while the codebook is the same tensor at the same
        version. Real-time streaming encodes a frame or two at a time, and recomputing the norms of 16 codebooks
        of 1024 x 128 at every push took a sixth of its time. The tensor is held by a weak reference, so that a
        replaced codebook is freed and never mistaken for a new one; copies and pickles drop what was kept
        (`__getstate__`: a copied tensor's version starts again). Writes through `.data` are invisible to the
        version, as for the polyphase kernels (`modules/conv.py`)."""
        embedding = self.embedding
        if torch.is_grad_enabled() or embedding.is_inference():  # (inference tensors have no version)
            return None
        kept = self._norms
        if kept is None or kept[0]() is not embedding or kept[1] != embedding._version:
            self._norms = kept = (weakref.ref(embedding), embedding._version, squared_norms(embedding))
        return kept[2]

    def __getstate__(self) -> dict:
        return {**super().__getstate__(), "_norms": None}

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Code vectors `[..., D]` for `codes` [...]."""
        return nn.functional.embedding(codes, self.embedding)

    # -- training -------------------------------------------------------------------------------------------
    def statistics(self, x: torch.Tensor, codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """This rank's usage counts `[K]` and per-code sums `[K, D]` of rows `x` [N, D] assigned to `codes` [N]."""
        x = x.detach()
        counts = torch.bincount(codes, minlength=self.bins).to(x.dtype)
        sums = torch.zeros(self.bins, x.shape[1], dtype=x.dtype, device=x.device).index_add_(0, codes, x)
        return counts, sums

    def ema_update(self, counts: torch.Tensor, sums: torch.Tensor) -> None:
        """Moves usage and sums towards this step's statistics (already summed over ranks), then re-derives."""
        counts = counts.to(self.cluster_usage.dtype)
        sums = sums.to(self.embedding_sum.dtype)
        self.cluster_usage.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        self.embedding_sum.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        self.window_usage.add_(counts)
        self._derive_embedding()

    def dead_codes(self) -> torch.Tensor:
        """Mask `[K]` of codes used less than `threshold` x uniform usage over the current window."""
        total = self.window_usage.sum()
        if total <= 0:
            return torch.zeros(self.bins, dtype=torch.bool, device=self.window_usage.device)
        return self.window_usage < self.threshold * total / self.bins

    def window_is_full(self) -> bool:
        """Whether the window holds `min_window_usage` vectors per code (usage is synced, so all ranks agree)."""
        return bool(self.window_usage.sum() >= self.min_window_usage * self.bins)

    def expire(self, candidates: torch.Tensor, generator: torch.Generator) -> int:
        """Replaces dead codes with rows of `candidates` [M, D] and starts a new window; returns how many.

        A window that is not yet full (`window_is_full`) is left open and nothing is replaced.

        `candidates` are recent inputs of this level (identical on all ranks). They are drawn in proportion to
        their squared error under the current codebook, so new codes go where the data is served worst. The
        replaced codes' usage is reset to the threshold and their sum to `vector * usage`, so the embedding
        derived from them is the replacement and stays so through later EMA steps until data moves it.
        """
        if not self.window_is_full():
            return 0
        dead = self.dead_codes()
        n_dead = self.last_dead = int(dead.sum())
        if n_dead and candidates.shape[0]:
            candidates = candidates.to(self.embedding.dtype)
            errors = (candidates - self.decode(self.encode(candidates))).pow(2).sum(1)
            weights = errors if errors.sum() > 0 else torch.ones_like(errors)
            picks = torch.multinomial(weights.cpu(), n_dead, replacement=n_dead > int((weights > 0).sum()),
                                      generator=generator).to(candidates.device)
            usage = self.threshold * self.cluster_usage.sum() / self.bins
            usage = usage.clamp(min=1e3 * self.epsilon)
            self.cluster_usage[dead] = usage
            self.embedding_sum[dead] = candidates[picks] * usage
            self._derive_embedding()
        else:
            n_dead = 0
        self.window_usage.zero_()
        return n_dead

    # -- compact exports -------------------------------------------------------------------------------------
    # Buffers that `restore_statistics` rebuilds from the embedding and the usage: a compact export omits them.
    DERIVABLE_BUFFERS = ("embedding_sum", "window_usage")

    def restore_statistics(self) -> None:
        """Sums consistent with the stored embedding and usage, and an empty expiry window: after loading a
        compact export, training goes on from the same codebook (with a fresh window)."""
        self.embedding_sum.copy_(self.embedding * self._smoothed_usage()[:, None])
        self.window_usage.zero_()

    def _derive_embedding(self) -> None:
        """`embedding = embedding_sum / smoothed usage`."""
        self.embedding.copy_(self.embedding_sum / self._smoothed_usage()[:, None])

    def _smoothed_usage(self) -> torch.Tensor:
        """Usage with EnCodec's Laplace smoothing: no code is divided by zero, the total is unchanged."""
        total = self.cluster_usage.sum()
        return (self.cluster_usage + self.epsilon) / (total + self.bins * self.epsilon) * total
