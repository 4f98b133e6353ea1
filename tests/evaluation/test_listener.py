"""ViSQOL and DNSMOS (audiocodec/evaluation/listener.py): the top of the scale for an identical signal, Opus ranked
by its bitrate, agreement with the reference implementations, and n/a where they cannot measure."""

import math
import shutil
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from audiocodec.cli.common import SAMPLE
from audiocodec.evaluation import listener
from audiocodec.evaluation.evaluate import align, score
from audiocodec.io.audio import read_audio

RATE = 24000
HAS_OPUS = shutil.which("opusenc") is not None and shutil.which("opusdec") is not None
needs_opus = pytest.mark.skipif(not HAS_OPUS, reason="opus-tools not installed: run recipes/install_system_deps.sh")
try:
    listener.check_available(("visqol", "dnsmos"))
    MISSING = ""
except listener.ListenerMetricUnavailable as error:
    MISSING = str(error)
pytestmark = pytest.mark.skipif(bool(MISSING), reason=MISSING)


def _speech(seconds: float = 2.0) -> torch.Tensor:
    """A clip of the bundled recording (7.2 s), from 0.3 s in: DNSMOS repeats a 2 s clip to 16 s and scores 7
    windows of it, a 4.6 s one to 9.2 s and scores one."""
    wav, rate = read_audio(SAMPLE)  # the bundled speech recording, mono, 24 kHz
    assert rate == RATE
    return torch.from_numpy(wav[0, int(0.3 * rate) : int((0.3 + seconds) * rate)].copy())


def _music(seconds: float = 2.0) -> torch.Tensor:
    """Three notes in turn, with a clicking hi-hat-like tone burst: tonal and transient content."""
    t = torch.arange(int(seconds * RATE)) / RATE
    notes = sum(torch.sin(2 * math.pi * f * t) * ((t * 2).floor() % 3 == i) for i, f in enumerate((262, 330, 392)))
    return 0.2 * notes + 0.05 * torch.sin(2 * math.pi * 3000 * t) * (t % 0.25 < 0.05)


def _opus(signal: torch.Tensor, kbps: float) -> torch.Tensor:
    from audiocodec.evaluation.opus import OpusRunner

    decoded = OpusRunner().round_trip(signal[None], RATE, kbps)
    return align(signal[None], decoded.audio, decoded.sample_rate, RATE).decoded[0]


def test_visqol_scores_an_identical_signal_at_the_top_of_its_scale():
    # Audio mode maps perfect similarity to 4.7321 whatever the content: the value C++ ViSQOL v3.3.3 gives its
    # castanets_identity conformance case, which the port's README lists as matched exactly.
    assert listener.visqol(_music(), _music(), RATE, "audio") == pytest.approx(4.7321, abs=1e-3)
    # Speech mode's lattice mapper tops out near 4.5 (speech_CA01, a real degradation, scores 3.31 in the README).
    assert listener.visqol(_speech(), _speech(), RATE, "speech") > 4.4


@needs_opus
@pytest.mark.parametrize("kind", ["speech", "audio"])
def test_visqol_ranks_opus_by_bitrate(kind):
    signal = _speech() if kind == "speech" else _music()
    scores = [listener.visqol(signal, _opus(signal, kbps), RATE, kind) for kbps in (6, 12, 24)]
    # At the top of the scale speech mode's lattice mapper saturates: Opus at 24 kb/s may score a few hundredths
    # above the identical signal (4.475 against 4.470 on this clip).
    assert scores[0] < scores[1] < scores[2] < listener.visqol(signal, signal, RATE, kind) + 0.05, scores


def test_visqol_falls_with_noise_and_is_na_where_it_cannot_measure():
    clean = _music()
    noisy = clean + 0.05 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(0))
    assert listener.visqol(clean, noisy, RATE, "audio") < 3.5
    assert listener.visqol(torch.zeros(2 * RATE), noisy, RATE, "audio") is None  # silent reference
    short = int(0.9 * RATE)
    assert listener.visqol(clean[:short], noisy[:short], RATE, "audio") is None  # under VISQOL_MIN_SECONDS
    with pytest.raises(ValueError, match="mode"):
        listener.visqol(clean, clean, RATE, "music")
    with pytest.raises(ValueError, match="one shape"):
        listener.visqol(clean, clean[:-1], RATE, "audio")


def test_dnsmos_matches_speechmos_and_falls_with_noise(monkeypatch):
    # speechmos's module imports librosa for its P.808 model, which this package does not use; with a stand-in
    # for it, the reference class computes SIG, BAK and OVRL on its own code path, to compare with ours.
    monkeypatch.setitem(sys.modules, "librosa", types.ModuleType("librosa"))
    try:
        import requests  # noqa: F401  (speechmos imports it and never uses it)
    except ImportError:
        stub = types.ModuleType("requests")
        stub.session = None
        monkeypatch.setitem(sys.modules, "requests", stub)
    monkeypatch.delitem(sys.modules, "speechmos.dnsmos", raising=False)
    from speechmos import dnsmos as reference

    class Reference(reference.DNSMOS):
        def audio_melspec(self, audio, **kwargs):  # the P.808 model's input; its output is not compared
            return np.zeros((900, 120), dtype=np.float32)

    folder = Path(reference.__file__).parent / "dnsmos_models"
    model = Reference(str(folder / "sig_bak_ovr.onnx"), str(folder / "model_v8.onnx"))
    speech = _speech(4.6)  # repeated once to fill DNSMOS's 9.01 s window: one window to run
    ours = listener.dnsmos(speech, RATE)
    at_16k = listener.resample(speech.float(), RATE, 16000).clamp(-1, 1).numpy()
    theirs = model(at_16k, 16000, False)
    for name in listener.DNSMOS_FIELDS:
        assert ours[name] == pytest.approx(theirs[f"{name}_mos"], abs=1e-4), name
        assert 1 <= ours[name] <= 5

    noisy = speech + 0.05 * torch.randn(speech.shape, generator=torch.Generator().manual_seed(0))
    degraded = listener.dnsmos(noisy, RATE)
    assert degraded["bak"] < ours["bak"] - 0.5 and degraded["ovrl"] < ours["ovrl"] - 0.3, (ours, degraded)


def test_dnsmos_is_na_for_silence_and_short_clips():
    assert listener.dnsmos(torch.zeros(2 * RATE), RATE) == dict.fromkeys(listener.DNSMOS_FIELDS)
    assert listener.dnsmos(_speech(0.5), RATE) == dict.fromkeys(listener.DNSMOS_FIELDS)
    with pytest.raises(ValueError, match="mono"):
        listener.dnsmos(torch.zeros(2, RATE), RATE)


def test_score_runs_visqol_in_the_mode_of_the_category_and_dnsmos_on_speech_only():
    speech, music = _speech(4.6)[None], _music()[None]
    on_speech = score(speech, speech, RATE, speech=True, listener=("visqol", "dnsmos"))
    on_music = score(music, music, RATE, speech=False, listener=("visqol", "dnsmos"))
    assert 4.4 < on_speech["visqol"] < 4.7 and on_music["visqol"] == pytest.approx(4.7321, abs=1e-3)
    assert on_speech["dnsmos_ovrl"] is not None and on_music["dnsmos_ovrl"] is None
    skipped = score(speech, speech, RATE, speech=True, listener=())
    assert skipped["visqol"] is None and skipped["dnsmos_sig"] is None and skipped["pesq_wb"] is not None
