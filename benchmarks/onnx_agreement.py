"""How closely `audiocodec export --onnx` reproduces PyTorch: per model and bandwidth, the share of codes equal to
PyTorch's (differences are near-ties: the largest relative distance gap of a first differing level is shown),
the largest audio difference decoding the same codes, streaming steps against whole-signal graphs, and file sizes.

Models: the embedded default (the bundled sample, and synthetic signals), and EnCodec's 24 and 48 kHz layouts with
random weights (synthetic signals). onnxruntime on one thread, CPU.

    python benchmarks/onnx_agreement.py [--seconds 5]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import soundfile
import torch
from encodec_reference import random_encodec

from audiocodec import Codec
from audiocodec.export.check import compare
from audiocodec.export.onnx import export_onnx
from audiocodec.export.runtime import OnnxCodec

warnings.filterwarnings("ignore")
SAMPLE = Path(__file__).parents[1] / "audiocodec" / "assets" / "sample.flac"


def encodec(variant: str, folder: Path) -> Codec:
    path = folder / f"{variant}.th"
    torch.save(random_encodec(variant, seed=1).state_dict(), path)
    return Codec.from_encodec(path, variant)


def synthetic(channels: int, rate: int, seconds: float) -> torch.Tensor:
    t = torch.arange(int(seconds * rate)) / rate
    chirp = 0.5 * torch.sin(2 * torch.pi * (100 + 2000 * t) * t)
    noise = 0.1 * torch.randn(channels, t.numel(), generator=torch.Generator().manual_seed(3))
    return torch.stack([noise, chirp.expand(channels, -1)])


def streaming_agreement(codec, runtime, frames: int = 100) -> tuple[float, float]:
    """Share of step-graph codes equal to the whole-signal graph's, and max |audio difference|, over `frames`."""
    hop = codec.hop_length
    wav = synthetic(codec.channels, codec.sample_rate, frames * hop / codec.sample_rate)[:1]
    whole, _ = runtime.encode(wav.numpy())
    steps, decoder = runtime.stream_encoder(), runtime.stream_decoder()
    bounds = [0, steps.first_frames, *range(steps.first_frames + 1, frames + 1)]
    codes = np.concatenate([steps.push(wav[..., a * hop : b * hop].numpy()) for a, b in zip(bounds, bounds[1:])], -1)
    bounds = [0, decoder.first_frames, *range(decoder.first_frames + 1, frames + 1)]
    audio = np.concatenate([decoder.push(whole[..., a:b]) for a, b in zip(bounds, bounds[1:])], -1)
    return float((codes == whole).mean()), float(np.abs(audio - runtime.decode(whole, None, wav.shape[-1])).max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="audio per signal (default 5)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    scratch = Path(tempfile.mkdtemp())
    audio, rate = soundfile.read(SAMPLE, dtype="float32", always_2d=True)
    sample = torch.from_numpy(audio.T[None].copy())
    rows = []
    for name, build in (("default", lambda: Codec.from_pretrained("default")),
                        ("encodec_24khz (random)", lambda: encodec("24khz", scratch)),
                        ("encodec_48khz (random)", lambda: encodec("48khz", scratch))):
        codec = build()
        folder = scratch / name.split()[0]
        manifest = export_onnx(codec, folder)
        runtime = OnnxCodec(folder, threads=1)
        sizes = ", ".join(f"{k} {v / 1e6:.1f} MB" for k, v in manifest["sizes"].items())
        print(f"{name}: {sizes}", flush=True)
        signals = [("synthetic", synthetic(codec.channels, codec.sample_rate, args.seconds))]
        if name == "default":
            signals.insert(0, ("sample.flac", sample))
        for signal, wav in signals:
            for row in compare(codec, runtime, wav):
                rows.append((name, signal, row))
                print(f"| {name} | {signal} | {row.bandwidth:g} | {row.levels} | {row.codes} | "
                      f"{100 * row.equal_share:.3f}% | {row.first_differences} | {row.worst_gap:.1e} | "
                      f"{row.audio_max_diff:.1e} |", flush=True)
        if manifest["streaming"]:
            share, diff = streaming_agreement(codec, runtime)
            print(f"{name}: streaming steps over 100 frames vs whole-signal graphs: codes {100 * share:.2f}% equal, "
                  f"audio max diff {diff:.1e}", flush=True)
    print("\n| model | signal | kb/s | levels | codes | equal to PyTorch | frames differing | worst relative gap | "
          "audio max diff |\n|---|---|---|---|---|---|---|---|---|")
    for name, signal, row in rows:
        print(f"| {name} | {signal} | {row.bandwidth:g} | {row.levels} | {row.codes} | {100 * row.equal_share:.3f}% | "
              f"{row.first_differences} | {row.worst_gap:.1e} | {row.audio_max_diff:.1e} |")


if __name__ == "__main__":
    sys.exit(main())
