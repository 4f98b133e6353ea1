"""The ranks' checks, on one process: checksums that see any change of bits, and one-line refusals."""

import subprocess
from pathlib import Path

import torch

from audiocodec.training.ranks import Found, tensor_checksums

ROOT = Path(__file__).parents[2]


def test_checksums_see_one_changed_bit_and_swapped_values_of_every_dtype():
    tensors = [torch.randn(5, 7), torch.randn(3, dtype=torch.float64), torch.randn(4).half(), torch.arange(6),
               torch.tensor([True, False, True]), torch.randn(4).bfloat16()]
    base = tensor_checksums(tensors)
    assert base.shape == (len(tensors), 2) and base.dtype == torch.int64
    assert torch.equal(base, tensor_checksums([t.clone() for t in tensors]))
    for k, tensor in enumerate(tensors):
        flat = tensor.clone().reshape(-1)
        if flat.dtype == torch.bool:
            flat[1] = True
        elif flat.is_floating_point():
            flat[1] = torch.nextafter(flat[1].float(), torch.tensor(float("inf"))).to(flat.dtype)
            if flat[1] == tensor.reshape(-1)[1]:  # a half-precision value the float32 step did not move
                flat[1] = flat[1] * 2 + 1
        else:
            flat[1] += 1
        changed = tensor_checksums([*tensors[:k], flat.reshape(tensor.shape), *tensors[k + 1:]])
        assert (changed != base).any(dim=1).nonzero().flatten().tolist() == [k]
    swapped = tensors[0].clone().reshape(-1)
    swapped[[0, 1]] = swapped[[1, 0]]
    assert tensor_checksums([swapped])[0, 0] == base[0, 0] and tensor_checksums([swapped])[0, 1] != base[0, 1]


def test_what_a_rank_found_is_described_with_its_host():
    assert Found(None, "/runs/x", "node1").describe() == "none (in node1:/runs/x)"
    assert Found(2000, "/runs/x/checkpoint_00002000.pt", "node0").describe() == \
        "step 2000 (node0:/runs/x/checkpoint_00002000.pt)"


def test_train_2nodes_sh_gives_up_on_an_unreachable_rendezvous_in_one_line():
    from .test_multinode import free_port

    result = subprocess.run([str(ROOT / "recipes" / "train_2nodes.sh"), "recipes/tiny_cpu.yaml"], cwd=ROOT,
                            env={"PATH": "/usr/bin:/bin", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port()),
                                 "NODE_RANK": "1", "RDZV_WAIT": "1"},
                            capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    assert "cannot reach the rendezvous at 127.0.0.1:" in result.stderr and "start node 0 first" in result.stderr
