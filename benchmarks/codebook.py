"""Codebook learning benchmark: EnCodec's quantizer vs audiocodec's EMA, Gumbel and FSQ quantizers vs offline k-means.

Each method trains on the same stream of encoder-like features (a Gaussian mixture with Zipf-like weights and more
clusters than codes), then is measured on held-out data from the stream's final distribution. Two streams: a
stationary one, and a drifting one whose clusters move during the first two thirds of training (as an encoder's
outputs do while it learns), which is when dead codes appear and expiry matters.

Printed per method: share of codes used on held-out data per level, perplexity / bins per level, quantization SNR
in dB over all levels, and the median time of one training step. Run:

    .venv/bin/python benchmarks/codebook.py            # default: about 5 minutes on a shared 2-core machine
    .venv/bin/python benchmarks/codebook.py --steps 100 --bins 64 --held-out 5000   # quick look

A last table measures what the codebook update costs at EnCodec's size (D=128, 8 levels, 1024 codes, 600 frames):
a training forward (with statistics, sync, EMA and amortised expiry) against an eval forward of the same data, and,
when `audiocodec.model.Codec` is available, against one codec training step.

With `--audio DIR` (mono or stereo WAV/FLAC files, e.g. the speech recordings of Debian's alsa-utils in
/usr/share/sounds/alsa) it instead trains a small codec briefly on that real audio twice, with audiocodec's
quantizer and with the encodec package's quantizer swapped in (for this comparison only), and prints per-level
codes used and perplexity on the whole corpus at the end.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from dataclasses import dataclass
from typing import Callable

import torch

from audiocodec.quantization import ResidualVectorQuantizer
from audiocodec.quantization.kmeans import kmeans
from audiocodec.quantization.nearest import nearest_codes


@dataclass
class Stream:
    """A Gaussian mixture whose centres may move; `sample(step, frames)` gives features `[1, D, frames]`."""

    start: torch.Tensor  # [C, D] centres at step 0
    shift: torch.Tensor  # [C, D] total displacement (zero for a stationary stream)
    scales: torch.Tensor  # [C] within-cluster standard deviation
    weights: torch.Tensor  # [C] Zipf-like probabilities
    drift_steps: int
    generator: torch.Generator

    def centres(self, step: int) -> torch.Tensor:
        progress = min(step / max(self.drift_steps, 1), 1.0)
        return self.start + progress * self.shift

    def sample(self, step: int, frames: int) -> torch.Tensor:
        pick = torch.multinomial(self.weights, frames, replacement=True, generator=self.generator)
        noise = torch.randn(frames, self.start.shape[1], generator=self.generator)
        points = self.centres(step)[pick] + self.scales[pick, None] * noise
        return points.t().unsqueeze(0).contiguous()


def make_stream(dimension: int, clusters: int, drift: bool, drift_steps: int, seed: int) -> Stream:
    generator = torch.Generator().manual_seed(seed)
    start = torch.randn(clusters, dimension, generator=generator)
    shift = 1.5 * torch.randn(clusters, dimension, generator=generator) if drift else torch.zeros_like(start)
    scales = 0.15 * (0.5 + torch.rand(clusters, generator=generator))
    ranks = torch.randperm(clusters, generator=generator).double() + 1
    weights = (1.0 / ranks ** 1.1).float()
    return Stream(start, shift, scales, weights / weights.sum(), drift_steps, generator)


@dataclass
class Method:
    """A quantizer under test: one training step on `[1, D, T]`, and codes `[n_q, N]` / reconstruction `[N, D]`."""

    name: str
    train_step: Callable[[torch.Tensor], None]
    quantize: Callable[[torch.Tensor], tuple[list[torch.Tensor], torch.Tensor]]


def encodec_method(dimension: int, n_q: int, bins: int) -> Method:
    from encodec.quantization.vq import ResidualVectorQuantizer as EncodecRVQ

    q = EncodecRVQ(dimension=dimension, n_q=n_q, bins=bins).train()  # shipped defaults: k-means 50, threshold 2

    def quantize(x):
        q.eval()
        codes = q.encode(x, sample_rate=1)  # [n_q, 1, T]
        recon = q.decode(codes)
        q.train()
        return [c.reshape(-1) for c in codes], recon[0].t()

    return Method("encodec 0.1.1", lambda x: q(x, sample_rate=1), quantize)


def audiocodec_method(dimension: int, n_q: int, bins: int, kind: str, steps: int) -> Method:
    options = {}
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
        q.eval()
        with torch.no_grad():
            codes = q.encode(x)
            recon = q.decode(codes)
        q.train()
        return [codes[0, k] for k in range(n_q)], recon[0].t()

    return Method(f"audiocodec {kind}", train_step, quantize)


def fsq_grid(bins: int) -> list[int]:
    """An FSQ grid of exactly `bins` codes when `bins` is a power of two (equal bits), a few bits per dimension:
    1024 -> [8, 8, 4, 4], 64 -> [8, 8], 16 -> [4, 4]."""
    bits = int(math.log2(bins))
    if 2 ** bits != bins:
        raise SystemExit(f"--bins {bins}: the FSQ rows need a power of two (a grid of exactly that many codes)")
    dims = max(1, round(bits / 2.5))
    return [2 ** (bits // dims + (i < bits % dims)) for i in range(dims)]


def fsq_method(dimension: int, n_q: int, bins: int, steps: int) -> Method:
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
            recon = q.decode(codes)
        q.train()
        return [codes[0, k] for k in range(n_q)], recon[0].t()

    return Method(f"fsq {'x'.join(map(str, levels))}", train_step, quantize)


def offline_reference(data: torch.Tensor, n_q: int, bins: int, iters: int) -> Method:
    """K-means level by level on plenty of data from the final distribution, run to convergence."""
    books, residual = [], data
    for level in range(n_q):
        means, _ = kmeans(residual, bins, iters, torch.Generator().manual_seed(level))
        books.append(means)
        residual = residual - means[nearest_codes(residual, means)]

    def quantize(x):
        residual, recon, codes = x[0].t(), torch.zeros_like(x[0].t()), []
        for means in books:
            c = nearest_codes(residual, means)
            codes.append(c)
            recon = recon + means[c]
            residual = residual - means[c]
        return codes, recon

    return Method("offline k-means", lambda x: None, quantize)


def measure(method: Method, held_out: torch.Tensor, bins: int) -> dict:
    codes, recon = method.quantize(held_out)
    target = held_out[0].t()
    snr = 10 * math.log10(float(target.pow(2).sum() / (target - recon).pow(2).sum()))
    used, perplexity = [], []
    for c in codes:
        counts = torch.bincount(c, minlength=bins).double()
        p = counts / counts.sum()
        used.append(float((counts > 0).double().mean()))
        perplexity.append(math.exp(float(-(p[p > 0] * p[p > 0].log()).sum())) / bins)
    return {"used": used, "perplexity": perplexity, "snr": snr}


def run_stream(args, drift: bool) -> list[tuple[str, dict, float]]:
    drift_steps = (2 * args.steps) // 3
    stream = make_stream(args.dimension, args.clusters_per_code * args.bins, drift, drift_steps, args.seed)
    batches = [stream.sample(step, args.frames) for step in range(args.steps)]
    held_out = stream.sample(args.steps, args.held_out)
    reference_data = stream.sample(args.steps, args.reference_factor * args.bins)[0].t()
    methods = [
        encodec_method(args.dimension, args.n_q, args.bins),
        audiocodec_method(args.dimension, args.n_q, args.bins, "ema", args.steps),
        audiocodec_method(args.dimension, args.n_q, args.bins, "gumbel", args.steps),
        fsq_method(args.dimension, args.n_q, args.bins, args.steps),
    ]
    results = []
    for method in methods:
        torch.manual_seed(args.seed)
        times = []
        for x in batches:
            start = time.perf_counter()
            method.train_step(x)
            times.append(time.perf_counter() - start)
        results.append((method.name, measure(method, held_out, args.bins), 1e3 * statistics.median(times)))
    reference = offline_reference(reference_data, args.n_q, args.bins, args.reference_iters)
    results.append((reference.name, measure(reference, held_out, args.bins), float("nan")))
    return results


def print_table(title: str, results: list[tuple[str, dict, float]]) -> None:
    print(f"\n{title}")
    print(f"{'method':<18} {'codes used per level (held-out)':<34} {'perplexity/bins per level':<34} "
          f"{'SNR dB':>7} {'ms/step':>8}")
    for name, r, ms in results:
        used = " ".join(f"{u:5.0%}" for u in r["used"])
        perp = " ".join(f"{p:5.2f}" for p in r["perplexity"])
        print(f"{name:<18} {used:<34} {perp:<34} {r['snr']:7.2f} {ms:8.2f}")
    base = dict((name, r["snr"]) for name, r, _ in results)
    ema = base["audiocodec ema"]
    print(f"audiocodec ema - encodec: {ema - base['encodec 0.1.1']:+.2f} dB; "
          f"audiocodec ema - offline k-means: {ema - base['offline k-means']:+.2f} dB")


def mean_ms(fn: Callable[[], object], repeats: int) -> float:
    """Mean, not median, so that the expiry every `expire_every` steps is counted, amortised."""
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return 1e3 * (time.perf_counter() - start) / repeats


def update_overhead(args) -> None:
    """Training forward vs eval forward of the quantizer at codec size, and vs a codec step if there is a codec."""
    dimension, n_q, bins, frames = 128, 8, 1024, 600
    q = ResidualVectorQuantizer(dimension, n_q, bins, kmeans_iters=10).train()
    generator = torch.Generator().manual_seed(args.seed)
    batches = [torch.randn(1, dimension, frames, generator=generator) for _ in range(8)]
    for x in batches:  # k-means initialisation happens during these
        q(x)
    x = batches[0]
    with torch.no_grad():
        train_ms = mean_ms(lambda: q(x), args.overhead_repeats)
        q.eval()
        eval_ms = mean_ms(lambda: q(x), args.overhead_repeats)
    q.train()
    print(f"\nquantizer at codec size (D={dimension}, n_q={n_q}, bins={bins}, frames/step={frames}), "
          f"mean of {args.overhead_repeats}:")
    print(f"{'eval forward':<40} {eval_ms:8.2f} ms")
    print(f"{'training forward (with codebook update)':<40} {train_ms:8.2f} ms")
    print(f"{'codebook update':<40} {train_ms - eval_ms:8.2f} ms")
    try:
        from audiocodec.model import Codec, CodecConfig
    except ImportError as error:
        print(f"codec step: not measured ({error})")
        return
    codec = Codec(CodecConfig()).train()
    seconds = frames / codec.frame_rate
    wav = torch.randn(8, codec.channels, int(seconds * codec.sample_rate / 8), generator=generator) * 0.1

    def codec_step():
        out = codec(wav)
        (out.audio - wav).abs().mean().add(out.quantizer_loss).backward()

    codec_step()
    step_ms = mean_ms(codec_step, 3)
    print(f"{'codec training step (forward+backward)':<40} {step_ms:8.2f} ms "
          f"(8 x {seconds / 8:.2f} s of audio = {frames} frames)")
    print(f"codebook update / codec step: {100 * (train_ms - eval_ms) / step_ms:.1f}%")


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dimension", type=int, default=32)
    parser.add_argument("--n-q", type=int, default=4)
    parser.add_argument("--bins", type=int, default=1024, help="EnCodec uses 1024 codes for 600 frames a step")
    parser.add_argument("--clusters-per-code", type=int, default=4, help="mixture components per code")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--frames", type=int, default=600, help="frames per training step (EnCodec: 600 per GPU)")
    parser.add_argument("--held-out", type=int, default=50000)
    parser.add_argument("--reference-factor", type=int, default=16, help="offline k-means data, vectors per code")
    parser.add_argument("--reference-iters", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overhead-repeats", type=int, default=40)
    parser.add_argument("--audio", help="folder of real recordings: run the short codec comparison instead")
    parser.add_argument("--audio-steps", type=int, default=300)
    parser.add_argument("--audio-bins", type=int, default=128)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.audio:
        audio_run(args)
        return
    print(f"dimension={args.dimension} n_q={args.n_q} bins={args.bins} clusters={args.clusters_per_code * args.bins} "
          f"(Zipf 1.1) steps={args.steps} frames/step={args.frames} held-out={args.held_out} "
          f"reference={args.reference_factor}x{args.bins} vectors/level, {args.reference_iters} iters, "
          f"threads={args.threads}")
    print_table("stationary stream", run_stream(args, drift=False))
    print_table("drifting stream (clusters move during the first 2/3 of training)", run_stream(args, drift=True))
    update_overhead(args)


if __name__ == "__main__":
    main()
