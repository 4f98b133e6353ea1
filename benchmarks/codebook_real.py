"""A model's shipped codebooks against an offline k-means refit, on its real encoder features.

`benchmarks/codebook.py` judges codebook learning on synthetic streams. This script asks the same question of a
trained model: the encoder outputs of a stratified sample of the training split are fitted offline, level by level
on residuals (Lloyd's k-means, as a residual VQ is classically trained: Juang & Gray 1982; the greedy stage-wise
fit of EnCodec's and SoundStream's RVQ), and the shipped codebooks and the refit are both judged on the encoder
outputs of the test split, which neither saw.

Printed, for each level count n = 1..n_q: the SNR of the first n levels' reconstruction (shipped and refit, on
the test split; with `--judge-train` also on the training frames the refit was fitted on) and the gap; per level:
that level's own SNR on the residual it receives, and the share of its codes the test split uses.

Audio goes through what `compress` does before coding (resampled to the model's rate, brought into the loudness
range by `api.level_gain`), each file whole (the corpus cuts recordings into pieces of at most 10 s). Features are
cached as .npy under `--cache`, keyed by the model's id, the manifest and the selection, so a second run with other
k-means settings costs only the fits.

    nice -n 10 .venv/bin/python benchmarks/codebook_real.py --train corpus/train.jsonl --test corpus/test.jsonl \
        --train-seconds 1800 --fit-frames 60000 --init data --iters 10 --cache /work/scratch/realfeat
    ... --init shipped --iters 6   # Lloyd iterations started from the shipped codebooks instead of from the data
    ... --save-refit refit.pt      # the refit codebooks and cluster sizes
    ... --write-model DIR          # the model with the refit codebooks (full state), for `audiocodec export`

Cost, on one thread: encoding runs at about 20 times real time on an idle core (docs/default-model.md); a Lloyd
pass over N frames at one level is N x 1024 x 128 multiply-adds (0.11 s of CPU per 16,384 frames), so a 16-level
fit is 16 x (iters + 1) passes: 60,000 frames and 10 iterations take about 75 s of CPU. `--levels 4` fits and
judges the first four levels only (the 1.5 and 3 kb/s ones), a quarter of that.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from audiocodec.api import LOUDNESS_RANGE, level_gain
from audiocodec.io.audio import read_audio, read_manifest, to_model_format
from audiocodec.model import Codec
from audiocodec.quantization.kmeans import sample_rows


def stratified(entries: list[dict], seconds: float | None, seed: int) -> list[dict]:
    """About `seconds` of audio from `entries`, every (category, source) stratum represented in proportion to its
    duration (at least one file each), files drawn at random within a stratum with `seed`. None: every entry."""
    if seconds is None:
        return list(entries)
    strata: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for entry in entries:
        strata[(entry.get("category", "?"), entry.get("source", "?"))].append(entry)
    total = sum(float(e.get("seconds", 1.0)) for e in entries)
    share = min(1.0, seconds / max(total, 1e-9))
    chosen = []
    for key in sorted(strata):
        files = sorted(strata[key], key=lambda e: e["path"])
        random.Random(f"{seed}:{key}").shuffle(files)
        quota = share * sum(float(e.get("seconds", 1.0)) for e in files)
        taken = 0.0
        for entry in files:
            if taken >= quota and taken > 0:
                break
            chosen.append(entry)
            taken += float(entry.get("seconds", 1.0))
    return chosen


@torch.inference_mode()
def encode_files(model: Codec, manifest: Path, entries: list[dict], level: bool) -> tuple[np.ndarray, np.ndarray]:
    """Encoder features `[frames, D]` (float32) of `entries` and, per frame, the index of its file's stratum."""
    root = manifest.parent
    strata = sorted({(e.get("category", "?"), e.get("source", "?")) for e in entries})
    index = {key: i for i, key in enumerate(strata)}
    feats, labels = [], []
    start = time.perf_counter()
    for number, entry in enumerate(entries, 1):
        path = Path(entry["path"])
        wav, rate = read_audio(path if path.is_absolute() else root / path)
        audio = to_model_format(torch.from_numpy(wav), rate, model.sample_rate, model.channels)
        gain = level_gain(audio, model.sample_rate, LOUDNESS_RANGE) if level else None
        if gain is not None:
            audio = audio * gain
        latent = model.encode_features(audio[None])[0].t().contiguous()  # [frames, D]
        feats.append(latent.float().numpy())
        labels.append(np.full(latent.shape[0], index[(entry.get("category", "?"), entry.get("source", "?"))],
                              dtype=np.int16))
        if number % 100 == 0:
            print(f"  {number}/{len(entries)} files, {time.perf_counter() - start:.0f} s", file=sys.stderr)
    return np.concatenate(feats), np.concatenate(labels)


