"""The figures of an evaluation: rate-distortion curves and side-by-side spectrograms (matplotlib, Agg)."""

from __future__ import annotations

import re
from pathlib import Path

import torch

from .evaluate import Example
from .report import ALL, Average

SPECTROGRAM_FFT = 1024


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed, none opened
    import matplotlib.pyplot as plt

    return plt


def rate_distortion(table: list[Average], path: Path) -> None:
    """Mel distance against achieved bitrate per codec, and PESQ against bitrate when any file had PESQ."""
    plt = _pyplot()
    rows = [a for a in table if a.category == ALL and a.kbps.mean is not None]
    panels = [("mel_distance", "mel distance (lower is better)")]
    if any(a.metrics["pesq_wb"].mean is not None for a in rows):
        panels.append(("pesq_wb", "PESQ-wb on speech (higher is better)"))
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.5), squeeze=False)
    for ax, (metric, label) in zip(axes[0], panels):
        for codec in dict.fromkeys(a.codec for a in rows):
            points = sorted((a.kbps.mean, a.metrics[metric].mean) for a in rows
                            if a.codec == codec and a.metrics[metric].mean is not None)
            if points:
                ax.plot(*zip(*points), marker="o", label=codec)
        ax.set_xlabel("achieved bitrate (kb/s, whole file)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def spectrograms(examples: list[Example], folder: Path) -> list[Path]:
    """One figure per example: the reference and each codec's decoding side by side, same colour scale."""
    plt = _pyplot()
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for example in examples:
        panels = [("reference", example.reference), *((f"{codec} at {example.bandwidth:g} kb/s", audio)
                                                      for codec, audio in example.decoded.items())]
        fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 4), squeeze=False, sharey=True)
        for ax, (title, audio) in zip(axes[0], panels):
            ax.set_title(title, fontsize=10)
            ax.set_xlabel("time (s)")
            if audio is None:
                ax.text(0.5, 0.5, "n/a", ha="center", va="center", transform=ax.transAxes)
                continue
            seconds, nyquist = audio.shape[-1] / example.sample_rate, example.sample_rate / 2000
            ax.imshow(_log_spectrogram(audio).numpy(), origin="lower", aspect="auto", cmap="magma", vmin=-100, vmax=0,
                      extent=(0, seconds, 0, nyquist))
        axes[0][0].set_ylabel("frequency (kHz)")
        fig.suptitle(example.name, fontsize=11)
        fig.tight_layout()
        path = folder / (re.sub(r"[^A-Za-z0-9._-]+", "_", example.name) + ".png")
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    return written


def _log_spectrogram(audio: torch.Tensor) -> torch.Tensor:
    """Magnitude in dB relative to full scale, [frequency, time]; audio shorter than one window is zero-padded."""
    audio = torch.nn.functional.pad(audio.float(), (0, max(0, SPECTROGRAM_FFT - audio.shape[-1])))
    window = torch.hann_window(SPECTROGRAM_FFT)
    magnitude = torch.stft(audio, SPECTROGRAM_FFT, SPECTROGRAM_FFT // 4, window=window, center=False,
                           return_complex=True).abs()
    return 20 * torch.log10(magnitude / (window.sum() / 2) + 1e-8)
