"""`audiocodec info`: what a `.ac` file holds, as text or JSON, without loading a model."""

from __future__ import annotations

import argparse
import math
import sys
from typing import TYPE_CHECKING

from .common import duration, naming, read_input_bytes

if TYPE_CHECKING:
    import numpy as np

    from ..format.bitstream import Header


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("info", help="describe .ac files")
    p.add_argument("inputs", nargs="+", metavar="input", help=".ac file, or - for standard input")
    p.add_argument("--verify", action="store_true",
                   help="also decode the payload's entropy coding (not the audio) to check that the file is whole")
    p.add_argument("--model", "-m", default=None,
                   help="directory of the model that coded the files, for their tables (default: the embedded model)")
    p.add_argument("--json", action="store_true",
                   help="one JSON object per file, on its own line (JSON Lines), for scripts")
    p.set_defaults(func=run_info)


def run_info(args: argparse.Namespace) -> int:
    """Describe each input; a file that cannot be read is reported in one line and skipped (exit status 1)."""
    import json

    from ..errors import AudioCodecError

    failed = False
    for path in args.inputs:
        try:
            data = read_input_bytes(path)
            with naming(path):
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
            print(info_text(facts))
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


def verify_payload(header: Header, payload: bytes, tables: np.ndarray | None, model: str | None) -> None:
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


def info_text(facts: dict) -> str:
    model = facts["model_id"] if facts["model_name"] is None else f"{facts['model_name']} ({facts['model_id']})"
    if facts["model_origin"] is not None:
        model += f": {facts['model_origin']}"
    lines = [
        f"model: {model}",
        f"audio: {duration(facts['seconds'])}, {facts['original_channels']} channel(s) at {facts['original_rate']} Hz "
        f"(coded as {facts['channels']} at {facts['sample_rate']} Hz)",
        f"codes: {facts['codebooks']} codebooks x {facts['frames']} frames of {facts['bins']} codes, "
        f"{facts['frame_rate']:g} frames/s, {facts['nominal_kbps']:g} kb/s nominal",
    ]
    if facts["level_gain_db"] is not None:
        lines.append(f"level: coded {facts['level_gain_db']:+.1f} dB from the original's, into the loudness range "
                     f"the model knows; decoding restores it")
    if facts["silent_seconds"]:
        lines.append(f"silence: {duration(facts['silent_seconds'])} of digital silence, decoded as exact zeros")
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

