"""The library API: `compress` audio to bytes and `decompress` bytes back to audio.

Both go through `Codec` and the `.ac` format (`bitstream`), so a file written by the command line and bytes
produced here are the same thing.
"""

from __future__ import annotations

import math
import os

import numpy as np
import torch

from .format import bitstream, checks, entropy
from .coding import chunked, silence
from .io.audio import check_sample_rate, remix, resample, resampling_ratio, to_model_format
from .pretrained import earlier_default
from .errors import AudioReadError, FormatError, InvalidArgumentError, ModelMismatchError
from .io.loudness import ABSOLUTE_GATE, LoudnessMeter
from .model import Codec, EncodedAudio

_DEFAULT_MODEL: Codec | None = None
CHUNK_SECONDS = 10.0  # long audio runs through causal models in chunks this long, with bounded memory
#: Loudness range (LUFS, ITU-R BS.1770, `loudness.integrated_loudness`) that `compress` brings
#: audio into before coding. A codec learns the levels it was trained at: the corpus's speech lies at -25 to -15
#: LUFS (10th to 90th percentile), and with the 16-filter default the same speech coded 20 dB quieter came back
#: with PESQ-wb 1.25 instead of 1.88 (docs/default-model.md). Audio inside the range is coded as it is.
LOUDNESS_RANGE = (-26.0, -14.0)


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
    limit = bitstream.MAX_CHANNELS
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
    check_duration(original.shape[-1], sample_rate, model)
    audio = to_model_format(original, sample_rate, model.sample_rate, model.channels)
    gain = None
    if loudness_range is not None and not model.config.normalize:
        gain = level_gain(audio, model.sample_rate, loudness_range)
    encoded = _encode(model, audio[None] if gain is None else audio[None] * gain, progress, bandwidth)
    silent = silence.find_runs(original, bitstream.silence_unit(sample_rate, model.frame_rate))
    return pack(model, encoded, bandwidth, sample_rate, original.shape[0], original.shape[1], gain, silent)


def check_duration(length: int, sample_rate: int, model: Codec) -> None:
    """Refuse, before any work, audio longer than a `.ac` file holds (`bitstream.MAX_SECONDS`), or whose codes
    would be (a model whose segments overlap codes some audio twice)."""
    hours = f"{length / sample_rate / 3600:.1f} hours of audio"
    if length > bitstream.MAX_SECONDS * sample_rate:
        raise InvalidArgumentError(f"{hours}, more than the {bitstream.MAX_SECONDS // 3600} a .ac file holds: cut "
                                   f"it into parts")
    original, coded = resampling_ratio(sample_rate, model.sample_rate)
    if model.num_frames(math.ceil(length * coded / original)) > bitstream.max_frames(model.frame_rate):
        raise InvalidArgumentError(f"{hours} make more code frames than a .ac file holds with this model, whose "
                                   f"segments overlap: cut it into parts")


def pack(model: Codec, encoded: EncodedAudio, bandwidth: float, original_rate: int, original_channels: int,
         original_length: int, gain: float | None, silent: list[tuple[int, int]] | None = None) -> bytes:
    """The bytes of a `.ac` file holding `encoded` (one signal, coded at `bandwidth`), entropy-coded with the
    model's tables; `silent`: the input's silent runs (`coding.silence`), decoded as exact zeros."""
    codes = encoded.codes[0].cpu().numpy()
    tables = entropy.probability_tables(model.code_frequencies[: codes.shape[0]].cpu().numpy())
    header = bitstream.Header(
        model_id=model.model_id(), sample_rate=model.sample_rate,
        channels=model.channels, frame_rate=model.frame_rate, bins=model.quantizer.bins, n_q=codes.shape[0],
        frames=codes.shape[1], length=encoded.length, original_rate=original_rate,
        original_channels=original_channels, original_length=original_length, bandwidth=bandwidth,
        scales=None if encoded.scales is None else [float(s) for s in encoded.scales[0]], gain=gain,
        silence=list(silent) if silent else None,
    )
    payload = entropy.encode_codes(codes, tables)
    if entropy.fixed_width_bytes(codes.size, header.bins) < len(payload):  # audio unlike the training data
        payload, header.fixed_width = entropy.pack_fixed(codes, header.bins), True
    return bitstream.pack(header, payload)


