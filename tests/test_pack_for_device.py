"""recipes/pack_for_device.py: every source represented within the budget, 12-bit FLAC or Ogg Vorbis, parts that
travel in separate calls, and one manifest the training loader reads."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import soundfile as sf

from audiocodec.training.data import SegmentDataset

SCRIPT = Path(__file__).parents[1] / "recipes" / "pack_for_device.py"


def load_packer():
    spec = importlib.util.spec_from_file_location("pack_for_device", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_manifest(root: Path) -> Path:
    """Two speech sources of three 2 s files each, and one music source of two 12 s files, at 24 kHz."""
    rng = np.random.default_rng(0)
    rows = []
    for category, source, count, seconds in (("speech", "a", 3, 2), ("speech", "b", 3, 2), ("music", "m", 2, 12)):
        for index in range(count):
            path = Path(category) / f"{source}{index}.flac"
            (root / category).mkdir(parents=True, exist_ok=True)
            tone = np.sin(2 * np.pi * (200 + 50 * index) * np.arange(24000 * seconds) / 24000)
            sf.write(root / path, (0.3 * tone + 0.01 * rng.standard_normal(tone.size)).astype(np.float32), 24000)
            rows.append({"path": str(path), "category": category, "source": source, "seconds": seconds})
    (root / "train.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return root / "train.jsonl"


def test_flac_packing_rounds_to_12_bits_and_cuts_excerpts(tmp_path):
    manifest = write_manifest(tmp_path / "corpus")
    summary = load_packer().pack(manifest, tmp_path / "out", {"speech": 1.0, "music": 1.0}, bits=12, excerpt=8.0,
                                 seed=0)
    rows = [json.loads(line) for line in (tmp_path / "out" / "train.jsonl").read_text().splitlines()]
    assert len(rows) == 8 and {row["source"] for row in rows} == {"a", "b", "m"}
    for row in rows:
        audio, rate = sf.read(tmp_path / "out" / row["path"], dtype="int16")
        assert rate == 24000 and not (audio % 16).any()  # the four low bits are zero
        assert len(audio) / rate == row["seconds"] == (8.0 if row["category"] == "music" else 2.0)
    assert summary["music"][1] == 16 / 60  # minutes: two 8 s excerpts
    assert len(SegmentDataset(tmp_path / "out" / "train.jsonl", 24000, 1, 12000)) == 8


def test_files_of_the_same_name_from_two_sources_are_both_kept(tmp_path):
    manifest = write_manifest(tmp_path / "corpus")
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    (tmp_path / "corpus" / "other").mkdir()
    sf.write(tmp_path / "corpus" / "other" / "a0.flac", np.full(24000, 0.1, np.float32), 24000)
    rows.append({"path": "other/a0.flac", "category": "speech", "source": "c", "seconds": 1})
    manifest.write_text("".join(json.dumps(row) + "\n" for row in rows))
    load_packer().pack(manifest, tmp_path / "out", {"speech": 1.0}, bits=12, excerpt=0, seed=0)
    packed = [json.loads(line) for line in (tmp_path / "out" / "train.jsonl").read_text().splitlines()]
    assert len({row["path"] for row in packed}) == len(packed) == 7
    lengths = sorted(sf.info(tmp_path / "out" / row["path"]).frames for row in packed)
    assert lengths == [24000] + [48000] * 6


def test_a_small_budget_takes_files_from_every_source_in_turn(tmp_path):
    manifest = write_manifest(tmp_path / "corpus")
    budget = 2.5 * 41_400 / 2**20  # MiB: each 2 s file is about 41 kB; the file that crosses the budget is kept
    load_packer().pack(manifest, tmp_path / "out", {"speech": budget}, bits=12, excerpt=0, seed=0)
    rows = [json.loads(line) for line in (tmp_path / "out" / "train.jsonl").read_text().splitlines()]
    assert sorted(row["source"] for row in rows) == ["a", "a", "b"]  # a, b, a: in turn, not a's three; no music


def test_vorbis_parts_travel_separately_and_load_as_one_manifest(tmp_path):
    manifest = write_manifest(tmp_path / "corpus")
    load_packer().pack(manifest, tmp_path / "out", {"speech": 1.0, "music": 1.0}, bits=12, excerpt=0, seed=0,
                       vorbis_level=0.8, parts=2)
    rows = [json.loads(line) for line in (tmp_path / "out" / "train.jsonl").read_text().splitlines()]
    assert {Path(row["path"]).parts[0] for row in rows} == {"part1", "part2"}
    assert all(row["path"].endswith(".ogg") for row in rows)
    music = [row for row in rows if row["category"] == "music"]
    original, _ = sf.read(tmp_path / "corpus" / "music" / Path(music[0]["path"]).with_suffix(".flac").name)
    decoded, rate = sf.read(tmp_path / "out" / music[0]["path"])
    assert rate == 24000 and len(decoded) == len(original)  # whole files, at their rate and length
    snr = 10 * np.log10(np.sum(original**2) / np.sum((decoded - original) ** 2))
    assert snr > 10  # Vorbis at about 37 kb/s keeps the waveform (about 20 dB on music)
    size = (tmp_path / "out" / music[0]["path"]).stat().st_size
    assert 8 * size / 12 / 1000 < 60  # kb/s: the bitrate asked for, not lossless
    # The loader seeks to each segment: in Vorbis (unlike MP3 and Ogg Opus) a seek gives a whole read's samples.
    part, _ = sf.read(tmp_path / "out" / music[0]["path"], start=100_000, frames=12_000)
    assert np.array_equal(part, decoded[100_000:112_000])
    assert len(SegmentDataset(tmp_path / "out" / "train.jsonl", 24000, 1, 12000)) == 8
