"""Training data: random fixed-length segments from folders or manifests of audio files, loaded by worker
processes.

Unreadable, empty or silent files are skipped and counted (the trainer logs the count); an empty dataset is an
error before training starts. Segments are drawn from a generator seeded by (seed, epoch, index), so a given
item is the same whatever the worker or rank that loads it, and resuming replays the same data: `BatchOrder` says
which items make each batch, `BatchSchedule` deals the batches from any position on, and `TrainLoader` has
torch's DataLoader load them in worker processes.
"""

from __future__ import annotations

import concurrent.futures
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import torch

from ..errors import AudioCodecError
from ..io.audio import WHOLE_READ_FORMATS, files_below, read_manifest, to_model_format

#: A file whose largest sample is at most this is silence, skipped.
SILENCE = 1e-5


def list_audio(source: str | Path) -> list[Path]:
    """Files of a folder (recursively), or of a manifest (`read_manifest`), relative to the manifest's folder."""
    source = Path(source)
    if source.is_dir():
        return files_below(source)
    if not source.is_file():
        raise AudioCodecError(f"{source}: no such folder or manifest")
    return [source.parent / entry["path"] for entry in read_manifest(source)]


class SegmentDataset(torch.utils.data.Dataset):
    """Item i: a random `segment` of samples `[channels, segment]` from a file, at the model's format."""

    def __init__(self, source: str | Path, sample_rate: int, channels: int, segment: int, seed: int = 0):
        self.sample_rate, self.channels, self.segment, self.seed = sample_rate, channels, segment, seed
        self.files: list[tuple[Path, int, int, bool]] = []  # path, frames, rate, read whole
        self.skipped: dict[str, int] = {"unreadable": 0, "empty": 0, "silent": 0, "not finite": 0}
        paths = list_audio(source)
        # Every file is read once to find its peak: spread over threads (libsndfile and numpy let go of the GIL),
        # since compressed formats decode slowly (Ogg Vorbis at about 800 times real time per core). The processes
        # of one machine (DDP ranks) share its cores.
        threads = min(16, cores_per_rank())
        with concurrent.futures.ThreadPoolExecutor(threads) as pool:
            for path, (problem, info) in zip(paths, pool.map(_probe, paths)):
                if problem:
                    self.skipped[problem] += 1
                else:
                    self.files.append((path, info.frames, info.samplerate, info.format in WHOLE_READ_FORMATS))
        if not self.files:
            raise AudioCodecError(f"{source}: no usable audio files (skipped: {self.skipped})")

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, item: int | tuple[int, int]) -> torch.Tensor:
        """Item `index` (its segment of epoch 0), or `(epoch, index)`: what `BatchSchedule` deals."""
        epoch, index = item if isinstance(item, tuple) else (0, item)
        return self.segment_of(index, epoch)

    def segment_of(self, index: int, epoch: int) -> torch.Tensor:
        """File `index`'s segment in `epoch`: a pure function of its arguments, safe to call from any thread."""
        path, frames, rate, whole = self.files[index]
        rng = np.random.default_rng([self.seed, epoch, index])
        need = int(np.ceil(self.segment * rate / self.sample_rate)) + 1
        start = int(rng.integers(0, max(1, frames - need + 1)))
        if whole:  # seeking in an MP3 lands off by up to a few hundred samples, and decodes some of them wrongly
            data = sf.read(str(path), dtype="float32", always_2d=True)[0][start : start + need]
        else:
            data, _ = sf.read(str(path), start=start, frames=need, dtype="float32", always_2d=True)
        wav = to_model_format(torch.from_numpy(data.T.copy()), rate, self.sample_rate, self.channels)
        wav = wav[:, : self.segment]
        if wav.shape[-1] < self.segment:
            wav = torch.nn.functional.pad(wav, (0, self.segment - wav.shape[-1]))
        return wav


def _probe(path: Path) -> tuple[str, Any]:
    """Why a training file is skipped ("" if it is not), and its `sf.info`."""
    try:
        info = sf.info(str(path))
        if info.frames == 0:
            return "empty", None
        peak = _peak(path)
    except (sf.LibsndfileError, RuntimeError, OSError):  # a header that reads but data that does not decode too
        return "unreadable", None
    if not math.isfinite(peak):  # NaN or Inf samples: a training step on them would poison the model
        return "not finite", None
    if peak <= SILENCE:
        return "silent", None
    return "", info


