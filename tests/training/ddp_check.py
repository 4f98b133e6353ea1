"""Run under torchrun by test_trainer.py: train, then check every rank holds the same weights and buffers.

With a second argument S, rank 1 alone is asked to stop after step S, as when a signal reaches the ranks a step
apart: every rank must stop after the same step."""

import sys

import torch
from torch import distributed as dist

from audiocodec.training.config import load_config
from audiocodec.training.trainer import Trainer, leave_process_group

trainer = Trainer(load_config(sys.argv[1]))
if len(sys.argv) > 2 and dist.get_rank() == 1:
    stop_after, train_step = int(sys.argv[2]), trainer._train_step

    def step_then_stop(batch, trainer=trainer):
        metrics = train_step(batch)
        trainer.stop_requested = trainer.step >= stop_after
        return metrics

    trainer._train_step = step_then_stop
trainer.train()
print(f"rank {dist.get_rank()} stopped after step {trainer.step}")
flat = torch.cat([t.detach().double().reshape(-1) for t in trainer.model.state_dict().values()])
gathered = [torch.zeros_like(flat) for _ in range(dist.get_world_size())]
dist.all_gather(gathered, flat)
if dist.get_rank() == 0:
    assert all(torch.equal(gathered[0], g) for g in gathered[1:]), "ranks differ"
    print("ranks identical")
dist.barrier()
del trainer  # its DDP wrappers hold the group
leave_process_group()
