"""Entropy-coding gain, achieved bitrate, and CLI time and peak memory for long files.

    python benchmarks/compression.py [--model DIR] [--durations 60 3600]

For each bandwidth: the payload against fixed-width packing (`n_q * frames * log2(bins)` bits) and the whole file's
bitrate against the nominal one, on the bundled speech sample. Then, for each duration, the wall time and peak
resident memory of `audiocodec compress` and `audiocodec decompress` run as subprocesses on a synthetic WAV file
(a chord with vibrato and noise bursts). Without --model it uses the embedded default model.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from audiocodec.api import compress, default_model
from audiocodec.cli.common import SAMPLE
from audiocodec.format import bitstream


def load(model_dir: str | None):
    from audiocodec import Codec

    if model_dir:
        return Codec.from_pretrained(model_dir), model_dir
    return default_model(), "default"


def synthetic(seconds: float, rate: int, path: Path) -> None:
    """Write `seconds` of a chord with vibrato and noise bursts, block by block (bounded memory here too)."""
    rng = np.random.default_rng(0)
    with sf.SoundFile(path, "w", rate, 1, subtype="PCM_16") as out:
        for start in range(0, int(seconds * rate), rate * 10):
            t = (start + np.arange(min(rate * 10, int(seconds * rate) - start))) / rate
            x = sum(0.1 * np.sin(2 * np.pi * f * t + 3 * np.sin(2 * np.pi * 5 * t)) for f in (220, 277, 330))
            x += 0.05 * rng.standard_normal(len(t)) * (np.sin(2 * np.pi * 0.5 * t) > 0.9)
            out.write(x.astype(np.float32))


def run_cli(*args: str) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one CLI run, measured by GNU time for that process alone."""
    start = time.perf_counter()
    command = ["/usr/bin/time", "-f", "%M", sys.executable, "-m", "audiocodec", *args]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode:
        raise SystemExit(f"CLI failed: {result.stderr.strip()}")
    return time.perf_counter() - start, int(result.stderr.strip().splitlines()[-1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--durations", type=float, nargs="+", default=[60.0])
    args = parser.parse_args()
    model, model_dir = load(args.model)
    wav, rate = sf.read(SAMPLE, dtype="float32", always_2d=True)
    print(f"model: {model.config.name} ({model.model_id()}); sample: {SAMPLE.name}, {len(wav) / rate:.2f} s")
    print("| bandwidth kb/s | n_q | payload bytes | fixed-width bytes | entropy-coding saving | file kb/s |")
    print("|---|---|---|---|---|---|")
    for bandwidth in model.bandwidths:
        data = compress(torch.from_numpy(wav.T), rate, model=model, bandwidth=bandwidth)
        header, payload = bitstream.unpack(data)
        fixed = header.n_q * header.frames * np.log2(header.bins) / 8
        print(f"| {bandwidth:g} | {header.n_q} | {len(payload)} | {fixed:.0f} "
              f"| {100 * (1 - len(payload) / fixed):.1f}% | {8 * len(data) / (len(wav) / rate) / 1000:.2f} |")

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        print("\n| audio | step | wall s | peak RSS MB |")
        print("|---|---|---|---|")
        for seconds in args.durations:
            source = tmp / "in.wav"
            synthetic(seconds, model.sample_rate, source)
            extra = [] if model_dir == "default" else ["--model", model_dir]
            for step, cli_args in (("compress", ["compress", str(source), str(tmp / "x.ac"), *extra, "-f"]),
                                   ("decompress", ["decompress", str(tmp / "x.ac"), str(tmp / "y.wav"), *extra, "-f"])):
                wall, rss = run_cli(*cli_args)
                print(f"| {seconds:g} s | {step} | {wall:.1f} | {rss:.0f} |")


if __name__ == "__main__":
    main()
