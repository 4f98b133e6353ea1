"""Training throughput: audio seconds per second of a full step (generator, and discriminator if the recipe has one).

    python benchmarks/train_throughput.py [--recipe recipes/encodec_24khz.yaml] [--batch 8] [--seconds 1] [--steps 5]

Runs the trainer's own step on random audio (the codebooks pass features through until k-means has data, so the
first steps are excluded) and prints the median over --steps timed steps: on the CPU in fp32, in bf16
(`bf16_on_cpu`, whose speed depends on the CPU's bf16 instructions: the table names the CPU's vector capability)
and in fp32 with the convolutions' inputs rounded to bf16 (`round_conv_inputs_to_bf16`); when CUDA is available,
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


def measure(recipe: str, batch: int, seconds: float, steps: int, bf16: bool,
            rounded: bool) -> tuple[float, float]:
    config = load_config(recipe)
    config.data.batch_size, config.data.segment_seconds, config.bf16 = batch, seconds, bf16
    config.bf16_on_cpu, config.round_conv_inputs_to_bf16 = bf16, rounded
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
    device = "cuda" if torch.cuda.is_available() else f"cpu ({torch.backends.cpu.get_cpu_capability()}, " \
        f"{torch.get_num_threads()} threads)"
    print(f"recipe {args.recipe}, batch {args.batch} x {args.seconds:g} s, median of {args.steps} steps")
    print("| device | precision | audio-s / s | peak GPU GiB |")
    print("|---|---|---|---|")
    rows = [("fp32", False, False), ("bf16", True, False)]
    if not torch.cuda.is_available():
        rows.append(("fp32, conv inputs rounded to bf16", False, True))
    for precision, bf16, rounded in rows:
        rate, peak = measure(args.recipe, args.batch, args.seconds, args.steps, bf16, rounded)
        print(f"| {device} | {precision} | {rate:.2f} | {'n/a' if peak is None else f'{peak:.2f}'} |")


if __name__ == "__main__":
    main()
