"""Coding a signal held in memory: whole, or in chunks when it is long and the model can run so.

`compress` and `decompress` (the library API) and the file pipeline (`files`) go through here; long audio through
a causal model runs in chunks of `CHUNK_SECONDS` (`chunked`), with the codes of the whole signal up to float
rounding and the memory of one chunk.
"""

from __future__ import annotations

from typing import Iterable, TypeVar

import torch

from ..errors import FormatError
from ..format.bitstream import Header, silence_unit
from ..format.header import check_duration, pack
from ..io.audio import remix, resample, to_model_format
from ..io.loudness import level_gain
from ..model import Codec, EncodedAudio
from . import chunked, silence

T = TypeVar("T")
CHUNK_SECONDS = 10.0  # long audio runs through causal models in chunks this long, with bounded memory


def compress_signal(model: Codec, original: torch.Tensor, sample_rate: int, bandwidth: float, progress: bool,
                    loudness_range: tuple[float, float] | None) -> bytes:
    """The bytes of the `.ac` file for `original` `[C, T]` (float32, checked: `as_audio_tensor`) at
    `sample_rate`, coded by `model` at `bandwidth` (one of its own); `compress` is this on any array."""
    check_duration(original.shape[-1], sample_rate, model)
    audio = to_model_format(original, sample_rate, model.sample_rate, model.channels)
    gain = None
    if loudness_range is not None and not model.config.normalize:
        gain = level_gain(audio, model.sample_rate, loudness_range)
    encoded = encode(model, audio[None] if gain is None else audio[None] * gain, progress, bandwidth)
    silent = silence.find_runs(original, silence_unit(sample_rate, model.frame_rate))
    return pack(model, encoded, bandwidth, sample_rate, original.shape[0], original.shape[1], gain, silent)


def decode_encoded(model: Codec, header: Header, encoded: EncodedAudio, progress: bool) -> torch.Tensor:
    """The audio `[C, T]` of `read_encoded`'s result, at the original rate, channel count and length."""
    try:
        audio = decode(model, encoded, progress)[0]
    except ValueError as error:  # the header's sizes disagree with what the model derives from them
        raise FormatError(f"corrupted file ({error})") from None
    audio = fit_length(to_original_format(audio, header, model.sample_rate), header.original_length)
    return silence.zero_runs(audio, header.silence, silence_unit(header.original_rate, header.frame_rate))


def to_original_format(audio: torch.Tensor, header: Header, model_rate: int) -> torch.Tensor:
    """Decoded `[C, t]` at the model's rate -> the input's level, channel count and rate (not yet its length)."""
    if header.gain is not None:
        audio = audio / header.gain
    return resample(remix(audio, header.original_channels), model_rate, header.original_rate)


def is_long(model: Codec, length: int) -> bool:
    """Audio (`length` samples at the model's rate) long enough to code in pieces: over two chunks."""
    return length > 2 * CHUNK_SECONDS * model.sample_rate


def in_chunks(model: Codec, length: int) -> bool:
    """Long audio, and a model `chunked` can run: causal, without segments or normalisation, and without layers
    that look ahead. Other models code any length whole."""
    return is_long(model, length) and chunked.runs_in_chunks(model)


def encode(model: Codec, audio: torch.Tensor, progress: bool, bandwidth: float) -> EncodedAudio:
    """`model.encode`, in chunks for long audio (`in_chunks`)."""
    with torch.inference_mode():
        if not in_chunks(model, audio.shape[-1]):
            return model.encode(audio.to(device(model)), bandwidth)
        return chunked.encode_in_chunks(model, audio, int(CHUNK_SECONDS * model.sample_rate),
                                        lambda steps: progress_bar(steps, progress, "encoding"), bandwidth)


def decode(model: Codec, encoded: EncodedAudio, progress: bool) -> torch.Tensor:
    """`model.decode` as float32 on the CPU, in chunks for long audio (`in_chunks`)."""
    with torch.inference_mode():
        if not in_chunks(model, encoded.length):
            return model.decode(encoded).float().cpu()
        return chunked.decode_in_chunks(model, encoded, int(CHUNK_SECONDS * model.frame_rate),
                                        lambda steps: progress_bar(steps, progress, "decoding"))


def progress_bar(steps: Iterable[T], enabled: bool, label: str, total: int | None = None) -> Iterable[T]:
    """`steps` (chunks), under a progress display when `enabled`: a bar on a terminal, lines in a log."""
    if not enabled:
        return steps
    from ..io.progress import progress

    return progress(steps, total, label, "chunk")


def fit_length(audio: torch.Tensor, length: int) -> torch.Tensor:
    """`audio` cut or zero-padded to `length` samples."""
    if audio.shape[-1] >= length:
        return audio[..., :length]
    return torch.nn.functional.pad(audio, (0, length - audio.shape[-1]))


def device(model: Codec) -> torch.device:
    """Where `model`'s weights are."""
    return next(model.parameters()).device
