"""Pack a subset of a training manifest small enough to travel to a lent GPU machine (64 MiB per call, the
working tree included).

The corpus's training split is 350 MB of FLAC. This takes files from every source in turn (so each source and
speaker is represented, not the first few alone), cuts long files to one excerpt each (more files per MiB), and
rounds the samples to 12 bits: FLAC then stores the four unused low bits for free, 58% of the size, and the
rounding noise (about -77 dBFS) is far below anything a codec of this size reproduces. The output folder holds
the FLAC files and a `train.jsonl` manifest that recipes can name as `data.train`.

    python recipes/pack_for_device.py corpus/train.jsonl gpudata --speech-mib 25 --music-mib 19
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
from pathlib import Path

import numpy as np
import soundfile as sf


def pack(manifest: Path, output: Path, budgets: dict[str, float], bits: int, excerpt: float, seed: int) -> dict:
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
                audio = (np.round(audio / step) * step).clip(-32768, 32768 - step).astype(np.int16)
                path = Path(category) / Path(row["path"]).name
                (output / category).mkdir(parents=True, exist_ok=True)
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
    parser.add_argument("--bits", type=int, default=12, choices=range(8, 17), metavar="8..16")
    parser.add_argument("--excerpt-seconds", type=float, default=8.0, help="longest piece kept of a file (0: all)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not args.manifest.is_file():
        sys.exit(f"error: {args.manifest}: no such manifest")
    if args.output.exists():
        sys.exit(f"error: {args.output} exists; choose a new folder")
    budgets = {"speech": args.speech_mib, "music": args.music_mib, "sounds": args.sounds_mib}
    summary = pack(args.manifest, args.output, budgets, args.bits, args.excerpt_seconds, args.seed)
    for category, (mib, minutes) in summary.items():
        print(f"{category}: {mib:.1f} MiB, {minutes:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
