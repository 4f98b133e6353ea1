"""The evaluation loop: every file through every codec at every bandwidth, scored against the original.

A codec is anything with the `CodecRunner` methods (audiocodec's `.ac` round trip here, Opus in `opus.py`), so
both go through the same alignment and the same metrics. What cannot be measured is None ("n/a"), never zero:
a metric that does not apply (PESQ and STOI off speech, STFTs longer than the file, silence), or a bitrate a
codec does not offer (the result's `note` says why).
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch

from .. import api
from ..errors import AudioReadError
from ..format import bitstream
from ..format.header import read_codes
from ..io.audio import read_audio, remix, resample
from ..model import Codec
from .dataset import UNKNOWN, Item, Skipped
from .listener import DNSMOS_FIELDS, dnsmos, visqol, visqol_mode
from .metrics import MEL_FFT_SIZE, STFT_FFT_SIZES, mel_distance, min_length, pesq_wb, si_sdr, stft_distance, stoi

DNSMOS_METRICS = tuple(f"dnsmos_{name}" for name in DNSMOS_FIELDS)
METRICS = ("pesq_wb", "stoi", "si_sdr", "mel_distance", "stft_distance", "visqol", *DNSMOS_METRICS)
LISTENER_METRICS = ("visqol", "dnsmos")  # the slow ones, which `--skip-metrics` can leave out
SPEECH_MODES = ("auto", "all", "none")
MAX_TRIM_SECONDS = 0.05  # decoded audio whose length differs more than this is reported, not compared
EXAMPLE_SECONDS = 10.0  # audio kept per example file for the spectrogram figures
LISTEN_SECONDS = 30.0  # audio kept per file for the HTML report's players


@dataclass
class Decoded:
    """What a codec made of one file: audio at its own rate, and the sizes its bitrate is computed from."""

    audio: torch.Tensor  # [C, T]
    sample_rate: int
    file_bytes: int  # the whole file as stored (container and headers included)
    payload_bytes: int  # the coded audio alone (without the .ac header, or Ogg pages and Opus headers)


class CodecRunner(Protocol):
    """A codec under evaluation: its name, the settings reports record, and a round trip at a bitrate."""

    name: str

    def settings(self) -> dict: ...

    def unavailable(self, kbps: float, channels: int) -> str | None:
        """Why this codec cannot run at `kbps` for audio of `channels` channels, or None if it can."""

    def round_trip(self, wav: torch.Tensor, sample_rate: int, kbps: float) -> Decoded: ...


@dataclass
class AudiocodecRunner:
    """audiocodec through its real file format: `api.compress` to `.ac` bytes, then `api.decompress`.

    At the model's highest bandwidth it also counts the codes of every level (`code_counts` [n_q, bins]), read
    back from the compressed bytes, for the codebook health report.
    """

    model: Codec
    name: str = "audiocodec"
    code_counts: np.ndarray | None = None
    path: str | None = None  # the model folder, for a model compared with `--against model:DIR`

    def __post_init__(self) -> None:
        self.code_counts = np.zeros((self.model.quantizer.n_q, self.model.quantizer.bins), dtype=np.int64)

    def settings(self) -> dict:
        return {"model": self.model.config.name, "model_id": self.model.model_id(),
                "sample_rate": self.model.sample_rate, "channels": self.model.channels,
                **({"path": self.path} if self.path is not None else {})}

    def unavailable(self, kbps: float, channels: int) -> str | None:
        if kbps in self.model.bandwidths:
            return None
        return f"the model offers {', '.join(f'{b:g}' for b in self.model.bandwidths)} kb/s"

    def round_trip(self, wav: torch.Tensor, sample_rate: int, kbps: float) -> Decoded:
        data = api.compress(wav, sample_rate, model=self.model, bandwidth=kbps)
        if kbps == max(self.model.bandwidths):
            _, codes = read_codes(data, self.model)
            for level, row in enumerate(codes):
                self.code_counts[level] += np.bincount(row, minlength=self.code_counts.shape[1])
        audio, rate = api.decompress(data, model=self.model)
        return Decoded(audio, rate, len(data), len(bitstream.unpack(data)[1]))


@dataclass
class Aligned:
    """Reference and decoded audio on the same rate, channels and length, and how many samples were cut."""

    reference: torch.Tensor
    decoded: torch.Tensor
    trimmed: int  # at the reference's rate, from the end of the longer of the two


@dataclass
class Result:
    """One codec at one nominal bandwidth on one file; every number is None where it does not apply."""

    codec: str
    bandwidth: float  # nominal kb/s asked for
    kbps: float | None = None  # achieved, from the whole file's size
    payload_kbps: float | None = None  # achieved, from the coded audio alone
    file_bytes: int | None = None
    trimmed_samples: int | None = None
    metrics: dict[str, float | None] = field(default_factory=lambda: dict.fromkeys(METRICS))
    note: str | None = None  # why the whole result is n/a


@dataclass
class FileReport:
    """A file's description and its results for every codec and bandwidth."""

    name: str
    category: str
    speech: bool  # whether PESQ, STOI and DNSMOS were run, and ViSQOL in speech mode
    duration: float
    sample_rate: int
    channels: int
    info: dict
    results: list[Result]
    reference_metrics: dict[str, float | None] = field(default_factory=dict)  # DNSMOS of the original


