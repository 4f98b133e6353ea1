"""Build an offline training corpus: 24 kHz mono FLAC files split into train, valid and test, with manifests.

    bash recipes/data/install_sources.sh              # once, as root: the Debian packages the audio comes from
    python recipes/data/build_corpus.py --out corpus  # recorded audio + TTS + rendered MIDI
    python recipes/data/build_corpus.py --out mydata --no-system --user-audio ~/LibriSpeech/train-clean-100 \
        --user-category speech                         # any folder of your own audio, same manifests

Writes `OUT/{train,valid,test}/<category>/<name>.flac` and one manifest per split, `OUT/<split>.jsonl`, a JSON line
per file: path (relative to the manifest), category, source, license, group, speaker, seconds. The training data
loader and `audiocodec eval` both read these manifests. The split is made on groups (a speaker, a voice, a
language, a track, a score), never on files of one group, so test audio comes from speakers and pieces that training
never heard. Existing files are kept (re-running resumes an interrupted build); `--force` rebuilds.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sources  # noqa: E402

from audiocodec.io.audio import to_model_format  # noqa: E402

SAMPLE_RATE = 24_000
SPLITS = ("train", "valid", "test")
MIN_SECONDS = 0.3


def split_groups(items: list[sources.Item], valid_fraction: float, test_fraction: float) -> dict[str, str]:
    """group -> split. Within each source, groups are ordered by a hash of their name (stable across runs and
    machines) and the first ones go to test, the next to valid; a source with three groups or more gives at
    least one to each, so every source is represented in every split when it can be."""
    by_source: dict[str, list[str]] = defaultdict(list)
    for item in items:
        if item.group not in by_source[item.source]:
            by_source[item.source].append(item.group)
    assignment = {}
    for groups in by_source.values():
        groups = sorted(groups, key=lambda g: hashlib.sha1(g.encode()).hexdigest())
        n_test = max(1, round(test_fraction * len(groups))) if len(groups) >= 3 else 0
        n_valid = max(1, round(valid_fraction * len(groups))) if len(groups) >= 3 else 0
        for index, group in enumerate(groups):
            assignment[group] = "test" if index < n_test else "valid" if index < n_test + n_valid else "train"
    return assignment


def convert(item: sources.Item, split: str, out: Path, chunk_seconds: float, force: bool) -> list[dict]:
    """Render one item to 24 kHz mono FLAC pieces; returns their manifest entries (none if unusable)."""
    folder = out / split / item.category
    existing = sorted(folder.glob(f"{item.name}.flac")) + sorted(folder.glob(f"{item.name}.part*.flac"))
    if existing and not force:
        pieces = [(p, sf.info(str(p)).duration) for p in existing]
    else:
        try:
            data, rate = item.render()
        except Exception as error:  # noqa: BLE001 - one bad source file must not stop the build
            print(f"skipped {item.name}: {type(error).__name__}: {error}", file=sys.stderr)
            return []
        wav = to_model_format(torch.from_numpy(np.ascontiguousarray(data.T)), rate, SAMPLE_RATE, 1)[0].numpy()
        peak = float(np.abs(wav).max()) if wav.size else 0.0
        if wav.size < MIN_SECONDS * SAMPLE_RATE or peak < 1e-4:
            return []
        if peak > 0.99:  # resampling can overshoot; keep the file unclipped
            wav = wav * (0.99 / peak)
        folder.mkdir(parents=True, exist_ok=True)
        chunks = list(sources.iter_chunks(wav, SAMPLE_RATE, chunk_seconds))
        pieces = []
        for index, chunk in enumerate(chunks):
            path = folder / (f"{item.name}.flac" if len(chunks) == 1 else f"{item.name}.part{index:03d}.flac")
            sf.write(str(path), chunk, SAMPLE_RATE, subtype="PCM_16")
            pieces.append((path, len(chunk) / SAMPLE_RATE))
    return [
        {"path": str(path.relative_to(out)), "category": item.category, "source": item.source,
         "license": item.license, "group": item.group, "speaker": item.speaker, "seconds": round(seconds, 3)}
        for path, seconds in pieces
    ]


def _convert_job(args: tuple) -> list[dict]:
    return convert(*args)


def unique_names(items: list[sources.Item]) -> None:
    seen: dict[str, int] = {}
    for item in items:
        count = seen.get(item.name, 0)
        seen[item.name] = count + 1
        if count:
            item.name = f"{item.name}-{count}"


def summary(entries: dict[str, list[dict]]) -> str:
    """Hours per category and split, and per source: the table the build prints and docs/data.md quotes."""
    categories = sorted({e["category"] for rows in entries.values() for e in rows})
    lines = ["| category | " + " | ".join(SPLITS) + " | files |", "|---" * (len(SPLITS) + 2) + "|"]
    for category in categories + ["all"]:
        hours = [sum(e["seconds"] for e in entries[s] if category in ("all", e["category"])) / 3600 for s in SPLITS]
        files = sum(1 for s in SPLITS for e in entries[s] if category in ("all", e["category"]))
        lines.append(f"| {category} | " + " | ".join(f"{h:.2f} h" for h in hours) + f" | {files} |")
    lines += ["", "| source | category | minutes | groups (train/valid/test) |", "|---|---|---|---|"]
    by_source: dict[tuple, list[dict]] = defaultdict(list)
    for split in SPLITS:
        for e in entries[split]:
            by_source[(e["source"], e["category"])].append({**e, "split": split})
    for (source, category), rows in sorted(by_source.items()):
        groups = [len({r["group"] for r in rows if r["split"] == s}) for s in SPLITS]
        minutes = sum(r["seconds"] for r in rows) / 60
        lines.append(f"| {source} | {category} | {minutes:.1f} | {'/'.join(map(str, groups))} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="corpus", help="output folder (default: corpus/)")
    parser.add_argument("--no-system", action="store_true", help="skip audio from Debian packages, TTS and MIDI")
    parser.add_argument("--tts-utterances", type=int, default=400, help="text-to-speech utterances (default 400)")
    parser.add_argument("--midi-scores", type=int, default=80, help="MIDI scores to render (default 80)")
    parser.add_argument("--user-audio", action="append", default=[], help="a folder of your own audio (repeatable)")
    parser.add_argument("--user-category", default="speech", choices=["speech", "music", "sounds"])
    parser.add_argument("--valid-fraction", type=float, default=0.05)
    parser.add_argument("--test-fraction", type=float, default=0.1)
    parser.add_argument("--chunk-seconds", type=float, default=10.0, help="longer files are cut into pieces")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--force", action="store_true", help="re-render files that already exist")
    args = parser.parse_args(argv)

    items: list[sources.Item] = []
    if not args.no_system:
        items += sources.recorded_items() + sources.tts_items(args.tts_utterances, args.seed)
        items += sources.midi_items(args.midi_scores, args.seed)
    for folder in args.user_audio:
        if not Path(folder).is_dir():
            print(f"build_corpus: error: {folder}: no such folder", file=sys.stderr)
            return 1
        items += sources.user_items(Path(folder), args.user_category)
    if not items:
        print("build_corpus: error: no audio sources found (run recipes/data/install_sources.sh, or pass "
              "--user-audio DIR)", file=sys.stderr)
        return 1
    unique_names(items)
    assignment = split_groups(items, args.valid_fraction, args.test_fraction)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    jobs = [(item, assignment[item.group], out, args.chunk_seconds, args.force) for item in items]
    entries: dict[str, list[dict]] = {split: [] for split in SPLITS}
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for index, rows in enumerate(pool.map(_convert_job, jobs, chunksize=8)):
            for row in rows:
                entries[jobs[index][1]].append(row)
            if (index + 1) % 200 == 0:
                print(f"{index + 1}/{len(jobs)} items", file=sys.stderr)
    for split in SPLITS:
        with open(out / f"{split}.jsonl", "w", encoding="utf-8") as manifest:
            for row in entries[split]:
                manifest.write(json.dumps(row) + "\n")
    table = summary(entries)
    (out / "SUMMARY.md").write_text(table + "\n", encoding="utf-8")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
