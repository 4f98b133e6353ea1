"""How much quality the quantizer costs: the decoder fed the encoder's unquantized latent, against the codes at
each of the model's bandwidths, on the same files.

    python benchmarks/quantizer_headroom.py [--model DIR] [--data corpus] [--max-files 60]

When the unquantized row is barely better than the highest bandwidth, more or better codebooks cannot help: the
encoder and decoder are the limit, and quality has to come from a larger model or more training. The second
table says where in frequency the error is, for the unquantized latent: per octave band, the signal-to-error ratio
of the complex spectrum (0 dB: the waveform there is not reproduced at all, only its energy, if that) and the mean
error of each frame's band energy (frames within 40 dB of the band's loudest). Without --data it measures the
bundled speech sample; without --model, the embedded default model. Models that normalise or
segment their input are not supported (their latent depends on the segment scales).
"""

from __future__ import annotations

import argparse
import math
import statistics

import torch

from audiocodec import Codec
from audiocodec.api import default_model
from audiocodec.cli.common import SAMPLE
from audiocodec.errors import AudioReadError
from audiocodec.evaluation.dataset import find_items, select
from audiocodec.evaluation.metrics import MEL_FFT_SIZE, mel_distance, min_length, si_sdr
from audiocodec.io.audio import read_audio, to_model_format


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model directory (default: the embedded default model)")
    parser.add_argument("--data", help="folder or manifest, as for `audiocodec eval` (default: the bundled sample)")
    parser.add_argument("--max-files", type=int, default=60)
    args = parser.parse_args()

    model = Codec.from_pretrained(args.model).prepare_for_inference() if args.model else default_model()
    if model.config.normalize or model.config.segment is not None:
        raise SystemExit("quantizer_headroom: models that normalise or segment their input are not supported")
    paths = [SAMPLE] if args.data is None else [item.path for item in select(find_items(args.data)[0], args.max_files)]
    rows = {"unquantized": None} | {f"{kbps:g} kb/s": model.n_q_for_bandwidth(kbps) for kbps in model.bandwidths}
    scores: dict[str, list[tuple[float, float]]] = {name: [] for name in rows}
    skipped = 0
    bands = BandErrors(model.sample_rate)
    with torch.inference_mode():
        for path in paths:
            try:
                wav, rate = read_audio(path)
            except AudioReadError:
                skipped += 1
                continue
            audio = to_model_format(torch.from_numpy(wav), rate, model.sample_rate, model.channels)
            if audio.shape[-1] < min_length(MEL_FFT_SIZE):
                skipped += 1
                continue
            latent = model.encode_features(audio[None])
            for name, n_q in rows.items():
                quantized = latent if n_q is None else model.quantizer.decode(model.quantizer.encode(latent, n_q))
                decoded = model.decode_features(quantized)[0, :, : audio.shape[-1]]
                scores[name].append((float(si_sdr(audio, decoded).mean()),
                                     float(mel_distance(audio, decoded, model.sample_rate).mean())))
                if n_q is None:
                    bands.add(audio, decoded)

    print(f"model {model.config.name} ({model.model_id()}), {len(scores['unquantized'])} file(s)"
          f"{f', {skipped} unreadable or too short' if skipped else ''}; means over files")
    print("| decoder input | codebooks | SI-SDR dB | mel distance |")
    print("|---|---|---|---|")
    for name, n_q in rows.items():
        sdr = statistics.fmean(s for s, _ in scores[name])
        mel = statistics.fmean(m for _, m in scores[name])
        print(f"| {name} | {'-' if n_q is None else n_q} | {sdr:.2f} | {mel:.3f} |")
    print()
    bands.print_table()


class BandErrors:
    """Per octave band, over all files: energy share, spectral signal-to-error ratio, mean |frame energy error|
    over the frames within 40 dB of the band's loudest (a file's mean, averaged over files)."""

    N_FFT, HOP = 512, 128

    def __init__(self, sample_rate: int):
        nyquist = sample_rate // 2
        self.edges = [0, 150] + [e for e in (300, 600, 1200, 2400, 4800, 9600, 19200) if e < nyquist] + [nyquist]
        self.freqs = torch.fft.rfftfreq(self.N_FFT, 1 / sample_rate)
        count = len(self.edges) - 1
        self.signal, self.error, self.level_error = [0.0] * count, [0.0] * count, [0.0] * count
        self.files = [0] * count  # files with sound in the band: a silent band has no frame energy error

    def add(self, reference: torch.Tensor, decoded: torch.Tensor) -> None:
        if reference.shape[-1] < self.N_FFT:
            return
        window = torch.hann_window(self.N_FFT)
        a, b = (torch.stft(x, self.N_FFT, self.HOP, window=window, return_complex=True) for x in (reference, decoded))
        for k, (low, high) in enumerate(zip(self.edges, self.edges[1:])):
            band = (self.freqs >= low) & (self.freqs < high)
            energy_a, energy_b = (x[..., band, :].abs().pow(2).sum(-2) for x in (a, b))
            self.signal[k] += float(energy_a.sum())
            self.error[k] += float((a[..., band, :] - b[..., band, :]).abs().pow(2).sum())
            audible = energy_a > energy_a.max() * 1e-4  # frames within 40 dB of the band's loudest, as STOI keeps
            if audible.any():
                self.level_error[k] += float((10 * torch.log10((energy_b + 1e-12) / energy_a))[audible].abs().mean())
                self.files[k] += 1

    def print_table(self) -> None:
        total = sum(self.signal) or 1.0
        print("| band (Hz) | energy share | signal / error (dB) | mean frame energy error (dB) |")
        print("|---|---|---|---|")
        for k, (low, high) in enumerate(zip(self.edges, self.edges[1:])):
            measured = self.error[k] and self.signal[k]
            ratio = 10 * math.log10(self.signal[k] / self.error[k]) if measured else float("nan")
            print(f"| {low}-{high} | {100 * self.signal[k] / total:.1f}% | {ratio:.1f} | "
                  f"{self.level_error[k] / max(1, self.files[k]):.1f} |")


if __name__ == "__main__":
    main()
