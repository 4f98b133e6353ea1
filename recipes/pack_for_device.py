"""Pack a training manifest small enough to travel to a lent GPU machine (64 MiB per call, the working tree
included).

The corpus's training split is 350 MB of FLAC. This takes files from every source in turn (so each source and
speaker is represented, not the first few alone), up to a budget per category, and stores them in one of two ways:

- FLAC with the samples rounded to 12 bits (the default): FLAC then stores the four unused low bits for free, 58%
  of the size, and the rounding noise (about -77 dBFS) is far below anything a codec of this size reproduces.
  Long files are cut to one excerpt each (more files per MiB). 48 minutes fit one call:

      python recipes/pack_for_device.py corpus/train.jsonl gpudata --speech-mib 25 --music-mib 19

- Ogg Vorbis at `--vorbis-level` (libsndfile's compression level, 0 to 1): at 0.8 (about 37 kb/s on music; more
  on the many short speech files, whose Ogg headers weigh 4 kB each) the whole split (3.7 h, whole files) is
  72 MiB, which `--parts 2` splits into two folders of 36 MiB that travel in two calls to the same warm machine
  (DEVELOPERS.md). The targets are then Vorbis's rendering of the audio (about
  20 dB of waveform SNR on music, against the 10 dB this project's models reach), and reading them costs more CPU
  (about 800 times real time per core, against 2,300 for FLAC). Vorbis, not Opus: libsndfile seeks in Ogg Opus
  files only approximately (segments came out shifted), in Vorbis to the sample, and Opus at the same bitrate kept
  4 dB less of the waveform and decoded three times slower.

      python recipes/pack_for_device.py corpus/train.jsonl gpudata --vorbis-level 0.8 --excerpt-seconds 0 \
          --speech-mib 1000 --music-mib 1000 --sounds-mib 1000 --parts 2

The output folder holds the files (in `part1/`, `part2/`, ... with `--parts`) and one `train.jsonl` manifest for
all of them that recipes can name as `data.train`.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
from pathlib import Path

import numpy as np
import soundfile as sf


def pack(manifest: Path, output: Path, budgets: dict[str, float], bits: int, excerpt: float, seed: int,
         vorbis_level: float | None = None, parts: int = 1) -> dict:
    rows = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
    by_source: dict[str, dict[str, list[dict]]] = collections.defaultdict(lambda: collections.defaultdict(list))
    for row in rows:
        by_source[row["category"]][row["source"]].append(row)
    rng = np.random.default_rng(seed)
    step = 2 ** (16 - bits)
    packed, used, seconds = [], collections.Counter(), collections.Counter()
    for category, sources in by_source.items():
        budget = budgets.get(category, 0.0) * 2**20
        queues = {name: list(rng.permutation(len(files))) for name, files in sources.items()}
        while used[category] < budget and any(queues.values()):
            for name, queue in queues.items():
                if not queue or used[category] >= budget:
                    continue
                row = sources[name][queue.pop()]
                audio, rate = sf.read(manifest.parent / row["path"], dtype="int16")
                if excerpt and len(audio) > excerpt * rate:
                    start = int(rng.integers(0, len(audio) - int(excerpt * rate)))
                    audio = audio[start:start + int(excerpt * rate)]
                folder = Path(f"part{len(packed) % parts + 1}") / category if parts > 1 else Path(category)
                (output / folder).mkdir(parents=True, exist_ok=True)
                path = folder / Path(row["path"]).with_suffix(".flac" if vorbis_level is None else ".ogg").name
                if (output / path).exists():  # two sources may name files alike
                    path = path.with_name(f"{len(packed)}-{path.name}")
                if vorbis_level is not None:
                    sf.write(output / path, audio, rate, format="OGG", subtype="VORBIS", compression_level=vorbis_level)
                else:
                    audio = (np.round(audio / step) * step).clip(-32768, 32768 - step).astype(np.int16)
                    sf.write(output / path, audio, rate, format="FLAC", subtype="PCM_16")
                used[category] += (output / path).stat().st_size
                seconds[category] += len(audio) / rate
                packed.append({**row, "path": str(path), "seconds": len(audio) / rate})
    with open(output / "train.jsonl", "w") as f:
        f.writelines(json.dumps(row) + "\n" for row in packed)
    return {category: (used[category] / 2**20, seconds[category] / 60) for category in used}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("manifest", type=Path, help="JSONL manifest with path, category and source per file")
    parser.add_argument("output", type=Path, help="folder to write (must not exist)")
    parser.add_argument("--speech-mib", type=float, default=25.0)
    parser.add_argument("--music-mib", type=float, default=19.0)
    parser.add_argument("--sounds-mib", type=float, default=0.4)
    parser.add_argument("--bits", type=int, default=12, choices=range(8, 17), metavar="8..16",
                        help="bits kept of each FLAC sample (not with --vorbis-level)")
    parser.add_argument("--excerpt-seconds", type=float, default=8.0, help="longest piece kept of a file (0: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--vorbis-level", type=float, default=None,
                        help="store Ogg Vorbis at this compression level instead of 12-bit FLAC (0 to 1, higher: "
                             "smaller files of lower quality; 0.8: about 37 kb/s)")
    parser.add_argument("--parts", type=int, default=1, help="spread the files over part1/ ... partN/, one per call")
    args = parser.parse_args()
    if args.vorbis_level is not None and not 0 <= args.vorbis_level <= 1:
        sys.exit("error: --vorbis-level must lie between 0 and 1")
    if args.parts < 1:
        sys.exit("error: --parts must be at least 1")
    if not args.manifest.is_file():
        sys.exit(f"error: {args.manifest}: no such manifest")
    if args.output.exists():
        sys.exit(f"error: {args.output} exists; choose a new folder")
    budgets = {"speech": args.speech_mib, "music": args.music_mib, "sounds": args.sounds_mib}
    summary = pack(args.manifest, args.output, budgets, args.bits, args.excerpt_seconds, args.seed, args.vorbis_level,
                   args.parts)
    for category, (mib, minutes) in summary.items():
        print(f"{category}: {mib:.1f} MiB, {minutes:.1f} min")
    for part in sorted(args.output.glob("part*")):  # each must fit a call beside the working tree
        print(f"{part.name}: {sum(f.stat().st_size for f in part.rglob('*') if f.is_file()) / 2**20:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
