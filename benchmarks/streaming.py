"""Real-time streaming: `Codec.streaming_encoder()` / `streaming_decoder()` fed chunks of 20, 80 and 320 ms.

A call-style codec pushes a frame or two at a time, so the cost per push, not the throughput on long chunks,
decides whether it keeps up. Prints, per chunk size, the encode and decode real-time factors (seconds of audio
per second of compute; above 1 keeps up), the median time per push, and whether the codes equal `Codec.encode`'s.
Medians over --repeats passes over the same audio.

    python benchmarks/streaming.py [--model default|MODEL_DIR|encodec_24khz] [--seconds 5] [--threads 1] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from long_files import add_model_arguments, load_model, noise

CHUNKS_MS = (20, 80, 320)


def stream(codec, wav: torch.Tensor, chunk: int) -> tuple[torch.Tensor, float, list[float]]:
    """Codes of `wav` pushed `chunk` samples at a time, the total time, and the time of each push."""
    encoder = codec.streaming_encoder()
    parts, pushes = [], []
    start = time.perf_counter()
    for begin in range(0, wav.shape[-1], chunk):
        before = time.perf_counter()
        parts.append(encoder.push(wav[..., begin : begin + chunk]))
        pushes.append(time.perf_counter() - before)
    parts.append(encoder.flush())
    return torch.cat(parts, dim=-1), time.perf_counter() - start, pushes


def unstream(codec, codes: torch.Tensor, frames: int) -> tuple[float, list[float]]:
    decoder = codec.streaming_decoder()
    pushes = []
    start = time.perf_counter()
    for begin in range(0, codes.shape[-1], frames):
        before = time.perf_counter()
        decoder.push(codes[..., begin : begin + frames])
        pushes.append(time.perf_counter() - before)
    decoder.flush()
    return time.perf_counter() - start, pushes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_model_arguments(parser, seconds=5.0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    codec = load_model(args.model)
    wav = noise(codec, args.seconds)
    print(f"model {args.model}, {args.seconds:g} s of audio, {args.threads} thread(s), 6 kb/s; "
          f"medians over {args.repeats} passes")
    print("| chunk | encode RTF | decode RTF | encode ms / push | decode ms / push | codes = encode |")
    print("|---|---|---|---|---|---|")
    with torch.inference_mode():
        whole = codec.encode(wav).codes
        for chunk_ms in CHUNKS_MS:
            chunk = codec.sample_rate * chunk_ms // 1000
            frames = max(1, round(chunk_ms * codec.frame_rate / 1000))
            encode_times, decode_times, encode_pushes, decode_pushes = [], [], [], []
            for _ in range(args.repeats):
                codes, seconds, pushes = stream(codec, wav, chunk)
                encode_times.append(seconds)
                encode_pushes += pushes
                seconds, pushes = unstream(codec, codes, frames)
                decode_times.append(seconds)
                decode_pushes += pushes
            print(f"| {chunk_ms} ms | {args.seconds / statistics.median(encode_times):.1f} | "
                  f"{args.seconds / statistics.median(decode_times):.1f} | "
                  f"{1000 * statistics.median(encode_pushes):.2f} | {1000 * statistics.median(decode_pushes):.2f} | "
                  f"{'yes' if torch.equal(codes, whole) else 'NO'} |")


if __name__ == "__main__":
    main()
