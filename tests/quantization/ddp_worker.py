"""Two ranks forked by test_distributed.py (`fork_ranks`), or run under torchrun (`python -m
tests.quantization.ddp_worker OUT_DIR STEPS`): each rank trains on its half of every batch, then saves its state."""

import multiprocessing
import os
import socket
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


def _rank(rank: int, world: int, port: int, out_dir: str, steps: int) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world))
    main(out_dir, steps)


def fork_ranks(out_dir: str, steps: int, world: int = 2, timeout: float = 60) -> list[int]:
    """`main` on `world` gloo ranks forked from this process, which has imported torch already (under torchrun, an
    agent and every rank import it again: seconds of CPU each): their exit codes, -9 for one killed at `timeout`."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    context = multiprocessing.get_context("fork")
    ranks = [context.Process(target=_rank, args=(rank, world, port, out_dir, steps)) for rank in range(world)]
    for process in ranks:
        process.start()
    for process in ranks:
        process.join(timeout)
        if process.is_alive():
            process.kill()
            process.join()
    return [process.exitcode for process in ranks]


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
