"""The `.ac` compressed file format (specification: docs/format.md).

Version 2, written by this version of audiocodec:

    magic "ACDC" | version u16 | model id (8 bytes) | flags u8 | varints | 2 x f32 | [scales] | [gain f32]
    | payload | CRC32 u32

Version 1 (read, no longer written) had a JSON header of about 280 bytes: on the one-second clips that voice
prompts and notifications are, that header alone cost more than 2 kb/s, more than the codes at 1.5 kb/s. The
binary header of version 2, with the framing and the CRC, takes about 45 bytes.

All integers are little-endian; varints are unsigned LEB128. The CRC covers every byte before it. Nothing is
pickled, and every size is checked against the bytes actually present and against sane bounds before anything is
allocated, so a truncated, corrupted or hostile file fails with a one-line `FormatError`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import struct
import zlib
from typing import Any, Callable

from ..errors import FormatError
from ..limits import MAX_BINS, MAX_CHANNELS, MAX_CODEBOOKS, MAX_GAIN, MAX_SAMPLE_RATE, MAX_SECONDS, MIN_GAIN

MAGIC = b"ACDC"
VERSION = 2
READABLE_VERSIONS = (1, 2)
_PREFIX = struct.Struct("<4sH")
_U32 = struct.Struct("<I")
_F32 = struct.Struct("<f")
_MODEL_ID = re.compile(r"[0-9a-f]{16}")
_MAX_VARINT_BYTES = 10
MAX_HEADER_BYTES = 1 << 20
#: Segment volumes (RMS, floored at 1e-8 by the model) must lie here: float32 keeps them exact enough, and decoded
#: audio multiplied by them stays finite.
MIN_SCALE, MAX_SCALE = 1e-30, 1e30
#: The integer fields of a version-2 header, in file order (then frame_rate and bandwidth as f32).
_V2_INTEGERS = ("sample_rate", "channels", "bins", "n_q", "frames", "length", "original_rate", "original_channels",
                "original_length")
_HAS_SCALES = 1
_FIXED_WIDTH = 2
_HAS_GAIN = 4
_HAS_SILENCE = 8


def silence_unit(original_rate: int, frame_rate: float) -> int:
    """Samples per unit of `Header.silence` at the input's rate: one code frame, rounded (from the frame rate as
    the header stores it, float32, so that writer and reader agree)."""
    return max(1, round(original_rate / _F32.unpack(_F32.pack(frame_rate))[0]))


def max_frames(frame_rate: float) -> int:
    """Most code frames per codebook a file may claim: MAX_SECONDS of them. Overlapping segments (EnCodec's 48 kHz
    model) code some audio twice, so their models reach it a little before MAX_SECONDS of audio."""
    return math.ceil(MAX_SECONDS * frame_rate) + 1


@dataclasses.dataclass
class Header:
    """What a compressed file says about itself.

    model_id: the encoding model's identity (`Codec.model_id()`, 16 hex digits), checked before decoding.
    sample_rate, channels, frame_rate, bins, n_q: the model's audio format and the codes' layout.
    frames: code frames per level; length: samples per channel at the model's rate.
    original_rate, original_channels, original_length: the input's format, restored on decompression.
    bandwidth: the nominal kb/s the codes were made at.
    scales: one volume per segment for models that normalise, else None.
    fixed_width: the payload packs each code in a fixed number of bits (`entropy.pack_fixed`) instead of
        range-coding it, because that was smaller; version-2 files only.
    gain: the factor the audio was multiplied by before coding, to bring its loudness within the range the
        model was trained on (`io.loudness.level_gain`); decoding divides by it. None: the audio was coded as it was.
    model_name: the model's `config.name`, in version-1 files only (None otherwise).
    silence: where the input was digitally silent, as (first unit, units) runs in units of `silence_unit`
        samples at the original rate, in order and apart; decoding writes exact zeros there
        (`coding.silence`). None: no run was noted (version-1 files never have one).
    """

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
    fixed_width: bool = False
    gain: float | None = None
    model_name: str | None = None
    silence: list[tuple[int, int]] | None = None

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
            if not _number_in(value, 1e-3, 1e6):
                raise FormatError(f"corrupted header: {name} is {value!r}")
        _check_int("frames", self.frames, 1, max_frames(self.frame_rate))
        if not isinstance(self.model_id, str) or not _MODEL_ID.fullmatch(self.model_id):
            raise FormatError(f"corrupted header: model id {self.model_id!r} is not 16 hexadecimal digits")
        if self.gain is not None and not _number_in(self.gain, MIN_GAIN, MAX_GAIN):
            raise FormatError(f"corrupted header: the level gain is {self.gain!r}, expected a number in "
                              f"[{MIN_GAIN:g}, {MAX_GAIN:g}]")
        if not isinstance(self.fixed_width, bool):
            raise FormatError("corrupted header: the payload's coding is not a flag")
        if self.model_name is not None and not isinstance(self.model_name, str):
            raise FormatError("corrupted header: the model name is not text")
        if self.silence is not None:
            self._validate_silence()
        if self.scales is not None:
            if not isinstance(self.scales, list) or len(self.scales) > MAX_SECONDS * 100 or not all(
                _number_in(s, MIN_SCALE, MAX_SCALE) for s in self.scales
            ):
                raise FormatError(f"corrupted header: segment scales are not a list of numbers in "
                                  f"[{MIN_SCALE:g}, {MAX_SCALE:g}]")

    def _validate_silence(self) -> None:
        units = -(-self.original_length // silence_unit(self.original_rate, self.frame_rate))
        end = -1
        if not isinstance(self.silence, list) or not self.silence:
            raise FormatError("corrupted header: the silent runs are not a non-empty list")
        for run in self.silence:
            if not (isinstance(run, (tuple, list)) and len(run) == 2 and all(
                    isinstance(v, int) and not isinstance(v, bool) for v in run)):
                raise FormatError("corrupted header: a silent run is not two integers")
            start, count = run
            if start <= end or count < 1 or start + count > units:
                raise FormatError(f"corrupted header: silent run {start}+{count} is out of order or beyond the "
                                  f"{units} units of the audio")
            end = start + count

    def model_description(self) -> str:
        """The encoding model as messages name it: its id, after its name when the file records one (version 1)."""
        return self.model_id if self.model_name is None else f"{self.model_name} ({self.model_id})"


def _number_in(value: Any, low: float, high: float) -> bool:
    """A real number (not a bool) in [low, high]; float32 keeps such numbers finite and non-zero."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return low <= float(value) <= high
    except OverflowError:  # an integer too large for a float
        return False


