"""Two CPU ranks for the tests, started by forking the test process (`fork_ranks`), or run under torchrun (`python -m
tests.training.ddp_check RECIPE MODE`): train, then check every rank holds the same weights and buffers.

`stop=S`: rank 1 alone is asked to stop after step S, as when a signal reaches the ranks a step apart.
`clocks`: under a time limit, each rank's clock runs at its own pace (rank r: 1 + r seconds a step, rank 1's ten
after step 12), as when ranks time different steps and their deadlines pass at different moments.
Every rank must stop after the same step, with the same schedule.
`diverge=S`: rank 1 alone nudges one codebook buffer after step S; the ranks' sync check must stop both, naming it.
`kill=S`: rank 1 kills itself (SIGKILL) in the middle of step S+1, after its forward pass; rank 0 must stop with a
message instead of waiting in the gradients' all-reduce.
An `AudioCodecError` is printed as `audiocodec.train` prints it, prefixed by the rank, and exits 1.

`fork_ranks` starts the ranks as torchrun would (its environment variables, gloo on 127.0.0.1), but by forking the
test process, which has imported torch and audiocodec already: each torchrun launch cost an agent and a worker per
rank, each importing torch, several seconds of CPU each on a loaded 2-core machine. Tests about torchrun's agents
themselves (`--nnodes 2`) still start them.
"""

import faulthandler
import logging
import multiprocessing
import os
import signal
import socket
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import distributed as dist

from audiocodec.errors import AudioCodecError
from audiocodec.training.config import load_config
from audiocodec.training.trainer import Trainer, leave_process_group


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv: Sequence[str]) -> int:
    """Train the recipe `argv[0]` in the mode `argv[1]` (see the module's docstring); the exit status."""
    trainer = Trainer(load_config(argv[0]))
    mode, rank = (argv[1] if len(argv) > 1 else ""), dist.get_rank()
    if mode.startswith("stop=") and rank == 1:
        stop_after, train_step = int(mode[5:]), trainer._train_step

        def step_then_stop(batch, trainer=trainer):
            metrics = train_step(batch)
            trainer.stop_requested = trainer.step >= stop_after
            return metrics

        trainer._train_step = step_then_stop
    if mode == "clocks":
        pace = 1 + rank
        trainer.clock = lambda trainer=trainer: float(pace * min(trainer.step, 12) + (10 if rank else 1)
                                                      * max(trainer.step - 12, 0))
    if mode.startswith("diverge=") and rank == 1:
        after, train_step = int(mode[8:]), trainer._train_step

        def step_then_nudge(batch, trainer=trainer):
            metrics = train_step(batch)
            if trainer.step == after:
                trainer.model.quantizer.levels[1].embedding_sum[3, 0] += 1e-3
            return metrics

        trainer._train_step = step_then_nudge
    if mode.startswith("kill=") and rank == 1:
        after, forward = int(mode[5:]), trainer.generator.forward

        def forward_then_die(*args, trainer=trainer, **kwargs):
            out = forward(*args, **kwargs)
            if trainer.step == after:
                print(f"rank 1 kills itself at {time.time():.3f}", flush=True)
                os.kill(os.getpid(), signal.SIGKILL)
            return out

        trainer.generator.forward = forward_then_die
    try:
        trainer.train()
    except AudioCodecError as error:
        print(f"rank {rank}: audiocodec.train: error: {error}", file=sys.stderr, flush=True)
        print(f"rank {rank} stopped at {time.time():.3f}", flush=True)
        del trainer
        leave_process_group()
        return 1
    print(f"rank {rank} stopped after step {trainer.step}, schedule end {trainer.schedule.end}")
    flat = torch.cat([t.detach().double().reshape(-1) for t in trainer.model.state_dict().values()])
    gathered = [torch.zeros_like(flat) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, flat)
    if dist.get_rank() == 0:
        assert all(torch.equal(gathered[0], g) for g in gathered[1:]), "ranks differ"
        print("ranks identical")
    dist.barrier()
    del trainer  # its DDP wrappers hold the group
    leave_process_group()
    return 0


def train_main(argv: Sequence[str]) -> int:
    """`python -m audiocodec.train ARGV`, in this process."""
    from audiocodec.train import main as train

    sys.argv = ["audiocodec.train", *argv]
    return train()


def _rank(rank: int, world: int, nodes: bool, port: int, folder: Path, log: Path,
          target: Callable[[Sequence[str]], int], argv: Sequence[str], timeout: float) -> None:
    """One forked rank: torchrun's environment, its output into `log`, `target(argv)` run in `folder`."""
    out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.dup2(out, 1)
    os.dup2(out, 2)
    sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115 (the process's own streams)
    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
    logging.root.handlers.clear()  # pytest's: the entry point's logging.basicConfig writes to this stderr
    warnings.resetwarnings()  # pytest records warnings: print them as a fresh interpreter does
    for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
        warnings.simplefilter("ignore", category)
    warnings.showwarning = lambda message, category, filename, lineno, file=None, line=None: sys.stderr.write(
        warnings.formatwarning(message, category, filename, lineno, line))
    faulthandler.dump_traceback_later(max(1.0, timeout - 3))  # where a rank that hangs waits, in its log
    os.chdir(folder)
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK="0" if nodes else str(rank), LOCAL_WORLD_SIZE="1" if nodes else str(world),
                      GROUP_RANK=str(rank) if nodes else "0")
    code = target(argv)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # none of the test process's exit handlers


def fork_ranks(folders: Sequence[Path], argv: Sequence[str], target: Callable[[Sequence[str]], int] = main,
               nodes: bool = False, timeout: float = 60) -> tuple[list[int], str, float]:
    """Run `target(argv)` on `len(folders)` ranks, rank r in `folders[r]`, forked from this process: their exit
    codes (-9 for SIGKILL; a rank still running after `timeout` seconds is killed), their output, and the seconds
    they took. `nodes`: each rank as the only one of its node (LOCAL_RANK 0), as under torchrun `--nnodes`."""
    import torch._dynamo  # noqa: F401 (DDP imports it, triton with it: seconds of CPU, once here, not per rank)

    context, port, started = multiprocessing.get_context("fork"), free_port(), time.monotonic()
    logs = [Path(folder) / f"rank{rank}.log" for rank, folder in enumerate(folders)]
    for folder in folders:
        Path(folder).mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    ranks = [context.Process(target=_rank, args=(rank, len(folders), nodes, port, Path(folder), logs[rank], target,
                                                  list(argv), timeout))
             for rank, folder in enumerate(folders)]
    for process in ranks:
        process.start()
    try:
        for process in ranks:
            process.join(max(0.1, timeout - (time.monotonic() - started)))
    finally:
        for process in ranks:
            if process.is_alive():
                process.kill()
                process.join()
    output = "\n".join(log.read_text(errors="replace") for log in logs)
    return [process.exitcode for process in ranks], output, time.monotonic() - started


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
