"""`audiocodec compress` and `decompress`: the codec on real files.

Inputs are anything soundfile reads (or `-` for standard input); outputs are refused if they exist unless
`--force` is given, and are written atomically. A folder as input codes every file in it (`folders.py`). Heavy
imports happen inside the handlers so `--help` is fast.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from .common import (
    add_device_argument,
    add_quiet_argument,
    check_names,
    compress_audio,
    decompress_bytes,
    default_bandwidths,
    duration,
    load_model,
    read_input_bytes,
    report,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("compress", help="compress an audio file (or a folder of them) to .ac")
    p.add_argument("input", help="audio file (anything soundfile reads), - for standard input, or a folder: every "
                                 "audio file in it and below")
    p.add_argument("output", help=".ac file to write, - for standard output, or for a folder input, the folder to "
                                  "write the .ac files to (same layout)")
    p.add_argument("--bandwidth", "-b", type=float, default=None,
                   help=f"target kb/s, one of the model's (the embedded model's: {default_bandwidths()}); default: "
                        f"the model's highest")
    p.add_argument("--model", "-m", default=None, help="model directory (default: the embedded model)")
    p.add_argument("--force", "-f", action="store_true", help="overwrite the output if it exists")
    add_quiet_argument(p)
    add_device_argument(p)
    p.set_defaults(func=run_compress)

    p = subparsers.add_parser("decompress", help="decompress a .ac file (or a folder of them) to WAV or FLAC")
    p.add_argument("input", help=".ac file, - for standard input, or a folder: every .ac file in it and below")
    p.add_argument("output", help=".wav or .flac file to write, - for WAV on standard output, or for a folder "
                                  "input, the folder to write the audio files to (same layout)")
    p.add_argument("--format", choices=["wav", "flac"], default=None,
                   help="audio format of a folder's outputs (default: wav); a single output's name says it")
    p.add_argument("--model", "-m", default=None, help="model directory (default: the embedded model)")
    p.add_argument("--force", "-f", action="store_true", help="overwrite the output if it exists")
    add_quiet_argument(p)
    add_device_argument(p)
    p.set_defaults(func=run_decompress)


def run_compress(args: argparse.Namespace) -> int:
    from ..errors import AudioCodecError
    from ..io.audio import AUDIO_SUFFIXES, AudioSource, check_output

    check_names(args)
    if args.input != "-" and Path(args.input).is_dir():
        from .folders import compress_folder

        return compress_folder(args)
    check_output(args.output, args.force, args.input)
    if Path(args.output).suffix.lower() in AUDIO_SUFFIXES:
        raise AudioCodecError(f"{args.output}: compress writes a .ac file, not audio; name it .ac (decompress "
                              f"writes audio)")
    source = AudioSource(args.input)  # a bad input is refused before a model is loaded
    model = load_model(args.model, args.device)
    if args.bandwidth is not None:
        model.set_target_bandwidth(args.bandwidth)
    start = time.perf_counter()
    size = compress_audio(model, source, args.output, args.quiet)
    seconds = source.frames_read / source.sample_rate
    report(f"{args.output}: {size} bytes, {8 * size / seconds / 1000:.2f} kb/s for {duration(seconds)} of "
            f"audio at {model.bandwidth:g} kb/s nominal ({time.perf_counter() - start:.1f} s)")
    return 0


def run_decompress(args: argparse.Namespace) -> int:
    from ..errors import AudioCodecError
    from ..io.audio import check_audio_output

    check_names(args)
    if args.input != "-" and Path(args.input).is_dir():
        from .folders import decompress_folder

        return decompress_folder(args)
    if args.format is not None:
        raise AudioCodecError(f"--format is for a folder of .ac files; {args.output}'s extension says the format")
    check_audio_output(args.output, args.force, args.input)
    data = read_input_bytes(args.input)
    seconds, channels, sample_rate = decompress_bytes(data, args.input, args.output,
                                                      lambda: load_model(args.model, args.device), args.quiet)
    report(f"{args.output}: {duration(seconds)}, {channels} channel(s) at {sample_rate} Hz")
    return 0

