"""Range coding of codes under per-codebook probability tables, with `constriction`.

A trained model stores how often each code of each level was used (`Codec.code_frequencies`, [n_q, bins]). Codes
are skewed, so coding them under those frequencies takes fewer bits than the fixed `log2(bins)` per code. Every
probability is floored so that any code stays codable, whatever the model saw in training; a model without
tables (all zeros) gets uniform ones, which costs the same as fixed-width packing.

The tables fit audio like the training data. On audio far from it (clipped, very loud, synthetic tones) codes the
model rarely used cost many more bits than `log2(bins)`, so `api.compress` also packs the codes at a fixed width
(`pack_fixed`) and keeps whichever is smaller: a file never costs much more than its nominal bandwidth.
"""

from __future__ import annotations

import constriction
import numpy as np

from ..errors import FormatError

PROBABILITY_FLOOR = 1e-6  # relative to uniform: keeps every symbol codable at a bounded cost


def probability_tables(frequencies: np.ndarray) -> np.ndarray:
    """[n_q, bins] counts -> [n_q, bins] float64 probabilities, uniform where a level has no counts."""
    frequencies = np.asarray(frequencies, dtype=np.float64)
    bins = frequencies.shape[-1]
    totals = frequencies.sum(axis=-1, keepdims=True)
    probabilities = np.where(totals > 0, frequencies / np.maximum(totals, 1e-300), 1.0 / bins)
    probabilities = probabilities + PROBABILITY_FLOOR / bins
    return probabilities / probabilities.sum(axis=-1, keepdims=True)


#: Codes packed or unpacked at a time by `pack_fixed` and `unpack_fixed`: bounds their temporaries (int64 bits,
#: about 100 MB at 10 bits a code) whatever the length, and keeps blocks byte-aligned (a multiple of 8 codes).
_FIXED_BLOCK = 1 << 20


def code_width(bins: int) -> int:
    """Bits per code in fixed-width packing: enough for codes 0 .. bins - 1."""
    return max(1, (bins - 1).bit_length())


def fixed_width_bytes(count: int, bins: int) -> int:
    """Size of `count` codes packed by `pack_fixed`."""
    return (count * code_width(bins) + 7) // 8


def pack_fixed(codes: np.ndarray, bins: int) -> bytes:
    """Codes [n_q, frames] -> each code in `code_width(bins)` bits, least significant bit first, level by level;
    the last byte is padded with zero bits."""
    width, flat = code_width(bins), np.asarray(codes, dtype=np.int64).reshape(-1)
    shifts = np.arange(width, dtype=np.int64)
    parts = [np.packbits(((flat[i : i + _FIXED_BLOCK, None] >> shifts) & 1).astype(np.uint8).reshape(-1),
                         bitorder="little") for i in range(0, len(flat), _FIXED_BLOCK)]
    return b"".join(part.tobytes() for part in parts)


def unpack_fixed(data: bytes, bins: int, n_q: int, frames: int) -> np.ndarray:
    """Inverse of `pack_fixed`; a payload of the wrong size or with padding bits set is a `FormatError`."""
    width, count = code_width(bins), n_q * frames
    if len(data) != fixed_width_bytes(count, bins):
        raise FormatError(f"corrupted payload ({len(data)} bytes for {count} codes of {width} bits)")
    raw, weights = np.frombuffer(data, dtype=np.uint8), np.int64(1) << np.arange(width, dtype=np.int64)
    codes = np.empty(count, dtype=np.int64)
    block_bytes = _FIXED_BLOCK * width // 8
    for index, start in enumerate(range(0, count, _FIXED_BLOCK)):
        size = min(_FIXED_BLOCK, count - start)
        bits = np.unpackbits(raw[index * block_bytes : index * block_bytes + (size * width + 7) // 8],
                             bitorder="little")
        if bits[size * width :].any():
            raise FormatError("corrupted payload (padding bits are set)")
        codes[start : start + size] = bits[: size * width].reshape(size, width) @ weights
    return codes.reshape(n_q, frames)


def _models(probabilities: np.ndarray, n_q: int) -> list:
    return [constriction.stream.model.Categorical(probabilities[k], perfect=False) for k in range(n_q)]


def encode_codes(codes: np.ndarray, probabilities: np.ndarray) -> bytes:
    """Codes [n_q, frames] -> compressed bytes, level by level, each under its own table."""
    encoder = constriction.stream.queue.RangeEncoder()
    for level, model in enumerate(_models(probabilities, codes.shape[0])):
        encoder.encode(np.ascontiguousarray(codes[level], dtype=np.int32), model)
    return encoder.get_compressed().astype("<u4").tobytes()


def least_coded_bytes(probabilities: np.ndarray, frames: int) -> int:
    """A lower bound on the size of `encode_codes` of `frames` codes per level under `probabilities` [n_q, bins]:
    each code costs at least `-log2` of its level's largest probability. Margins cover the coder's fixed-point
    probabilities (24 bits) and its final words, so a real payload is never below it (`checks.check_sizes`)."""
    largest = np.minimum(1.0, np.asarray(probabilities, dtype=np.float64).max(axis=-1) * (1 + 1e-3) + 2.0**-20)
    bits = frames * float(-np.log2(largest).sum())
    return max(0, (int(bits // 8) - 8) // 4 * 4)


def decode_codes(data: bytes, probabilities: np.ndarray, n_q: int, frames: int) -> np.ndarray:
    """Inverse of `encode_codes`; a payload that cannot be decoded is a `FormatError`."""
    if len(data) % 4:
        raise FormatError("corrupted payload (its length is not a whole number of 32-bit words)")
    words = np.frombuffer(data, dtype="<u4").astype(np.uint32)
    try:
        decoder = constriction.stream.queue.RangeDecoder(words)
        codes = np.stack([decoder.decode(model, frames) for model in _models(probabilities, n_q)]) if n_q else None
    except Exception as error:  # constriction reports corrupt input with assorted exception types
        raise FormatError(f"corrupted payload ({error})") from None
    # The decoder reads zeros past the end, so a payload cut short (or empty) still gives codes; only the one
    # payload that encodes them is theirs (the file's checksum already catches accidents: this catches forgeries).
    if n_q and encode_codes(codes, probabilities) != data:
        raise FormatError("corrupted payload (it is not the coding of whole codes)")
    return codes.astype(np.int64)
