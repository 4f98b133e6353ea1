import math

import pytest
import torch

from audiocodec.modules import PaddedConv1d, PaddedConvTranspose1d, SEANetDecoder, SEANetEncoder, fold_weight_norm


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("length", [1, 2, 7, 8, 9, 63, 320, 321])
def test_strided_conv_gives_ceil_frames_and_transposed_rebuilds(causal, length):
    conv = PaddedConv1d(2, 3, kernel_size=8, stride=4, causal=causal, norm="weight_norm")
    convtr = PaddedConvTranspose1d(3, 2, kernel_size=8, stride=4, causal=causal, norm="weight_norm")
    y = conv(torch.randn(1, 2, length))
    assert y.shape[-1] == math.ceil(length / 4)
    assert convtr(y).shape[-1] == y.shape[-1] * 4


def test_causal_encoder_output_does_not_depend_on_the_future():
    encoder = SEANetEncoder(n_filters=4, dimension=8, ratios=[4, 2], lstm=1, causal=True).eval()
    x = torch.randn(1, 1, 400)
    changed = x.clone()
    changed[..., 200:] = torch.randn(200)
    with torch.no_grad():
        a, b = encoder(x), encoder(changed)
    # Frame f sees samples up to (f + 1) * hop - 1; the first 200 / 8 = 25 frames must be untouched.
    assert torch.equal(a[..., :25], b[..., :25])
    assert not torch.allclose(a[..., 25:], b[..., 25:])


def test_non_causal_encoder_looks_ahead():
    encoder = SEANetEncoder(n_filters=4, dimension=8, ratios=[4, 2], lstm=0, causal=False).eval()
    x = torch.randn(1, 1, 400)
    changed = x.clone()
    changed[..., 200:] = torch.randn(200)
    with torch.no_grad():
        assert not torch.equal(encoder(x)[..., 24], encoder(changed)[..., 24])


def test_folding_weight_norm_keeps_outputs_and_removes_parametrisation():
    decoder = SEANetDecoder(n_filters=4, dimension=8, ratios=[4, 2], lstm=1).eval()
    z = torch.randn(2, 8, 10)
    with torch.no_grad():
        before = decoder(z)
        fold_weight_norm(decoder)
        after = decoder(z)
    assert not any("parametrizations" in k for k in decoder.state_dict())
    torch.testing.assert_close(before, after, rtol=1e-5, atol=1e-6)


def test_bad_norm_choices_are_rejected():
    with pytest.raises(ValueError, match="norm must be one of"):
        PaddedConv1d(1, 1, 3, norm="batch_norm")
    with pytest.raises(ValueError, match="cannot be causal"):
        PaddedConv1d(1, 1, 3, norm="time_group_norm", causal=True)