def cached_features(model: Codec, manifest: Path, seconds: float | None, seed: int, level: bool,
                    cache: Path) -> tuple[torch.Tensor, dict]:
    entries = stratified(read_manifest(manifest), seconds, seed)
    key = hashlib.sha256(json.dumps([model.model_id(), str(manifest.resolve()), [e["path"] for e in entries],
                                     level]).encode()).hexdigest()[:16]
    path = cache / f"features_{manifest.stem}_{key}.npy"
    info = {"files": len(entries), "seconds": sum(float(e.get("seconds", 0.0)) for e in entries),
            "strata": len({(e.get("category"), e.get("source")) for e in entries}), "cache": str(path)}
    if path.is_file():
        info["encode_s"] = 0.0
        return torch.from_numpy(np.load(path)), info
    start = time.perf_counter()
    feats, labels = encode_files(model, manifest, entries, level)
    info["encode_s"] = time.perf_counter() - start
    cache.mkdir(parents=True, exist_ok=True)
    np.save(path, feats)
    np.save(path.with_name(path.stem + "_strata.npy"), labels)
    return torch.from_numpy(feats), info


def nearest(x: torch.Tensor, books: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
    """Index of the nearest code for each row of `x` [N, D]: `argmin |E|^2 - 2 x E^T` in one addmm per chunk.

    About 2.7 times faster on one thread than `quantization.nearest.nearest_codes`, which writes EnCodec's
    expression term for term so that EnCodec's weights give EnCodec's codes bit for bit; the two differ only on
    exact ties, which do not move an SNR. The offline fits need the speed (hundreds of passes over the data)."""
    norms = books.pow(2).sum(1)
    return torch.cat([torch.addmm(norms, part, books.t(), alpha=-2).argmin(1) for part in x.split(chunk)])


def lloyd(data: torch.Tensor, means: torch.Tensor, iters: int, generator: torch.Generator | None = None
          ) -> tuple[torch.Tensor, torch.Tensor]:
    """Lloyd iterations from `means`; returns the centroids and their final cluster sizes.

    With a `generator`, a cluster left empty is re-seeded with a row drawn in proportion to its squared distance
    from its centroid (the k-means++ rule, as `quantization.kmeans` does); without one it keeps its centroid
    (Lloyd iterations from shipped codebooks, whose codes may serve the test split if not the sample)."""
    means = means.clone()
    assign = nearest(data, means)
    for _ in range(iters):
        counts = torch.bincount(assign, minlength=means.shape[0])
        sums = torch.zeros_like(means).index_add_(0, assign, data)
        filled = counts > 0
        means[filled] = sums[filled] / counts[filled, None].to(data.dtype)
        if generator is not None and not filled.all():
            errors = (data - means[assign]).pow(2).sum(1)
            picks = torch.multinomial(errors, int((~filled).sum()), replacement=True, generator=generator)
            means[~filled] = data[picks]
        assign = nearest(data, means)
    return means, torch.bincount(assign, minlength=means.shape[0]).to(data.dtype)


def fit_rvq(train: torch.Tensor, shipped: list[torch.Tensor], init: str, iters: int, seed: int,
            log: bool = True) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Codebooks fitted level by level, each on the residual the refit's earlier levels leave on `train`."""
    residual = train
    books, sizes = [], []
    for k, book in enumerate(shipped):
        start = time.perf_counter()
        if init == "shipped":
            means, counts = lloyd(residual, book, iters)
        else:  # k-means from distinct rows of the data, drawn with a fixed seed
            generator = torch.Generator().manual_seed(seed * 1000 + k)
            means, counts = lloyd(residual, sample_rows(residual, book.shape[0], generator), iters, generator)
        books.append(means)
        sizes.append(counts)
        residual = residual - means[nearest(residual, means)]
        if log:
            print(f"  level {k}: fitted in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return books, sizes


def db(signal: float, noise: float) -> float:
    """10 log10(signal / noise); infinite for an exact reconstruction (a tiny sample with more codes than rows)."""
    return 10 * math.log10(signal / noise) if noise > 0 else math.inf


def judge(data: torch.Tensor, books: list[torch.Tensor]) -> dict:
    """Cumulative SNR (dB) after each level, each level's SNR on its own input, and its share of codes used."""
    energy = float(data.double().pow(2).sum())
    residual = data
    cumulative, own, used = [], [], []
    for book in books:
        codes = nearest(residual, book)
        after = residual - book[codes]
        own.append(db(float(residual.double().pow(2).sum()), float(after.double().pow(2).sum())))
        residual = after
        cumulative.append(db(energy, float(residual.double().pow(2).sum())))
        used.append(float(torch.bincount(codes, minlength=book.shape[0]).gt(0).double().mean()))
    return {"cumulative": cumulative, "own": own, "used": used}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default", help="model directory, or 'default' (the embedded model)")
    parser.add_argument("--train", type=Path, default=Path("corpus/train.jsonl"), help="manifest to fit on")
    parser.add_argument("--test", type=Path, default=Path("corpus/test.jsonl"), help="manifest to judge on")
    parser.add_argument("--train-seconds", type=float, default=1800.0,
                        help="seconds of the training manifest to encode, stratified (default 1800)")
    parser.add_argument("--test-seconds", type=float, default=None,
                        help="seconds of the test manifest to encode, stratified (default: all of it)")
    parser.add_argument("--fit-frames", type=int, default=0,
                        help="fit on at most this many training frames, drawn at random (0: all)")
    parser.add_argument("--init", choices=["data", "shipped", "both"], default="both",
                        help="k-means from rows of the data (reseeding empty clusters k-means++-style) or Lloyd "
                             "iterations from the shipped codebooks; 'both' prints both")
    parser.add_argument("--iters", type=int, default=20, help="Lloyd iterations per level (default 20)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--levels", type=int, default=0,
                        help="fit and judge only the first N levels (0: all); level k's fit depends only on the "
                             "levels before it, so the first rows are those of a full run")
    parser.add_argument("--judge-train", action="store_true",
                        help="also print SNRs on the training frames the refit was fitted on (in-sample)")
    parser.add_argument("--no-level", action="store_true", help="code audio at its own level (compress levels it)")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "audiocodec_codebook_real",
                        help="feature cache folder (default: audiocodec_codebook_real in the temporary folder)")
    parser.add_argument("--save-refit", type=Path, default=None,
                        help="write each refit's codebooks and cluster sizes (torch.save, keyed by --init)")
    parser.add_argument("--write-model", type=Path, default=None,
                        help="write the model with the last --init's refit codebooks as a full (float32) model "
                             "directory, for `audiocodec export ... --compact --int8 --recount` or fine-tuning")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    model = Codec.from_pretrained(args.model)
    model.eval()
    shipped = [level.embedding.detach().float().clone() for level in model.quantizer.levels]
    if args.levels:
        shipped = shipped[:args.levels]
    n_q, bins = len(shipped), shipped[0].shape[0]

    train, train_info = cached_features(model, args.train, args.train_seconds, args.seed, not args.no_level,
                                        args.cache)
    test, test_info = cached_features(model, args.test, args.test_seconds, args.seed, not args.no_level, args.cache)
    if args.fit_frames and train.shape[0] > args.fit_frames:
        pick = torch.randperm(train.shape[0], generator=torch.Generator().manual_seed(args.seed))[:args.fit_frames]
        train = train[pick]
    print(f"model {model.model_id()}: {len(model.quantizer.levels)} levels of {bins} codes, dimension "
          f"{shipped[0].shape[1]}; fitting and judging {n_q}")
    for name, info, feats in (("train", train_info, train), ("test", test_info, test)):
        print(f"{name}: {info['files']} files ({info['seconds'] / 60:.1f} min, {info['strata']} strata), "
              f"{feats.shape[0]} frames used, encoded in {info['encode_s']:.0f} s; cache {info['cache']}")

    inits = ["data", "shipped"] if args.init == "both" else [args.init]
    shipped_test = judge(test, shipped)
    shipped_train = judge(train, shipped) if args.judge_train else None
    refits = {}
    for init in inits:
        start = time.perf_counter()
        books, sizes = fit_rvq(train, shipped, init, args.iters, args.seed)
        refits[init] = (books, sizes, judge(test, books), judge(train, books) if args.judge_train else None,
                        time.perf_counter() - start)
    if args.save_refit is not None:
        torch.save({init: {"iters": args.iters, "codebooks": refits[init][0], "sizes": refits[init][1],
                           "train_frames": train.shape[0], "model_id": model.model_id()} for init in inits},
                   args.save_refit)

    print(f"\nSNR in dB on the test split ({test.shape[0]} frames); refits fitted on {train.shape[0]} training "
          f"frames, {args.iters} Lloyd iterations per level")
    header = "| levels | shipped |"
    rule = "|---|---|"
    for init in inits:
        header += f" refit ({init} init) | gap |" + (" refit on train |" if args.judge_train else "")
        rule += "---|---|" + ("---|" if args.judge_train else "")
    print(header + (" shipped on train |" if args.judge_train else ""))
    print(rule + ("---|" if args.judge_train else ""))
    for n in range(n_q):
        row = f"| {n + 1} | {shipped_test['cumulative'][n]:.2f} |"
        for init in inits:
            r = refits[init]
            row += f" {r[2]['cumulative'][n]:.2f} | {r[2]['cumulative'][n] - shipped_test['cumulative'][n]:+.2f} |"
            if args.judge_train:
                row += f" {r[3]['cumulative'][n]:.2f} |"
        print(row + (f" {shipped_train['cumulative'][n]:.2f} |" if args.judge_train else ""))

    print("\nPer level, on the test split: the level's own SNR on the residual it receives, and codes used")
    header = "| level | shipped SNR | shipped used |"
    rule = "|---|---|---|"
    for init in inits:
        header += f" refit ({init}) SNR | refit ({init}) used |"
        rule += "---|---|"
    print(header)
    print(rule)
    for k in range(n_q):
        row = f"| {k} | {shipped_test['own'][k]:.2f} | {100 * shipped_test['used'][k]:.1f}% |"
        for init in inits:
            r = refits[init][2]
            row += f" {r['own'][k]:.2f} | {100 * r['used'][k]:.1f}% |"
        print(row)
    for init in inits:
        print(f"refit ({init} init): {refits[init][4]:.0f} s")
    worst = max(max(r[2]["cumulative"][n] - shipped_test["cumulative"][n] for n in range(n_q))
                for r in refits.values())
    print(f"\nlargest cumulative gain of a refit over the shipped codebooks: {worst:+.2f} dB")
    if args.write_model is not None:
        books, sizes = refits[inits[-1]][:2]
        write_model(args.model, books, sizes, args.write_model)
        print(f"wrote the model with the refit ({inits[-1]} init) codebooks to {args.write_model}")


def write_model(source: str, books: list[torch.Tensor], sizes: list[torch.Tensor], out: Path) -> None:
    """`source` with each level's codebook replaced by the refit's. Usage counts are the refit's cluster sizes
    rescaled to the shipped level's total (the EMA's unit: vectors per step), and the EMA sums are rebuilt from
    them (`restore_training_state`), so training or expiry continue from the refit consistently."""
    model = Codec.from_pretrained(source)
    with torch.no_grad():
        for level, book, size in zip(model.quantizer.levels, books, sizes):
            total = float(level.cluster_usage.sum())
            level.embedding.copy_(book)
            level.cluster_usage.copy_(size * (total / max(float(size.sum()), 1.0)))
        model.quantizer.restore_training_state()
    model.save_pretrained(out)


if __name__ == "__main__":
    main()
