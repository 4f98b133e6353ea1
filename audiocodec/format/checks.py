"""The checks a `.ac` file passes before any work, in one place for `info`, `decompress` and the library.

`bitstream.unpack` checks each header field on its own (type, range, CRC). Here the fields are checked against
each other and against the payload (`check_sizes`): the original length against the coded one, the frame count
against the length, the payload's size against what the codes it claims can take. The last needs the model's
entropy tables: a range coder can spend as little as 0.0001 bits on a code under a peaked table, so without them
a 24-hour header over a 40-byte payload looks plausible, and decoding it allocated 700 MB before finding out. With
them, each code costs at least `-log2` of its level's most likely code's probability, and a payload shorter than
that sum is refused at once. `code_tables` reads a model directory's tables without torch, so `info` stays fast.
Decoding then compares the header with the model (`api.check_model`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from ..errors import FormatError
from ..pretrained import CONFIG_FILE, model_directory
from . import bitstream, entropy

#: The weights file of a model directory (`Codec.save_pretrained`), named here so reading it needs no torch.
WEIGHTS_FILE = "model.safetensors"


def read_checked(data: bytes, tables: np.ndarray | None = None) -> tuple[bitstream.Header, bytes]:
    """`bitstream.unpack`, then `check_sizes`: the header and payload of `.ac` bytes whose fields agree with each
    other and with the payload's size (under `tables`, the probability tables of the file's model, when known)."""
    header, payload = bitstream.unpack(data)
    check_sizes(header, payload, tables)
    return header, payload


def check_sizes(header: bitstream.Header, payload: bytes, tables: np.ndarray | None = None) -> None:
    """Refuse a header whose lengths disagree with each other or with the payload; see the module docstring."""
    ratio = header.original_rate / header.sample_rate  # resampling gives ceil(length * ratio) samples
    if abs(header.original_length - header.length * ratio) > ratio + 1:
        raise FormatError("corrupted header: the original length does not match the coded length")
    # A model codes `hop` samples a frame (frame_rate = sample_rate / hop); segments that overlap (EnCodec's 48 kHz
    # model) code some samples twice, never all of them.
    expected = header.length * header.frame_rate / header.sample_rate
    if not math.floor(expected) - 1 <= header.frames <= 2 * math.ceil(expected) + 2:
        raise FormatError(f"corrupted header: {header.frames} frames do not match {header.length} samples at "
                          f"{header.frame_rate:g} frames/s")
    if header.scales is not None and not 1 <= len(header.scales) <= header.frames:
        raise FormatError(f"corrupted header: {len(header.scales)} segment scales for {header.frames} frames")
    count = header.n_q * header.frames
    if header.fixed_width:
        size = entropy.fixed_width_bytes(count, header.bins)
        if len(payload) != size:
            raise FormatError(f"corrupted payload: {len(payload)} bytes where {count} codes of "
                              f"{entropy.code_width(header.bins)} bits take {size}")
        return
    if len(payload) % 4:
        raise FormatError("corrupted payload: its length is not a whole number of 32-bit words")
    if tables is not None:
        least = entropy.least_coded_bytes(tables[: header.n_q], header.frames)
        if len(payload) < least:
            raise FormatError(f"corrupted payload (cut short or forged): {len(payload)} bytes cannot hold "
                              f"{header.n_q} x {header.frames} codes, which take at least {least} under the model's "
                              f"tables")


def code_tables(model_id: str, directory: str | Path = "default") -> np.ndarray | None:
    """The entropy coder's probability tables `[n_q, bins]` of the model directory (the embedded default by
    default), read without torch; None when its `config.json` names another model than `model_id`, or the
    directory cannot be read (loading the model reports why)."""
    from safetensors import SafetensorError, safe_open

    folder = model_directory(directory)
    try:
        meta = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
        if not isinstance(meta, dict) or meta.get("model_id") != model_id:
            return None
        with safe_open(str(folder / WEIGHTS_FILE), framework="np") as weights:
            frequencies = weights.get_tensor("code_frequencies")
    except (OSError, ValueError, KeyError, SafetensorError):
        return None
    if frequencies.ndim != 2 or not np.isfinite(frequencies).all() or (frequencies < 0).any():
        return None
    return entropy.probability_tables(frequencies)
