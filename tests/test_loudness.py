"""BS.1770 integrated loudness: torchaudio's value where torchaudio is right, and right where it is not."""

import math

import pytest
import torch

from audiocodec.io.loudness import integrated_loudness


@pytest.mark.parametrize("rate,channels", [(8000, 1), (24000, 2), (44100, 1)])
def test_loudness_equals_torchaudios_within_full_scale(rate, channels):
    import torchaudio.functional as AF

    rng = torch.Generator().manual_seed(rate)
    audio = 0.05 * torch.randn(channels, 3 * rate, generator=rng) * torch.linspace(0.1, 1, 3 * rate)
    assert integrated_loudness(audio, rate) == pytest.approx(float(AF.loudness(audio, rate)), abs=1e-3)


def test_loudness_scales_with_level_beyond_full_scale_and_across_chunks(monkeypatch):
    import audiocodec.io.loudness as loudness

    t = torch.arange(3 * 24000) / 24000
    tone = torch.sin(2 * torch.pi * 440 * t)[None] * torch.linspace(0.2, 1, 3 * 24000)
    reference = integrated_loudness(tone, 24000)
    assert integrated_loudness(30 * tone, 24000) == pytest.approx(reference + 20 * math.log10(30), abs=1e-6)
    monkeypatch.setattr(loudness, "CHUNK_SECONDS", 0.7)  # five chunks, each warmed up on the one before
    assert integrated_loudness(tone, 24000) == pytest.approx(reference, abs=1e-3)


def test_silence_and_short_audio_have_no_loudness_and_any_channel_count_works():
    assert math.isnan(integrated_loudness(torch.zeros(1, 24000), 24000))
    assert math.isnan(integrated_loudness(0.1 * torch.randn(1, 9000), 24000))  # under one 400 ms block
    six = integrated_loudness(0.1 * torch.randn(6, 24000), 24000)
    assert six == pytest.approx(integrated_loudness(0.1 * torch.randn(1, 24000), 24000) + 10 * math.log10(6), abs=0.3)