@dataclass
class Example:
    """Mono audio kept from a few files at one bandwidth for the spectrogram figures (None: codec n/a)."""

    name: str
    sample_rate: int
    bandwidth: float
    reference: torch.Tensor
    decoded: dict[str, torch.Tensor | None]


@dataclass
class Listening:
    """A file kept whole (up to LISTEN_SECONDS) for the HTML report's players: its original and every decoding,
    aligned, at the reference's rate and channel count; None where a codec did not run at a bandwidth."""

    name: str
    category: str
    sample_rate: int
    reference: torch.Tensor  # [C, T]
    decoded: dict[tuple[str, float], torch.Tensor | None]


@dataclass
class Evaluation:
    files: list[FileReport]
    skipped: list[Skipped]
    examples: list[Example]
    listening: list[Listening] = field(default_factory=list)


def is_speech(category: str, mode: str) -> bool:
    """Whether PESQ and STOI run: by category ("unknown" counts as speech) unless `mode` is "all" or "none"."""
    if mode not in SPEECH_MODES:
        raise ValueError(f"speech mode must be one of {SPEECH_MODES}, got {mode!r}")
    return mode == "all" or (mode == "auto" and category in ("speech", UNKNOWN))


def align(reference: torch.Tensor, decoded: torch.Tensor, decoded_rate: int, reference_rate: int) -> Aligned:
    """Bring `decoded` [C', T'] to the reference's rate and channel count, and both to their common length."""
    decoded = resample(remix(decoded, reference.shape[0]), decoded_rate, reference_rate)
    length = min(reference.shape[-1], decoded.shape[-1])
    trimmed = max(reference.shape[-1], decoded.shape[-1]) - length
    return Aligned(reference[..., :length], decoded[..., :length], trimmed)


def score(reference: torch.Tensor, decoded: torch.Tensor, sample_rate: int, speech: bool,
          listener: tuple[str, ...] = ()) -> dict[str, float | None]:
    """Every metric for aligned `[C, T]` audio: per-channel metrics averaged; PESQ, STOI, ViSQOL and DNSMOS on the
    mono mix. `listener` names the listener metrics to run ("visqol", "dnsmos"); the others are None."""
    length = reference.shape[-1]
    mono_reference, mono_decoded = reference.mean(0), decoded.mean(0)
    values = {
        "pesq_wb": pesq_wb(mono_reference, mono_decoded, sample_rate) if speech else None,
        "stoi": stoi(mono_reference, mono_decoded, sample_rate) if speech else None,
        # A silent reference has no signal for SI-SDR to measure against.
        "si_sdr": si_sdr(reference, decoded).mean() if reference.abs().max() > 0 else None,
        "mel_distance": (mel_distance(reference, decoded, sample_rate).mean()
                         if length >= min_length(MEL_FFT_SIZE) else None),
        "stft_distance": (stft_distance(reference, decoded).mean()
                          if length >= min_length(max(STFT_FFT_SIZES)) else None),
        "visqol": (visqol(mono_reference, mono_decoded, sample_rate, visqol_mode(speech))
                   if "visqol" in listener else None),
        **listener_reference(decoded, sample_rate, speech, listener),
    }
    return {name: None if value is None or not math.isfinite(float(value)) else float(value)
            for name, value in values.items()}


