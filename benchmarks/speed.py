"""Encode/decode speed of audiocodec against the `encodec` package's model of the same configuration.

Both models get the same random weights (audiocodec loads EnCodec's state dict), the same 10 s of audio, and run
side by side in one process, alternating, so machine noise hits both alike. Prints real-time factors (seconds of
audio per second of compute, medians over --repeats runs), the speed ratio, and whether the codes are identical.

EnCodec's CPU speed differs from one Python process to the next by up to 25% (its large temporaries fault in
fresh pages or not, depending on the heap's history), ours by about 3%. `--processes N` therefore repeats each CPU
row in N fresh processes and reports the medians, and the range of the speed-up.

On a GPU, rows come in three precisions (`--gpu-modes`): fp32 as EnCodec runs; fp16, our networks in float16
(`Codec.prepare_for_inference(dtype=torch.float16)`, the quantizer stays float32) against EnCodec under float16
autocast; and the same with both models' networks compiled by `torch.compile`. The last column says how many of
our codes equal EnCodec's float32 codes (on the GPU, float32 convolutions use TF32 as PyTorch does by default, for
both models). With random weights it hardly depends on precision: docs/performance.md measures that on trained
weights.

`--onnx` prints instead one table on one CPU thread: EnCodec's own code, audiocodec's prepared PyTorch model
and onnxruntime running `audiocodec export --onnx`'s graphs of the same weights (`audiocodec.export.runtime`),
alternating in one process; the last column is the share of onnxruntime's codes equal to PyTorch's.

    python benchmarks/speed.py [--variant 24khz] [--seconds 10] [--repeats 5] [--processes 5] [--threads 1 2]
                               [--gpu-batches 1 64] [--gpu-modes fp32 fp16 fp16+compile]
    python benchmarks/speed.py --onnx [--variant 24khz] [--seconds 10] [--repeats 5] [--bandwidth 6]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch
from encodec_reference import random_encodec

from audiocodec import Codec
from audiocodec.modules import activations, conv, cpu_cache

warnings.filterwarnings("ignore", category=FutureWarning)


def reference_model(variant: str):
    return random_encodec(variant, seed=0)


#: GPU precisions: the networks' dtype and whether `torch.compile` fuses them. EnCodec runs each the same way:
#: under autocast (its only half-precision path) and compiled likewise.
GPU_MODES = {"fp32": (None, False), "fp16": (torch.float16, False), "fp16+compile": (torch.float16, True)}


def build_models(args) -> tuple:
    """EnCodec's model with random weights, and ours loaded from its state dict, both at `args.bandwidth`."""
    reference = reference_model(args.variant)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "encodec.th"
        torch.save(reference.state_dict(), path)
        codec = Codec.from_encodec(path, args.variant)
    reference.set_target_bandwidth(args.bandwidth)
    codec.set_target_bandwidth(args.bandwidth)
    return reference, codec.prepare_for_inference()


