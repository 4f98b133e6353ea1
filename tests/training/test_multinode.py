"""Two torchrun agents on this machine, as two nodes (`--nnodes 2`, c10d rendezvous on 127.0.0.1), each in its own
folder: a run that trains, checkpoints on rank 0 and resumes to an uninterrupted run's state; resuming from
folders that are not shared refused in seconds; diverged ranks and a killed rank stopped with one line."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from .test_trainer import tiny_config

ROOT = Path(__file__).parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def two_nodes(tmp_path: Path, config, args: list[str], module: str = "audiocodec.train",
              timeout: float = 120) -> tuple[list[int], str, float]:
    """Run `module` under two torchrun agents, node i in `tmp_path/node{i}`: their exit codes, their output (the
    ranks' and the agents'), and the seconds they took."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(config.to_dict()))
    port, env = free_port(), {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    agents, started = [], time.monotonic()
    for node in range(2):
        folder = tmp_path / f"node{node}"
        folder.mkdir(exist_ok=True)
        command = [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc_per_node=1",
                   f"--node_rank={node}", "--rdzv_backend=c10d", f"--rdzv_endpoint=127.0.0.1:{port}",
                   "--rdzv_id=test", f"--rdzv_conf=is_host={int(node == 0)}", "--max_restarts=0",
                   "-m", module, *(["--config"] if module == "audiocodec.train" else []), str(recipe), *args]
        agents.append(subprocess.Popen(command, cwd=folder, env=env, stdout=subprocess.PIPE,
                                       stderr=subprocess.STDOUT, text=True))
    outputs = []
    try:
        for agent in agents:
            outputs.append(agent.communicate(timeout=max(1.0, timeout - (time.monotonic() - started)))[0])
    finally:
        for agent in agents:
            agent.kill()
    return [agent.returncode for agent in agents], "\n".join(outputs), time.monotonic() - started


def lines_with(text: str, *needles: str) -> list[str]:
    return [line for line in text.splitlines() if any(needle in line for needle in needles)]


@pytest.fixture
def config(tmp_path):
    config = tiny_config(tmp_path)
    config.data.workers = 1
    config.valid_every = config.log_every = 1000
    config.optim.max_steps = 6
    return config


def test_two_nodes_train_checkpoint_on_rank_0_and_resume_to_an_uninterrupted_runs_state(tmp_path, config):
    shared = tmp_path / "shared"
    config.checkpoint_every = 1000
    config.output_dir = str(shared / "straight")
    codes, out, _ = two_nodes(tmp_path / "a", config, [])
    assert codes == [0, 0], out[-3000:]
    print("\n".join(lines_with(out, "training data:", "stopping")))
    config.output_dir = str(shared / "resumed")
    # Rank 1 alone asks to stop after step 3, as a SIGTERM reaching one node does: both stop, rank 0 writes.
    codes, out, _ = two_nodes(tmp_path / "b", config, ["stop=3"], module="tests.training.ddp_check")
    assert codes == [0, 0], out[-3000:]
    print("\n".join(lines_with(out, "stopping", "stopped after")))
    assert sorted(p.name for p in (shared / "resumed").iterdir() if p.suffix == ".pt") == ["checkpoint_00000003.pt"]
    assert not list((tmp_path / "b" / "node1").rglob("*.pt"))  # nothing written by rank 1's node
    codes, out, _ = two_nodes(tmp_path / "c", config, ["--resume"])
    assert codes == [0, 0], out[-3000:]
    print("\n".join(lines_with(out, "training data:", "ranks found", "resumed from")))
    assert len(lines_with(out, "resumed from step 3")) == 2  # both ranks read the shared checkpoint
    straight = torch.load(shared / "straight" / "checkpoint_00000006.pt", weights_only=True)
    resumed = torch.load(shared / "resumed" / "checkpoint_00000006.pt", weights_only=True)
    for part in ("model", "discriminator"):
        for name, tensor in straight[part].items():
            assert torch.equal(tensor, resumed[part][name]), f"{part}.{name}"
    assert straight["opt_g"]["state"].keys() == resumed["opt_g"]["state"].keys()
    for key, state in straight["opt_g"]["state"].items():
        assert torch.equal(state["exp_avg_sq"], resumed["opt_g"]["state"][key]["exp_avg_sq"]), key
    assert (straight["epoch"], straight["batch_index"]) == (resumed["epoch"], resumed["batch_index"])


def test_resuming_on_nodes_that_do_not_share_output_dir_is_refused_in_seconds(tmp_path, config):
    """Node 0's folder holds a checkpoint, node 1's none (each has its own `output_dir`, relative to its folder)."""
    config.optim.max_steps, config.checkpoint_every = 2, 2
    config.collective_timeout = 300.0  # a rank left waiting in a collective would take this long
    config.output_dir = str(tmp_path / "node0" / "run")
    from audiocodec.training.trainer import Trainer

    Trainer(config).train()  # node 0's checkpoint, at step 2
    config.output_dir = "run"
    codes, out, seconds = two_nodes(tmp_path, config, ["--resume"], timeout=60)
    assert codes == [1, 1], out[-3000:]
    refusals = lines_with(out, "error: the ranks found different checkpoints")
    assert len(refusals) == 2, out[-3000:]  # one line from each rank
    for line in refusals:
        assert "found step 2 (" in line and f"{tmp_path / 'node0' / 'run' / 'checkpoint_00000002.pt'}" in line
        assert "found none (in " in line and "shared folder" in line and "--resume-from PATH" in line
    print(f"refused after {seconds:.1f} s, torchrun's start-up included")
    assert seconds < 150  # no rank waited out the timeout (the refusal itself takes one all-gather)
    print("\n".join(refusals))

    # The same checkpoint given to every node with --resume-from: they agree, resume, and write into output_dir.
    copy = tmp_path / "copy.pt"
    copy.write_bytes((tmp_path / "node0" / "run" / "checkpoint_00000002.pt").read_bytes())
    config.optim.max_steps = 3
    codes, out, _ = two_nodes(tmp_path, config, ["--resume-from", str(copy)], timeout=90)
    assert codes == [0, 0], out[-3000:]
    assert len(lines_with(out, f"resumed from step 2 ({copy})")) == 2
    assert (tmp_path / "node0" / "run" / "checkpoint_00000003.pt").is_file()  # where rank 0 runs, here node 0


def test_ranks_that_diverge_stop_naming_the_first_tensor_that_differs(tmp_path, config):
    config.sync_check_every, config.checkpoint_every = 2, 1000
    codes, out, _ = two_nodes(tmp_path, config, ["diverge=4"], module="tests.training.ddp_check")
    assert codes == [1, 1], out[-3000:]
    errors = lines_with(out, "audiocodec.train: error:")
    assert len(errors) == 2, out[-3000:]
    for line in errors:  # the check after step 2 passed; after step 4 it names what rank 1 nudged
        assert "step 4: the ranks diverged: model.quantizer.levels.1.embedding_sum differs between rank 0 and " \
               "rank 1 (1 of" in line, line
    print(errors[0])


def test_a_rank_killed_mid_step_stops_the_others_with_a_message(tmp_path, config):
    config.collective_timeout = 20.0
    codes, out, _ = two_nodes(tmp_path, config, ["kill=2"], module="tests.training.ddp_check", timeout=90)
    assert codes == [1, 1], out[-3000:]  # the node of the killed rank, and the node whose rank lost it
    errors = lines_with(out, "audiocodec.train: error:")
    assert len(errors) == 1 and "step 2: a collective with the other ranks failed" in errors[0], out[-3000:]
    assert "--resume continues" in errors[0]
    killed = float(lines_with(out, "rank 1 kills itself at")[0].split()[-1])
    stopped = float(lines_with(out, "rank 0 stopped at")[0].split()[-1])
    print(f"rank 0 stopped {stopped - killed:.1f} s after rank 1 was killed")
    assert stopped - killed < config.collective_timeout
    print(errors[0])
