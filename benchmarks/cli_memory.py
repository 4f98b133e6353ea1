"""Peak memory and time of `audiocodec compress` / `decompress` on a long recording, from files and through pipes.

The command line reads, resamples and writes long files block by block, spools standard input to a temporary
file, and streams a WAV to standard output as it decodes; this measures what that buys on a recording as long as
you like. Each command runs in its own process (its peak resident memory is its own, read from the kernel through
`getrusage` of a one-child wrapper); for standard output, a reader in this process records when the first and the
last byte arrive.

    python benchmarks/cli_memory.py [--model default|encodec_48khz|DIR] [--minutes 10] [--rate 44100]
                                    [--channels 2] [--bandwidth 6] [--threads 1] [--ways file pipe]

`--model encodec_48khz` (or any `CodecConfig` preset) saves that layout with random weights: the memory and time
are the layout's, the sound is noise. The input is a tone and noise, written as 16-bit FLAC (`file`) or WAV
(`pipe`, as ffmpeg or sox would pipe it).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

#: Runs its arguments as one child process and prints that child's peak resident memory (KiB) and wall time.
_WRAPPER = """
import json, resource, subprocess, sys, time
start = time.perf_counter()
code = subprocess.call(sys.argv[1:], stdin=sys.stdin, stdout=sys.stdout)
print(json.dumps({"code": code, "seconds": time.perf_counter() - start,
                  "peak_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}), file=sys.stderr)
"""


def make_model(name: str, folder: Path) -> str:
    """`default`, a model directory, or a `CodecConfig` preset saved with random weights into `folder`."""
    if name == "default" or Path(name).is_dir():
        return name
    import torch

    from audiocodec import Codec, CodecConfig

    torch.manual_seed(0)
    codec = Codec(getattr(CodecConfig, name)())
    for level in codec.quantizer.levels:  # codebooks spread like features, so that codes vary
        level.embedding.normal_()
    return str(codec.save_pretrained(folder / name))


def make_audio(path: Path, minutes: float, rate: int, channels: int) -> None:
    """A tone per channel and a little noise, written a minute at a time."""
    import numpy as np
    import soundfile as sf

    rng = np.random.default_rng(0)
    with sf.SoundFile(path, "w", rate, channels, subtype="PCM_16") as file:
        for start in range(0, int(minutes * 60 * rate), 60 * rate):
            t = (start + np.arange(min(60 * rate, int(minutes * 60 * rate) - start))) / rate
            tones = [0.2 * np.sin(2 * np.pi * (220 + 110 * c) * t) for c in range(channels)]
            file.write(np.stack(tones, axis=1) + 0.02 * rng.standard_normal((t.size, channels)))


def measured(command: list[str], stdin=None, reader=None) -> dict:
    """Run `command` under the wrapper; with `reader`, its standard output goes to `reader(stream)`."""
    process = subprocess.Popen([sys.executable, "-c", _WRAPPER, *command], stdin=stdin,
                               stdout=subprocess.PIPE if reader else subprocess.DEVNULL, stderr=subprocess.PIPE)
    timings = {}
    thread = threading.Thread(target=reader, args=(process.stdout, timings)) if reader else None
    if thread:
        thread.start()
    err = process.stderr.read()
    process.wait()
    if thread:
        thread.join()
    result = json.loads(err.decode().strip().splitlines()[-1])
    if result["code"]:
        raise SystemExit(f"{' '.join(command)} failed:\n{err.decode()}")
    return {**result, **timings}


def read_stream(stream, timings: dict) -> None:
    start = time.perf_counter()
    size = 0
    while block := stream.read(1 << 16):
        if not size:
            timings["first_byte"] = time.perf_counter() - start
        size += len(block)
    timings["bytes"] = size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=int, default=44100)
    parser.add_argument("--channels", type=int, default=2)
    parser.add_argument("--bandwidth", type=float, default=6.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--ways", nargs="+", choices=("file", "pipe"), default=["file", "pipe"])
    args = parser.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    cli = [sys.executable, "-m", "audiocodec"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = ["--model", make_model(args.model, tmp)] if args.model != "default" else []
        for way in args.ways:
            source = tmp / f"in.{'flac' if way == 'file' else 'wav'}"
            make_audio(source, args.minutes, args.rate, args.channels)
            coded = tmp / f"{way}.ac"
            if way == "file":
                compressed = measured([*cli, "compress", str(source), str(coded), "-b", str(args.bandwidth), *model])
                decompressed = measured([*cli, "decompress", str(coded), str(tmp / "out.flac"), *model])
            else:
                with open(source, "rb") as stdin:
                    compressed = measured([*cli, "compress", "-", str(coded), "-b", str(args.bandwidth), *model],
                                          stdin=stdin)
                decompressed = measured([*cli, "decompress", str(coded), "-", *model], reader=read_stream)
            rows.append((way, "compress", compressed))
            rows.append((way, "decompress", decompressed))
            source.unlink()
    print(f"\n{args.minutes:g} min of {args.rate} Hz, {args.channels} channel(s); model {args.model}, "
          f"{args.bandwidth:g} kb/s, {args.threads} thread(s)\n")
    print("| input / output | command | peak memory MiB | wall s | first byte on stdout s |")
    print("|---|---|---|---|---|")
    for way, command, result in rows:
        first = f"{result['first_byte']:.1f}" if "first_byte" in result else "-"
        label = "files" if way == "file" else "stdin / stdout"
        print(f"| {label} | {command} | {result['peak_kib'] / 1024:.0f} | {result['seconds']:.1f} | {first} |")


if __name__ == "__main__":
    main()