def listener_reference(audio: torch.Tensor, sample_rate: int, speech: bool,
                       listener: tuple[str, ...] = ()) -> dict[str, float | None]:
    """DNSMOS of `[C, T]` audio on its own (the original's, or a decoding's): None off speech or when not asked."""
    if "dnsmos" not in listener or not speech:
        return dict.fromkeys(DNSMOS_METRICS)
    values = dnsmos(audio.mean(0), sample_rate)
    return {f"dnsmos_{name}": value for name, value in values.items()}


def measure(runner: CodecRunner, reference: torch.Tensor, sample_rate: int, kbps: float,
            speech: bool, listener: tuple[str, ...] = ()) -> tuple[Result, Aligned | None]:
    """One round trip scored, or an n/a result saying why it could not run or could not be compared."""
    reason = runner.unavailable(kbps, reference.shape[0])
    if reason is not None:
        return Result(runner.name, kbps, note=reason), None
    decoded = runner.round_trip(reference, sample_rate, kbps)
    seconds = reference.shape[-1] / sample_rate
    result = Result(runner.name, kbps, kbps=8 * decoded.file_bytes / seconds / 1000,
                    payload_kbps=8 * decoded.payload_bytes / seconds / 1000, file_bytes=decoded.file_bytes)
    aligned = align(reference, decoded.audio, decoded.sample_rate, sample_rate)
    result.trimmed_samples = aligned.trimmed
    if aligned.trimmed > MAX_TRIM_SECONDS * sample_rate:
        result.note = (f"decoded length differs from the reference by {aligned.trimmed / sample_rate:.3f} s; "
                       "not compared")
        return result, None
    result.metrics = score(aligned.reference, aligned.decoded, sample_rate, speech, listener)
    return result, aligned


def evaluate(items: list[Item], runners: list[CodecRunner], bandwidths: list[float], speech_mode: str = "auto",
             examples: int = 0, example_bandwidth: float | None = None, progress: bool = True,
             listener: tuple[str, ...] = (), listen: frozenset[str] = frozenset()) -> Evaluation:
    """Run every item through every runner at every bandwidth; unreadable files are skipped and reported.

    The first `examples` files evaluated keep their mono audio at `example_bandwidth` for spectrograms; the files
    named in `listen` keep their audio at every bandwidth for the HTML report. `listener` names the listener
    metrics to run (`LISTENER_METRICS`); DNSMOS then also scores each original.
    """
    from ..io.progress import progress as progress_display  # a bar on a terminal, lines in a log

    files, skipped, kept, listening = [], [], [], []
    bar = progress_display(items, label="evaluating", unit="file", enabled=progress)
    for item in bar:
        try:
            wav, sample_rate = read_audio(item.path)
        except AudioReadError as error:
            skipped.append(Skipped(item.name, str(error)))
            bar.write(f"skipped {item.name}: {error}", file=sys.stderr)
            continue
        reference = torch.from_numpy(wav)
        speech = is_speech(item.category, speech_mode)
        keep = len(kept) < examples
        example = Example(item.name, sample_rate, example_bandwidth,
                          _clip(reference.mean(0), sample_rate), {}) if keep else None
        heard = (Listening(item.name, item.category, sample_rate,
                           reference[:, : int(LISTEN_SECONDS * sample_rate)].clone(), {})
                 if item.name in listen else None)
        results = []
        for kbps in bandwidths:
            for runner in runners:
                result, aligned = measure(runner, reference, sample_rate, kbps, speech, listener)
                results.append(result)
                if example is not None and kbps == example_bandwidth:
                    example.decoded[runner.name] = (None if aligned is None else
                                                    _clip(aligned.decoded.mean(0), sample_rate))
                if heard is not None:
                    heard.decoded[(runner.name, kbps)] = (
                        None if aligned is None else aligned.decoded[:, : heard.reference.shape[-1]].clone())
        if example is not None:
            kept.append(example)
        if heard is not None:
            listening.append(heard)
        files.append(FileReport(item.name, item.category, speech, reference.shape[-1] / sample_rate, sample_rate,
                                reference.shape[0], item.info, results,
                                listener_reference(reference, sample_rate, speech, listener)))
    return Evaluation(files, skipped, kept, listening)


def _clip(mono: torch.Tensor, sample_rate: int) -> torch.Tensor:
    return mono[: int(EXAMPLE_SECONDS * sample_rate)].clone()
