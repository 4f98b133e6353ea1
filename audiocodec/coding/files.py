"""Compressing audio files and decompressing to them in blocks: memory bounded whatever the recording's length.

`api.compress` and `api.decompress` hold whole signals, several times over (the input, the remixed and resampled
signal, the output): 1.1 GB at peak for 10 minutes of 44.1 kHz stereo, so hours of recording needed tens of
gigabytes. Here a long file is read block by block twice, once to measure its loudness and once to code it,
resampled block by block (`io.audio.BlockResampler`) and coded in chunks (`chunked`, causal models) or segment by
segment (`segmented`, models with segments such as EnCodec's 48 kHz one); decoding writes its output as it goes.
Resampling and loudness give the whole signal's numbers to the bit, so the files are `api.compress`'s, up to the
float rounding that coding in chunks allows (segments give them exactly). Short files, and models that can do
neither (a non-causal model without segments), take the whole-signal path.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable, Iterator

import torch

from ..errors import AudioReadError, InvalidArgumentError
from ..format.bitstream import silence_unit
from ..format.header import check_duration, pack, read_encoded
from ..io.audio import AudioSink, AudioSource, BlockResampler, as_audio_tensor, remix, resampling_ratio, write_audio
from ..io.loudness import LOUDNESS_RANGE, LoudnessMeter, metered_gain
from ..model import Codec, EncodedAudio
from ..model.segmented import decoded_segments, encode_segments
from . import signal
from .chunked import decoded_chunks, encode_chunks, encoder_chunk_length
from .signal import compress_signal, decode_encoded, in_chunks, is_long, progress_bar
from .silence import SilenceFinder, zero_runs

#: Seconds of a file read, or of audio resampled and written, at a time.
BLOCK_SECONDS = 10.0


class _Reading:
    """The blocks of a file, noting the largest sample and the silent runs (`silence`) of the last reading (the
    source counts the samples: `frames_read`)."""

    def __init__(self, source: AudioSource, silence_unit: int):
        self.source, self.peak, self.silence = source, 0.0, SilenceFinder(silence_unit)

    def __iter__(self) -> Iterator[torch.Tensor]:
        self.peak = 0.0
        self.silence.reset()
        for block in self.source.blocks(math.ceil(BLOCK_SECONDS * self.source.sample_rate)):
            self.peak = max(self.peak, float(block.abs().max()))
            self.silence.push(block)
            yield block
        if not self.source.frames_read:  # the header promised samples that are not there
            raise AudioReadError(f"{self.source.name}: the file holds no audio samples")


def compress_file(source: AudioSource, model: Codec, progress: bool = False) -> tuple[bytes, float]:
    """The bytes of the `.ac` file for `source` at the model's bandwidth and `LOUDNESS_RANGE`, and the
    input's largest absolute sample (a warning beyond full scale is the caller's)."""
    try:
        check_duration(source.frames, source.sample_rate, model)
    except InvalidArgumentError as error:
        raise AudioReadError(f"{source.name}: {error}") from None
    reading = _Reading(source, silence_unit(source.sample_rate, model.frame_rate))
    from_step, to_step = resampling_ratio(source.sample_rate, model.sample_rate)
    if not in_blocks(model, math.ceil(source.frames * to_step / from_step)):
        wav = torch.cat(list(reading), dim=-1)
        data = compress_signal(model, as_audio_tensor(wav), source.sample_rate, model.check_bandwidth(None), progress,
                               LOUDNESS_RANGE)
        return data, reading.peak
    meter = LoudnessMeter(model.sample_rate)
    for audio in _in_model_format(reading, model):  # first pass: the level
        meter.push(audio)
    gain = None if model.config.normalize else metered_gain(meter, LOUDNESS_RANGE)
    blocks = (audio[None] if gain is None else audio[None] * gain  # second pass: the codes
              for audio in _in_model_format(reading, model))
    with torch.inference_mode():
        if model.segment_length is None:
            step = encoder_chunk_length(model, int(signal.CHUNK_SECONDS * model.sample_rate))
            chunks = progress_bar(_rechunk(blocks, step), progress, "encoding", -(-meter.length // step))
            codes, scales = encode_chunks(model, chunks), None
        else:
            codes, scales = encode_segments(model, blocks, meter.length,
                                            lambda segments: progress_bar(segments, progress, "encoding"))
    encoded = EncodedAudio(codes, scales, meter.length)
    return (pack(model, encoded, model.bandwidth, source.sample_rate, source.channels, source.frames_read, gain,
                 reading.silence.runs()), reading.peak)


def decompress_file(data: bytes, output: str | Path, model: Codec, progress: bool = False) -> int:
    """Decode `.ac` bytes into the audio file `output` (16-bit WAV or FLAC, `io.audio.AudioSink`); the number
    of samples clipped to full scale."""
    header, encoded = read_encoded(data, model)
    if not in_blocks(model, header.length):
        wav = decode_encoded(model, header, encoded, progress)
        return write_audio(output, wav.numpy(), header.original_rate)
    with torch.inference_mode():
        if model.segment_length is None:
            frames = int(signal.CHUNK_SECONDS * model.frame_rate)
            decoded = (part[0] for part in decoded_chunks(
                model, encoded, frames, lambda steps: progress_bar(steps, progress, "decoding")))
        else:
            pieces = decoded_segments(model, encoded)
            decoded = (part[0].float().cpu() for part in progress_bar(
                pieces, progress, "decoding", len(model.segments(encoded.length)) + 1))
        if header.gain is not None:
            decoded = (part / header.gain for part in decoded)
        remixed = (remix(part, header.original_channels) for part in decoded)
        with AudioSink(output, header.original_rate, header.original_channels, header.original_length) as sink:
            written = 0
            unit = silence_unit(header.original_rate, header.frame_rate)
            for audio in _resampled(remixed, model.sample_rate, header.original_rate):
                audio = zero_runs(audio[..., : header.original_length - written], header.silence, unit, written)
                sink.write(audio.numpy())
                written += audio.shape[-1]
            if written < header.original_length:  # resampling rounds the length; the file says the original's
                sink.write(torch.zeros(header.original_channels, header.original_length - written).numpy())
    return sink.clipped


def in_blocks(model: Codec, length: int) -> bool:
    """Whether a file of `length` samples at the model's rate is coded block by block: long audio, and a model
    that codes in chunks (`in_chunks`, as `api.compress` does) or in segments (`segmented`)."""
    return in_chunks(model, length) or (is_long(model, length) and model.segment_length is not None)


def _in_model_format(reading: _Reading, model: Codec) -> Iterator[torch.Tensor]:
    """The file's blocks remixed and resampled to the model's format, read afresh."""
    blocks = (remix(block, model.channels) for block in reading)
    return _resampled(blocks, reading.source.sample_rate, model.sample_rate)


def _resampled(blocks: Iterable[torch.Tensor], from_rate: int, to_rate: int) -> Iterator[torch.Tensor]:
    resampler = BlockResampler(from_rate, to_rate)
    for block in blocks:
        out = resampler.push(block)
        if out is not None and out.shape[-1]:
            yield out
    out = resampler.flush()
    if out is not None and out.shape[-1]:
        yield out


def _rechunk(blocks: Iterable[torch.Tensor], step: int) -> Iterator[torch.Tensor]:
    """The signal of `blocks` (`[..., t]`) in pieces of `step` samples, the last one shorter."""
    held: list[torch.Tensor] = []
    count = 0
    for block in blocks:
        held.append(block)
        count += block.shape[-1]
        if count >= step:
            joined = torch.cat(held, dim=-1)
            whole = count // step * step
            yield from joined[..., :whole].split(step, dim=-1)
            held, count = [joined[..., whole:]], count - whole
    if count:
        yield torch.cat(held, dim=-1)
