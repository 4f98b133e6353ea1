import json
import math
import shutil

import numpy as np
import pytest
import soundfile as sf

from audiocodec import api, cli, pretrained
from tiny_models import tiny_codec

RATE = 16000
HAS_OPUS = shutil.which("opusenc") is not None and shutil.which("opusdec") is not None


def _voice(seconds: float = 1.0) -> np.ndarray:
    """A speech-like signal: a harmonic voice at a syllable-like 4 Hz envelope."""
    t = np.arange(int(seconds * RATE)) / RATE
    voice = sum(np.sin(2 * math.pi * 150 * k * t) / k for k in range(1, 12))
    return (0.2 * voice * (0.55 + 0.45 * np.sin(2 * math.pi * 4 * t))).astype(np.float32)


def _chord(seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.2 * np.sin(2 * math.pi * 440 * t) + 0.1 * np.sin(2 * math.pi * 660 * t)).astype(np.float32)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return str(tiny_codec(lstm=0).save_pretrained(tmp_path_factory.mktemp("model")))


@pytest.fixture
def corpus(tmp_path):
    data = tmp_path / "corpus"
    (data / "speech").mkdir(parents=True)
    (data / "music").mkdir()
    sf.write(data / "speech" / "voice.wav", _voice(), RATE)
    sf.write(data / "music" / "chord.flac", _chord(), RATE)
    lines = [{"path": "speech/voice.wav", "category": "speech", "source": "synth"},
             {"path": "music/chord.flac", "category": "music", "source": "synth"}]
    (data / "test.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return data


@pytest.mark.skipif(not HAS_OPUS, reason="opus-tools not installed: run recipes/install_system_deps.sh")
def test_eval_against_opus_writes_every_output(model_dir, corpus, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["eval", "--model", model_dir, "--data", str(corpus), "--against", "opus", "--out", str(out),
            "--skip-metrics", "visqol", "dnsmos", "--no-html"]  # (test_listener.py and test_html.py test them)
    assert cli.main(argv) == 0
    stdout = capsys.readouterr().out
    assert stdout.startswith("| codec | nominal kb/s | achieved kb/s |") and "| opus | 4 | n/a |" in stdout

    report = json.loads((out / "report.json").read_text())
    assert report["bandwidths"] == [4.0, 8.0] and set(report["codecs"]) == {"audiocodec", "opus"}
    voice, chord = report["files"]
    assert (voice["category"], voice["speech"], chord["speech"]) == ("speech", True, False)
    results = {(r["codec"], r["bandwidth"]): r for r in voice["results"]}
    ours, opus, opus_low = results[("audiocodec", 8.0)], results[("opus", 8.0)], results[("opus", 4.0)]
    assert ours["kbps"] > ours["payload_kbps"] > 0 and ours["trimmed_samples"] == 0
    assert all(ours["metrics"][m] is not None for m in ("pesq_wb", "stoi", "si_sdr", "mel_distance", "stft_distance"))
    assert opus["payload_kbps"] == pytest.approx(8.0, rel=0.35) and opus["metrics"]["pesq_wb"] > 1
    assert opus_low["kbps"] is None and "Opus takes 6 to 256 kb/s" in opus_low["note"]
    assert set(opus_low["metrics"].values()) == {None}
    assert {r["metrics"]["pesq_wb"] for r in chord["results"]} == {None}  # music: no PESQ

    averages = {(a["codec"], a["bandwidth"], a["category"]): a for a in report["averages"]}
    everything = averages[("audiocodec", 8.0, "all")]
    assert everything["n_files"] == 2 and everything["metrics"]["pesq_wb"]["count"] == 1
    assert everything["metrics"]["pesq_wb"]["mean"] == pytest.approx(ours["metrics"]["pesq_wb"])
    assert averages[("opus", 4.0, "all")]["n_files"] == 0

    # Codebook health at 8 kb/s (2 of the tiny model's 4 levels), over both files' 1000 frames each.
    health = report["codebook_health"]
    assert [(h["level"], h["frames"]) for h in health] == [(0, 2000), (1, 2000)]
    assert all(0 < h["used"] <= 1 and h["dead"] == round(16 * (1 - h["used"])) for h in health)

    markdown = (out / "report.md").read_text()
    assert "## Codebook health" in markdown and "| 0 | 2000 |" in markdown
    assert "at the model's highest bandwidth (8 kb/s)" in markdown and report["health_bandwidth"] == 8.0
    assert "## all" in markdown and "## music" in markdown and "## speech" in markdown and "(n=1)" in markdown
    assert (out / "rate_distortion.png").read_bytes()[:4] == b"\x89PNG"
    pictures = sorted(p.name for p in (out / "spectrograms").iterdir())
    assert pictures == ["music_chord.flac.png", "speech_voice.wav.png"]

    assert cli.main(argv) == 1  # an existing report is not overwritten without --force
    assert capsys.readouterr().err.count("\n") == 1
    assert cli.main([*argv, "--force", "--bandwidth", "8", "--spectrograms", "0", "--max-files", "1"]) == 0
    assert len(json.loads((out / "report.json").read_text())["files"]) == 1
    assert not list((out / "spectrograms").iterdir())  # the overwritten report's figures are gone


def test_plain_folder_counts_as_speech_and_unreadable_files_are_skipped(model_dir, tmp_path, capsys):
    data = tmp_path / "folder"
    data.mkdir()
    sf.write(data / "voice.wav", _voice(), RATE)
    (data / "broken.wav").write_text("this is not audio")
    (data / "README.txt").write_text("ignored: not an audio extension")
    out = tmp_path / "out"
    assert cli.main(["eval", "--model", model_dir, "--data", str(data), "--out", str(out), "-b", "4",
                     "--skip-metrics", "visqol", "dnsmos", "--no-html"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert [(f["name"], f["category"], f["speech"]) for f in report["files"]] == [("voice.wav", "unknown", True)]
    assert [s["name"] for s in report["skipped"]] == ["broken.wav"]
    assert "broken.wav" in (out / "report.md").read_text()
    assert "skipped broken.wav" in capsys.readouterr().err


def _error(argv, capsys) -> str:
    """The one-line error of a refused run (after any progress output), without a traceback."""
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert err.endswith("\n") and "Traceback" not in err
    assert [line for line in err.splitlines() if "audiocodec: error" in line] == [err.splitlines()[-1]]
    assert err.splitlines()[-1].startswith("audiocodec: error: ")
    return err.splitlines()[-1]


@pytest.mark.skipif(not HAS_OPUS, reason="opus-tools not installed: run recipes/install_system_deps.sh")
def test_a_bandwidth_only_the_baseline_offers_runs_with_audiocodec_na(model_dir, corpus, tmp_path, capsys):
    argv = ["eval", "--model", model_dir, "--data", str(corpus), "--against", "opus", "-b", "12",
            "--spectrograms", "0", "--out", str(tmp_path / "out"), "--skip-metrics", "visqol", "dnsmos", "--no-html"]
    assert cli.main(argv) == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    results = {r["codec"]: r for r in report["files"][0]["results"]}
    assert results["audiocodec"]["kbps"] is None and "offers 4, 8 kb/s" in results["audiocodec"]["note"]
    assert results["opus"]["metrics"]["pesq_wb"] > 1
    assert report["codebook_health"] == []  # the model's highest bandwidth was not run


def test_user_errors_are_one_line(model_dir, corpus, tmp_path, capsys, monkeypatch):
    out = ["--out", str(tmp_path / "out")]
    model = ["eval", "--model", model_dir]
    assert "no such file or directory" in _error([*model, "--data", str(tmp_path / "nope"), *out], capsys)
    (tmp_path / "empty").mkdir()
    assert "no audio files found" in _error([*model, "--data", str(tmp_path / "empty"), *out], capsys)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "a.wav").write_text("not audio")
    err = _error(["eval", "--model", model_dir, "--data", str(tmp_path / "bad"), *out], capsys)
    assert "none of the 1 file(s) could be read" in err and "a.wav" in err
    err = _error(["eval", "--model", model_dir, "--data", str(corpus), "-b", "5", *out], capsys)
    assert "offers 4, 8 kb/s, not 5" in err
    assert "at least 1" in _error([*model, "--data", str(corpus), "--max-files", "0", *out], capsys)
    assert "not a model directory" in _error(["eval", "--model", str(tmp_path), "--data", str(corpus), *out], capsys)
    monkeypatch.setattr(pretrained, "PRETRAINED_DIR", tmp_path / "no_pretrained")
    monkeypatch.setattr(api, "_DEFAULT_MODEL", None)
    assert "no default model is embedded" in _error(["eval", "--data", str(corpus), *out], capsys)
    monkeypatch.setenv("PATH", "/nonexistent")
    err = _error(["eval", "--model", model_dir, "--data", str(corpus), "--against", "opus", *out], capsys)
    assert "recipes/install_system_deps.sh" in err
    assert not (tmp_path / "out").exists()  # nothing written by a refused run
