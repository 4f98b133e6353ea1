"""`audiocodec compress`, `decompress`, `info` and `demo`: the codec on real files.

Inputs are anything soundfile reads (or `-` for standard input); outputs are refused if they exist unless
`--force` is given, and are written atomically. A folder as input codes every file in it (`folders.py`). Heavy
imports happen inside the handlers so `--help` is fast.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
import time
from pathlib import Path

SAMPLE = Path(__file__).parent.parent / "assets" / "sample.flac"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("compress", help="compress an audio file (or a folder of them) to .ac")
    p.add_argument("input", help="audio file (anything soundfile reads), - for standard input, or a folder: every "
                                 "audio file in it and below")
    p.add_argument("output", help=".ac file to write, - for standard output, or for a folder input, the folder to "
                                  "write the .ac files to (same layout)")
    p.add_argument("--bandwidth", "-b", type=float, default=None,
                   help=f"target kb/s, one of the model's (the embedded model's: {_default_bandwidths()}); default: "
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

    p = subparsers.add_parser("info", help="describe .ac files")
    p.add_argument("inputs", nargs="+", metavar="input", help=".ac file, or - for standard input")
    p.add_argument("--verify", action="store_true",
                   help="also decode the payload's entropy coding (not the audio) to check that the file is whole")
    p.add_argument("--model", "-m", default=None,
                   help="directory of the model that coded the files, for their tables (default: the embedded model)")
    p.add_argument("--json", action="store_true",
                   help="one JSON object per file, on its own line (JSON Lines), for scripts")
    p.set_defaults(func=run_info)

    p = subparsers.add_parser("demo", help="compress and decompress a short bundled sample")
    p.add_argument("--out-dir", default="demo_out", help="folder for the outputs (default: demo_out)")
    p.add_argument("--bandwidth", "-b", type=float, default=None,
                   help=f"target kb/s: {_default_bandwidths()} (default: the highest)")
    p.add_argument("--force", "-f", action="store_true", help="overwrite the outputs of an earlier demo")
    p.set_defaults(func=run_demo)


def _default_bandwidths() -> str:
    """The embedded model's bandwidths, read from its config.json alone (`--help` loads no weights)."""
    from ..pretrained import embedded_config

    try:
        return ", ".join(f"{b:g}" for b in embedded_config()["config"]["target_bandwidths"])
    except (KeyError, TypeError, ValueError):
        return "none embedded"


def add_quiet_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quiet", "-q", action="store_true",
                        help="no progress (a bar on a terminal, else a line every few seconds, for audio over a "
                             "minute and for folders)")


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                        help="where the model runs (cuda: the current GPU; the codes are the same either way, up to "
                             "float rounding)")


def load_model(directory: str | None, device: str = "cpu"):
    import torch

    from ..api import default_model
    from ..errors import AudioCodecError
    from ..model import Codec

    if device == "cuda" and not torch.cuda.is_available():
        raise AudioCodecError("--device cuda: PyTorch sees no CUDA GPU")
    if device == "cpu":
        return default_model() if directory is None else Codec.from_pretrained(directory).prepare_for_inference()
    # Prepared where it runs (its kernels' layout depends on the device), and not the CPU's shared default.
    return Codec.from_pretrained(directory or "default").to(device).prepare_for_inference()


def read_input_bytes(path: str | Path) -> bytes:
    """The bytes of a `.ac` file, a pipe or a FIFO (`<(...)`), or standard input (`-`); of anything else only the
    first few, enough for `bitstream.unpack` to say what it is not (a 1 GB file, or /dev/zero, read whole first)."""
    from ..format.bitstream import MAGIC
    from ..errors import FormatError

    if str(path) != "-":
        file = Path(path)
        if file.is_dir():
            raise FormatError(f"{path}: is a directory, expected a .ac file")
        if not file.exists():
            raise FormatError(f"{path}: no such file")
    with contextlib.nullcontext(sys.stdin.buffer) if str(path) == "-" else open(path, "rb") as stream:
        head = stream.read(len(MAGIC))
        return head + stream.read() if head == MAGIC else head


def check_names(args: argparse.Namespace) -> None:
    """Refuse an empty input or output name (an unset shell variable): as a path it is the current folder."""
    from ..errors import AudioCodecError

    if "" in (args.input, args.output):
        which = "input" if args.input == "" else "output"
        raise AudioCodecError(f"an empty {which} name: give a file, a folder, or - for standard {which}")


def run_compress(args: argparse.Namespace) -> int:
    from ..io.audio import AUDIO_SUFFIXES, AudioSource, check_output
    from ..errors import AudioCodecError

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
    _report(f"{args.output}: {size} bytes, {8 * size / seconds / 1000:.2f} kb/s for {_duration(seconds)} of "
            f"audio at {model.bandwidth:g} kb/s nominal ({time.perf_counter() - start:.1f} s)")
    return 0


