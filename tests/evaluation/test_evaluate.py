import math
from dataclasses import dataclass

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio.functional as AF

from audiocodec.evaluation.dataset import Item
from audiocodec.evaluation.evaluate import Decoded, align, evaluate, is_speech, measure, score


def _tone(seconds: float, rate: int, channels: int = 1) -> torch.Tensor:
    t = torch.arange(int(seconds * rate)) / rate
    wav = 0.3 * torch.sin(2 * math.pi * 440 * t) + 0.1 * torch.sin(2 * math.pi * 1250 * t)
    return wav.expand(channels, -1).clone()


@dataclass
class FakeCodec:
    """Returns the input resampled to `rate`, with `extra` samples appended, as a file of `kbps`."""

    rate: int = 48000
    extra: int = 0
    name: str = "fake"

    def settings(self) -> dict:
        return {}

    def unavailable(self, kbps, channels):
        return "too low for fake" if kbps < 6 else None

    def round_trip(self, wav, sample_rate, kbps):
        out = AF.resample(wav, sample_rate, self.rate)
        out = torch.cat([out, torch.zeros(out.shape[0], self.extra)], dim=-1)
        seconds = wav.shape[-1] / sample_rate
        return Decoded(out, self.rate, int(kbps * 1000 * seconds / 8), int(kbps * 1000 * seconds / 8) - 10)


def test_align_resamples_remixes_and_trims_recording_the_cut():
    reference = _tone(1.0, 16000, channels=2)
    decoded = torch.cat([AF.resample(reference[:1], 16000, 48000), torch.zeros(1, 30)], dim=-1)  # mono, 10 more
    aligned = align(reference, decoded, 48000, 16000)
    assert aligned.reference.shape == aligned.decoded.shape == (2, 16000)
    assert aligned.trimmed == 10
    assert (aligned.decoded - reference).abs().max() < 0.01


def test_score_identical_audio_and_not_applicable_metrics():
    x = _tone(1.0, 16000)
    perfect = score(x, x, 16000, speech=False)
    assert perfect["pesq_wb"] is None and perfect["stoi"] is None  # not speech: n/a, not zero
    assert perfect["si_sdr"] > 60 and perfect["mel_distance"] < 1e-4 and perfect["stft_distance"] < 1e-4
    short = score(x[:, :500], x[:, :500], 16000, speech=True)  # 31 ms: shorter than every STFT window
    assert short["si_sdr"] > 60
    assert [short[m] for m in ("pesq_wb", "stoi", "mel_distance", "stft_distance")] == [None] * 4
    middle = score(x[:, :800], x[:, :800], 16000, speech=False)  # long enough for the mel STFT (1024) only
    assert middle["mel_distance"] == pytest.approx(0, abs=1e-4) and middle["stft_distance"] is None
    silent = torch.zeros(1, 16000)
    assert score(silent, silent + 0.01, 16000, speech=True)["si_sdr"] is None


def test_measure_reports_bitrates_and_refuses_to_compare_what_does_not_line_up():
    x = _tone(2.0, 16000)
    result, aligned = measure(FakeCodec(), x, 16000, 8.0, speech=False)
    assert result.kbps == pytest.approx(8.0, rel=1e-3) and result.payload_kbps == pytest.approx(7.96, rel=1e-3)
    assert result.trimmed_samples == 0 and result.note is None and result.metrics["si_sdr"] > 30
    low, _ = measure(FakeCodec(), x, 16000, 3.0, speech=False)
    assert low.note == "too low for fake" and low.kbps is None and set(low.metrics.values()) == {None}
    late, aligned = measure(FakeCodec(extra=48000), x, 16000, 8.0, speech=False)  # 1 s too long
    assert aligned is None and "differs from the reference by 1.000 s" in late.note
    assert set(late.metrics.values()) == {None} and late.kbps is not None


def test_speech_modes():
    assert is_speech("speech", "auto") and is_speech("unknown", "auto") and not is_speech("music", "auto")
    assert is_speech("music", "all") and not is_speech("speech", "none")


def test_evaluate_skips_unreadable_files_and_keeps_examples(tmp_path):
    sf.write(tmp_path / "tone.wav", _tone(1.0, 16000).T.numpy(), 16000)
    (tmp_path / "broken.wav").write_text("not audio")
    items = [Item(tmp_path / "broken.wav", "broken.wav", "sounds"), Item(tmp_path / "tone.wav", "tone.wav", "music")]
    result = evaluate(items, [FakeCodec()], [3.0, 8.0], examples=1, example_bandwidth=8.0, progress=False)
    assert [f.name for f in result.files] == ["tone.wav"] and not result.files[0].speech
    assert [s.name for s in result.skipped] == ["broken.wav"]
    assert "not a readable audio file" in result.skipped[0].reason
    assert [(r.bandwidth, r.note is None) for r in result.files[0].results] == [(3.0, False), (8.0, True)]
    (example,) = result.examples
    assert example.bandwidth == 8.0 and example.reference.shape == example.decoded["fake"].shape == (16000,)
    assert np.isclose(example.decoded["fake"], example.reference, atol=0.01).all()
