"""Inference (no autograd) runs convolutions and residual units in time tiles; outputs must equal the untiled ones."""

import pytest
import torch
from torch import nn

from audiocodec.modules import PaddedConv1d, PaddedConvTranspose1d, ResidualUnit, SEANetDecoder, SEANetEncoder
from audiocodec.modules import conv as conv_module
from audiocodec.modules.activations import ELU
from audiocodec.modules.conv import is_time_major, pad1d, padded_window


@pytest.fixture
def small_tiles(monkeypatch):
    """Tiles of a few dozen steps, so that short test signals span many tiles and hit every edge case."""
    monkeypatch.setattr(conv_module, "TILE_ELEMENTS", 96)
    monkeypatch.setattr(conv_module, "TIME_MAJOR_TILE_ELEMENTS", 96)


def untiled(module, *args):
    """The plain computation: autograd on (one tile covers the signal), channel-major, `F.elu`."""
    layouts = {m: m.channels_last for m in module.modules() if isinstance(m, (PaddedConv1d, PaddedConvTranspose1d))}
    set_time_major(module, False)
    try:
        with torch.enable_grad():
            return module(*args).detach()
    finally:
        for m, channels_last in layouts.items():
            m.channels_last = channels_last


def set_time_major(module, time_major: bool):
    """Time-major activations and channels-last convolutions, as `Codec.prepare_for_inference` sets on the CPU."""
    for m in module.modules():
        if isinstance(m, (PaddedConv1d, PaddedConvTranspose1d)):
            m.channels_last = time_major


LAYOUTS = pytest.mark.parametrize("time_major", [False, True], ids=["channel-major", "time-major"])


@pytest.mark.parametrize("mode", ["reflect", "constant", "replicate"])
@pytest.mark.parametrize("length", [1, 3, 9, 40])
def test_padded_window_equals_slicing_the_padded_signal(mode, length):
    x = torch.randn(2, 3, length)
    for left, right in [(0, 0), (2, 0), (3, 4), (6, 1)]:
        padded = pad1d(x, left, right, mode)
        activated = pad1d(nn.ELU()(x), left, right, mode)
        total = padded.shape[-1]
        for start in range(total):
            for stop in range(start + 1, total + 1):
                window = padded_window(x, left, right, mode, start, stop)
                assert torch.equal(window, padded[..., start:stop]), (left, right, start, stop)
                # ELU's vectorised and scalar paths round differently, so positions in a vector matter.
                window = padded_window(x, left, right, mode, start, stop, nn.ELU())
                torch.testing.assert_close(window, activated[..., start:stop], rtol=0, atol=1e-6)


