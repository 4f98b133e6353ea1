"""Run by torchrun from test_distributed.py: each rank trains on its half of every batch, then saves its state."""

import sys

import torch
import torch.distributed as dist

from audiocodec.quantization import ResidualVectorQuantizer

OPTIONS = dict(kmeans_factor=8, kmeans_iters=10, expire_every=2, expire_min_usage=1.0, threshold=0.6,
               quantizer_dropout=True, seed=5)


def batches(steps: int) -> list[torch.Tensor]:
    """The whole batches `[4, 4, 16]`; each rank takes its half along the batch axis."""
    generator = torch.Generator().manual_seed(11)
    return [torch.randn(4, 4, 16, generator=generator) * (1 + step % 3) for step in range(steps)]


def main(out_dir: str, steps: int) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    q = ResidualVectorQuantizer(4, 3, 8, **OPTIONS).train()
    for x in batches(steps):
        half = x.shape[0] // world
        q(x[rank * half:(rank + 1) * half])
    torch.save(q.state_dict(), f"{out_dir}/rank{rank}.pt")
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
