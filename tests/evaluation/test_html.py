"""`audiocodec eval` with models compared (`--against model:DIR`), the listener metrics end to end, and the HTML
report opened in a real browser (headless Chromium): its players and images load, and it does not render blank."""

import json
import math
import os
import re
import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf

from audiocodec import cli
from tiny_models import tiny_codec

RATE = 16000
CHROMIUM = next((path for path in (shutil.which("chromium"), shutil.which("chromium-browser")) if path), None)
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed: run "
                                    "recipes/install_system_deps.sh (Debian's chromium package)")


def _voice(seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    voice = sum(np.sin(2 * math.pi * 150 * k * t) / k for k in range(1, 12))
    return (0.2 * voice * (0.55 + 0.45 * np.sin(2 * math.pi * 4 * t))).astype(np.float32)


def _chord(seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.2 * np.sin(2 * math.pi * 440 * t) + 0.1 * np.sin(2 * math.pi * 660 * t)).astype(np.float32)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    first = tiny_codec(lstm=0).save_pretrained(tmp_path_factory.mktemp("first"))
    second = tiny_codec(lstm=0, n_filters=6).save_pretrained(tmp_path_factory.mktemp("second"))
    return str(first), str(second)


@pytest.fixture
def corpus(tmp_path):
    # 1.2 s: long enough for ViSQOL (1 s) and, repeated to 9.6 s, one DNSMOS window (a 1 s clip would be 8).
    data = tmp_path / "corpus"
    for category in ("speech", "music", "sounds"):
        (data / category).mkdir(parents=True)
    sf.write(data / "speech" / "voice.wav", _voice(1.2), RATE)
    sf.write(data / "music" / "chord.flac", _chord(1.2), RATE)
    sf.write(data / "sounds" / "beep.flac", _chord(1.2)[::-1].copy(), RATE)
    lines = [{"path": "speech/voice.wav", "category": "speech"}, {"path": "music/chord.flac", "category": "music"},
             {"path": "sounds/beep.flac", "category": "sounds"}]
    (data / "test.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return data


def _error(argv, capsys) -> str:
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.splitlines()[-1].startswith("audiocodec: error: ")
    return err.splitlines()[-1]


def test_two_models_in_one_report_with_the_listener_metrics(models, corpus, tmp_path, capsys):
    first, second = models
    out = tmp_path / "out"
    argv = ["eval", "--model", first, "--data", str(corpus), "--against", f"model:{second}", "-b", "8",
            "--out", str(out), "--no-html"]
    assert cli.main(argv) == 0
    report = json.loads((out / "report.json").read_text())
    name = f"model:{os.path.basename(second)}"
    assert list(report["codecs"]) == ["audiocodec", name] and report["codecs"][name]["path"] == second
    assert report["listener_metrics"] == ["visqol", "dnsmos"]
    voice, chord, _ = report["files"]
    assert voice["reference_metrics"]["dnsmos_ovrl"] is not None and chord["reference_metrics"]["dnsmos_ovrl"] is None
    ours, theirs = ({r["codec"]: r for r in voice["results"]}[c] for c in ("audiocodec", name))
    for result in (ours, theirs):  # each model through its own .ac round trip, scored by every metric
        metrics = result["metrics"]
        assert result["kbps"] > 0 and 1 <= metrics["visqol"] <= 5 and 1 <= metrics["dnsmos_sig"] <= 5
    assert ours["metrics"] != theirs["metrics"]
    music = {r["codec"]: r for r in chord["results"]}["audiocodec"]["metrics"]
    assert 1 <= music["visqol"] <= 5 and music["dnsmos_ovrl"] is None and music["pesq_wb"] is None

    averages = {(a["codec"], a["category"]): a for a in report["averages"]}
    original = averages[("original", "speech")]["metrics"]["dnsmos_ovrl"]
    assert original["mean"] == pytest.approx(voice["reference_metrics"]["dnsmos_ovrl"]) and original["count"] == 1
    assert ("original", "music") not in averages  # no DNSMOS off speech: no row
    markdown = (out / "report.md").read_text()
    assert "| ViSQOL | DNSMOS SIG | DNSMOS BAK | DNSMOS OVRL |" in markdown and f"| {name} | 8 |" in markdown
    assert "| original | - | - | - |" in markdown
    assert not (out / "index.html").exists()  # --no-html

    # Left out on request: the columns go (nothing to show), the rest stays.
    argv = [*argv, "--force", "--skip-metrics", "visqol", "dnsmos"]
    assert cli.main(argv) == 0
    assert "ViSQOL" not in (out / "report.md").read_text() and "| PESQ-wb |" in (out / "report.md").read_text()


def test_model_folders_that_are_not_models_are_one_line_errors(models, corpus, tmp_path, capsys):
    first, _ = models
    base = ["eval", "--model", first, "--data", str(corpus), "--out", str(tmp_path / "out"), "--against"]
    missing = tmp_path / "nope"
    assert f"model:{missing}: no such folder" in _error([*base, f"model:{missing}"], capsys)
    (tmp_path / "empty").mkdir()
    assert "not a model directory" in _error([*base, f"model:{tmp_path / 'empty'}"], capsys)
    broken = tmp_path / "broken"
    shutil.copytree(first, broken)
    (broken / "config.json").write_text("{ not json")
    assert _error([*base, f"model:{broken}"], capsys).startswith(f"audiocodec: error: model:{broken}: ")
    assert "expected 'opus' or 'model:DIR'" in _error([*base, "flac"], capsys)
    assert "expected 'opus' or 'model:DIR'" in _error([*base, "model:"], capsys)
    assert "given twice" in _error([*base, "opus", "opus"], capsys)
    assert "given twice" in _error([*base, f"model:{first}", f"model:{first}/"], capsys)
    assert not (tmp_path / "out").exists()


def test_an_existing_html_report_is_not_overwritten_without_force(models, corpus, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "index.html").write_text("<p>someone's page</p>")
    argv = ["eval", "--model", models[0], "--data", str(corpus), "--out", str(out), "--skip-metrics", "visqol",
            "dnsmos", "--html"]
    assert "already holds a report (index.html); use --force" in _error(argv, capsys)
    assert (out / "index.html").read_text() == "<p>someone's page</p>"


def _chromium(*flags: str, profile) -> subprocess.CompletedProcess:
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={profile}", "--virtual-time-budget=15000", *flags]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def _load_counts(page, profile) -> tuple[int, int, int]:
    """Players and images on the page, loaded and failed, as the page's own script counted them in Chromium."""
    dom = _chromium("--dump-dom", page.as_uri(), profile=profile).stdout
    body = re.search(r"<body([^>]*)>", dom)
    assert body, dom[:500]
    loaded, failed = (int(re.search(rf'data-{k}="(\d+)"', body.group(1)).group(1)) for k in ("loaded", "failed"))
    return len(re.findall(r"<audio\b|<img\b", dom)), loaded, failed


@needs_chromium
def test_the_html_report_plays_and_shows_in_a_browser(models, corpus, tmp_path, capsys):
    out = tmp_path / "out"  # new: the HTML report is on by default
    argv = ["eval", "--model", models[0], "--data", str(corpus), "--against", f"model:{models[1]}", "-b", "4", "8",
            "--out", str(out), "--listen", "3", "--skip-metrics", "visqol", "dnsmos"]
    assert cli.main(argv) == 0
    page = out / "index.html"
    html = page.read_text()
    links = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert links and all(not re.match(r"[a-z]+:|/", link) and (out / link).is_file() for link in links)
    flacs = [link for link in links if link.endswith(".flac")]
    # 3 files, each: the original, then 2 models x 2 bandwidths.
    assert len(flacs) == 3 * (1 + 2 * 2) and html.count("<audio") == len(flacs)
    assert all(name in html for name in ("voice.wav", "chord.flac", "beep.flac"))

    elements, loaded, failed = _load_counts(page, tmp_path / "profile1")
    assert (loaded, failed) == (elements, 0) and elements == 2 * len(flacs) + 4  # + 4 plots: all, 3 categories

    shot = tmp_path / "shot.png"
    _chromium("--hide-scrollbars", "--window-size=1200,1600", f"--screenshot={shot}", page.as_uri(),
              profile=tmp_path / "profile2")
    from matplotlib.image import imread

    pixels = imread(shot)[..., :3]
    assert pixels.shape[:2] == (1600, 1200)
    assert pixels.std() > 0.05 and (pixels.mean(axis=2) < 0.5).mean() > 0.01  # not blank: text, plots, images

    # A broken copy is noticed: a missing recording and a damaged image count as failed.
    os.remove(out / flacs[0])
    png = next(out.glob("listen/*.png"))
    png.write_bytes(b"not a png")
    elements, loaded, failed = _load_counts(page, tmp_path / "profile3")
    assert failed == 2 and loaded == elements - 2