@LAYOUTS
@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("kernel_size,stride,dilation", [(7, 1, 1), (3, 1, 2), (8, 4, 1), (1, 1, 1), (4, 2, 1)])
@pytest.mark.parametrize("length", [1, 5, 37, 300])
def test_tiled_conv_equals_untiled(small_tiles, causal, kernel_size, stride, dilation, length, time_major):
    layer = PaddedConv1d(4, 6, kernel_size, stride, dilation, causal=causal, norm="weight_norm")
    set_time_major(layer, time_major)
    x = torch.randn(2, 4, length)
    with torch.no_grad():
        tiled = layer(x, ELU())
    assert is_time_major(tiled) == time_major or tiled.shape[-1] == 1
    torch.testing.assert_close(tiled, untiled(layer, x, nn.ELU()), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(untiled(layer, x, nn.ELU()), untiled(layer, nn.ELU()(x)), rtol=1e-5, atol=1e-6)


@LAYOUTS
@pytest.mark.parametrize("in_channels,out_channels,kernel_size,dilation",
                         [(8, 1, 7, 1), (8, 2, 3, 2), (8, 1, 1, 1), (1, 6, 7, 1), (1, 5, 3, 2)])
@pytest.mark.parametrize("length", [3, 300])
def test_tiled_thin_conv_equals_untiled(small_tiles, in_channels, out_channels, kernel_size, dilation, length,
                                        time_major):
    """One or two output channels (the decoder's last layer) and one input channel (the encoder's first) are
    computed as matrix products on the CPU."""
    layer = PaddedConv1d(in_channels, out_channels, kernel_size, dilation=dilation, norm="weight_norm")
    set_time_major(layer, time_major)
    x = torch.randn(2, in_channels, length)
    with torch.no_grad():
        tiled = layer(x, ELU())
        with torch.enable_grad():  # the products' path is for inference; autograd takes the convolution
            assert layer(x).requires_grad
    torch.testing.assert_close(tiled, untiled(layer, x, nn.ELU()), rtol=1e-5, atol=1e-6)


@LAYOUTS
@pytest.mark.parametrize("causal,trim_right_ratio", [(True, 1.0), (True, 0.5), (False, 1.0)])
@pytest.mark.parametrize("kernel_size,stride", [(8, 4), (4, 2), (16, 8), (5, 2)])
@pytest.mark.parametrize("length", [1, 7, 120])
def test_tiled_transposed_conv_equals_untiled(small_tiles, causal, trim_right_ratio, kernel_size, stride, length,
                                              time_major):
    layer = PaddedConvTranspose1d(5, 3, kernel_size, stride, causal=causal, norm="weight_norm",
                                  trim_right_ratio=trim_right_ratio)
    set_time_major(layer, time_major)
    x = torch.randn(2, 5, length)
    with torch.no_grad():
        tiled = layer(x, ELU())
    torch.testing.assert_close(tiled, untiled(layer, x, nn.ELU()), rtol=1e-5, atol=1e-6)


@LAYOUTS
@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("true_skip", [True, False])
@pytest.mark.parametrize("dilation", [1, 3])
@pytest.mark.parametrize("length", [2, 50, 333])
def test_tiled_residual_unit_equals_untiled(small_tiles, causal, true_skip, dilation, length, time_major):
    unit = ResidualUnit(8, dilations=(dilation, 1), causal=causal, true_skip=true_skip)
    set_time_major(unit, time_major)
    x = torch.randn(2, 8, length)
    with torch.no_grad():
        tiled = unit(x)
    assert is_time_major(tiled) == time_major
    torch.testing.assert_close(tiled, untiled(unit, x), rtol=1e-5, atol=1e-6)


@LAYOUTS
@pytest.mark.parametrize("causal", [True, False])
def test_tiled_seanet_equals_untiled_and_leaves_its_input_alone(small_tiles, causal, time_major):
    encoder = SEANetEncoder(n_filters=4, dimension=8, ratios=[4, 2], lstm=1, causal=causal).eval()
    decoder = SEANetDecoder(n_filters=4, dimension=8, ratios=[4, 2], lstm=1, causal=causal).eval()
    set_time_major(encoder, time_major)
    set_time_major(decoder, time_major)
    x = torch.randn(2, 1, 1000)
    copy = x.clone()
    with torch.no_grad():
        z = encoder(x)
        y = decoder(z)
    assert torch.equal(x, copy)
    torch.testing.assert_close(z, untiled(encoder, x), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(y, untiled(decoder, z), rtol=1e-5, atol=1e-6)


def test_group_norm_layers_are_not_tiled_across_their_normalisation(small_tiles):
    layer = PaddedConvTranspose1d(4, 4, 8, 4, norm="time_group_norm")
    unit = ResidualUnit(4, norm="time_group_norm")
    x = torch.randn(1, 4, 200)
    with torch.no_grad():
        torch.testing.assert_close(layer(x), untiled(layer, x), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(unit(x), untiled(unit, x), rtol=1e-5, atol=1e-6)


def test_training_path_keeps_gradients():
    encoder = SEANetEncoder(n_filters=4, dimension=8, ratios=[4, 2], lstm=1)
    encoder(torch.randn(1, 1, 800)).square().mean().backward()
    assert all(p.grad is not None for p in encoder.parameters())


def test_tiles_are_for_the_cpu_only():
    """Tiles fit a core's cache; on other devices (GPUs) one tile covers the signal, as under autograd."""
    with torch.no_grad():
        assert conv_module.tile_length(torch.empty(0), 32) == conv_module.TILE_ELEMENTS // 32
        assert conv_module.tile_length(torch.empty(0, device="meta"), 32) >= 1 << 62
    assert conv_module.tile_length(torch.empty(0), 32) >= 1 << 62  # autograd on
