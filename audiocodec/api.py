"""The library API: `compress` audio to bytes and `decompress` bytes back to audio.

Both go through `Codec` and the `.ac` format (`format`), so a file written by the command line and bytes
produced here are the same thing.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from .coding import signal
from .format import header as file_header
from .io.audio import as_audio_tensor, check_sample_rate
from .io.loudness import LOUDNESS_RANGE
from .model import Codec

_DEFAULT_MODEL: Codec | None = None


def default_model() -> Codec:
    """The model embedded in the package, loaded once and prepared for inference."""
    global _DEFAULT_MODEL
    if _DEFAULT_MODEL is None:
        _DEFAULT_MODEL = Codec.from_pretrained("default").prepare_for_inference()
    return _DEFAULT_MODEL


def resolve_model(model: Codec | str | os.PathLike | None) -> Codec:
    """The model `compress` and `decompress` use: a `Codec` as given, None or "default" for the embedded model, or
    a model directory, loaded and prepared for inference."""
    if model is None or isinstance(model, Codec):
        return default_model() if model is None else model
    if isinstance(model, (str, os.PathLike)):
        return default_model() if str(model) == "default" else Codec.from_pretrained(model).prepare_for_inference()
    raise TypeError(f"model must be a Codec, a model directory or 'default', got {type(model).__name__}")


def compress(
    wav: torch.Tensor | np.ndarray,
    sample_rate: int,
    model: Codec | str | os.PathLike | None = None,
    bandwidth: float | None = None,
    progress: bool = False,
    loudness_range: tuple[float, float] | None = LOUDNESS_RANGE,
) -> bytes:
    """Compress audio `[C, T]` (or `[T]`) at `sample_rate` into the bytes of a `.ac` file.

    The audio is resampled and remixed to the model's format; the original rate, channel count and length are
    recorded so that `decompress` restores them. `model`: a `Codec`, a model directory, or None (or "default")
    for the embedded model. `bandwidth` (kb/s) must be one of the model's `bandwidths`, and applies to this call
    only; None uses the model's current one (the embedded model's is its highest). Causal models code long audio
    in chunks (the same codes up to float rounding, bounded memory); `progress` shows a progress bar. Audio
    quieter or louder than `loudness_range` is brought into it before coding, and back to its level by
    `decompress` (`level_gain`; None codes the audio at its own level, as `Codec.encode` does).
    """
    model = resolve_model(model)
    sample_rate = check_sample_rate(sample_rate)
    # Passed down rather than set on the model, which may be the embedded one that every call (and thread) shares.
    bandwidth = model.check_bandwidth(bandwidth)
    original = as_audio_tensor(wav)
    return signal.compress_signal(model, original, sample_rate, bandwidth, progress, loudness_range)


def decompress(data: bytes, model: Codec | str | os.PathLike | None = None,
               progress: bool = False) -> tuple[torch.Tensor, int]:
    """Audio `[C, T]` at the original rate, channel count and length, and that rate, from `.ac` bytes; `model` as
    for `compress`."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"decompress takes the bytes of a .ac file (e.g. Path(name).read_bytes()), got "
                        f"{type(data).__name__}")
    model = resolve_model(model)
    header, encoded = file_header.read_encoded(data, model)
    return signal.decode_encoded(model, header, encoded, progress), header.original_rate


