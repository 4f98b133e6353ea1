"""The ELU used by SEANet: `nn.ELU`'s results, computed with `exp` on time-major CPU tensors at inference."""

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from audiocodec.modules import activations
from audiocodec.modules.activations import ELU
from audiocodec.modules.conv import to_time_major


def awkward_values(*shape):
    x = 4 * torch.randn(*shape)
    x[0, 0, :6] = torch.tensor([0.0, -0.0, 1e-8, -1e-8, 90.0, -90.0])  # zero, tiny, exp overflow and underflow
    x[-1, -1, -3:] = torch.tensor([float("inf"), float("-inf"), float("nan")])
    return x


@pytest.mark.parametrize("alpha", [1.0, 0.5, 0.0])
def test_the_exp_path_gives_elu_on_time_major_tensors(monkeypatch, alpha):
    monkeypatch.setattr(activations, "ELU_PIECE", 40)  # several pieces, and a short last one
    x = to_time_major(awkward_values(2, 3, 50))
    expected = F.elu(x, alpha)

    def refuse(*args, **kwargs):
        raise AssertionError("F.elu called: the exp path was not taken")

    monkeypatch.setattr(activations.F, "elu", refuse)
    with torch.no_grad():
        y = ELU(alpha)(x)
    assert y.shape == x.shape and not y.requires_grad
    torch.testing.assert_close(y, expected, rtol=0, atol=1e-7, equal_nan=True)
    assert torch.equal(x.isnan(), y.isnan())


@pytest.mark.parametrize("case", ["channel-major", "autograd", "float64", "alpha above 1", "inplace"])
def test_everything_else_is_torch_elu(case):
    x = to_time_major(awkward_values(2, 3, 50))
    alpha, inplace = 1.0, False
    if case == "channel-major":
        x = x.contiguous()
    elif case == "float64":
        x = x.double()
    elif case == "alpha above 1":
        alpha = 1.5  # max(x, alpha * (exp(x) - 1)) is not ELU there
    elif case == "inplace":
        inplace = True
    expected = F.elu(x, alpha)
    with torch.set_grad_enabled(case == "autograd"):
        y = ELU(alpha, inplace)(x.clone() if inplace else x)
    assert torch.equal(y.nan_to_num(), expected.nan_to_num())


def test_it_is_an_nn_elu_with_its_arguments_and_no_state():
    layer = ELU(alpha=0.7)
    assert isinstance(layer, nn.ELU) and layer.alpha == 0.7 and not layer.state_dict()
