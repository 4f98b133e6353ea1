"""The `.ac` compressed file format (specification: docs/format.md).

    magic "ACDC" | version u16 | header length u32 | header (UTF-8 JSON) | payload length u32 | payload | CRC32 u32

All integers little-endian; the CRC covers every byte before it. The header says which model encoded the file
and everything needed to rebuild the audio; the payload is the range-coded codes. Nothing is pickled, and every
size is checked against the bytes actually present and against sane bounds before anything is allocated, so a
truncated, corrupted or hostile file fails with a one-line `FormatError`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import struct
import zlib
from typing import Any

from .errors import FormatError

MAGIC = b"ACDC"
VERSION = 1
_PREFIX = struct.Struct("<4sHI")
_U32 = struct.Struct("<I")
MAX_HEADER_BYTES = 1 << 20
MAX_SECONDS = 24 * 3600  # longest audio a file may claim: bounds every allocation made while decoding
MAX_SAMPLE_RATE = 384_000
MAX_CHANNELS = 64
MAX_CODEBOOKS = 256
MAX_BINS = 1 << 16


@dataclasses.dataclass
class Header:
    """What a compressed file says about itself.

    model_name, model_id: the encoding model's identity (`Codec.model_id()`), checked before decoding.
    sample_rate, channels, frame_rate, bins, n_q: the model's audio format and the codes' layout.
    frames: code frames per level; length: samples per channel at the model's rate.
    original_rate, original_channels, original_length: the input's format, restored on decompression.
    scales: one volume per segment for models that normalise, else None.
    bandwidth: the nominal kb/s the codes were made at.
    """

    model_name: str
    model_id: str
    sample_rate: int
    channels: int
    frame_rate: float
    bins: int
    n_q: int
    frames: int
    length: int
    original_rate: int
    original_channels: int
    original_length: int
    bandwidth: float
    scales: list[float] | None = None

    def validate(self) -> None:
        """Raise `FormatError` unless every field has the right type and a plausible value."""
        integers = {
            "sample_rate": (1, MAX_SAMPLE_RATE), "channels": (1, MAX_CHANNELS), "bins": (2, MAX_BINS),
            "n_q": (1, MAX_CODEBOOKS), "original_rate": (1, MAX_SAMPLE_RATE),
            "original_channels": (1, MAX_CHANNELS),
        }
        for name, (low, high) in integers.items():
            _check_int(name, getattr(self, name), low, high)
        _check_int("length", self.length, 1, MAX_SECONDS * self.sample_rate)
        _check_int("original_length", self.original_length, 1, MAX_SECONDS * self.original_rate)
        for name in ("frame_rate", "bandwidth"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1e6:
                raise FormatError(f"corrupted header: {name} is {value!r}")
        _check_int("frames", self.frames, 1, math.ceil(MAX_SECONDS * self.frame_rate) + 1)
        if not isinstance(self.model_name, str) or not isinstance(self.model_id, str):
            raise FormatError("corrupted header: model identity is not text")
        if self.scales is not None:
            if not isinstance(self.scales, list) or len(self.scales) > MAX_SECONDS * 100 or not all(
                isinstance(s, (int, float)) and not isinstance(s, bool) and math.isfinite(s) and s > 0
                for s in self.scales
            ):
                raise FormatError("corrupted header: segment scales are not a list of positive numbers")


def _check_int(name: str, value: Any, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise FormatError(f"corrupted header: {name} is {value!r}, expected an integer in [{low}, {high}]")


def pack(header: Header, payload: bytes) -> bytes:
    """The bytes of a compressed file."""
    header.validate()
    header_bytes = json.dumps(dataclasses.asdict(header), separators=(",", ":")).encode("utf-8")
    body = _PREFIX.pack(MAGIC, VERSION, len(header_bytes)) + header_bytes + _U32.pack(len(payload)) + payload
    return body + _U32.pack(zlib.crc32(body))


def unpack(data: bytes) -> tuple[Header, bytes]:
    """Parse and check a compressed file; any problem is a one-line `FormatError`."""
    if not data:
        raise FormatError("empty file, not an audiocodec file")
    if not data.startswith(MAGIC):
        if MAGIC.startswith(data):
            raise FormatError("truncated file (the header is incomplete)")
        raise FormatError("not an audiocodec file (unknown magic bytes)")
    if len(data) < _PREFIX.size:
        raise FormatError("truncated file (the header is incomplete)")
    _, version, header_length = _PREFIX.unpack_from(data)
    if version != VERSION:
        raise FormatError(f"unsupported format version {version} (this audiocodec reads version {VERSION})")
    if header_length > MAX_HEADER_BYTES:
        raise FormatError(f"corrupted file (header length {header_length} bytes)")
    payload_at = _PREFIX.size + header_length + _U32.size
    if len(data) < payload_at + _U32.size:
        raise FormatError("truncated file (the header is incomplete)")
    (payload_length,) = _U32.unpack_from(data, payload_at - _U32.size)
    end = payload_at + payload_length
    if len(data) < end + _U32.size:
        raise FormatError(f"truncated file ({len(data)} bytes, the header announces {end + _U32.size})")
    if len(data) > end + _U32.size:
        raise FormatError(f"corrupted file ({len(data) - end - _U32.size} unexpected bytes after the end)")
    (crc,) = _U32.unpack_from(data, end)
    if zlib.crc32(data[:end]) != crc:
        raise FormatError("corrupted file (CRC mismatch)")
    try:
        fields = json.loads(data[_PREFIX.size : _PREFIX.size + header_length].decode("utf-8"))
        header = Header(**fields)
    except (UnicodeDecodeError, json.JSONDecodeError, TypeError) as error:
        raise FormatError(f"corrupted header ({type(error).__name__})") from None
    header.validate()
    return header, data[payload_at:end]