def _check_int(name: str, value: Any, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise FormatError(f"corrupted header: {name} is {value!r}, expected an integer in [{low}, {high}]")


def pack(header: Header, payload: bytes) -> bytes:
    """The bytes of a compressed file, in the current version (2)."""
    header.validate()
    body = bytearray(_PREFIX.pack(MAGIC, VERSION))
    body += bytes.fromhex(header.model_id)
    body.append((_HAS_SCALES if header.scales is not None else 0) | (_FIXED_WIDTH if header.fixed_width else 0)
                | (_HAS_GAIN if header.gain is not None else 0) | (_HAS_SILENCE if header.silence is not None else 0))
    for name in _V2_INTEGERS:
        body += _varint(getattr(header, name))
    body += _F32.pack(header.frame_rate) + _F32.pack(header.bandwidth)
    if header.scales is not None:
        body += _varint(len(header.scales)) + b"".join(_F32.pack(scale) for scale in header.scales)
    if header.gain is not None:
        body += _F32.pack(header.gain)
    if header.silence is not None:  # (gap since the last run's end, length) pairs
        body += _varint(len(header.silence))
        end = 0
        for start, count in header.silence:
            body += _varint(start - end) + _varint(count)
            end = start + count
    body += _varint(len(payload)) + payload
    return bytes(body) + _U32.pack(zlib.crc32(body))


def unpack(data: bytes) -> tuple[Header, bytes]:
    """Parse and check a compressed file of any readable version; any problem is a one-line `FormatError`."""
    if not data:
        raise FormatError("empty file, not an audiocodec file")
    if not data.startswith(MAGIC):
        if MAGIC.startswith(data):
            raise FormatError("truncated file (the header is incomplete)")
        raise FormatError("not an audiocodec file (unknown magic bytes)")
    reader = _Reader(data, len(MAGIC))
    version = reader.u16()
    if version not in READABLE_VERSIONS:
        raise FormatError(f"unsupported format version {version} (this audiocodec reads versions "
                          f"{', '.join(map(str, READABLE_VERSIONS))})")
    if version == 1:
        read_header, payload_length = _read_v1_header(reader), reader.u32()
    else:
        read_header, payload_length = _read_v2_header(reader), reader.varint()
    end = reader.position + payload_length
    if len(data) < end + _U32.size:
        raise FormatError(f"truncated file ({len(data)} bytes, the header announces {end + _U32.size})")
    if len(data) > end + _U32.size:
        raise FormatError(f"corrupted file ({len(data) - end - _U32.size} unexpected bytes after the end)")
    (crc,) = _U32.unpack_from(data, end)
    if zlib.crc32(data[:end]) != crc:
        raise FormatError("corrupted file (CRC mismatch)")
    header = read_header()
    header.validate()
    return header, data[reader.position : end]


class _Reader:
    """Reads a header field by field; running out of bytes means the file is truncated."""

    def __init__(self, data: bytes, position: int):
        self.data, self.position = data, position

    def take(self, size: int) -> bytes:
        if self.position + size > len(self.data):
            raise FormatError("truncated file (the header is incomplete)")
        self.position += size
        return self.data[self.position - size : self.position]

    def u16(self) -> int:
        return int.from_bytes(self.take(2), "little")

    def u32(self) -> int:
        return int.from_bytes(self.take(4), "little")

    def f32(self) -> float:
        return _F32.unpack(self.take(4))[0]

    def varint(self) -> int:
        """An unsigned LEB128 number in its shortest form (so that every file has exactly one encoding)."""
        value = 0
        for shift in range(0, 7 * _MAX_VARINT_BYTES, 7):
            byte = self.take(1)[0]
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                if byte == 0 and shift:
                    raise FormatError("corrupted header (a number is not in its shortest form)")
                return value
        raise FormatError("corrupted header (a number is more than 10 bytes long)")


def _read_v1_header(reader: _Reader) -> Callable[[], Header]:
    """Version 1: u32 length, then that much JSON, parsed only once the CRC has been checked (returned callable)."""
    length = reader.u32()
    if length > MAX_HEADER_BYTES:
        raise FormatError(f"corrupted file (header length {length} bytes)")
    raw = reader.take(length)

    def parse() -> Header:
        try:
            fields = json.loads(raw.decode("utf-8"))
            if isinstance(fields, dict) and fields.keys() & {"fixed_width", "gain", "silence"}:
                raise FormatError("corrupted header (a version-1 file with version-2 fields)")
            return Header(**fields)
        except (UnicodeDecodeError, ValueError, TypeError, RecursionError) as error:  # ValueError: JSON, long ints
            raise FormatError(f"corrupted header ({type(error).__name__})") from None

    return parse


def _read_v2_header(reader: _Reader) -> Callable[[], Header]:
    """Version 2: the binary fields (checked by `Header.validate` once the CRC has been; returned callable)."""
    model_id, flags = reader.take(8).hex(), reader.take(1)[0]
    if flags & ~(_HAS_SCALES | _FIXED_WIDTH | _HAS_GAIN | _HAS_SILENCE):
        raise FormatError(f"corrupted header (unknown flags {flags:#x}: written by a newer audiocodec, or damaged)")
    integers = {name: reader.varint() for name in _V2_INTEGERS}
    frame_rate, bandwidth = reader.f32(), reader.f32()
    scales = None
    if flags & _HAS_SCALES:
        count = reader.varint()
        if count > MAX_SECONDS * 100:
            raise FormatError(f"corrupted header ({count} segment scales)")
        scales = list(struct.unpack(f"<{count}f", reader.take(4 * count)))
    gain = reader.f32() if flags & _HAS_GAIN else None
    silence = None
    if flags & _HAS_SILENCE:
        count, silence, end = reader.varint(), [], 0
        if 2 * count > len(reader.data) - reader.position:  # two bytes a run at least
            raise FormatError(f"corrupted header ({count} silent runs)")
        for _ in range(count):
            start = end + reader.varint()
            end = start + reader.varint()
            silence.append((start, end - start))
    header = Header(model_id=model_id, frame_rate=frame_rate, bandwidth=bandwidth, scales=scales,
                    fixed_width=bool(flags & _FIXED_WIDTH), gain=gain, silence=silence, **integers)
    return lambda: header


def _varint(value: int) -> bytes:
    """Unsigned LEB128: 7 bits per byte, low bits first, the high bit set on every byte but the last."""
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)
