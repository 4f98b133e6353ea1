"""Integrated loudness (ITU-R BS.1770-4, LUFS) in bounded memory, for any level and channel count.

`torchaudio.functional.loudness` would do, but three things rule it out where `compress` needs it: its filters
clamp their output to [-1, 1], so audio beyond full scale reads as quieter than it is (a tone peaking at 30 read
-1.4 LUFS instead of +25.8); it makes full-length temporaries, about 18 times the input's size (1 GB for 10 minutes
at 24 kHz); and it refuses more than 5 channels. Here the K-weighting runs chunk by chunk without clamping, each
chunk warmed up on the samples before it, and only the energy of each 100 ms step is kept. All channels weigh 1
(BS.1770 gives surround channels 1.41; a codec's input channels have no such roles).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..limits import MAX_GAIN, MIN_GAIN

#: Samples K-weighted at a time, and the samples before each chunk that settle the filters (their time
#: constants are under 5 ms) before its first output counts.
CHUNK_SECONDS, WARMUP_SECONDS = 30.0, 0.1
ABSOLUTE_GATE, RELATIVE_GATE = -70.0, -10.0  # LUFS, and LU below the loudness of the blocks above the first gate


#: Loudness range (LUFS, ITU-R BS.1770, `integrated_loudness`) that `compress` brings
#: audio into before coding. A codec learns the levels it was trained at, and the corpus's speech lies at -25 to -15
#: LUFS (10th to 90th percentile): far quieter audio comes back much worse (docs/default-model.md, "Limitations").
#: Audio inside the range is coded as it is.
LOUDNESS_RANGE = (-26.0, -14.0)


def integrated_loudness(audio: torch.Tensor, sample_rate: int) -> float:
    """Loudness of `[C, T]` audio in LUFS; NaN when it is shorter than one 400 ms block or entirely below the
    absolute gate (silence)."""
    meter = LoudnessMeter(sample_rate)
    meter.push(audio)
    return meter.loudness()


class LoudnessMeter:
    """`integrated_loudness` of a signal pushed block by block (`[C, t]`), for files read in pieces.

    Blocks are gathered into the same K-weighting chunks, with the same warm-ups, whatever their sizes, so the
    result is the whole signal's to the last bit. Peak: the largest absolute sample seen.
    """

    def __init__(self, sample_rate: int):
        self.step = max(1, round(0.1 * sample_rate))  # gating blocks are 4 steps long and start every step
        self.chunk = max(1, round(CHUNK_SECONDS * sample_rate / self.step)) * self.step
        self.warmup = round(WARMUP_SECONDS * sample_rate)
        self.filters = _k_weighting(sample_rate)
        self.held: torch.Tensor | None = None  # input from index `self.start` on
        self.start = self.begin = self.length = 0  # `begin`: the next chunk's first sample
        self.energies: list[torch.Tensor] = []
        self.peak = 0.0

    def push(self, audio: torch.Tensor) -> None:
        self.held = audio if self.held is None else torch.cat([self.held, audio], dim=-1)
        self.length += audio.shape[-1]
        if audio.numel():
            self.peak = max(self.peak, float(audio.abs().max()))
        while self.length >= self.begin + self.chunk:
            self._weigh(self.begin + self.chunk)

    def loudness(self) -> float:
        end = self.length // self.step * self.step
        if end > self.begin:
            self._weigh(end)
        energies = torch.cat(self.energies) if self.energies else torch.zeros(0, dtype=torch.float64)
        if len(energies) < 4:
            return math.nan
        blocks = energies.unfold(0, 4, 1).sum(1) / (4 * self.step)
        loudness = -0.691 + 10 * torch.log10(blocks.clamp(min=1e-30))
        kept = blocks[loudness > ABSOLUTE_GATE]
        if not len(kept):
            return math.nan
        relative = -0.691 + 10 * math.log10(float(kept.mean())) + RELATIVE_GATE
        kept = blocks[(loudness > ABSOLUTE_GATE) & (loudness > relative)]
        return -0.691 + 10 * math.log10(float(kept.mean()))

    def ungated_loudness(self) -> float:
        """The K-weighted mean energy of every whole 100 ms step, in LUFS, without BS.1770's gates: a level for
        audio that `loudness` cannot measure (entirely below its -70 LUFS gate, or under 400 ms); NaN for digital
        silence or under 100 ms."""
        end = self.length // self.step * self.step
        if end > self.begin:
            self._weigh(end)
        energy = float(torch.cat(self.energies).sum()) if self.energies else 0.0
        if energy <= 0:
            return math.nan
        return -0.691 + 10 * math.log10(energy / self.begin)  # channels summed, as `loudness` does

    def _weigh(self, end: int) -> None:
        """Energy of each step in [begin, end), K-weighted after warming the filters up on the samples before."""
        import torchaudio.functional as AF

        (b_shelf, a_shelf), (b_high, a_high) = self.filters
        first = max(0, self.begin - self.warmup)
        x = self.held[:, first - self.start : end - self.start].double()
        x = AF.lfilter(x, a_shelf, b_shelf, clamp=False)
        x = AF.lfilter(x, a_high, b_high, clamp=False)[:, self.begin - first :]
        self.energies.append(x.square().sum(0).view(-1, self.step).sum(1))
        self.begin = end
        keep = max(0, end - self.warmup)
        self.held, self.start = self.held[:, keep - self.start :], keep


def _k_weighting(sample_rate: int) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """BS.1770's two K-weighting biquads at `sample_rate`, as torchaudio designs them: a +4 dB high shelf at
    1.5 kHz and a high-pass at 38 Hz (RBJ cookbook forms), each as (b, a) normalised by a0."""
    def normalised(b: list[float], a: list[float]) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.tensor(b, dtype=torch.float64) / a[0], torch.tensor(a, dtype=torch.float64) / a[0]

    w0 = 2 * math.pi * 1500.0 / sample_rate
    gain = 10 ** (4.0 / 40)
    alpha = math.sin(w0) / 2 / (1 / math.sqrt(2))
    cos_w0, root = math.cos(w0), 2 * math.sqrt(gain) * alpha
    shelf = normalised(
        [gain * ((gain + 1) + (gain - 1) * cos_w0 + root), -2 * gain * ((gain - 1) + (gain + 1) * cos_w0),
         gain * ((gain + 1) + (gain - 1) * cos_w0 - root)],
        [(gain + 1) - (gain - 1) * cos_w0 + root, 2 * ((gain - 1) - (gain + 1) * cos_w0),
         (gain + 1) - (gain - 1) * cos_w0 - root],
    )
    w0 = 2 * math.pi * 38.0 / sample_rate
    alpha, cos_w0 = math.sin(w0) / 2 / 0.5, math.cos(w0)
    high = normalised([(1 + cos_w0) / 2, -1 - cos_w0, (1 + cos_w0) / 2], [1 + alpha, -2 * cos_w0, 1 - alpha])
    return shelf, high


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
    gain = float(np.float32(min(max(gain, MIN_GAIN), MAX_GAIN)))
    return None if gain == 1 else gain
