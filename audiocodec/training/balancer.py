"""The loss balancer of EnCodec / audiocraft, folded into a single backward pass.

Losses that act on the generated audio are balanced by the size of their gradients with respect to that audio,
not by their values: each loss's gradient `g_i = d loss_i / d audio` is scaled to `total_norm * w_i / sum(w)`
of the gradient norm it usually has (an EMA of `||g_i||`, averaged over ranks), and the sum of the scaled
gradients is pushed through the generator once. So a weight says what share of the update a loss gets,
whatever its scale. Only gradients w.r.t. the audio are computed per loss (`torch.autograd.grad`), and the
single `torch.autograd.backward` afterwards is the step's only pass through the network, which is what DDP
expects. See audiocraft's `losses/balancer.py` for the original and its derivation.

Each loss keeps its own EMA count, so one that joins late (the adversarial losses after a discriminator warm-up)
is normalised by its own history from its first step; a count shared with losses present since step 0 would
make its average norm look thousands of times too small and its first updates that much too large.
"""

from __future__ import annotations

import torch
from torch import distributed as dist


class Balancer:
    def __init__(self, weights: dict[str, float], balance: bool = True, total_norm: float = 1.0,
                 ema_decay: float = 0.999, epsilon: float = 1e-12):
        self.weights = {name: w for name, w in weights.items() if w > 0}
        self.balance, self.total_norm, self.decay, self.epsilon = balance, total_norm, ema_decay, epsilon
        self.ema = {name: 0.0 for name in self.weights}
        self.ema_count = {name: 0.0 for name in self.weights}

    def backward(self, losses: dict[str, torch.Tensor], audio: torch.Tensor, extra: torch.Tensor) -> dict[str, float]:
        """Backpropagate the balanced losses through `audio`, plus `extra` (the quantizer loss) unscaled, at once.

        Returns the gradient norms per loss, for logging.
        """
        names = [n for n in self.weights if n in losses]
        grads = [torch.autograd.grad(losses[n], audio, retain_graph=True)[0] for n in names]
        norms = torch.stack([g.norm(p=2) / max(1, g.shape[0]) ** 0.5 for g in grads]).double()
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(norms)
            norms /= dist.get_world_size()
        for name, norm in zip(names, norms.tolist()):
            self.ema[name] = self.ema[name] * self.decay + norm
            self.ema_count[name] = self.ema_count[name] * self.decay + 1.0
        total_weight = sum(self.weights[n] for n in names)
        combined = torch.zeros_like(audio)
        for name, grad in zip(names, grads):
            if self.balance:
                average_norm = self.ema[name] / self.ema_count[name]
                scale = self.total_norm * self.weights[name] / total_weight / (average_norm + self.epsilon)
            else:
                scale = self.weights[name]
            combined.add_(grad, alpha=scale)
        if extra.requires_grad:
            torch.autograd.backward([audio, extra], [combined, torch.ones_like(extra)])
        else:  # e.g. a quantizer loss that is a constant before its codebooks exist
            torch.autograd.backward([audio], [combined])
        return {name: norm for name, norm in zip(names, norms.tolist())}

    def state_dict(self) -> dict:
        return {"ema": dict(self.ema), "ema_count": dict(self.ema_count)}

    def load_state_dict(self, state: dict) -> None:
        """A loss the checkpoint lacks (one added to the recipe before resuming) starts with no history."""
        count = state["ema_count"]
        # Checkpoints written before the counts were per loss hold one count, which every loss then had.
        count = dict(count) if isinstance(count, dict) else {name: float(count) for name in state["ema"]}
        self.ema = {name: 0.0 for name in self.weights} | dict(state["ema"])
        self.ema_count = {name: 0.0 for name in self.weights} | count
