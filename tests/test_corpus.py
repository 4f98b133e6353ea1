"""The corpus builder on a folder of the user's audio: 24 kHz mono FLAC, group-disjoint splits, manifests the
training loader reads, long files cut into pieces, unreadable files skipped, re-runs resume."""

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from audiocodec.training.data import list_audio

ROOT = Path(__file__).parents[1] / "recipes" / "data"


def load_builder():
    sys.path.insert(0, str(ROOT))
    spec = importlib.util.spec_from_file_location("build_corpus", ROOT / "build_corpus.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["build_corpus"] = module  # the worker processes unpickle its functions by module name
    spec.loader.exec_module(module)
    return module


def write_speakers(root: Path, speakers: int = 10, files: int = 2) -> None:
    rng = np.random.default_rng(0)
    for s in range(speakers):
        folder = root / f"speaker{s:02d}"
        folder.mkdir(parents=True)
        for f in range(files):
            t = np.arange(16000) / 16000
            x = 0.3 * np.sin(2 * np.pi * (120 + 20 * s + 5 * f) * t) + 0.01 * rng.standard_normal(len(t))
            sf.write(folder / f"utt{f}.wav", np.stack([x, x], 1).astype(np.float32), 16000)
    long = root / "speaker00" / "long.flac"
    sf.write(long, 0.2 * np.sin(np.arange(16000 * 25) / 7).astype(np.float32), 16000)
    (root / "speaker01" / "notes.wav").write_bytes(b"not audio at all")


def test_user_folder_gives_group_disjoint_24khz_manifests(tmp_path, capsys):
    builder = load_builder()
    source, out = tmp_path / "mine", tmp_path / "corpus"
    write_speakers(source)
    assert builder.main(["--out", str(out), "--no-system", "--user-audio", str(source), "--jobs", "2"]) == 0
    rows = {split: [json.loads(line) for line in (out / f"{split}.jsonl").read_text().splitlines()]
            for split in builder.SPLITS}
    groups = {split: {row["group"] for row in rows[split]} for split in rows}
    assert groups["test"] and groups["valid"] and groups["train"]
    assert not (groups["test"] & groups["train"]) and not (groups["valid"] & groups["train"])
    assert not (groups["test"] & groups["valid"])
    everything = [row for split in rows.values() for row in split]
    assert len({row["group"] for row in everything}) == 10
    # 10 speakers x 2 files, plus the 25 s file cut into 3 pieces of at most 10 s; the non-audio file is skipped.
    assert len(everything) == 20 + 3
    for row in everything:
        info = sf.info(str(out / row["path"]))
        assert (info.samplerate, info.channels) == (24000, 1)
        assert info.duration <= 10.0 + 1e-6 and abs(info.duration - row["seconds"]) < 1e-3
        assert row["category"] == "speech"
    # The training loader reads the manifests.
    assert len(list_audio(out / "train.jsonl")) == len(rows["train"])
    assert "| speech |" in capsys.readouterr().out

    # A second run keeps what exists (resumes) and writes the same manifests.
    before = (out / "test.jsonl").read_text()
    stamp = {p: p.stat().st_mtime_ns for p in out.rglob("*.flac")}
    assert builder.main(["--out", str(out), "--no-system", "--user-audio", str(source), "--jobs", "1"]) == 0
    assert (out / "test.jsonl").read_text() == before
    assert stamp == {p: p.stat().st_mtime_ns for p in out.rglob("*.flac")}


def test_missing_user_folder_is_one_line_error(tmp_path, capsys):
    builder = load_builder()
    assert builder.main(["--out", str(tmp_path / "c"), "--no-system", "--user-audio", str(tmp_path / "nope")]) == 1
    err = capsys.readouterr().err.strip()
    assert "no such folder" in err and len(err.splitlines()) == 1
