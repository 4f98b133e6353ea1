"""Codebook learning benchmark: EnCodec's quantizer vs audiocodec's EMA (and Gumbel, FSQ) quantizers vs offline k-means.

Each method trains on the same stream of encoder-like features (a Gaussian mixture with Zipf weights, per-cluster
spreads and more clusters than codes), then is measured on held-out data from the stream's final distribution.
Two streams: a stationary one, and a drifting one whose clusters all move steadily during the first two thirds of
training (as an encoder's outputs do while it learns), which is when dead codes appear and expiry matters. The
offline limit is k-means RVQ (level by level, each on the residual the previous ones leave) fitted on plenty of
vectors of the final distribution.

Two row sets (`--scale`):
- codec: what a codec quantizes. D = 128, 8 levels of 1,024 codes, 600 vectors a step (one of EnCodec's GPUs) for
  400 steps, 4,096 clusters with Zipf 1.1 weights; the offline limit on 80,000 vectors, 10 Lloyd iterations
  (cached in --cache, since it is the slowest part). Per level: codes used on held-out data, perplexity / bins,
  and the SNR with the first 1, 2, ... levels.
- small: the original configuration, D = 32, 4 levels, 300 steps, the offline limit on 16 x 1024 vectors, 100
  iterations; also the Gumbel quantizer and residual FSQ at equal bits (a grid of 1,024 codes, 8x8x4x4).

Run (one thread; codec scale takes minutes a stream on an idle core, the offline limit once more per stream):

    .venv/bin/python benchmarks/codebook.py                       # both scales, then the cost table
    .venv/bin/python benchmarks/codebook.py --scale codec --zipf 0.8 --clusters 2048 --seed 1   # another mixture
    .venv/bin/python benchmarks/codebook.py --scale codec --option threshold=0.05 --methods ema  # try a setting
    .venv/bin/python benchmarks/codebook.py --scale small --steps 100 --bins 64 --held-out 5000   # quick look

The cost table compares the quantizer's training forward (statistics, sync, EMA, amortised expiry) with its eval
forward at codec size, and one training step (forward + backward) of the embedded default model's config with the
quantizer learning and without (quantizer in eval mode), interleaved.

With `--audio DIR` (mono or stereo WAV/FLAC files, e.g. the speech recordings of Debian's alsa-utils in
/usr/share/sounds/alsa) it instead trains a small codec briefly on that real audio twice, with audiocodec's
quantizer and with the encodec package's quantizer swapped in (for this comparison only), and prints per-level
codes used and perplexity on the whole corpus at the end.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from audiocodec.quantization import ResidualVectorQuantizer
from audiocodec.quantization.kmeans import kmeans
from audiocodec.quantization.nearest import nearest_codes


@dataclass(frozen=True)
class StreamSpec:
    """What a stream is: a Gaussian mixture in `dimension` dimensions with `clusters` components of Zipf(`zipf`)
    weights and per-cluster spreads (standard deviations uniform in [0.5, 1.5] x `spread`, centres ~ N(0, 1)),
    `frames` vectors a step for `steps` steps; with `drift`, every centre moves
    steadily by about 1.5x the spread of the centres during the first `drift_fraction` of training."""

    dimension: int
    clusters: int
    zipf: float
    steps: int
    frames: int
    drift: bool
    seed: int
    drift_fraction: float = 2 / 3
    spread: float = 0.15

    def key(self) -> str:
        return (f"d{self.dimension}-c{self.clusters}-z{self.zipf:g}-s{self.steps}-f{self.frames}-"
                f"{'drift' + format(self.drift_fraction, '.3f') if self.drift else 'stationary'}-seed{self.seed}"
                + (f"-sp{self.spread:g}" if self.spread != 0.15 else ""))


@dataclass
class Stream:
    """A Gaussian mixture whose centres may move. Training batches, held-out data and the offline reference's data
    come from separate generators, so each is the same whatever else was drawn (and the reference can be cached)."""

    spec: StreamSpec
    start: torch.Tensor  # [C, D] centres at step 0
    shift: torch.Tensor  # [C, D] total displacement (zero for a stationary stream)
    scales: torch.Tensor  # [C] within-cluster standard deviation
    weights: torch.Tensor  # [C] Zipf probabilities

    def centres(self, step: int) -> torch.Tensor:
        drift_steps = max(round(self.spec.drift_fraction * self.spec.steps), 1)
        return self.start + min(step / drift_steps, 1.0) * self.shift

    def sample(self, step: int, frames: int, generator: torch.Generator) -> torch.Tensor:
        """Features `[1, D, frames]` from the mixture as it is at `step`."""
        pick = torch.multinomial(self.weights, frames, replacement=True, generator=generator)
        noise = torch.randn(frames, self.start.shape[1], generator=generator)
        points = self.centres(step)[pick] + self.scales[pick, None] * noise
        return points.t().unsqueeze(0).contiguous()

    def batches(self) -> list[torch.Tensor]:
        generator = torch.Generator().manual_seed(self.spec.seed * 7919 + 1)
        return [self.sample(step, self.spec.frames, generator) for step in range(self.spec.steps)]

    def final(self, frames: int, purpose: int) -> torch.Tensor:
        """`frames` vectors `[1, D, frames]` of the final distribution; `purpose` picks an independent draw."""
        generator = torch.Generator().manual_seed(self.spec.seed * 7919 + 2 + purpose)
        return self.sample(self.spec.steps, frames, generator)


HELD_OUT, REFERENCE = 0, 1


def make_stream(spec: StreamSpec) -> Stream:
    generator = torch.Generator().manual_seed(spec.seed)
    start = torch.randn(spec.clusters, spec.dimension, generator=generator)
    shift = 1.5 * torch.randn(spec.clusters, spec.dimension, generator=generator)
    if not spec.drift:
        shift.zero_()
    scales = spec.spread * (0.5 + torch.rand(spec.clusters, generator=generator))
    ranks = torch.randperm(spec.clusters, generator=generator).double() + 1
    weights = (1.0 / ranks ** spec.zipf).float()
    return Stream(spec, start, shift, scales, weights / weights.sum())


@dataclass
class Method:
    """A quantizer under test: one training step on `[1, D, T]`, and codes `[n_q, N]` / reconstruction `[N, D]`
    per cumulative level count (`quantize(x)` returns the codes and the reconstructions with 1..n_q levels)."""

    name: str
    train_step: Callable[[torch.Tensor], None]
    quantize: Callable[[torch.Tensor], tuple[list[torch.Tensor], list[torch.Tensor]]]


def cumulative(books: Callable[[int], torch.Tensor], codes: list[torch.Tensor]) -> list[torch.Tensor]:
    recons, total = [], 0
    for k, c in enumerate(codes):
        total = total + books(k)[c]
        recons.append(total)
    return recons


def encodec_method(dimension: int, n_q: int, bins: int) -> Method:
    from encodec.quantization.vq import ResidualVectorQuantizer as EncodecRVQ

    q = EncodecRVQ(dimension=dimension, n_q=n_q, bins=bins).train()  # shipped defaults: k-means 50, threshold 2

    def quantize(x):
        with torch.no_grad():
            codes = [c.reshape(-1) for c in q.vq.encode(x, n_q=n_q)]  # [n_q, 1, T]
        return codes, cumulative(lambda k: q.vq.layers[k].codebook, codes)

    return Method("encodec 0.1.1", lambda x: q(x, sample_rate=1), quantize)


def audiocodec_method(dimension: int, n_q: int, bins: int, kind: str, steps: int, name: str | None = None,
                      **options) -> Method:
    if kind == "gumbel":
        options = dict(temperature_start=2.0, temperature_end=0.5, temperature_decay=0.5 ** (1 / max(steps / 4, 1)))
    q = ResidualVectorQuantizer(dimension, n_q, bins, kind=kind, **options).train()
    optimizer = torch.optim.Adam(q.parameters(), lr=1e-3) if kind == "gumbel" else None

    def train_step(x):
        out = q(x)
        if optimizer is not None and out.loss.requires_grad:
            # Stands in for a codec's reconstruction loss, which is what trains a Gumbel codebook.
            loss = out.loss + (out.quantized - x).pow(2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    def quantize(x):
        with torch.no_grad():
            codes = [c.reshape(-1) for c in q.encode(x).unbind(1)]
        return codes, cumulative(lambda k: q.levels[k].embedding, codes)

    return Method(name or f"audiocodec {kind}", train_step, quantize)


def fsq_grid(bins: int) -> list[int]:
    """An FSQ grid of exactly `bins` codes when `bins` is a power of two (equal bits), a few bits per dimension:
    1024 -> [8, 8, 4, 4], 64 -> [8, 8], 16 -> [4, 4]."""
    bits = int(math.log2(bins))
    if 2 ** bits != bins:
        raise SystemExit(f"--bins {bins}: the FSQ rows need a power of two (a grid of exactly that many codes)")
    dims = max(1, round(bits / 2.5))
    return [2 ** (bits // dims + (i < bits % dims)) for i in range(dims)]


def fsq_method(dimension: int, n_q: int, bins: int) -> Method:
    """Residual FSQ at the same bits per level: a grid of `bins` codes, learnt projections (Adam, as Gumbel's
    codebook), trained by the same stand-in reconstruction loss."""
    levels = fsq_grid(bins)
    q = ResidualVectorQuantizer(dimension, n_q, bins, kind="fsq", fsq={"levels": levels}).train()
    optimizer = torch.optim.Adam(q.parameters(), lr=1e-3)

    def train_step(x):
        out = q(x)
        loss = out.loss + (out.quantized - x).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    def quantize(x):
        q.eval()
        with torch.no_grad():
            codes = q.encode(x)
            recons = [q.decode(codes[:, :k])[0].t() for k in range(1, n_q + 1)]
        q.train()
        return [codes[0, k] for k in range(n_q)], recons

    return Method(f"fsq {'x'.join(map(str, levels))}", train_step, quantize)


def fit_reference(data: torch.Tensor, n_q: int, bins: int, iters: int) -> list[torch.Tensor]:
    """K-means level by level on `data` [N, D], each level on the residual the previous ones leave."""
    books, residual = [], data
    for level in range(n_q):
        means, _ = kmeans(residual, bins, iters, torch.Generator().manual_seed(level))
        books.append(means)
        residual = residual - means[nearest_codes(residual, means)]
    return books


def offline_reference(stream: Stream, n_q: int, bins: int, vectors: int, iters: int,
                      cache: Path | None) -> Method:
    """The offline limit: k-means RVQ fitted on `vectors` vectors of the final distribution (cached on disk, since
    at codec scale it is the slowest part of the benchmark)."""
    path = None
    if cache is not None:
        path = cache / f"limit-{stream.spec.key()}-q{n_q}-b{bins}-n{vectors}-i{iters}.pt"
    if path is not None and path.exists():
        books = torch.load(path)
    else:
        books = fit_reference(stream.final(vectors, REFERENCE)[0].t(), n_q, bins, iters)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.save(books, path)

    def quantize(x):
        residual, codes = x[0].t(), []
        for means in books:
            c = nearest_codes(residual, means)
            codes.append(c)
            residual = residual - means[c]
        return codes, cumulative(lambda k: books[k], codes)

    return Method("offline k-means", lambda x: None, quantize)


def measure(method: Method, held_out: torch.Tensor, bins: int) -> dict:
    """Per level: codes used and perplexity / bins; SNR (dB) with the first 1, 2, ... levels."""
    codes, recons = method.quantize(held_out)
    target = held_out[0].t()
    energy = float(target.pow(2).sum())
    snrs = [10 * math.log10(energy / float((target - r).pow(2).sum())) for r in recons]
    used, perplexity = [], []
    for c in codes:
        counts = torch.bincount(c, minlength=bins).double()
        p = counts / counts.sum()
        used.append(float((counts > 0).double().mean()))
        perplexity.append(math.exp(float(-(p[p > 0] * p[p > 0].log()).sum())) / bins)
    return {"used": used, "perplexity": perplexity, "snrs": snrs, "snr": snrs[-1]}


def run_stream(spec: StreamSpec, n_q: int, bins: int, methods: list[Callable[[], Method]], held_out: int,
               reference_vectors: int, reference_iters: int, cache: Path | None) -> list[tuple[str, dict, float]]:
    stream = make_stream(spec)
    batches = stream.batches()
    held = stream.final(held_out, HELD_OUT)
    results = []
    for build in methods:
        torch.manual_seed(spec.seed)
        method = build()
        times = []
        for x in batches:
            start = time.perf_counter()
            method.train_step(x)
            times.append(time.perf_counter() - start)
        results.append((method.name, measure(method, held, bins), 1e3 * statistics.median(times)))
    reference = offline_reference(stream, n_q, bins, reference_vectors, reference_iters, cache)
    results.append((reference.name, measure(reference, held, bins), float("nan")))
    return results


def print_table(title: str, results: list[tuple[str, dict, float]], per_level_snr: bool = False) -> None:
    print(f"\n{title}")
    n_q = len(results[0][1]["used"])
    width = max(6 * n_q, 34)
    names = max(18, *(len(name) for name, _, _ in results))
    print(f"{'method':<{names}} {'codes used per level (held-out)':<{width}} {'perplexity/bins per level':<{width}} "
          f"{'SNR dB':>7} {'ms/step':>8}")
    for name, r, ms in results:
        used = " ".join(f"{u:5.0%}" for u in r["used"])
        perp = " ".join(f"{p:5.2f}" for p in r["perplexity"])
        print(f"{name:<{names}} {used:<{width}} {perp:<{width}} {r['snr']:7.2f} {ms:8.2f}")
    if per_level_snr:
        print("SNR dB with the first 1, 2, ... levels:")
        for name, r, _ in results:
            print(f"{name:<{names}} " + " ".join(f"{s:5.2f}" for s in r["snrs"]))
    base = dict((name, r["snr"]) for name, r, _ in results)
    reference = base["offline k-means"]
    for name in base:
        if name.startswith("audiocodec ema"):
            line = f"{name} - offline k-means: {base[name] - reference:+.2f} dB"
            if "encodec 0.1.1" in base:
                line += f"; {name} - encodec: {base[name] - base['encodec 0.1.1']:+.2f} dB"
            print(line)


def mean_ms(fn: Callable[[], object], repeats: int) -> float:
    """Mean, not median, so that the expiry every `expire_every` steps is counted, amortised."""
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return 1e3 * (time.perf_counter() - start) / repeats


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def update_overhead(args) -> None:
    """What learning the codebooks costs: the quantizer's training forward against its eval forward at codec size,
    and a training step (forward + backward) of the default model's config with and without that learning work."""
    dimension, n_q, bins, frames = 128, 8, 1024, 600
    q = ResidualVectorQuantizer(dimension, n_q, bins, kmeans_iters=10).train()
    generator = torch.Generator().manual_seed(args.seed)
    batches = [torch.randn(1, dimension, frames, generator=generator) for _ in range(60)]
    for x in batches:  # k-means initialisation happens during these
        q(x)
    x = batches[0]
    with torch.no_grad():
        train_ms = mean_ms(lambda: q(x), args.overhead_repeats)
        q.eval()
        eval_ms = mean_ms(lambda: q(x), args.overhead_repeats)
    q.train()
    print(f"\nquantizer at codec size (D={dimension}, n_q={n_q}, bins={bins}, frames/step={frames}), "
          f"mean of {args.overhead_repeats} steps (expiry every {q.config.ema.expire_every} steps amortised):")
    print(f"{'eval forward':<44} {eval_ms:8.2f} ms")
    print(f"{'training forward (with codebook update)':<44} {train_ms:8.2f} ms")
    print(f"{'codebook update':<44} {train_ms - eval_ms:8.2f} ms")
    try:
        from audiocodec.model import Codec, CodecConfig
        from audiocodec.pretrained import model_directory
    except ImportError as error:
        print(f"codec step: not measured ({error})")
        return
    meta = json.loads((model_directory("default") / "config.json").read_text())
    config = CodecConfig.from_dict(meta["config"])
    torch.manual_seed(args.seed)
    codec = Codec(config).train()
    seconds = frames / codec.frame_rate / 8
    wav = torch.randn(8, codec.channels, int(seconds * codec.sample_rate), generator=generator) * 0.1

    def codec_step(learn: bool):
        codec.quantizer.train(learn)
        out = codec(wav, n_q=config.quantizer.n_q)
        (out.audio - wav).abs().mean().add(out.quantizer_loss).backward()
        codec.zero_grad(set_to_none=True)

    steps_to_init = math.ceil(codec.quantizer.recent.shape[0] / frames)
    for _ in range(steps_to_init + 1):  # until k-means has initialised the codebooks
        codec_step(True)
    with_learning, without = [], []
    for _ in range(args.codec_repeats):  # interleaved, so that load from other jobs affects both alike
        with_learning.append(median_ms(lambda: codec_step(True), 1))
        without.append(median_ms(lambda: codec_step(False), 1))
    step_ms, plain_ms = statistics.median(with_learning), statistics.median(without)
    print(f"\ndefault model's config ({config.name}: n_filters={config.n_filters}, dimension={config.dimension}, "
          f"n_q={config.quantizer.n_q}, bins={config.quantizer.bins}), one training step = forward + backward of "
          f"L1 + quantizer loss on 8 x {seconds:.2f} s ({frames} frames), all levels, median of "
          f"{args.codec_repeats}, {torch.get_num_threads()} thread(s):")
    print(f"{'with codebook learning (quantizer in training)':<52} {step_ms:8.1f} ms")
    print(f"{'without (quantizer in eval: encode/decode only)':<52} {plain_ms:8.1f} ms")
    print(f"codebook learning / training step: {100 * (step_ms - plain_ms) / step_ms:.1f}% "
          f"(quantizer-only estimate at n_q={n_q}: {100 * (train_ms - eval_ms) / step_ms:.1f}%)")


