"""Encode/decode speed of audiocodec against the `encodec` package's model of the same configuration.

Both models get the same random weights (audiocodec loads EnCodec's state dict), the same 10 s of audio, and run
side by side in one process, alternating, so machine noise hits both alike. Prints real-time factors (seconds of
audio per second of compute, medians over --repeats runs), the speed ratio, and whether the codes are identical.

    python benchmarks/speed.py [--variant 24khz] [--seconds 10] [--repeats 5] [--gpu-batches 1 64]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import torch

from audiocodec import Codec

warnings.filterwarnings("ignore", category=FutureWarning)


def reference_model(variant: str):
    from encodec import EncodecModel

    torch.manual_seed(0)
    constructor = {"24khz": EncodecModel.encodec_model_24khz, "48khz": EncodecModel.encodec_model_48khz}[variant]
    model = constructor(pretrained=False).eval()
    for layer in model.quantizer.vq.layers:
        layer._codebook.embed.data.normal_()
        layer._codebook.inited.fill_(1)
    return model


def measure(reference, codec, wav, repeats: int, sync) -> dict:
    """Median seconds of encode and decode for both models, alternating run by run, plus code equality."""
    steps = {
        "ref_encode": lambda: reference.encode(wav),
        "our_encode": lambda: codec.encode(wav),
    }
    with torch.inference_mode():
        frames, encoded = reference.encode(wav), codec.encode(wav)  # warm-up, and the codes to decode
        steps["ref_decode"] = lambda: reference.decode(frames)
        steps["our_decode"] = lambda: codec.decode(encoded)
        times: dict[str, list[float]] = {name: [] for name in steps}
        for _ in range(repeats):
            for name, step in steps.items():
                sync()
                start = time.perf_counter()
                step()
                sync()
                times[name].append(time.perf_counter() - start)
        same = torch.equal(torch.cat([c for c, _ in frames], dim=-1), encoded.codes)
    return {name: statistics.median(values) for name, values in times.items()} | {"same": same}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="24khz", choices=["24khz", "48khz"])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--bandwidth", type=float, default=6.0)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--gpu-batches", type=int, nargs="+", default=[1, 64])
    args = parser.parse_args()

    reference = reference_model(args.variant)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "encodec.th"
        torch.save(reference.state_dict(), path)
        codec = Codec.from_encodec(path, args.variant)
    reference.set_target_bandwidth(args.bandwidth)
    codec.set_target_bandwidth(args.bandwidth)
    codec.prepare_for_inference()

    audio_seconds = args.seconds
    configs = [("cpu", threads, 1) for threads in args.threads]
    if torch.cuda.is_available():
        configs += [("cuda", None, batch) for batch in args.gpu_batches]

    print(f"EnCodec {args.variant} configuration, random weights, {args.bandwidth:g} kb/s, {audio_seconds:g} s of "
          f"audio per item, median of {args.repeats}; RTF = audio seconds per compute second")
    header = ("device", "threads", "batch", "EnCodec enc RTF", "ours enc RTF", "EnCodec dec RTF", "ours dec RTF",
              "enc+dec speed-up", "codes equal")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for device, threads, batch in configs:
        if threads is not None:
            torch.set_num_threads(threads)
        sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
        torch.manual_seed(1)
        wav = 0.1 * torch.randn(batch, reference.channels, int(audio_seconds * reference.sample_rate), device=device)
        r = measure(reference.to(device), codec.to(device), wav, args.repeats, sync)
        total = batch * audio_seconds
        speedup = (r["ref_encode"] + r["ref_decode"]) / (r["our_encode"] + r["our_decode"])
        print(f"| {device} | {threads or '-'} | {batch} | {total / r['ref_encode']:.1f} | {total / r['our_encode']:.1f} | "
              f"{total / r['ref_decode']:.1f} | {total / r['our_decode']:.1f} | {speedup:.2f}x | {r['same']} |")


if __name__ == "__main__":
    main()
