"""Range coding of codes under per-codebook probability tables, with `constriction`.

A trained model stores how often each code of each level was used (`Codec.code_frequencies`, [n_q, bins]). Codes
are skewed, so coding them under those frequencies takes fewer bits than the fixed `log2(bins)` per code. Every
probability is floored so that any code stays codable, whatever the model saw in training; a model without
tables (all zeros) gets uniform ones, which costs the same as fixed-width packing.
"""

from __future__ import annotations

import constriction
import numpy as np

from .errors import FormatError

PROBABILITY_FLOOR = 1e-6  # relative to uniform: keeps every symbol codable at a bounded cost


def probability_tables(frequencies: np.ndarray) -> np.ndarray:
    """[n_q, bins] counts -> [n_q, bins] float64 probabilities, uniform where a level has no counts."""
    frequencies = np.asarray(frequencies, dtype=np.float64)
    bins = frequencies.shape[-1]
    totals = frequencies.sum(axis=-1, keepdims=True)
    probabilities = np.where(totals > 0, frequencies / np.maximum(totals, 1e-300), 1.0 / bins)
    probabilities = probabilities + PROBABILITY_FLOOR / bins
    return probabilities / probabilities.sum(axis=-1, keepdims=True)


def _models(probabilities: np.ndarray, n_q: int) -> list:
    return [constriction.stream.model.Categorical(probabilities[k], perfect=False) for k in range(n_q)]


def encode_codes(codes: np.ndarray, probabilities: np.ndarray) -> bytes:
    """Codes [n_q, frames] -> compressed bytes, level by level, each under its own table."""
    encoder = constriction.stream.queue.RangeEncoder()
    for level, model in enumerate(_models(probabilities, codes.shape[0])):
        encoder.encode(np.ascontiguousarray(codes[level], dtype=np.int32), model)
    return encoder.get_compressed().astype("<u4").tobytes()


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
    return codes.astype(np.int64)