def _peak(path: Path) -> float:
    """The largest absolute sample of a file; NaN or Inf as soon as one is found (`max` would pass a NaN over)."""
    peak = 0.0
    for block in sf.blocks(str(path), blocksize=1 << 16, dtype="float32", always_2d=True):
        block_peak = float(np.abs(block).max()) if block.size else 0.0
        if not math.isfinite(block_peak):
            return block_peak
        peak = max(peak, block_peak)
    return peak


def cores_per_rank() -> int:
    """The cores this process may use, shared with the other DDP ranks of its machine (at least 1)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cores // int(os.environ.get("LOCAL_WORLD_SIZE", "1")))


class BatchOrder:
    """Which items make batch b of epoch e on this rank: a permutation seeded by (seed, epoch), dealt to ranks.

    Computing positions instead of iterating a sampler is what lets a resumed run start mid-epoch exactly.
    """

    def __init__(self, size: int, batch_size: int, rank: int, world: int, seed: int):
        self.size, self.batch_size, self.rank, self.world, self.seed = size, batch_size, rank, world, seed
        per_epoch = max(size, batch_size * world)
        self.batches_per_epoch = per_epoch // (batch_size * world)
        self._epoch: tuple[int, torch.Tensor] | None = None  # the last epoch's items of this rank

    def batch(self, epoch: int, index: int) -> list[int]:
        if self._epoch is None or self._epoch[0] != epoch:
            generator = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
            needed = self.batches_per_epoch * self.batch_size * self.world
            order = torch.cat([torch.randperm(self.size, generator=generator)
                               for _ in range(math.ceil(needed / self.size))])[:needed]
            self._epoch = (epoch, order[self.rank :: self.world])
        return self._epoch[1][index * self.batch_size : (index + 1) * self.batch_size].tolist()

    def wrapped(self, epoch: int, index: int) -> tuple[int, int]:
        """The position of batch `index` of `epoch`, moved to the next epoch's start if past this one's end."""
        return (epoch + 1, 0) if index >= self.batches_per_epoch else (epoch, index)


class BatchSchedule(torch.utils.data.Sampler):
    """A stateful batch sampler: this rank's batches from `(epoch, index)` on, endlessly, each a list of
    `(epoch, item)` keys for `SegmentDataset`.

    Set `position` before each `iter(loader)`: a resumed run starts where its checkpoint's data position says, and
    loads the batches an uninterrupted run would have. Endless, so the DataLoader's workers are never restarted at an
    epoch's end and keep loading across it."""

    def __init__(self, order: BatchOrder, epoch: int = 0, index: int = 0):
        self.order, self.position = order, (epoch, index)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        epoch, index = self.position
        while True:
            epoch, index = self.order.wrapped(epoch, index)
            yield [(epoch, item) for item in self.order.batch(epoch, index)]
            index += 1


class TrainLoader:
    """The training batches, loaded by `workers` processes (torch's DataLoader) while steps run.

    Decoding FLAC, Ogg Vorbis or MP3 and resampling is CPU work in Python-driven loops that threads of one process
    share badly (benchmarks/data_loading.py measures both); processes scale with cores. A segment depends only on
    (seed, epoch, index), so the batches are the same whatever the number of workers, 0 (load in the step)
    included, and a resumed run's batches are an uninterrupted one's. Pinned memory when training on a GPU, so that
    the copy to it can overlap the step."""

    def __init__(self, dataset: SegmentDataset, order: BatchOrder, workers: int, pin_memory: bool = False):
        self.dataset, self.workers, self.pin_memory = dataset, workers, pin_memory
        self.schedule = BatchSchedule(order)
        self.loader = self._data_loader()
        self.batches: Iterator[torch.Tensor] | None = None

    def _data_loader(self) -> torch.utils.data.DataLoader:
        return torch.utils.data.DataLoader(
            self.dataset, batch_sampler=self.schedule, num_workers=self.workers, pin_memory=self.pin_memory,
            persistent_workers=self.workers > 0, prefetch_factor=2 if self.workers > 0 else None)

    def start(self, epoch: int, index: int) -> None:
        """Load batches from `(epoch, index)` on (the workers start now, or are reused)."""
        self.schedule.position = (epoch, index)
        self.batches = iter(self.loader)

    @property
    def started(self) -> bool:
        return self.batches is not None

    def next(self) -> torch.Tensor:
        """The next batch, `[batch, channels, segment]`."""
        return next(self.batches)

    def close(self) -> None:
        """Stop the workers (a later `start` starts new ones): persistent workers live as long as their loader."""
        self.batches = None
        self.loader = self._data_loader()
