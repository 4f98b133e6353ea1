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


def _speech(seconds: float = 3.0) -> tuple[torch.Tensor, int]:
    from audiocodec.cli.common import SAMPLE
    from audiocodec.io.audio import read_audio

    wav, rate = read_audio(SAMPLE)  # the bundled speech recording, mono
    return torch.from_numpy(wav[0, : int(seconds * rate)]), rate


def test_pesq_and_stoi_are_at_their_maximum_for_identical_speech_and_drop_with_noise():
    from audiocodec.evaluation.metrics import pesq_wb, stoi

    x, rate = _speech()
    assert pesq_wb(x, x, rate) == pytest.approx(4.644, abs=0.01)
    assert stoi(x, x, rate) == pytest.approx(1.0, abs=1e-6)
    noisy = x + 0.05 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    assert pesq_wb(x, noisy, rate) < 3.0
    assert 0.3 < stoi(x, noisy, rate) < 0.99


def test_pesq_and_stoi_are_not_applicable_to_short_or_silent_audio():
    from audiocodec.evaluation.metrics import pesq_wb, stoi

    x, rate = _speech()
    short = x[: int(0.2 * rate)]  # PESQ needs 0.25 s, STOI about 0.4 s of non-silent speech
    assert pesq_wb(short, short, rate) is None
    assert stoi(short, short, rate) is None
    tiny = x[: int(0.01 * rate)]  # shorter than one of pystoi's frames, where pystoi itself fails
    assert pesq_wb(tiny, tiny, rate) is None and stoi(tiny, tiny, rate) is None
    silence = torch.zeros(rate)
    assert pesq_wb(silence, silence, rate) is None
    assert stoi(silence, silence, rate) is None


def test_pesq_refuses_misaligned_or_multichannel_input():
    from audiocodec.evaluation.metrics import pesq_wb

    x, rate = _speech(1.0)
    with pytest.raises(ValueError, match="same shape"):
        pesq_wb(x, x[:-1], rate)
    with pytest.raises(ValueError, match="mono"):
        pesq_wb(x[None], x[None], rate)
