"""Digital silence in, exact zeros out.

A codec's decoder never outputs exact zeros: from the codes of silence the default model makes a noise floor near
-75 dBFS (peaks of about 12 LSB in 16 bits), so a recording's silent stretches came back as hiss and files that
were compared bit for bit differed. Here `compress` notes where the input is digitally silent, and `decompress`
writes exact zeros there. The codes are left as they are (the decoder's state runs through the silence as
before), so the note costs only its own bytes in the header, and a file without silence is unchanged.

Units: the input is cut into units of `bitstream.silence_unit` samples at its own rate, about one code frame
long. A unit is silent when every sample of every channel in it is below half of a 16-bit step (`QUIET`): the
16-bit output holds 0 there whatever is decoded. The header stores runs of silent units (`Header.silence`,
docs/format.md), and the decoder zeroes those samples of its output at the original rate, so resampling does not
blur the edges.
"""

from __future__ import annotations

import numpy as np
import torch

#: Samples whose magnitude is below this round to 0 in a 16-bit output (half of one step of 2**-15).
QUIET = 2.0**-16
#: Runs shorter than this many units are not noted: each costs 2 to 4 bytes, and a few milliseconds of the
#: decoder's noise floor (-75 dBFS) between sounds are inaudible.
MIN_RUN_UNITS = 4


class SilenceFinder:
    """The silent runs of a signal pushed block by block (`[C, t]` at the input's rate), for files read in pieces;
    `runs()` gives the same answer whatever the block sizes."""

    def __init__(self, unit: int):
        self.unit = unit
        self.reset()

    def reset(self) -> None:
        self.carry, self.flags = torch.zeros(0, dtype=torch.bool), []

    def push(self, audio: torch.Tensor) -> None:
        quiet = torch.cat([self.carry, (audio.abs() < QUIET).all(0)])
        whole = quiet.shape[0] // self.unit * self.unit
        self.flags.append(quiet[:whole].view(-1, self.unit).all(1).numpy())
        self.carry = quiet[whole:]

    def runs(self) -> list[tuple[int, int]]:
        """(first unit, units) of each run of at least `MIN_RUN_UNITS` silent units; a last partial unit counts
        when its samples are silent."""
        flags = np.concatenate(self.flags + [np.array([bool(self.carry.all())] if len(self.carry) else [])])
        return runs_of(flags.astype(bool))


def runs_of(flags: np.ndarray) -> list[tuple[int, int]]:
    """(start, length) of each run of True in `flags` at least `MIN_RUN_UNITS` long."""
    edges = np.diff(np.concatenate([[0], flags.astype(np.int8), [0]]))
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return [(int(a), int(b - a)) for a, b in zip(starts, stops) if b - a >= MIN_RUN_UNITS]


def find_runs(audio: torch.Tensor, unit: int) -> list[tuple[int, int]]:
    """`SilenceFinder`'s runs of a whole signal `[C, T]`."""
    finder = SilenceFinder(unit)
    finder.push(audio)
    return finder.runs()


def zero_runs(audio: torch.Tensor, runs: list[tuple[int, int]] | None, unit: int, offset: int = 0) -> torch.Tensor:
    """`audio` `[C, t]`, the samples `offset ..` of the decoded signal, with the samples of the silent `runs` set to
    exact zeros (in place when it can be)."""
    if not runs:
        return audio
    if audio.is_inference():  # made under `torch.inference_mode`, which alone may change it in place
        audio = audio.clone()
    length = audio.shape[-1]
    first = np.searchsorted([start + count for start, count in runs], offset // unit, side="right")
    for start, count in runs[first:]:
        begin, end = start * unit - offset, (start + count) * unit - offset
        if begin >= length:
            break
        audio[..., max(begin, 0) : max(min(end, length), 0)] = 0
    return audio
