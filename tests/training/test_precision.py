"""bf16 rounding of convolution inputs in fp32 training (audiocodec/training/precision.py)."""

import torch
from torch import nn

from audiocodec.model import Codec, CodecConfig
from audiocodec.modules import PaddedConv1d, PaddedConvTranspose1d
from audiocodec.training.precision import round_conv_inputs_to_bf16, round_to_bf16


def is_bf16_exact(x: torch.Tensor) -> bool:
    return torch.equal(x, x.to(torch.bfloat16).float())


def test_rounding_keeps_bf16_precision_and_passes_the_gradient_through():
    x = torch.randn(1000, requires_grad=True)
    y = round_to_bf16(x)
    assert y.dtype == torch.float32 and is_bf16_exact(y) and not is_bf16_exact(x)
    (y * torch.arange(1000.0)).sum().backward()
    assert torch.equal(x.grad, torch.arange(1000.0))


def test_every_convolution_sees_its_activated_input_rounded_in_training_only():
    model = Codec(CodecConfig(n_filters=4, dimension=16, lstm=0))
    convs = [m for m in model.modules() if isinstance(m, (PaddedConv1d, PaddedConvTranspose1d))]
    handles = round_conv_inputs_to_bf16(model)
    assert len(handles) == len(convs) > 4
    seen: list[tuple[bool, bool]] = []
    for conv in convs:  # registered after the rounding hook, so it sees what the convolution receives
        conv.register_forward_pre_hook(lambda m, args: seen.append((is_bf16_exact(args[0]), len(args) > 1)))
    wav = torch.randn(2, 1, 960)
    model.train()
    model(wav)
    assert seen and all(exact and not activation for exact, activation in seen)
    model.eval()  # validation measures the fp32 model that is exported
    with torch.no_grad():
        hooked = model(wav).audio
        for handle in handles:
            handle.remove()
        assert torch.equal(hooked, model(wav).audio)


def test_a_rounded_convolution_computes_on_its_rounded_activated_input():
    torch.manual_seed(0)
    conv = PaddedConv1d(8, 8, kernel_size=7)
    x, elu = torch.randn(2, 8, 50), nn.ELU()
    expected = conv(round_to_bf16(elu(x)))
    round_conv_inputs_to_bf16(conv)
    assert torch.equal(conv(x, elu), expected)
    assert not torch.equal(conv(x, elu), conv.eval()(x, elu))
