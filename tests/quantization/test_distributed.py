"""Two gloo ranks with half a batch each learn what one process learns from the whole batch."""

import os
import subprocess
import sys
from pathlib import Path

import torch

from audiocodec.quantization import ResidualVectorQuantizer

from . import ddp_worker

STEPS = 8


def test_two_ranks_match_one_process_and_each_other(tmp_path: Path):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=0",
               "--rdzv_backend=c10d", "--rdzv_endpoint=localhost:0", "-m", "tests.quantization.ddp_worker",
               str(tmp_path), str(STEPS)]
    result = subprocess.run(command, cwd=env["PYTHONPATH"], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    rank0 = torch.load(tmp_path / "rank0.pt")
    rank1 = torch.load(tmp_path / "rank1.pt")

    single = ResidualVectorQuantizer(4, 3, 8, **ddp_worker.OPTIONS).train()
    metrics = [single(x).metrics for x in ddp_worker.batches(STEPS)]
    expired = sum(m.get(f"q{k}/expired", 0.0) for m in metrics for k in range(3))
    reference = single.state_dict()
    assert expired > 0  # the run exercised expiry, not only the EMA
    assert bool(reference["levels.2.inited"])  # every level was initialised and learnt during the run
    for name, value in rank0.items():
        assert torch.equal(value, rank1[name]), f"{name} differs between ranks"
        if name.startswith("levels."):
            assert torch.allclose(value.double(), reference[name].double(), rtol=1e-5, atol=1e-5), name
        else:
            assert torch.equal(value, reference[name]), name
