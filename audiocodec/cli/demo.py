"""`audiocodec demo`: compress and decompress the bundled sample with the embedded model, and say how it sounds."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import SAMPLE, default_bandwidths


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("demo", help="compress and decompress a short bundled sample")
    p.add_argument("--out-dir", default="demo_out", help="folder for the outputs (default: demo_out)")
    p.add_argument("--bandwidth", "-b", type=float, default=None,
                   help=f"target kb/s: {default_bandwidths()} (default: the highest)")
    p.add_argument("--force", "-f", action="store_true", help="overwrite the outputs of an earlier demo")
    p.set_defaults(func=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    import torch

    from .. import api
    from ..errors import AudioCodecError
    from ..evaluation.metrics import mel_distance, si_sdr
    from ..io.audio import check_output, read_audio, write_audio, write_bytes

    if args.out_dir == "-":
        raise AudioCodecError("--out-dir -: the demo writes two files, so it needs a folder, not standard output")
    out_dir = Path(args.out_dir)
    compressed, decoded = out_dir / "sample.ac", out_dir / "sample_decoded.wav"
    if out_dir.exists():
        if not out_dir.is_dir():
            raise AudioCodecError(f"{out_dir}: exists and is not a directory")
        check_output(compressed, args.force)
        check_output(decoded, args.force)
    model = api.default_model()
    if args.bandwidth is not None:
        model.set_target_bandwidth(args.bandwidth)  # before the folder is made: a bad value leaves nothing behind
    out_dir.mkdir(parents=True, exist_ok=True)
    wav, sample_rate = read_audio(SAMPLE)
    data = api.compress(torch.from_numpy(wav), sample_rate, model=model, bandwidth=args.bandwidth)
    write_bytes(compressed, data)
    audio, rate = api.decompress(data, model=model)
    write_audio(decoded, audio.numpy(), rate)
    seconds = wav.shape[1] / sample_rate
    reference = torch.from_numpy(wav)
    print(f"model: the embedded default model, {model.config.name} ({model.model_id()})")
    print(f"input: {SAMPLE} ({seconds:.2f} s at {sample_rate} Hz)")
    print(f"compressed: {compressed} ({len(data)} bytes, {8 * len(data) / seconds / 1000:.2f} kb/s, "
          f"{model.bandwidth:g} kb/s nominal)")
    print(f"decompressed: {decoded}")
    print(f"quality: log-mel distance {float(mel_distance(reference, audio, rate).mean()):.3f}, "
          f"SI-SDR {float(si_sdr(reference, audio).mean()):.1f} dB (audiocodec eval measures more)")
    return 0

