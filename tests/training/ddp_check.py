"""Run under torchrun by test_trainer.py: train, then check every rank holds the same weights and buffers."""

import sys

import torch
from torch import distributed as dist

from audiocodec.training.config import load_config
from audiocodec.training.trainer import Trainer, leave_process_group

trainer = Trainer(load_config(sys.argv[1]))
trainer.train()
flat = torch.cat([t.detach().double().reshape(-1) for t in trainer.model.state_dict().values()])
gathered = [torch.zeros_like(flat) for _ in range(dist.get_world_size())]
dist.all_gather(gathered, flat)
if dist.get_rank() == 0:
    assert all(torch.equal(gathered[0], g) for g in gathered[1:]), "ranks differ"
    print("ranks identical")
dist.barrier()
del trainer  # its DDP wrappers hold the group
leave_process_group()
