"""Run by torchrun from test_distributed.py: each rank trains on its half of every batch, then saves its state.

Each scenario is run the same way by one process on the whole batches (`run(..., rank=0, world=1)`), so the test
compares the two.
"""

import sys

import torch
import torch.distributed as dist

from audiocodec.quantization import ResidualVectorQuantizer

OPTIONS = dict(kmeans_factor=8, kmeans_iters=10, expire_every=2, expire_min_usage=1.0, threshold=0.6,
               quantizer_dropout=True, seed=5)

#: name -> (D, n_q, bins, options). "exact": the ring holds one step's rows exactly. "overflow": a step brings 64
#: rows to a ring of 16 (kmeans_factor 2 x 8 bins) and `rows_per_step` 12 of them wrap around it. "gumbel": global
#: diversity, one level (each rank's Gumbel noise is its own, so deeper levels' residuals differ from 1 process).
SCENARIOS = {
    "exact": (4, 3, 8, OPTIONS),
    "overflow": (4, 3, 8, dict(OPTIONS, kmeans_factor=2, rows_per_step=12)),
    "gumbel": (4, 1, 8, dict(kind="gumbel", kmeans_factor=2, kmeans_iters=10, seed=5,
                             gumbel={"diversity_weight": 1.0})),
}


def batches(steps: int) -> list[torch.Tensor]:
    """The whole batches `[4, 4, 16]`; each rank takes its half along the batch axis."""
    generator = torch.Generator().manual_seed(11)
    return [torch.randn(4, 4, 16, generator=generator) * (1 + step % 3) for step in range(steps)]


def run(name: str, steps: int, rank: int, world: int) -> dict:
    """Trains scenario `name` on this rank's part of each batch; returns its state, metrics and, for Gumbel, each
    step's diversity and its gradients (the codebook's averaged over ranks, as DDP averages them)."""
    dimension, n_q, bins, options = SCENARIOS[name]
    torch.manual_seed(0)
    q = ResidualVectorQuantizer(dimension, n_q, bins, **options).train()
    result: dict = {"metrics": [], "diversity": [], "embedding_grad": [], "input_grad": []}
    for x in batches(steps):
        half = x.shape[0] // world
        part = x[rank * half:(rank + 1) * half].clone().requires_grad_()
        out = q(part)
        result["metrics"].append(out.metrics)
        if "diversity" in out.terms:
            q.zero_grad()
            out.terms["diversity"].backward()
            grad = q.levels[0].embedding.grad.clone()
            if world > 1:
                dist.all_reduce(grad)
                grad /= world
            result["diversity"].append(out.terms["diversity"].detach())
            result["embedding_grad"].append(grad)
            result["input_grad"].append(part.grad.clone())
    result["state"] = q.state_dict()
    return result


def main(out_dir: str, steps: int) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    for name in SCENARIOS:
        torch.save(run(name, steps, rank, world), f"{out_dir}/{name}_rank{rank}.pt")
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