class EncodecQuantizer(torch.nn.Module):
    """The encodec package's RVQ behind audiocodec's quantizer interface (benchmark only; it keeps EnCodec's bugs)."""

    def __init__(self, dimension: int, n_q: int, bins: int):
        super().__init__()
        from encodec.quantization.vq import ResidualVectorQuantizer as EncodecRVQ

        self.rvq = EncodecRVQ(dimension=dimension, n_q=n_q, bins=bins)
        self.n_q, self.bins = n_q, bins

    @property
    def dtype(self) -> torch.dtype:  # the codec casts features to its quantizer's dtype
        return self.rvq.vq.layers[0]._codebook.embed.dtype

    def forward(self, x: torch.Tensor, n_q: int | None = None):
        from audiocodec.quantization import QuantizerOutput

        quantized, codes, losses = self.rvq.vq(x, n_q=n_q)
        return QuantizerOutput(quantized, codes.transpose(0, 1), losses.mean(), {})

    def encode(self, x: torch.Tensor, n_q: int | None = None) -> torch.Tensor:
        return self.rvq.vq.encode(x, n_q=n_q).transpose(0, 1)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        return self.rvq.vq.decode(codes.transpose(0, 1))


def load_corpus(folder: str, sample_rate: int) -> torch.Tensor:
    """All audio files of `folder`, mono, resampled, concatenated: `[T]`."""
    from pathlib import Path

    import soundfile
    import torchaudio.functional as AF

    pieces = []
    for path in sorted(Path(folder).iterdir()):
        if path.suffix.lower() not in (".wav", ".flac") or path.stem.lower() == "noise":
            continue
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
        mono = torch.from_numpy(data).mean(1)
        pieces.append(AF.resample(mono, rate, sample_rate))
    if not pieces:
        raise SystemExit(f"no .wav or .flac files in {folder}")
    return torch.cat(pieces)


