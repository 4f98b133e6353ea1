"""Objective distortion metrics on waveforms shaped [..., T].

Shared by validation during training and by the evaluation tool, so both
report the same numbers for the same audio.
"""
from __future__ import annotations

import warnings

import torch
import torchaudio

from ..io.audio import resample

STFT_FFT_SIZES = (512, 1024, 2048)
MEL_FFT_SIZE = 1024
PESQ_RATE = 16000  # wide-band PESQ (ITU-T P.862.2) is defined at 16 kHz only


def _check_pair(reference: torch.Tensor, estimate: torch.Tensor) -> None:
    # Comparing misaligned signals gives plausible-looking but wrong numbers: refuse.
    if reference.shape != estimate.shape:
        raise ValueError(
            f"reference and estimate must have the same shape, got {tuple(reference.shape)} "
            f"and {tuple(estimate.shape)}")
    if reference.shape[-1] == 0:
        raise ValueError("expected at least one sample on the last axis")


def si_sdr(reference: torch.Tensor, estimate: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Scale-invariant SDR in dB over the last axis, [..., T] -> [...].

    Scale invariance keeps a codec from being punished for a global gain change.
    """
    _check_pair(reference, estimate)
    ref = reference - reference.mean(dim=-1, keepdim=True)
    est = estimate - estimate.mean(dim=-1, keepdim=True)
    alpha = (est * ref).sum(-1, keepdim=True) / (ref.pow(2).sum(-1, keepdim=True) + eps)
    target = alpha * ref
    noise = est - target
    return 10 * torch.log10((target.pow(2).sum(-1) + eps) / (noise.pow(2).sum(-1) + eps))


def stft_distance(reference: torch.Tensor, estimate: torch.Tensor,
                  fft_sizes: tuple[int, ...] = STFT_FFT_SIZES, eps: float = 1e-5) -> torch.Tensor:
    """Multi-scale STFT distance, [..., T] -> [...]: mean over scales of spectral
    convergence plus mean absolute log-magnitude difference.

    Several window sizes so neither time nor frequency resolution dominates.
    """
    _check_pair(reference, estimate)
    shape = reference.shape[:-1]
    ref = reference.reshape(-1, reference.shape[-1]).float()
    est = estimate.reshape(-1, estimate.shape[-1]).float()
    total = torch.zeros(ref.shape[0], device=ref.device)
    for n_fft in fft_sizes:
        window = torch.hann_window(n_fft, device=ref.device)
        kw = dict(n_fft=n_fft, hop_length=n_fft // 4, window=window, return_complex=True)
        r = torch.stft(ref, **kw).abs()
        e = torch.stft(est, **kw).abs()
        sc = torch.linalg.norm((r - e).flatten(1), dim=1) / (torch.linalg.norm(r.flatten(1), dim=1) + eps)
        log = (torch.log(r + eps) - torch.log(e + eps)).abs().flatten(1).mean(1)
        total = total + sc + log
    return (total / len(fft_sizes)).reshape(shape)


def mel_distance(reference: torch.Tensor, estimate: torch.Tensor, sample_rate: int,
                 n_mels: int = 80, n_fft: int = MEL_FFT_SIZE, eps: float = 1e-5) -> torch.Tensor:
    """Mean absolute log-mel difference, [..., T] -> [...].

    Log-mel weights errors roughly as hearing does, unlike raw waveform error.
    """
    _check_pair(reference, estimate)
    shape = reference.shape[:-1]
    mel = torchaudio.transforms.MelSpectrogram(sample_rate=sample_rate, n_fft=n_fft,
                                               hop_length=n_fft // 4, n_mels=n_mels).to(reference.device)
    r = mel(reference.reshape(-1, reference.shape[-1]).float())
    e = mel(estimate.reshape(-1, estimate.shape[-1]).float())
    d = (torch.log(r + eps) - torch.log(e + eps)).abs().flatten(1).mean(1)
    return d.reshape(shape)


def min_length(n_fft: int) -> int:
    """Fewest samples an STFT of `n_fft` (centred, reflection-padded) accepts: shorter audio has no such metric."""
    return n_fft // 2 + 1


def pesq_wb(reference: torch.Tensor, estimate: torch.Tensor, sample_rate: int) -> float | None:
    """Wide-band PESQ (MOS-LQO, 1.04 to 4.64) of mono signals `[T]`, or None where PESQ does not apply.

    Both signals are resampled to 16 kHz, the only rate wide-band PESQ is defined at. None, never a number,
    for silence, audio under a quarter of a second, or audio where PESQ detects no utterance: an average over
    files then skips it instead of being pulled towards a made-up score.
    """
    import pesq

    _check_pair(reference, estimate)
    if reference.dim() != 1:
        raise ValueError(f"PESQ takes mono signals [T], got shape {tuple(reference.shape)}")
    if not reference.abs().max() > 0:
        return None
    ref, est = (resample(x.float(), sample_rate, PESQ_RATE).numpy()
                for x in (reference, estimate))
    try:
        return float(pesq.pesq(PESQ_RATE, ref, est, "wb"))
    except (pesq.BufferTooShortError, pesq.NoUtterancesError):
        return None


#: Shortest signal STOI is computed on: pystoi's 30 frames of 256 samples, 128 apart, at 10 kHz (0.397 s).
STOI_MIN_SECONDS = 0.4


def stoi(reference: torch.Tensor, estimate: torch.Tensor, sample_rate: int) -> float | None:
    """Short-time objective intelligibility (0 to 1) of mono signals `[T]`, or None where it does not apply.

    pystoi needs 30 frames (about 0.4 s) of non-silent speech; with fewer it warns and returns 1e-5, which
    would read as "unintelligible", so that case is None instead, as is a silent reference (pystoi gives 0).
    Signals shorter than 0.4 s are None without asking pystoi, which fails outright below one frame (16 ms).
    """
    from pystoi import stoi as pystoi_stoi

    _check_pair(reference, estimate)
    if reference.dim() != 1:
        raise ValueError(f"STOI takes mono signals [T], got shape {tuple(reference.shape)}")
    if not reference.abs().max() > 0 or reference.shape[-1] < STOI_MIN_SECONDS * sample_rate:
        return None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = pystoi_stoi(reference.double().numpy(), estimate.double().numpy(), sample_rate)
    if any("Not enough STFT frames" in str(warning.message) for warning in caught):
        return None
    return float(value)
