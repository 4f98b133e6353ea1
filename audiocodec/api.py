"""The library API: `compress` audio to bytes and `decompress` bytes back to audio.

Both go through `Codec` and the `.ac` format (`format`), so a file written by the command line and bytes
produced here are the same thing.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from .coding import signal
from .errors import AudioReadError, InvalidArgumentError
from .format import header as file_header
from .io.audio import check_sample_rate, to_model_format
from .io.loudness import LOUDNESS_RANGE, level_gain
from .limits import MAX_CHANNELS
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


def as_audio_tensor(wav: torch.Tensor | np.ndarray) -> torch.Tensor:
    """`[T]` or `[C, T]` array or tensor -> float32 tensor `[C, T]`; NaN/Inf or empty audio is refused.

    Integer PCM is scaled to [-1, 1) as soundfile reads it (int16 by 2**15, uint8 centred on 128, ...); bool and
    complex arrays are refused. More than 64 rows is refused too: it is almost always `[time, channels]`.
    """
    if not isinstance(wav, torch.Tensor):  # torch takes neither reversed strides nor a foreign byte order
        array = np.asarray(wav)
        wav = torch.as_tensor(np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("=")))
    wav = wav.detach()
    if wav.dim() == 1:
        wav = wav[None]
    if wav.dim() != 2:
        raise InvalidArgumentError(f"audio must be [time] or [channels, time], got shape {tuple(wav.shape)}")
    if wav.shape[-1] == 0 or wav.shape[0] == 0:
        raise AudioReadError("the audio is empty")
    limit = MAX_CHANNELS
    if wav.shape[0] > limit:
        hint = "; it looks like [time, channels]: pass its transpose" if wav.shape[1] <= limit else ""
        raise InvalidArgumentError(f"audio must be [channels, time] with at most {limit} channels, got shape "
                                   f"{tuple(wav.shape)}{hint}")
    wav = _pcm_to_float(wav.cpu())
    # A NaN/Inf makes the sum non-finite; the sum needs no full-size temporary, the exact check runs only if it is.
    if not torch.isfinite(wav.sum()) and not torch.isfinite(wav).all():
        raise AudioReadError("the audio contains NaN or infinite samples")
    return wav


def _pcm_to_float(wav: torch.Tensor) -> torch.Tensor:
    if wav.dtype == torch.bool or wav.is_complex():
        raise InvalidArgumentError(f"audio must hold real samples (float, or integer PCM), got {wav.dtype}")
    if wav.is_floating_point():
        return wav.to(torch.float32)
    if wav.dtype == torch.uint8:  # 8-bit PCM is unsigned, centred on 128
        return (wav.to(torch.float32) - 128) / 128
    if torch.iinfo(wav.dtype).min == 0:
        raise InvalidArgumentError(f"audio must be float or signed integer PCM (or uint8), got {wav.dtype}")
    return wav.to(torch.float64).div(2.0 ** (torch.iinfo(wav.dtype).bits - 1)).to(torch.float32)


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
    file_header.check_duration(original.shape[-1], sample_rate, model)
    audio = to_model_format(original, sample_rate, model.sample_rate, model.channels)
    gain = None
    if loudness_range is not None and not model.config.normalize:
        gain = level_gain(audio, model.sample_rate, loudness_range)
    encoded = signal.encode(model, audio[None] if gain is None else audio[None] * gain, progress, bandwidth)
    return file_header.pack(model, encoded, bandwidth, sample_rate, original.shape[0], original.shape[1], gain)


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


