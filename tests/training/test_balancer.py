"""The balancer gives each loss its weight's share of the update, also a loss that joins late."""

import torch

from audiocodec.training.balancer import Balancer

BATCH = 2


def balanced_step(balancer: Balancer, names: list[str]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The combined gradient one step pushes into the network, and each loss's own gradient on the audio.

    The audio is the same at every step, so each loss's gradient norm is too, and its EMA average equals it.
    """
    weight = torch.linspace(-1, 1, BATCH * 50).reshape(BATCH, 1, 50).requires_grad_()
    audio = weight * 1.0
    every = {"big": 1000 * audio.pow(2).sum(), "small": 1e-3 * (audio - 0.3).abs().sum()}
    losses = {name: every[name] for name in names}
    raw = {name: torch.autograd.grad(loss, audio, retain_graph=True)[0] for name, loss in losses.items()}
    balancer.backward(losses, audio, torch.zeros(()))
    return weight.grad, raw


def share(part: torch.Tensor) -> float:
    return float(part.norm() / BATCH ** 0.5)  # the balancer's norms are per item: ||g|| / sqrt(batch)


def test_each_loss_gets_its_weights_share_whatever_its_scale():
    combined, raw = balanced_step(Balancer({"big": 1.0, "small": 3.0}), ["big", "small"])
    small = raw["small"] * 0.75 / share(raw["small"])
    big = combined - small
    assert torch.allclose(big, raw["big"] * 0.25 / share(raw["big"]), rtol=1e-4, atol=1e-7)
    assert abs(share(big) - 0.25) < 1e-4


def test_a_loss_that_joins_late_gets_its_share_from_its_first_step():
    balancer = Balancer({"big": 1.0, "small": 3.0})
    for _ in range(50):  # as during a discriminator warm-up: one loss is absent
        balanced_step(balancer, ["big"])
    combined, raw = balanced_step(balancer, ["big", "small"])
    # With one EMA count shared by all losses, "small" got about 50 times its share here.
    big = raw["big"] * 0.25 / share(raw["big"])
    assert abs(share(combined - big) - 0.75) < 1e-3


def test_state_round_trips_and_older_single_counts_load():
    balancer = Balancer({"big": 1.0, "small": 3.0})
    balanced_step(balancer, ["big"])
    restored = Balancer({"big": 1.0, "small": 3.0})
    restored.load_state_dict(balancer.state_dict())
    assert restored.ema == balancer.ema and restored.ema_count == balancer.ema_count
    restored.load_state_dict({"ema": {"big": 2.0, "small": 0.0}, "ema_count": 1.5})  # before counts were per loss
    assert restored.ema_count == {"big": 1.5, "small": 1.5}


def test_a_loss_added_before_resuming_starts_with_no_history():
    """A loss whose weight was 0 (the balancer leaves it out) and is raised before `--resume`: its missing EMA was
    a KeyError at the first step."""
    balancer = Balancer({"big": 1.0, "small": 0.0})
    balanced_step(balancer, ["big"])
    resumed = Balancer({"big": 1.0, "small": 3.0})
    resumed.load_state_dict(balancer.state_dict())
    assert resumed.ema["big"] == balancer.ema["big"] and resumed.ema_count["small"] == 0
    combined, raw = balanced_step(resumed, ["big", "small"])
    assert abs(share(combined - raw["big"] * 0.25 / share(raw["big"])) - 0.75) < 1e-3
