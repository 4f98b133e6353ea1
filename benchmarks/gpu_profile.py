"""Where GPU time goes: torch.profiler tables of EnCodec's and our encode and decode, side by side.

    python benchmarks/gpu_profile.py [--batch 64] [--seconds 10] [--dtype float32|float16] [--rows 15] [--out DIR]

Both models as in `speed.py` (random weights, ours loaded from EnCodec's state dict, 6 kb/s). Prints the operators
with the most CUDA time for each of the four calls; with --out, also writes the full tables there. Needs a GPU.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).parent))
from speed import build_models  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--dtype", choices=["float32", "float16"], default="float32")
    parser.add_argument("--rows", type=int, default=15)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("gpu_profile.py: needs a CUDA GPU")
    dtype = getattr(torch, args.dtype)
    reference, codec = (model.cuda() for model in build_models(
        argparse.Namespace(variant="24khz", bandwidth=6.0)))
    codec.prepare_for_inference(dtype=dtype)
    # EnCodec's only half-precision path is autocast.
    reference_context = contextlib.nullcontext
    if dtype != torch.float32:
        reference_context = lambda: torch.autocast("cuda", dtype=dtype)  # noqa: E731
    torch.manual_seed(1)
    wav = 0.1 * torch.randn(args.batch, 1, int(args.seconds * 24000), device="cuda")
    with torch.inference_mode(), reference_context():
        frames = reference.encode(wav)
    with torch.inference_mode():
        encoded = codec.encode(wav)

    def in_reference_context(fn):
        def call():
            with reference_context():
                return fn()
        return call

    calls = {"encodec_encode": in_reference_context(lambda: reference.encode(wav)),
             "encodec_decode": in_reference_context(lambda: reference.decode(frames)),
             "ours_encode": lambda: codec.encode(wav), "ours_decode": lambda: codec.decode(encoded)}
    print(f"{torch.cuda.get_device_name()}, batch {args.batch} x {args.seconds:g} s, {args.dtype}")
    for name, call in calls.items():
        with torch.inference_mode():
            call()  # warm-up: cuDNN picks its algorithms
            torch.cuda.synchronize()
            with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
                call()
                torch.cuda.synchronize()
        table = prof.key_averages().table(sort_by="self_cuda_time_total", row_limit=args.rows,
                                          max_name_column_width=60)
        if args.out is not None:
            args.out.mkdir(parents=True, exist_ok=True)
            (args.out / f"profile_{name}.txt").write_text(prof.key_averages().table(sort_by="self_cuda_time_total"))
        print(f"== {name}\n{table}", flush=True)


if __name__ == "__main__":
    main()