def decompress(data: bytes, model: Codec | str | os.PathLike | None = None,
               progress: bool = False) -> tuple[torch.Tensor, int]:
    """Audio `[C, T]` at the original rate, channel count and length, and that rate, from `.ac` bytes; `model` as
    for `compress`."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"decompress takes the bytes of a .ac file (e.g. Path(name).read_bytes()), got "
                        f"{type(data).__name__}")
    model = resolve_model(model)
    header, encoded = read_encoded(data, model)
    return decode_encoded(model, header, encoded, progress), header.original_rate


def decode_encoded(model: Codec, header: bitstream.Header, encoded: EncodedAudio, progress: bool) -> torch.Tensor:
    """The audio `[C, T]` of `read_encoded`'s result, at the original rate, channel count and length."""
    try:
        audio = _decode(model, encoded, progress)[0]
    except ValueError as error:  # the header's sizes disagree with what the model derives from them
        raise FormatError(f"corrupted file ({error})") from None
    audio = _fit_length(to_original_format(audio, header, model.sample_rate), header.original_length)
    return silence.zero_runs(audio, header.silence, bitstream.silence_unit(header.original_rate, header.frame_rate))


def read_encoded(data: bytes, model: Codec) -> tuple[bitstream.Header, EncodedAudio]:
    """The header of `.ac` bytes, and their codes as the model's input, checked against `model`."""
    header, codes = read_codes(data, model)
    device = _device(model)
    scales = None if header.scales is None else torch.tensor([header.scales], dtype=torch.float32, device=device)
    return header, EncodedAudio(torch.from_numpy(codes)[None].to(device), scales, header.length)


def to_original_format(audio: torch.Tensor, header: bitstream.Header, model_rate: int) -> torch.Tensor:
    """Decoded `[C, t]` at the model's rate -> the input's level, channel count and rate (not yet its length)."""
    if header.gain is not None:
        audio = audio / header.gain
    return resample(remix(audio, header.original_channels), model_rate, header.original_rate)


def level_gain(audio: torch.Tensor, sample_rate: int, loudness_range: tuple[float, float]) -> float | None:
    """The factor that brings the loudness of `audio` `[C, T]` into `loudness_range` (LUFS), rounded to float32
    as the file stores it; None when it is inside already, or too short (under 0.4 s) or too quiet to measure."""
    meter = LoudnessMeter(sample_rate)
    meter.push(audio)
    return metered_gain(meter, loudness_range)


def metered_gain(meter: LoudnessMeter, loudness_range: tuple[float, float]) -> float | None:
    """`level_gain` of the signal `meter` has measured. Raising the level stops where the peak reaches full
    scale: the model was trained on audio within it. Audio `meter.loudness` cannot measure is raised only when its
    ungated level is below the absolute gate (-70 LUFS)."""
    low, high = loudness_range
    loudness = meter.loudness()
    if math.isnan(loudness):  # under 0.4 s, or entirely below -70 LUFS
        # Audio that quiet is raised too: coded at its own level it came back at the model's noise floor (about
        # -75 dBFS), up to 15 dB louder than it went in (docs/notes/2026-12-07-ux-first-contact.md).
        loudness = meter.ungated_loudness()
        if not loudness < ABSOLUTE_GATE:
            return None
    if low <= loudness <= high:
        return None
    gain = 10 ** ((min(max(loudness, low), high) - loudness) / 20)
    if gain > 1:
        gain = max(1.0, min(gain, 1 / meter.peak))
    gain = float(np.float32(min(max(gain, bitstream.MIN_GAIN), bitstream.MAX_GAIN)))
    return None if gain == 1 else gain


def read_codes(data: bytes, model: Codec) -> tuple[bitstream.Header, np.ndarray]:
    """The header and the codes `[n_q, frames]` of `.ac` bytes, checked against `model`, without decoding audio."""
    header, payload = bitstream.unpack(bytes(data))
    check_model(header, model)
    checks.check_sizes(header, payload, entropy.probability_tables(model.code_frequencies[: header.n_q].cpu().numpy()))
    if header.fixed_width:
        codes = entropy.unpack_fixed(payload, header.bins, header.n_q, header.frames)
    else:
        tables = entropy.probability_tables(model.code_frequencies[: header.n_q].cpu().numpy())
        codes = entropy.decode_codes(payload, tables, header.n_q, header.frames)
    if codes.max() >= header.bins:
        raise FormatError("corrupted payload (a code is out of range)")
    return header, codes


