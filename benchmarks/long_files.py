"""Coding long audio three ways: whole, in chunks (`audiocodec.coding.chunked`), and through the streaming runner.

`audiocodec compress` / `decompress` code audio longer than twice `coding.signal.CHUNK_SECONDS` (10 s) in chunks,
to bound memory. This prints, for each way, the encode and decode real-time factors (seconds of audio per second of
compute, medians over --repeats), the peak resident memory of the process, and whether the codes equal the
whole-signal codes. Each way runs in its own fresh process, so that one way's memory peak does not hide another's;
their order rotates from round to round (--rounds), and the table gives the medians over rounds.

    python benchmarks/long_files.py [--model default|MODEL_DIR|encodec_24khz] [--seconds 60] [--threads 1] [--repeats 3]
                                    [--rounds 3]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

WAYS = ("whole", "chunks", "streaming")


def load_model(name: str):
    from audiocodec import Codec, CodecConfig

    if name == "default" or Path(name).is_dir():
        codec = Codec.from_pretrained(name)
    else:
        torch.manual_seed(0)
        codec = Codec(getattr(CodecConfig, name)())
        for level in codec.quantizer.levels:  # random codebooks spread like the features, so codes vary
            level.embedding.normal_()
    codec.set_target_bandwidth(6.0)
    return codec.prepare_for_inference()


def add_model_arguments(parser: argparse.ArgumentParser, seconds: float) -> None:
    """The options this benchmark shares with `streaming.py`: which model, how much audio, threads, repeats."""
    parser.add_argument("--model", default="default", help="'default', a model directory, or a CodecConfig "
                                                            "preset such as encodec_24khz (random weights)")
    parser.add_argument("--seconds", type=float, default=seconds)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)


def noise(codec, seconds: float) -> torch.Tensor:
    """The same `seconds` of noise, `[1, channels, samples]` at the codec's rate, in every run."""
    generator = torch.Generator().manual_seed(0)
    return 0.1 * torch.randn(1, codec.channels, int(seconds * codec.sample_rate), generator=generator)


def run_one(args) -> dict:
    """Times one way in this process; prints a JSON line."""
    from audiocodec.coding import chunked, signal

    torch.set_num_threads(args.threads)
    codec = load_model(args.model)
    wav = noise(codec, args.seconds)
    chunk = int(signal.CHUNK_SECONDS * codec.sample_rate)
    chunk_frames = int(signal.CHUNK_SECONDS * codec.frame_rate)

    def encode():
        if args.one == "whole":
            return codec.encode(wav)
        if args.one == "chunks":
            return chunked.encode_in_chunks(codec, wav, chunk)
        encoder = codec.streaming_encoder()
        parts = [encoder.push(wav[..., i : i + chunk]) for i in range(0, wav.shape[-1], chunk)]
        from audiocodec.model import EncodedAudio

        return EncodedAudio(torch.cat([*parts, encoder.flush()], dim=-1), None, wav.shape[-1])

    def decode(encoded):
        if args.one == "whole":
            return codec.decode(encoded)
        if args.one == "chunks":
            return chunked.decode_in_chunks(codec, encoded, chunk_frames)
        decoder = codec.streaming_decoder()
        codes = encoded.codes
        parts = [decoder.push(codes[..., i : i + chunk_frames]) for i in range(0, codes.shape[-1], chunk_frames)]
        return torch.cat([*parts, decoder.flush()], dim=-1)[..., : encoded.length]

    encode_times, decode_times = [], []
    with torch.inference_mode():
        for _ in range(args.repeats):
            start = time.perf_counter()
            encoded = encode()
            encode_times.append(time.perf_counter() - start)
            start = time.perf_counter()
            decode(encoded)
            decode_times.append(time.perf_counter() - start)
    return {
        "encode_rtf": args.seconds / statistics.median(encode_times),
        "decode_rtf": args.seconds / statistics.median(decode_times),
        "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "codes": hashlib.sha256(encoded.codes.numpy().tobytes()).hexdigest(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_model_arguments(parser, seconds=60.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--one", choices=WAYS, help=argparse.SUPPRESS)  # internal: time one way in this process
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args)))
        return
    results: dict[str, list[dict]] = {way: [] for way in WAYS}
    for round_ in range(args.rounds):
        for way in WAYS[round_ % len(WAYS) :] + WAYS[: round_ % len(WAYS)]:
            command = [sys.executable, __file__, "--one", way, "--model", args.model, "--seconds", str(args.seconds),
                       "--threads", str(args.threads), "--repeats", str(args.repeats)]
            output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            results[way].append(json.loads(output.strip().splitlines()[-1]))
    print(f"model {args.model}, {args.seconds:g} s of audio, {args.threads} thread(s), 6 kb/s, chunks of 10 s; "
          f"medians over {args.rounds} processes of {args.repeats} runs each")
    print("| way | encode RTF | decode RTF | peak memory MiB | codes = whole |")
    print("|---|---|---|---|---|")
    whole_codes = {r["codes"] for r in results["whole"]}
    for way in WAYS:
        rows = results[way]
        median = {key: statistics.median(r[key] for r in rows) for key in ("encode_rtf", "decode_rtf", "peak_mib")}
        same = all(r["codes"] in whole_codes for r in rows)
        print(f"| {way} | {median['encode_rtf']:.1f} | {median['decode_rtf']:.1f} | {median['peak_mib']:.0f} | "
              f"{'yes' if same else 'NO'} |")


if __name__ == "__main__":
    main()
