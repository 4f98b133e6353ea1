"""Training data loading: audio seconds per second delivered, worker threads against worker processes.

    python benchmarks/data_loading.py [--workers 1 2] [--formats wav flac ogg mp3] [--rounds 5] [--batches 24]

Writes synthetic 24 kHz mono clips (tones and noise, `--clip-seconds` long) as WAV, FLAC, Ogg Vorbis and MP3, then
loads 1-second training segments from them at 24 kHz (`--segment`, batches of `--batch`), as the trainer does:
- threads: a thread pool in the training process calling `SegmentDataset.segment_of`, as the trainer loaded data
  before it used processes (its `BatchPrefetcher`: the next batch loads while the current one is used;
  `--busy-threads` queues all batches at once instead, the best case for threads);
- processes: `audiocodec.training.data.TrainLoader`, the trainer's loader (torch's DataLoader, worker processes).
Each round times both kinds, for every format and worker count, one after the other on the same files; the table
gives medians over rounds, the ratio of the medians, the processes' rate per worker, and how many workers (each a
core) a GPU that trains at `--gpu-rate` audio-s/s needs, at the rate of one process. The load average before and
after is printed: on a shared machine the other processes' load lowers both kinds, and the per-worker figures
most. Worker start-up is not timed (each timing starts after a first batch).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import functools
import math
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from audiocodec.training.data import BatchOrder, SegmentDataset, TrainLoader

FORMATS = {  # name: (extension, libsndfile format, subtype)
    "wav": ("wav", "WAV", "PCM_16"),
    "flac": ("flac", "FLAC", "PCM_16"),
    "ogg": ("ogg", "OGG", "VORBIS"),
    "mp3": ("mp3", "MP3", "MPEG_LAYER_III"),
}
RATE = 24_000


def write_clips(folder: Path, kind: str, clips: int, seconds: float) -> None:
    extension, file_format, subtype = FORMATS[kind]
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * RATE)) / RATE
    for i in range(clips):
        tone = 0.2 * np.sin(2 * np.pi * (110 + 37 * i) * t * (1 + 0.05 * np.sin(t)))
        audio = (tone + 0.05 * rng.standard_normal(len(t))).astype(np.float32)
        sf.write(folder / f"clip{i}.{extension}", audio, RATE, format=file_format, subtype=subtype)


def time_threads(dataset: SegmentDataset, order: BatchOrder, workers: int, batches: int, busy: bool = False) -> float:
    """Seconds to load `batches` batches (after a first one) as the trainer's thread loader did: `workers` threads
    load the next batch while the current one is used, one batch ahead (`--busy-threads`: all batches queued at
    once, the threads never idle, a best case for threads)."""
    keys = [[(0, i) for i in order.batch(0, b % order.batches_per_epoch)] for b in range(batches + 1)]

    def submit(pool, batch):
        return [pool.submit(dataset.segment_of, index, epoch) for epoch, index in batch]

    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        if busy:
            torch.stack([f.result() for f in submit(pool, keys[0])])
            start = time.perf_counter()
            pending = [submit(pool, batch) for batch in keys[1:]]
            for futures in pending:
                torch.stack([f.result() for f in futures])
            return time.perf_counter() - start
        pending = submit(pool, keys[0])
        torch.stack([f.result() for f in pending])
        start = time.perf_counter()
        pending = submit(pool, keys[1])
        for b in range(1, batches + 1):
            items = [f.result() for f in pending]
            pending = submit(pool, keys[b + 1]) if b < batches else []
            torch.stack(items)
        return time.perf_counter() - start


def time_processes(dataset: SegmentDataset, order: BatchOrder, workers: int, batches: int) -> float:
    """Seconds to receive `batches` batches (after a first one) from the trainer's loader."""
    loader = TrainLoader(dataset, order, workers)
    try:
        loader.start(0, 0)
        loader.next()
        start = time.perf_counter()
        for _ in range(batches):
            loader.next()
        return time.perf_counter() - start
    finally:
        loader.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--formats", nargs="+", choices=list(FORMATS), default=list(FORMATS))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batches", type=int, default=24, help="timed batches per measurement")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--segment", type=float, default=1.0, help="seconds per training segment")
    parser.add_argument("--clips", type=int, default=32)
    parser.add_argument("--clip-seconds", type=float, default=6.0)
    parser.add_argument("--gpu-rate", type=float, default=650.0, help="audio-s/s one GPU trains at")
    parser.add_argument("--busy-threads", action="store_true",
                        help="queue every batch for the threads at once instead of one batch ahead")
    args = parser.parse_args()
    torch.set_num_threads(1)  # as a DataLoader worker runs; the threads' pool gets no more
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"{cores} cores; load average before: {os.getloadavg()[0]:.1f}")
    results: dict[tuple[str, int, str], list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        datasets = {}
        for kind in args.formats:
            write_clips(Path(tmp) / kind, kind, args.clips, args.clip_seconds)
            dataset = SegmentDataset(Path(tmp) / kind, RATE, 1, int(args.segment * RATE))
            datasets[kind] = (dataset, BatchOrder(len(dataset), args.batch, 0, 1, seed=0))
        audio = args.batches * args.batch * args.segment
        for _ in range(args.rounds):
            for kind, (dataset, order) in datasets.items():
                for workers in args.workers:
                    for how, timer in (("threads", functools.partial(time_threads, busy=args.busy_threads)),
                                       ("processes", time_processes)):
                        seconds = timer(dataset, order, workers, args.batches)
                        results.setdefault((kind, workers, how), []).append(audio / seconds)
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    print(f"\naudio-s/s delivered ({args.segment:g} s segments at {RATE} Hz from {args.clip_seconds:g} s clips, "
          f"batches of {args.batch}; medians of {args.rounds} rounds)\n")
    print("| source | workers | threads | processes | processes / threads | per process worker "
          f"| workers for {args.gpu_rate:g} audio-s/s |")
    print("|---|---|---|---|---|---|---|")
    for kind in args.formats:
        for workers in args.workers:
            threads = statistics.median(results[(kind, workers, "threads")])
            processes = statistics.median(results[(kind, workers, "processes")])
            per_worker = processes / workers
            print(f"| {kind} | {workers} | {threads:.0f} | {processes:.0f} | {processes / threads:.2f} | "
                  f"{per_worker:.0f} | {math.ceil(args.gpu_rate / per_worker)} |")


if __name__ == "__main__":
    main()