def audio_run(args) -> None:
    from audiocodec.model import Codec, CodecConfig
    from audiocodec.quantization import QuantizerConfig

    n_q, bins, crop, batch = 4, args.audio_bins, 12000, 4
    config = CodecConfig(n_filters=8, dimension=64, lstm=0, target_bandwidths=(2.0,),
                         quantizer=QuantizerConfig(n_q=n_q, bins=bins, kmeans_iters=50))
    corpus = load_corpus(args.audio, config.sample_rate)
    print(f"real audio: {corpus.numel() / config.sample_rate:.1f} s from {args.audio} at {config.sample_rate} Hz; "
          f"codec n_filters=8 dimension=64, n_q={n_q} bins={bins}, {args.audio_steps} steps of {batch} x "
          f"{crop / config.sample_rate:.2f} s crops, Adam 3e-4, L1 + quantizer loss")
    print(f"{'quantizer':<18} {'codes used per level (corpus)':<34} {'perplexity/bins per level':<34} {'L1 end':>8}")
    fsq = config.replace(quantizer=QuantizerConfig(kind="fsq", n_q=n_q, bins=bins, fsq={"levels": fsq_grid(bins)}))
    for name in ("audiocodec ema", "encodec 0.1.1", "audiocodec fsq"):
        torch.manual_seed(args.seed)
        codec = Codec(fsq if name == "audiocodec fsq" else config)
        if name.startswith("encodec"):
            codec.quantizer = EncodecQuantizer(config.dimension, n_q, bins)
        codec.train()
        optimizer = torch.optim.Adam(codec.parameters(), lr=3e-4)
        generator = torch.Generator().manual_seed(args.seed)
        losses = []
        for _ in range(args.audio_steps):
            starts = torch.randint(0, corpus.numel() - crop, (batch,), generator=generator)
            wav = torch.stack([corpus[s:s + crop] for s in starts.tolist()]).unsqueeze(1)
            out = codec(wav)
            l1 = (out.audio - wav).abs().mean()
            optimizer.zero_grad()
            (l1 + out.quantizer_loss).backward()
            optimizer.step()
            losses.append(float(l1.detach()))
        codec.eval()
        with torch.no_grad():
            codes = codec.quantizer.encode(codec.encode_features(corpus.view(1, 1, -1)), n_q)[0]
        used, perplexity = [], []
        for c in codes:
            counts = torch.bincount(c, minlength=bins).double()
            p = counts[counts > 0] / counts.sum()
            used.append(f"{float((counts > 0).double().mean()):5.0%}")
            perplexity.append(f"{math.exp(float(-(p * p.log()).sum())) / bins:5.2f}")
        print(f"{name:<18} {' '.join(used):<34} {' '.join(perplexity):<34} "
              f"{statistics.mean(losses[-10:]):8.4f}")


