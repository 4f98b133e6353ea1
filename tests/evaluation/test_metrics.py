import pytest
import torch

from audiocodec.evaluation.metrics import mel_distance, si_sdr, stft_distance


def _noise(seed: int, n: int = 8000) -> torch.Tensor:
    return torch.randn(2, n, generator=torch.Generator().manual_seed(seed))


def test_si_sdr_is_scale_invariant_and_matches_known_snr():
    x = _noise(0)
    n = _noise(1)
    n = n - (n * x).sum(-1, keepdim=True) / (x * x).sum(-1, keepdim=True) * x  # orthogonal noise
    n = n * (x.norm(dim=-1, keepdim=True) / n.norm(dim=-1, keepdim=True)) * 0.1  # 20 dB
    got = si_sdr(x, 3.0 * (x + n))
    assert torch.allclose(got, torch.full_like(got, 20.0), atol=0.05)


def test_distances_zero_for_identical_and_grow_with_noise():
    x = _noise(2)
    for fn in (lambda a, b: stft_distance(a, b), lambda a, b: mel_distance(a, b, 16000)):
        assert fn(x, x).abs().max() < 1e-4
        small, big = fn(x, x + 0.01 * _noise(3)), fn(x, x + 0.5 * _noise(3))
        assert (big > small).all() and (small > 0).all()


def test_mismatched_shapes_are_refused():
    with pytest.raises(ValueError, match="same shape"):
        si_sdr(torch.zeros(100), torch.zeros(99))