#: Samples in an MP3 frame: less missing is the encoder's padding, not a cut.
MP3_FRAME = 1152


def compress_audio(model, source, output: str | Path, quiet: bool = False) -> int:
    """Compress the `AudioSource` `source` with `model` into `output`, in blocks (`files`); the bytes written."""
    from ..io.audio import write_bytes
    from ..coding.files import compress_file

    data, peak = compress_file(source, model, progress=_show_progress(source.frames / source.sample_rate, quiet))
    if source.frames - source.frames_read >= MP3_FRAME:  # an MP3's header gives its length, the end may be gone
        _report(f"warning: {source.name} holds {_duration(source.frames_read / source.sample_rate)} of audio where "
                f"its header announces {_duration(source.frames / source.sample_rate)}: is it cut short?")
    if peak > 1:
        _report(f"warning: {source.name} peaks at {peak:.2f}, beyond full scale (1.0): the model was trained on "
                f"audio within it and the decoded 16-bit audio will be clipped; scale the input down first")
    write_bytes(output, data)
    return len(data)


def run_decompress(args: argparse.Namespace) -> int:
    from ..io.audio import check_audio_output
    from ..errors import AudioCodecError

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
    _report(f"{args.output}: {_duration(seconds)}, {channels} channel(s) at {sample_rate} Hz")
    return 0


def decompress_bytes(data: bytes, source: str | Path, output: str | Path, get_model,
                     quiet: bool = False) -> tuple[float, int, int]:
    """Decode `.ac` bytes read from `source` into the audio file `output`, in blocks (`files`), calling
    `get_model()` only once the header has been checked (a damaged file is refused before a model is loaded); the
    seconds, channels and sample rate written."""
    from ..format import bitstream, checks
    from ..io.audio import check_output_channels
    from ..coding.files import decompress_file

    with _naming(str(source)):
        header, payload = bitstream.unpack(data)
        # Under the embedded model's tables when it coded the file; `read_encoded` checks again under the model's own.
        checks.check_sizes(header, payload, checks.code_tables(header.model_id))
        check_output_channels(output, header.original_channels)
        model = get_model()
        seconds = header.original_length / header.original_rate
        clipped = decompress_file(data, output, model, progress=_show_progress(seconds, quiet))
    if clipped:
        _report(f"warning: {output}: {clipped} decoded samples were beyond full scale and were clipped in the 16-bit "
                f"output")
    return seconds, header.original_channels, header.original_rate


def run_info(args: argparse.Namespace) -> int:
    """Describe each input; a file that cannot be read is reported in one line and skipped (exit status 1)."""
    import json

    from ..errors import AudioCodecError

    failed = False
    for path in args.inputs:
        try:
            data = read_input_bytes(path)
            with _naming(path):
                facts = describe(data, args.model, args.verify)
        except AudioCodecError as error:
            print(f"audiocodec: error: {error}", file=sys.stderr)
            failed = True
            continue
        if args.json:
            print(json.dumps({"file": path, **facts}))
        else:
            if len(args.inputs) > 1:
                print(f"{path}:")
            print(_info_text(facts))
    return 1 if failed else 0


def describe(data: bytes, model: str | None = None, verify: bool = False) -> dict:
    """What `info` says of a `.ac` file's bytes, as plain values, once `checks.check_sizes` has passed them (under
    the tables of `model`, a model directory, or of the embedded model, when the file names it). `verify` also
    decodes the payload's entropy coding (a `FormatError` if it does not hold the codes the header announces)."""
    from ..format import bitstream, checks, entropy
    from ..pretrained import model_origin

    header, payload = bitstream.unpack(data)
    tables = checks.code_tables(header.model_id, model or "default")
    checks.check_sizes(header, payload, tables)
    if verify:
        verify_payload(header, payload, tables, model)
    seconds = header.original_length / header.original_rate
    fixed_bytes = entropy.fixed_width_bytes(header.n_q * header.frames, header.bins)
    return {
        "model_id": header.model_id, "model_name": header.model_name, "model_origin": model_origin(header.model_id),
        "seconds": seconds, "original_rate": header.original_rate, "original_channels": header.original_channels,
        "sample_rate": header.sample_rate, "channels": header.channels, "codebooks": header.n_q,
        "frames": header.frames, "bins": header.bins, "frame_rate": header.frame_rate,
        "nominal_kbps": header.bandwidth, "bytes": len(data), "kbps": 8 * len(data) / seconds / 1000,
        "payload_bytes": len(payload), "fixed_width_bytes": fixed_bytes,
        "coding": "fixed-width" if header.fixed_width else "range",
        "level_gain_db": None if header.gain is None else 20 * math.log10(header.gain),
        "silent_seconds": min(seconds, sum(count for _, count in header.silence or []) * bitstream.silence_unit(
            header.original_rate, header.frame_rate) / header.original_rate),
        "verified": verify,
    }


