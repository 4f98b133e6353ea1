import itertools
import math

import pytest
import torch
from torch import nn

from audiocodec.modules import PaddedConv1d, PaddedConvTranspose1d, SEANetDecoder, SEANetEncoder, fold_weight_norm
from audiocodec.modules.conv import is_time_major, pad1d, to_time_major


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


@pytest.mark.parametrize("kernel_size,stride", [(8, 4), (4, 2), (6, 2), (5, 2)])
def test_transposed_conv_equals_torch_conv_transpose(kernel_size, stride):
    layer = PaddedConvTranspose1d(3, 5, kernel_size, stride, norm="weight_norm")
    x = torch.randn(2, 3, 11)
    expected = torch.nn.functional.conv_transpose1d(x, layer.convtr.weight, layer.convtr.bias, stride)
    expected = expected[..., layer.trim_left : expected.shape[-1] - layer.trim_right]
    torch.testing.assert_close(layer(x), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("kernel_size,stride", [(8, 4), (5, 2)])
def test_untrimmed_without_bias_is_the_bare_transposed_convolution(kernel_size, stride, channels_last):
    layer = PaddedConvTranspose1d(3, 5, kernel_size, stride, causal=True)
    layer.kernel.keep, layer.channels_last = True, channels_last
    x = torch.randn(2, 3, 11)
    expected = torch.nn.functional.conv_transpose1d(x, layer.convtr.weight, None, stride)
    with torch.no_grad():
        for _ in range(2):  # the second call uses the kept kernel
            torch.testing.assert_close(layer.untrimmed_without_bias(x), expected, rtol=1e-5, atol=1e-6)


def test_the_kept_polyphase_kernel_follows_weight_changes_and_autograd():
    layer = PaddedConvTranspose1d(3, 5, 8, 4)
    layer.kernel.keep = True
    x = torch.randn(1, 3, 11)

    def expected():
        y = torch.nn.functional.conv_transpose1d(x, layer.convtr.weight, layer.convtr.bias, 4)
        return y[..., layer.trim_left : y.shape[-1] - layer.trim_right]

    with torch.no_grad():
        layer(x)  # builds and keeps the kernel
        layer.convtr.weight.mul_(2)  # an in-place update, as an optimiser makes
        torch.testing.assert_close(layer(x), expected())
        layer.load_state_dict({k: torch.randn_like(v) for k, v in layer.state_dict().items()})
        torch.testing.assert_close(layer(x), expected())
        for channels_last in (True, False):  # each layout has its own ordering of the kernel's phases
            layer.channels_last = channels_last
            torch.testing.assert_close(layer(x), expected())
    layer(x).sum().backward()  # with autograd, the kernel is rebuilt from the weights, so gradients reach them
    assert layer.convtr.weight.grad is not None and layer.convtr.weight.grad.abs().sum() > 0


def test_the_kept_channels_last_kernel_follows_weight_changes_and_autograd():
    layer = PaddedConv1d(3, 5, 4, 2)
    layer.kernel.keep, layer.channels_last = True, True
    x = torch.randn(1, 3, 30)

    def expected():
        return torch.nn.functional.conv1d(torch.nn.functional.pad(x, (1, 1), "reflect"), layer.conv.weight,
                                          layer.conv.bias, 2)

    with torch.no_grad():
        layer(x)  # builds and keeps the kernel
        layer.conv.weight.mul_(2)
        torch.testing.assert_close(layer(x), expected())
        layer.load_state_dict({k: torch.randn_like(v) for k, v in layer.state_dict().items()})
        torch.testing.assert_close(layer(x), expected())
    layer(x).sum().backward()
    assert layer.conv.weight.grad is not None and layer.conv.weight.grad.abs().sum() > 0


def test_without_keep_polyphase_kernel_even_writes_through_data_are_seen():
    layer = PaddedConvTranspose1d(3, 5, 8, 4)
    x = torch.randn(1, 3, 11)
    with torch.no_grad():
        before = layer(x)
        layer.convtr.weight.data.mul_(2)  # as weight-averaging code often does; no version bump
        assert not torch.allclose(layer(x), before)


def test_transposed_conv_with_weight_norm_runs_under_inference_mode():
    layer = PaddedConvTranspose1d(3, 5, 8, 4, norm="weight_norm")
    x = torch.randn(1, 3, 11)
    with torch.no_grad():
        expected = layer(x)
    with torch.inference_mode():  # the weight is then an inference tensor, which has no version counter
        torch.testing.assert_close(layer(x), expected)
        torch.testing.assert_close(layer(x), expected)


@pytest.mark.parametrize("left,right,length", [(6, 0, 50), (3, 4, 9), (6, 6, 6), (6, 2, 3), (2, 1, 1)])
def test_reflect_padding_equals_torch(left, right, length):
    x = torch.randn(2, 3, length)
    if length > max(left, right):
        assert torch.equal(pad1d(x, left, right, "reflect"), torch.nn.functional.pad(x, (left, right), "reflect"))
    else:  # EnCodec zero-extends short inputs before reflecting
        padded = pad1d(x, left, right, "reflect")
        assert padded.shape[-1] == length + left + right and torch.equal(padded[..., left : left + length], x)


@pytest.mark.parametrize("causal", [False, True])
def test_channels_last_convolutions_compute_the_same_and_stay_time_major(causal):
    torch.manual_seed(0)
    x = torch.randn(3, 6, 101)
    assert not is_time_major(x) and is_time_major(to_time_major(x)) and torch.equal(to_time_major(x), x)
    layers = [PaddedConv1d(6, 5, k, stride, dilation, causal=causal, pad_mode=mode)
              for k, stride, dilation, mode in ((7, 1, 1, "reflect"), (3, 1, 3, "reflect"), (8, 4, 1, "reflect"),
                                                (1, 1, 1, "reflect"), (4, 2, 1, "constant"))]
    layers.append(PaddedConvTranspose1d(6, 5, 8, 4, causal=causal))
    for layer in layers:
        layer.eval()
        with torch.no_grad():
            expected = layer(x, nn.ELU())
            layer.channels_last = True
            for given in (x, to_time_major(x)):  # either layout in, time-major out
                y = layer(given, nn.ELU())
                assert is_time_major(y) and y.shape == expected.shape
                torch.testing.assert_close(y, expected, atol=1e-6, rtol=0)


def test_padding_keeps_a_time_major_layout():
    x = to_time_major(torch.randn(2, 4, 30))
    for mode, (left, right) in itertools.product(["reflect", "constant"], [(3, 0), (0, 5), (6, 2)]):
        padded = pad1d(x, left, right, mode)
        assert is_time_major(padded)
        assert torch.equal(padded, torch.nn.functional.pad(x.contiguous(), (left, right), mode))
