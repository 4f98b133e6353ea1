"""Compressing audio files and decompressing to them in blocks: memory bounded whatever the recording's length.

`api.compress` and `api.decompress` hold whole signals, several times over (the input, the remixed and resampled
signal, the output): 1.1 GB at peak for 10 minutes of 44.1 kHz stereo, so hours of recording needed tens of
gigabytes. Here, for models that code in chunks (`api.in_chunks`), a file is read block by block twice, once to
measure its loudness and once to code it, resampled block by block (`audio_io.BlockResampler`) and coded in
chunks (`chunked`); decoding writes its output as it goes. Resampling and loudness give the whole signal's
numbers to the bit, so the files are `api.compress`'s, up to the float rounding that coding in chunks allows.
Short files, and models that cannot code in chunks, take the whole-signal path.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable, Iterator

import torch

from . import api
from .audio_io import AudioSink, AudioSource, BlockResampler, remix, resampling_ratio, write_audio
from .chunked import decoded_chunks, encode_chunks, encoder_chunk_length
from .errors import AudioReadError
from .loudness import LoudnessMeter
from .model import Codec, EncodedAudio

#: Seconds of a file read, or of audio resampled and written, at a time.
BLOCK_SECONDS = 10.0


class _Reading:
    """The blocks of a file, counting the samples read and the largest one."""

    def __init__(self, source: AudioSource):
        self.source, self.length, self.peak = source, 0, 0.0

    def __iter__(self) -> Iterator[torch.Tensor]:
        self.length, self.peak = 0, 0.0
        for block in self.source.blocks(math.ceil(BLOCK_SECONDS * self.source.sample_rate)):
            self.length += block.shape[-1]
            self.peak = max(self.peak, float(block.abs().max()))
            yield block
        if not self.length:  # the header promised samples that are not there
            raise AudioReadError(f"{self.source.name}: the file holds no audio samples")


def compress_file(source: AudioSource, model: Codec, progress: bool = False) -> tuple[bytes, float]:
    """The bytes of the `.ac` file for `source` at the model's bandwidth and `api.LOUDNESS_RANGE`, and the
    input's largest absolute sample (a warning beyond full scale is the caller's)."""
    reading = _Reading(source)
    from_step, to_step = resampling_ratio(source.sample_rate, model.sample_rate)
    if not api.in_chunks(model, math.ceil(source.frames * to_step / from_step)):  # api.compress's own choice
        wav = torch.cat(list(reading), dim=-1)
        return api.compress(wav, source.sample_rate, model=model, progress=progress), reading.peak
    meter = LoudnessMeter(model.sample_rate)
    for audio in _in_model_format(reading, model):  # first pass: the level
        meter.push(audio)
    gain = None if model.config.normalize else api.metered_gain(meter, api.LOUDNESS_RANGE)
    step = encoder_chunk_length(model, int(api.CHUNK_SECONDS * model.sample_rate))
    chunks = (chunk[None] if gain is None else chunk[None] * gain  # second pass: the codes
              for chunk in _rechunk(_in_model_format(reading, model), step))
    with torch.inference_mode():
        codes = encode_chunks(model, api.progress_bar(chunks, progress, "encoding", -(-meter.length // step)))
    encoded = EncodedAudio(codes, None, meter.length)
    return api.pack(model, encoded, source.sample_rate, source.channels, reading.length, gain), reading.peak


def decompress_file(data: bytes, output: str | Path, model: Codec, progress: bool = False) -> int:
    """Decode `.ac` bytes into the audio file `output` (16-bit WAV or FLAC, `audio_io.AudioSink`); the number
    of samples clipped to full scale."""
    header, encoded = api.read_encoded(data, model)
    if not api.in_chunks(model, header.length):
        wav = api.decode_encoded(model, header, encoded, progress)
        return write_audio(output, wav.numpy(), header.original_rate)
    frames = int(api.CHUNK_SECONDS * model.frame_rate)
    with torch.inference_mode():
        decoded = (part[0] for part in decoded_chunks(model, encoded, frames,
                                                      lambda steps: api.progress_bar(steps, progress, "decoding")))
        if header.gain is not None:
            decoded = (part / header.gain for part in decoded)
        remixed = (remix(part, header.original_channels) for part in decoded)
        with AudioSink(output, header.original_rate, header.original_channels, header.original_length) as sink:
            written = 0
            for audio in _resampled(remixed, model.sample_rate, header.original_rate):
                audio = audio[..., : header.original_length - written]
                sink.write(audio.numpy())
                written += audio.shape[-1]
            if written < header.original_length:  # resampling rounds the length; the file says the original's
                sink.write(torch.zeros(header.original_channels, header.original_length - written).numpy())
    return sink.clipped


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
    """The signal of `blocks` (`[C, t]`) in pieces of `step` samples, the last one shorter."""
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
