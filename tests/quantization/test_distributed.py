"""Two gloo ranks with half a batch each learn what one process learns from the whole batch."""

from pathlib import Path

import torch

from audiocodec.quantization import ResidualVectorQuantizer

from . import ddp_worker

STEPS = 8


def test_two_ranks_match_one_process_and_each_other(tmp_path: Path):
    assert ddp_worker.fork_ranks(str(tmp_path), STEPS) == [0, 0]  # a rank's traceback goes to the test's stderr
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