SCALES = {
    # The original configuration: small vectors, where the EMA quantizer was first shown to work.
    "small": dict(dimension=32, n_q=4, bins=1024, clusters=4096, zipf=1.1, spread=0.15, steps=300, frames=600,
                  held_out=50000, reference_vectors=16 * 1024, reference_iters=100,
                  methods="encodec,ema,gumbel,fsq"),
    # What a codec quantizes: EnCodec's quantizer size and one GPU's frames per step.
    "codec": dict(dimension=128, n_q=8, bins=1024, clusters=4096, zipf=1.1, spread=0.15, steps=400, frames=600,
                  held_out=50000, reference_vectors=80000, reference_iters=10, methods="encodec,ema"),
}


def parse_option(text: str) -> tuple[str, object]:
    name, _, value = text.partition("=")
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        parsed = value
    return name.replace("-", "_"), parsed


def run_scale(args, scale: str) -> None:
    settings = dict(SCALES[scale])
    for name in ("dimension", "n_q", "bins", "clusters", "zipf", "spread", "steps", "frames", "held_out",
                 "reference_vectors", "reference_iters", "methods"):
        if getattr(args, name) is not None:
            settings[name] = getattr(args, name)
    s = settings
    options = dict(parse_option(o) for o in args.option)
    label = "audiocodec ema" + (" " + " ".join(args.option) if options else "")
    builders = {
        "encodec": lambda: encodec_method(s["dimension"], s["n_q"], s["bins"]),
        "ema": lambda: audiocodec_method(s["dimension"], s["n_q"], s["bins"], "ema", s["steps"], label, **options),
        "gumbel": lambda: audiocodec_method(s["dimension"], s["n_q"], s["bins"], "gumbel", s["steps"]),
        "fsq": lambda: fsq_method(s["dimension"], s["n_q"], s["bins"]),
    }
    methods = [builders[m] for m in s["methods"].split(",") if m]
    cache = None if args.no_cache else Path(args.cache)
    print(f"\n== {scale} scale: dimension={s['dimension']} n_q={s['n_q']} bins={s['bins']} clusters={s['clusters']} "
          f"(Zipf {s['zipf']:g}, spread {s['spread']:g}) steps={s['steps']} frames/step={s['frames']} "
          f"held-out={s['held_out']} "
          f"offline k-means on {s['reference_vectors']} vectors of the final distribution, {s['reference_iters']} "
          f"iters, seed={args.seed}, threads={args.threads}")
    for drift in (False, True):
        if args.streams != "both" and args.streams != ("drifting" if drift else "stationary"):
            continue
        spec = StreamSpec(s["dimension"], s["clusters"], s["zipf"], s["steps"], s["frames"], drift, args.seed,
                          args.drift_fraction, s["spread"])
        results = run_stream(spec, s["n_q"], s["bins"], methods, s["held_out"], s["reference_vectors"],
                             s["reference_iters"], cache)
        title = (f"drifting stream (every cluster moves steadily during the first {args.drift_fraction:.0%} of "
                 f"training)" if drift else "stationary stream")
        print_table(f"{scale}: {title}", results, per_level_snr=scale == "codec")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", choices=("small", "codec", "both", "none"), default="both",
                        help="codec: D=128, 8 levels (what a codec quantizes); small: D=32, 4 levels; none: only the "
                        "cost table")
    parser.add_argument("--streams", choices=("stationary", "drifting", "both"), default="both")
    parser.add_argument("--dimension", type=int)
    parser.add_argument("--n-q", type=int)
    parser.add_argument("--bins", type=int, help="EnCodec uses 1024 codes for 600 frames a step")
    parser.add_argument("--clusters", type=int, help="mixture components (more than codes)")
    parser.add_argument("--zipf", type=float, help="Zipf exponent of the mixture weights (1.1; flatter: 0.8)")
    parser.add_argument("--spread", type=float, help="per-cluster standard deviations are uniform in [0.5, 1.5] x "
                        "this (0.15), around centres ~ N(0, 1)")
    parser.add_argument("--steps", type=int)
    parser.add_argument("--frames", type=int, help="frames per training step (EnCodec: 600 per GPU)")
    parser.add_argument("--held-out", type=int)
    parser.add_argument("--reference-vectors", type=int, help="offline k-means data (vectors of the final "
                        "distribution)")
    parser.add_argument("--reference-iters", type=int)
    parser.add_argument("--methods", help="comma-separated subset of encodec,ema,gumbel,fsq")
    parser.add_argument("--option", action="append", default=[], metavar="NAME=VALUE",
                        help="a quantizer option for the audiocodec ema row (repeatable), e.g. decay=0.995")
    parser.add_argument("--drift-fraction", type=float, default=2 / 3,
                        help="share of training during which the drifting stream's clusters move")
    parser.add_argument("--cache", default="/work/scratch/codebook", help="folder caching offline k-means limits")
    parser.add_argument("--no-cache", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overhead-repeats", type=int, default=40)
    parser.add_argument("--codec-repeats", type=int, default=7, help="codec training steps timed, each way")
    parser.add_argument("--no-overhead", action="store_true", help="skip the cost table")
    parser.add_argument("--audio", help="folder of real recordings: run the short codec comparison instead")
    parser.add_argument("--audio-steps", type=int, default=300)
    parser.add_argument("--audio-bins", type=int, default=128)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.audio:
        audio_run(args)
        return
    for scale in {"both": ("codec", "small"), "none": ()}.get(args.scale, (args.scale,)):
        run_scale(args, scale)
    if not args.no_overhead:
        update_overhead(args)


if __name__ == "__main__":
    main()