def measure(reference, codec, wav, repeats: int, sync, reference_context=contextlib.nullcontext) -> dict:
    """Median seconds of encode and decode for both models, alternating run by run, and both models' codes."""
    def ref_encode():
        with reference_context():
            return reference.encode(wav)

    def ref_decode():
        with reference_context():
            return reference.decode(frames)

    steps = {"ref_encode": ref_encode, "our_encode": lambda: codec.encode(wav),
             "ref_decode": ref_decode, "our_decode": lambda: codec.decode(encoded)}
    with torch.inference_mode():
        frames, encoded = ref_encode(), codec.encode(wav)  # warm-up, and the codes to decode
        ref_decode(), codec.decode(encoded)
        times: dict[str, list[float]] = {name: [] for name in steps}
        for _ in range(repeats):
            for name, step in steps.items():
                sync()
                start = time.perf_counter()
                step()
                sync()
                times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(values) for name, values in times.items()}
    return medians | {"ref_codes": torch.cat([c for c, _ in frames], dim=-1), "our_codes": encoded.codes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="24khz", choices=["24khz", "48khz"])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--bandwidth", type=float, default=6.0)
    parser.add_argument("--threads", type=int, nargs="*", default=[1, 2], help="CPU rows (none: GPU rows only)")
    parser.add_argument("--gpu-batches", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--gpu-modes", nargs="+", default=list(GPU_MODES), choices=list(GPU_MODES),
                        help="GPU precisions; compiled ones run at the largest batch only (compiling takes a minute)")
    parser.add_argument("--processes", type=int, default=5, help="fresh processes per CPU row (medians reported)")
    parser.add_argument("--onnx", action="store_true", help="one-thread CPU table with onnxruntime (see above)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.processes < 1 or min(args.threads, default=1) < 1:
        parser.error("--processes and --threads must be at least 1")

    reference, codec = build_models(args)
    if args.onnx:
        onnx_table(reference, codec, args)
        return

    audio_seconds = args.seconds
    configs = [("cpu", threads, 1, "fp32") for threads in args.threads]
    if torch.cuda.is_available():
        configs += [("cuda", None, batch, mode) for batch in args.gpu_batches for mode in args.gpu_modes
                    if not GPU_MODES[mode][1] or batch == max(args.gpu_batches)]

    if args.child:
        r = measure_row(reference, codec, args, "cpu", args.threads[0], 1, "fp32")
        print(json.dumps(r))
        return
    device_name = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
    print(f"CPU: {cpu_cache.describe()}; time tiles of {conv.TILE_ELEMENTS} values ({conv.TIME_MAJOR_TILE_ELEMENTS} "
          f"time-major), ELU pieces of {activations.ELU_PIECE}; load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} CPUs")
    print(f"EnCodec {args.variant} configuration, random weights, {args.bandwidth:g} kb/s, {audio_seconds:g} s of "
          f"audio per item, median of {args.repeats} runs (CPU rows: median over {args.processes} processes); "
          f"RTF = audio seconds per compute second; GPU: {device_name}")
    header = ("device", "threads", "batch", "precision", "EnCodec enc RTF", "ours enc RTF", "EnCodec dec RTF",
              "ours dec RTF", "enc+dec speed-up", "our codes = EnCodec fp32's")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for device, threads, batch, mode in configs:
        if device == "cpu" and args.processes > 1:
            rows = [_child_row(args, threads) for _ in range(args.processes)]
            r = {key: statistics.median(row[key] for row in rows) for key in rows[0] if key != "agreement"}
            r["agreement"] = min(row["agreement"] for row in rows)
            speedups = sorted(row["speedup"] for row in rows)
            spread = f" ({speedups[0]:.2f}-{speedups[-1]:.2f})"
        else:
            r, spread = measure_row(reference, codec, args, device, threads, batch, mode), ""
        agreement = "yes" if r["agreement"] == 1 else f"{100 * r['agreement']:.2f}%"
        print(f"| {device} | {threads or '-'} | {batch} | {mode} | {r['ref_encode_rtf']:.1f} | "
              f"{r['our_encode_rtf']:.1f} | {r['ref_decode_rtf']:.1f} | {r['our_decode_rtf']:.1f} | "
              f"{r['speedup']:.2f}x{spread} | {agreement} |", flush=True)


def measure_row(reference, codec, args, device: str, threads: int | None, batch: int, mode: str) -> dict:
    """Real-time factors of both models, the speed-up, and the share of our codes equal to EnCodec's in float32,
    on one device, thread count, batch size and precision."""
    if threads is not None:
        torch.set_num_threads(threads)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    torch.manual_seed(1)
    wav = 0.1 * torch.randn(batch, reference.channels, int(args.seconds * reference.sample_rate), device=device)
    reference, codec = reference.to(device), codec.to(device)
    dtype, compiled = GPU_MODES[mode]
    context = contextlib.nullcontext
    if mode != "fp32":
        with torch.inference_mode():
            expected = torch.cat([c for c, _ in reference.encode(wav)], dim=-1)
        reference, codec = (model.to(device) for model in build_models(args))  # fresh: compiling changes them
        codec.prepare_for_inference(dtype=dtype, compile=compiled)
        if compiled:
            reference.encoder.compile()
            reference.decoder.compile()
        context = lambda: torch.autocast(device, dtype=dtype)  # noqa: E731
    r = measure(reference, codec, wav, args.repeats, sync, context)
    if mode == "fp32":
        expected = r["ref_codes"]
    total = batch * args.seconds
    return {f"{name}_rtf": total / r[name] for name in ("ref_encode", "our_encode", "ref_decode", "our_decode")} | {
        "speedup": (r["ref_encode"] + r["ref_decode"]) / (r["our_encode"] + r["our_decode"]),
        "agreement": float((r["our_codes"] == expected).float().mean())}

def onnx_table(reference, codec, args) -> None:
    """EnCodec, the prepared PyTorch model and onnxruntime, one thread each, encode and decode, side by side."""
    from audiocodec.export.onnx import export_onnx
    from audiocodec.export.runtime import OnnxCodec

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        export_onnx(codec, tmp)
        runtime = OnnxCodec(tmp, threads=1)
        for name in ("encoder", "decoder"):
            runtime.session(name)  # loaded inside the directory's lifetime
    torch.manual_seed(1)
    wav = 0.1 * torch.randn(1, reference.channels, int(args.seconds * reference.sample_rate))
    audio = wav.numpy()
    with torch.inference_mode():
        frames, encoded = reference.encode(wav), codec.encode(wav)
        codes, scales = runtime.encode(audio, args.bandwidth)
        numpy_codes, numpy_scales = encoded.codes.numpy(), None if encoded.scales is None else encoded.scales.numpy()
        steps = {
            "EnCodec": (lambda: reference.encode(wav), lambda: reference.decode(frames)),
            "audiocodec prepared": (lambda: codec.encode(wav), lambda: codec.decode(encoded)),
            "onnxruntime": (lambda: runtime.encode(audio, args.bandwidth),
                            lambda: runtime.decode(numpy_codes, numpy_scales, wav.shape[-1])),
        }
        times = {(name, i): [] for name in steps for i in range(2)}
        for pair in steps.values():  # warm-up
            pair[0](), pair[1]()
        for _ in range(args.repeats):
            for name, pair in steps.items():
                for i, step in enumerate(pair):
                    start = time.perf_counter()
                    step()
                    times[name, i].append(time.perf_counter() - start)
    median = {key: statistics.median(value) for key, value in times.items()}
    print(f"EnCodec {args.variant} configuration, random weights, {args.bandwidth:g} kb/s, {args.seconds:g} s, one CPU "
          f"thread, median of {args.repeats} runs; RTF = audio seconds per compute second")
    print("| runtime | encode s | encode RTF | decode s | decode RTF | vs prepared PyTorch (enc, dec) |")
    print("|---|---|---|---|---|---|")
    for name in steps:
        enc, dec = median[name, 0], median[name, 1]
        base_enc, base_dec = median["audiocodec prepared", 0], median["audiocodec prepared", 1]
        print(f"| {name} | {enc:.3f} | {args.seconds / enc:.1f} | {dec:.3f} | {args.seconds / dec:.1f} | "
              f"{base_enc / enc:.2f}x, {base_dec / dec:.2f}x |")
    print(f"onnxruntime's codes equal to PyTorch's: {100 * (codes == numpy_codes).mean():.2f}%")


def _child_row(args, threads: int) -> dict:
    """One CPU row measured in a fresh Python process."""
    command = [sys.executable, __file__, "--child", "--variant", args.variant, "--seconds", str(args.seconds),
               "--repeats", str(args.repeats), "--bandwidth", str(args.bandwidth), "--threads", str(threads)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"speed.py: a measuring process failed:\n{result.stderr.strip()}")
    return json.loads(result.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