def check_model(header: bitstream.Header, model: Codec) -> None:
    """Refuse to decode with another model than the one that encoded, naming both; check the layout too."""
    ours = f"{model.config.name} ({model.model_id()})"
    if header.model_id != model.model_id():
        earlier = earlier_default(header.model_id)
        hint = f"; it was {earlier}: pass it with --model" if earlier else ""
        raise ModelMismatchError(f"the file was encoded with model {header.model_description()}, but the model "
                                 f"given is {ours}{hint}")
    if header.n_q > model.quantizer.n_q or header.bins != model.quantizer.bins:
        raise FormatError(f"corrupted header: {header.n_q} codebooks of {header.bins} codes do not fit model {ours}")
    if (header.sample_rate, header.channels) != (model.sample_rate, model.channels):
        raise FormatError(f"corrupted header: {header.channels} channel(s) at {header.sample_rate} Hz do not match "
                          f"model {ours}")
    if not math.isclose(header.frame_rate, model.frame_rate, rel_tol=1e-6):  # stored as float32
        raise FormatError(f"corrupted header: {header.frame_rate:g} frames/s do not match model {ours}")
    # The original length follows from the coded one (resampling gives ceil(length * ratio) samples); checking it
    # bounds what decompressing may allocate.
    original, coded = resampling_ratio(header.original_rate, model.sample_rate)
    if abs(header.original_length - header.length * original / coded) > original / coded + 1:
        raise FormatError("corrupted header: the original length does not match the coded length")
    if header.frames != model.num_frames(header.length) or header.scales is not None and (
        len(header.scales) != len(model.segments(header.length))
    ):
        raise FormatError("corrupted header: the frame or segment count does not match the audio length")


def is_long(model: Codec, length: int) -> bool:
    """Audio (`length` samples at the model's rate) long enough to code in pieces: over two chunks."""
    return length > 2 * CHUNK_SECONDS * model.sample_rate


def in_chunks(model: Codec, length: int) -> bool:
    """Long audio, and a model `chunked` can run: causal, without segments or normalisation, and without layers
    that look ahead. Other models code any length whole."""
    return is_long(model, length) and chunked.runs_in_chunks(model)


def _encode(model: Codec, audio: torch.Tensor, progress: bool, bandwidth: float) -> EncodedAudio:
    """`model.encode`, in chunks for long audio (`in_chunks`)."""
    with torch.inference_mode():
        if not in_chunks(model, audio.shape[-1]):
            return model.encode(audio.to(_device(model)), bandwidth)
        return chunked.encode_in_chunks(model, audio, int(CHUNK_SECONDS * model.sample_rate),
                                        lambda steps: progress_bar(steps, progress, "encoding"), bandwidth)


def _decode(model: Codec, encoded: EncodedAudio, progress: bool) -> torch.Tensor:
    """`model.decode` as float32 on the CPU, in chunks for long audio (`in_chunks`)."""
    with torch.inference_mode():
        if not in_chunks(model, encoded.length):
            return model.decode(encoded).float().cpu()
        return chunked.decode_in_chunks(model, encoded, int(CHUNK_SECONDS * model.frame_rate),
                                        lambda steps: progress_bar(steps, progress, "decoding"))


def progress_bar(steps, enabled: bool, label: str, total: int | None = None):
    """`steps` (chunks), under a progress display when `enabled`: a bar on a terminal, lines in a log."""
    if not enabled:
        return steps
    from .io.progress import progress

    return progress(steps, total, label, "chunk")


def _fit_length(audio: torch.Tensor, length: int) -> torch.Tensor:
    if audio.shape[-1] >= length:
        return audio[..., :length]
    return torch.nn.functional.pad(audio, (0, length - audio.shape[-1]))


def _device(model: Codec) -> torch.device:
    return next(model.parameters()).device
