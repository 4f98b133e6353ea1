"""Progress off a terminal: plain lines every few seconds, with percentage, speed and time left; none when quiet."""

import io

import numpy as np
import soundfile as sf

from audiocodec.cli import entry
from audiocodec.io import progress as progress_module
from audiocodec.io.progress import progress
from tiny_models import tiny_codec


def test_off_a_terminal_lines_give_percentage_speed_and_time_left(monkeypatch):
    clock = iter(range(0, 1000, 2))  # two seconds a step
    monkeypatch.setattr(progress_module.time, "monotonic", lambda: next(clock))
    stream = io.StringIO()
    assert list(progress(range(10), label="decoding", unit="chunk", stream=stream)) == list(range(10))
    lines = stream.getvalue().splitlines()
    assert lines[0] == "decoding: 30% (3/10 chunks), 0.5 chunks/s, 14 s left"
    assert len(lines) == 4 and lines[-1].startswith("decoding: 100% (10/10 chunks)") and "done in" in lines[-1]


def test_a_short_job_and_a_quiet_one_write_nothing():
    stream = io.StringIO()
    for _ in progress(range(100), stream=stream):
        pass
    bar = progress(total=10, stream=stream, enabled=False, initial=2)
    bar.update(8)
    bar.total = 20  # the trainer moves its end
    bar.set_postfix(loss="0.1")
    bar.close()
    assert stream.getvalue() == ""


def test_decompressing_a_long_file_into_a_log_prints_progress_and_quiet_silences_it(tmp_path, monkeypatch, capsys):
    tiny_codec().save_pretrained(tmp_path / "model")
    sf.write(tmp_path / "in.wav", 0.1 * np.sin(np.arange(8000 * 70) / 5), 8000)  # over a minute
    assert entry.main(["compress", str(tmp_path / "in.wav"), str(tmp_path / "in.ac"), "-m", str(tmp_path / "model"),
                       "--quiet"]) == 0
    assert "%" not in capsys.readouterr().err
    monkeypatch.setattr(progress_module, "INTERVAL_SECONDS", 0.0)
    monkeypatch.setattr(progress_module.LogProgress.__init__, "__defaults__", (False, 0.0))
    assert entry.main(["decompress", str(tmp_path / "in.ac"), str(tmp_path / "out.wav"), "-m",
                       str(tmp_path / "model")]) == 0
    err = capsys.readouterr().err
    assert "decoding: " in err and "% (" in err and ("chunks/s" in err or "s/chunk" in err)
    assert entry.main(["decompress", str(tmp_path / "in.ac"), str(tmp_path / "out.wav"), "-m",
                       str(tmp_path / "model"), "--force", "--quiet"]) == 0
    assert "decoding" not in capsys.readouterr().err