def verify_payload(header, payload: bytes, tables, model: str | None) -> None:
    """Decode the payload's codes (entropy coding only, no network) and check them; `tables` None: the file's
    model is not the one given, and a range-coded payload cannot be decoded without its tables."""
    from ..errors import AudioCodecError, FormatError
    from ..format import entropy

    if header.fixed_width:
        codes = entropy.unpack_fixed(payload, header.bins, header.n_q, header.frames)
    elif tables is None:
        given = f"the model in {model}" if model else "the embedded model"
        raise AudioCodecError(f"cannot verify: the file was coded with model {header.model_description()}, not "
                              f"{given}; give its directory with --model")
    elif len(tables) < header.n_q or tables.shape[1] != header.bins:
        raise FormatError(f"corrupted header: {header.n_q} codebooks of {header.bins} codes do not fit the model")
    else:
        codes = entropy.decode_codes(payload, tables[: header.n_q], header.n_q, header.frames)
    if codes.size and codes.max() >= header.bins:
        raise FormatError("corrupted payload (a code is out of range)")


def _info_text(facts: dict) -> str:
    model = facts["model_id"] if facts["model_name"] is None else f"{facts['model_name']} ({facts['model_id']})"
    if facts["model_origin"] is not None:
        model += f": {facts['model_origin']}"
    lines = [
        f"model: {model}",
        f"audio: {_duration(facts['seconds'])}, {facts['original_channels']} channel(s) at {facts['original_rate']} Hz "
        f"(coded as {facts['channels']} at {facts['sample_rate']} Hz)",
        f"codes: {facts['codebooks']} codebooks x {facts['frames']} frames of {facts['bins']} codes, "
        f"{facts['frame_rate']:g} frames/s, {facts['nominal_kbps']:g} kb/s nominal",
    ]
    if facts["level_gain_db"] is not None:
        lines.append(f"level: coded {facts['level_gain_db']:+.1f} dB from the original's, into the loudness range "
                     f"the model knows; decoding restores it")
    if facts["silent_seconds"]:
        lines.append(f"silence: {_duration(facts['silent_seconds'])} of digital silence, decoded as exact zeros")
    payload, fixed = facts["payload_bytes"], facts["fixed_width_bytes"]
    if facts["coding"] == "fixed-width":
        from ..format.entropy import code_width

        coding = f"fixed-width, {code_width(facts['bins'])} bits a code: range coding would have taken more"
    elif payload <= fixed:
        coding = f"range-coded, {100 * (1 - payload / fixed):.1f}% smaller than fixed-width packing"
    else:  # written before the fixed-width fallback existed
        coding = f"range-coded, {100 * (payload / fixed - 1):.1f}% larger than fixed-width packing"
    lines.append(f"size: {facts['bytes']} bytes, {facts['kbps']:.2f} kb/s; payload {payload} bytes ({coding})")
    if facts["verified"]:
        lines.append(f"verified: the payload decodes to all {facts['codebooks'] * facts['frames']} codes; the file "
                     f"is whole")
    return "\n".join(lines)


def run_demo(args: argparse.Namespace) -> int:
    import torch

    from .. import api
    from ..io.audio import check_output, read_audio, write_audio, write_bytes
    from ..errors import AudioCodecError
    from ..evaluation.metrics import mel_distance, si_sdr

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


@contextlib.contextmanager
def _naming(path: str):
    """Prefix the input's name to the format and model errors raised inside (the bitstream does not know it)."""
    from ..errors import FormatError, ModelMismatchError

    try:
        yield
    except (FormatError, ModelMismatchError) as error:
        name = "standard input" if path == "-" else path
        raise type(error)(f"{name}: {error}") from None


def _show_progress(seconds: float, quiet: bool = False) -> bool:
    """Progress (`io.progress`: a bar on a terminal, lines in a log) for files longer than a minute, unless
    `--quiet`."""
    return seconds > 60 and not quiet


def _duration(seconds: float) -> str:
    """`1.25 s`; a clip under a tenth of a second in milliseconds (`0.0417 ms` for one sample at 24 kHz), where
    `0.00 s` would read as nothing; from two minutes on, in minutes (`2.5 min`)."""
    if seconds < 0.1:
        return f"{seconds * 1000:.3g} ms"
    return f"{seconds:.2f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _report(message: str) -> None:
    print(message, file=sys.stderr)
