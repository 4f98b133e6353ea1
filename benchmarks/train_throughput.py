"""Training throughput: audio seconds per second of a full step (generator + discriminator).

    python benchmarks/train_throughput.py [--recipe recipes/encodec_24khz.yaml] [--batch 8] [--seconds 1] [--steps 5]

Runs the trainer's own step on random audio (the codebooks pass features through until k-means has data, so the
first steps are excluded) and prints the median over --steps timed steps, on the CPU and, when CUDA is available,
on the GPU in fp32 and bf16 with peak memory.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from audiocodec.training.config import load_config
from audiocodec.training.trainer import Trainer


def measure(recipe: str, batch: int, seconds: float, steps: int, bf16: bool) -> tuple[float, float]:
    config = load_config(recipe)
    config.data.batch_size, config.data.segment_seconds, config.bf16 = batch, seconds, bf16
    with tempfile.TemporaryDirectory() as tmp:
        sf.write(Path(tmp) / "noise.wav", 0.1 * np.random.default_rng(0).standard_normal(config.model.sample_rate * 2),
                 config.model.sample_rate)
        config.data.train, config.data.valid, config.output_dir = tmp, "", str(Path(tmp) / "run")
        trainer = Trainer(config)
        shape = (batch, config.model.channels, int(seconds * config.model.sample_rate))
        wav = 0.1 * torch.randn(shape, device=trainer.device)
        sync = torch.cuda.synchronize if trainer.device.type == "cuda" else (lambda: None)
        warmup = 10  # k-means needs kmeans_factor x bins frames before quantizing
        for _ in range(warmup):
            trainer._train_step(wav)
        if trainer.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        times = []
        for _ in range(steps):
            sync()
            start = time.perf_counter()
            trainer._train_step(wav)
            sync()
            times.append(time.perf_counter() - start)
        peak = torch.cuda.max_memory_allocated() / 2**30 if trainer.device.type == "cuda" else None
    return batch * seconds / statistics.median(times), peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="recipes/encodec_24khz.yaml")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    rows = [("cpu", False)]
    if torch.cuda.is_available():
        rows = [("cuda", False), ("cuda", True)]
    print(f"recipe {args.recipe}, batch {args.batch} x {args.seconds:g} s, median of {args.steps} steps")
    print("| device | precision | audio-s / s | peak GPU GiB |")
    print("|---|---|---|---|")
    for device, bf16 in rows:
        rate, peak = measure(args.recipe, args.batch, args.seconds, args.steps, bf16)
        print(f"| {device} | {'bf16' if bf16 else 'fp32'} | {rate:.2f} | {'n/a' if peak is None else f'{peak:.2f}'} |")


if __name__ == "__main__":
    main()
