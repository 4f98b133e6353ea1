"""Two gloo ranks with half a batch each learn what one process learns from the whole batch."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from . import ddp_worker

STEPS = 8


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory) -> Path:
    """One torchrun launch of every scenario in `ddp_worker.SCENARIOS`; the folder of their results."""
    out = tmp_path_factory.mktemp("ddp")
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=0",
               "--rdzv_backend=c10d", "--rdzv_endpoint=localhost:0", "-m", "tests.quantization.ddp_worker",
               str(out), str(STEPS)]
    result = subprocess.run(command, cwd=env["PYTHONPATH"], env=env, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def _compare(two_ranks: Path, name: str) -> tuple[dict, dict, dict]:
    """Both ranks' results and one process's; asserts the ranks hold identical state."""
    rank0, rank1 = (torch.load(two_ranks / f"{name}_rank{r}.pt") for r in (0, 1))
    single = ddp_worker.run(name, STEPS, rank=0, world=1)
    for key, value in rank0["state"].items():
        assert torch.equal(value, rank1["state"][key]), f"{key} differs between ranks"
    return rank0, rank1, single


@pytest.mark.parametrize("name", ["exact", "overflow"])
def test_two_ranks_match_one_process_and_each_other(two_ranks: Path, name: str):
    rank0, _, single = _compare(two_ranks, name)
    reference = single["state"]
    expired = sum(m.get(f"q{k}/expired", 0.0) for m in single["metrics"] for k in range(3))
    assert expired > 0  # the run exercised expiry, not only the EMA
    assert bool(reference["levels.2.inited"])  # every level was initialised (k-means) and learnt during the run
    if name == "overflow":  # every step brought more rows than the ring holds, and the ring wrapped
        assert int(reference["recent_count"]) == 12 * STEPS > reference["recent"].shape[0] == 16
    for key, value in rank0["state"].items():
        if key.startswith("levels."):
            assert torch.allclose(value.double(), reference[key].double(), rtol=1e-5, atol=1e-5), key
        else:  # step, and the ring of recent outputs: bit-identical
            assert torch.equal(value, reference[key]), key


def test_gumbel_diversity_is_the_global_batchs_with_the_gradient_ddp_expects(two_ranks: Path):
    rank0, rank1, single = _compare(two_ranks, "gumbel")
    assert len(single["diversity"]) == len(rank0["diversity"]) >= STEPS - 1  # k-means took at most one step
    for step, value in enumerate(single["diversity"]):
        for ranked in (rank0, rank1):
            assert torch.allclose(ranked["diversity"][step], value, rtol=1e-5, atol=1e-7)
            # the codebook's gradient averaged over ranks (as DDP does) is the whole batch's
            assert _relative(ranked["embedding_grad"][step], single["embedding_grad"][step]) < 1e-5
        # each rank's rows get world x their share, as with every per-rank mean loss under DDP
        whole = torch.cat([rank0["input_grad"][step], rank1["input_grad"][step]])
        assert _relative(whole, 2 * single["input_grad"][step]) < 1e-5
        assert single["input_grad"][step].abs().sum() > 0


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm().clamp(min=1e-30))
