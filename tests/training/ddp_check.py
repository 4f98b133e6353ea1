"""Run under torchrun by test_trainer.py: train, then check every rank holds the same weights and buffers.

`stop=S`: rank 1 alone is asked to stop after step S, as when a signal reaches the ranks a step apart.
`clocks`: under a time limit, each rank's clock runs at its own pace (rank r: 1 + r seconds a step, rank 1's ten
after step 12), as when ranks time different steps and their deadlines pass at different moments.
Every rank must stop after the same step, with the same schedule.
`diverge=S`: rank 1 alone nudges one codebook buffer after step S; the ranks' sync check must stop both, naming it.
`kill=S`: rank 1 kills itself (SIGKILL) in the middle of step S+1, after its forward pass; rank 0 must stop with a
message instead of waiting in the gradients' all-reduce.
An `AudioCodecError` is printed as `audiocodec.train` prints it, prefixed by the rank, and exits 1."""

import os
import signal
import sys
import time

import torch
from torch import distributed as dist

from audiocodec.errors import AudioCodecError
from audiocodec.training.config import load_config
from audiocodec.training.trainer import Trainer, leave_process_group

trainer = Trainer(load_config(sys.argv[1]))
mode, rank = (sys.argv[2] if len(sys.argv) > 2 else ""), dist.get_rank()
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
    sys.exit(1)
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
