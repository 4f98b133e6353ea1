"""Training data: random fixed-length segments from folders or manifests of audio files.

Unreadable, empty or silent files are skipped and counted (the trainer logs the count); an empty dataset is an
error before training starts. Segments are drawn from a generator seeded by (seed, epoch, index), so a given
item is the same whatever the worker or rank that loads it, and resuming replays the same data.
"""

from __future__ import annotations

import concurrent.futures
import math
import os
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
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        threads = max(1, min(16, cores // int(os.environ.get("LOCAL_WORLD_SIZE", "1"))))
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

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.segment_of(index, epoch=0)

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


class BatchPrefetcher:
    """Loads the next batch in background threads while the current step runs.

    Reading and resampling 32 one-second segments takes tens of milliseconds, as long as a small model's step on a
    GPU; done in the step, it left the GPU idle that long. Threads suffice (libsndfile and PyTorch release the
    GIL), and since a segment depends only on (seed, epoch, index), the batches are the same with or without
    prefetching, so a fixed seed and a resumed run reproduce exactly as before.
    """

    def __init__(self, dataset: SegmentDataset, workers: int):
        self.dataset, self.workers = dataset, workers
        self.pool: concurrent.futures.ThreadPoolExecutor | None = None  # started by the first `prefetch`
        self.pending: tuple[tuple, list[concurrent.futures.Future]] | None = None

    def get(self, epoch: int, indices: list[int]) -> torch.Tensor:
        """The batch of `indices` in `epoch`: the prefetched one if it was asked for, else loaded now."""
        key = (epoch, tuple(indices))
        if self.pending is not None and self.pending[0] == key:
            items = [future.result() for future in self.pending[1]]
        else:
            items = [self.dataset.segment_of(i, epoch) for i in indices]
        self.pending = None
        return torch.stack(items)

    def prefetch(self, epoch: int, indices: list[int]) -> None:
        """Start loading the batch that the next `get` will most likely ask for."""
        if self.workers == 0:
            return
        if self.pool is None:
            self.pool = concurrent.futures.ThreadPoolExecutor(self.workers, "audiocodec-data")
        futures = [self.pool.submit(self.dataset.segment_of, i, epoch) for i in indices]
        self.pending = ((epoch, tuple(indices)), futures)

    def close(self) -> None:
        """Stop the threads (a later `prefetch` starts new ones)."""
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
        self.pool, self.pending = None, None
