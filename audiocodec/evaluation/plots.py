"""The figures of an evaluation: rate-distortion curves and side-by-side spectrograms (matplotlib, Agg)."""

from __future__ import annotations

import re
from pathlib import Path

import torch

from .evaluate import Example
from .report import ALL, HIGHER_IS_BETTER, LABELS, ORIGINAL, Average

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


def rate_distortion_panels(table: list[Average], path: Path, category: str = ALL) -> bool:
    """Every metric that has a value against achieved bitrate, one panel each, one line per codec (all the
    models compared and Opus on the same axes); the originals' DNSMOS as a dashed line. False if nothing to plot."""
    import math

    plt = _pyplot()
    rows = [a for a in table if a.category == category]
    coded = [a for a in rows if a.codec != ORIGINAL and a.kbps.mean is not None]
    metrics = [m for m in LABELS if any(a.metrics[m].mean is not None for a in coded)]
    if not metrics:
        return False
    columns = min(3, len(metrics))
    lines = math.ceil(len(metrics) / columns)
    fig, axes = plt.subplots(lines, columns, figsize=(4.6 * columns, 3.6 * lines), squeeze=False)
    for ax, metric in zip(axes.flat, metrics):
        for codec in dict.fromkeys(a.codec for a in coded):
            points = sorted((a.kbps.mean, a.metrics[metric].mean) for a in coded
                            if a.codec == codec and a.metrics[metric].mean is not None)
            if points:
                ax.plot(*zip(*points), marker="o", label=codec)
        original = next((a.metrics[metric].mean for a in rows if a.codec == ORIGINAL), None)
        if original is not None:
            ax.axhline(original, color="grey", linestyle="--", label="original")
        ax.set_title(f"{LABELS[metric]} ({'higher' if HIGHER_IS_BETTER[metric] else 'lower'} is better)", fontsize=10)
        ax.set_xlabel("achieved kb/s (whole file)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(metrics):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True


def spectrogram_image(audio: torch.Tensor, sample_rate: int, path: Path) -> None:
    """A small spectrogram of mono `audio` [T] alone (the HTML report's cards), on the figures' dB scale."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(3.2, 1.9))
    seconds, nyquist = max(audio.shape[-1], 1) / sample_rate, sample_rate / 2000
    ax.imshow(_log_spectrogram(audio).numpy(), origin="lower", aspect="auto", cmap="magma", vmin=-100, vmax=0,
              extent=(0, seconds, 0, nyquist))
    ax.set_xlabel("s", fontsize=7)
    ax.set_ylabel("kHz", fontsize=7)
    ax.tick_params(labelsize=6)
    fig.tight_layout(pad=0.3)
    fig.savefig(path, dpi=90)
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
