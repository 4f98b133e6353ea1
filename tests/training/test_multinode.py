"""Two ranks as two nodes, each in its own folder: a run that trains, checkpoints on rank 0 and resumes to an
uninterrupted run's state (its resume under two torchrun agents, `--nnodes 2`, c10d rendezvous on 127.0.0.1);
resuming from folders that are not shared refused in seconds; diverged ranks and a killed rank stopped with one
line. Runs other than the torchrun one fork the test process (`ddp_check.fork_ranks`), which has imported torch."""

import copy
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from .ddp_check import fork_ranks, free_port, train_main
from .ddp_check import main as check
from .test_trainer import tiny_config

ROOT = Path(__file__).parents[2]


def write_recipe(folder: Path, config) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    recipe = folder / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(config.to_dict()))
    return recipe


def two_nodes(tmp_path: Path, config, args: list[str], timeout: float = 120) -> tuple[list[int], str, float]:
    """Run `audiocodec.train` under two torchrun agents, node i in `tmp_path/node{i}`: their exit codes, their
    output (the ranks' and the agents'), and the seconds they took."""
    recipe = write_recipe(tmp_path, config)
    port, env = free_port(), {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    agents, started = [], time.monotonic()
    for node in range(2):
        folder = tmp_path / f"node{node}"
        folder.mkdir(exist_ok=True)
        command = [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc_per_node=1",
                   f"--node_rank={node}", "--rdzv_backend=c10d", f"--rdzv_endpoint=127.0.0.1:{port}",
                   "--rdzv_id=test", f"--rdzv_conf=is_host={int(node == 0)}", "--max_restarts=0",
                   "-m", "audiocodec.train", "--config", str(recipe), *args]
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


def forked_nodes(tmp_path: Path, config, args: list[str], module=train_main, timeout: float = 60):
    """As `two_nodes`, with the two ranks forked from this process (LOCAL_RANK 0 each) instead of torchrun's."""
    recipe = write_recipe(tmp_path, config)
    if module is train_main:
        args = ["--config", str(recipe), *args]
    else:
        args = [str(recipe), *args]
    return fork_ranks([tmp_path / "node0", tmp_path / "node1"], args, target=module, nodes=True, timeout=timeout)


def lines_with(text: str, *needles: str) -> list[str]:
    return [line for line in text.splitlines() if any(needle in line for needle in needles)]


def small_config(tmp_path: Path):
    config = tiny_config(tmp_path)
    config.data.workers = 1
    config.valid_every = config.log_every = 1000
    config.optim.max_steps = 6
    return config


@pytest.fixture
def config(tmp_path):
    return small_config(tmp_path)


@pytest.fixture(scope="module")
def resumed_run(tmp_path_factory):
    """An uninterrupted two-node run of 6 steps, and one stopped after step 3 then resumed under torchrun: the
    folders, and the stopped and resumed runs' output. Run once; the tests below assert on them."""
    tmp_path = tmp_path_factory.mktemp("nodes")
    config = small_config(tmp_path)
    shared = tmp_path / "shared"
    config.checkpoint_every = 1000
    config.output_dir = str(shared / "straight")
    codes, out, _ = forked_nodes(tmp_path / "a", config, [])
    assert codes == [0, 0], out[-3000:]
    config.output_dir = str(shared / "resumed")
    # Rank 1 alone asks to stop after step 3, as a SIGTERM reaching one node does: both stop, rank 0 writes.
    codes, stopped, _ = forked_nodes(tmp_path / "b", config, ["stop=3"], module=check)
    assert codes == [0, 0], stopped[-3000:]
    checkpoints = sorted(p.name for p in (shared / "resumed").iterdir() if p.suffix == ".pt")
    rank_1_wrote = list((tmp_path / "b" / "node1").rglob("*.pt"))
    codes, resumed, seconds = two_nodes(tmp_path / "c", config, ["--resume"])
    print(f"two torchrun agents resumed in {seconds:.1f} s")
    return {"root": tmp_path, "shared": shared, "codes": codes, "stopped": stopped, "resumed": resumed,
            "config": config, "checkpoints": checkpoints, "rank_1_wrote": rank_1_wrote}


def test_two_nodes_train_checkpoint_on_rank_0_and_resume_to_an_uninterrupted_runs_state(resumed_run):
    shared, out = resumed_run["shared"], resumed_run["resumed"]
    print("\n".join(lines_with(resumed_run["stopped"], "stopping", "stopped after")))
    assert resumed_run["checkpoints"] == ["checkpoint_00000003.pt"]
    assert not resumed_run["rank_1_wrote"]  # nothing written by rank 1's node
    assert resumed_run["codes"] == [0, 0], out[-3000:]
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


def test_resuming_on_nodes_that_do_not_share_output_dir_is_refused_in_seconds(resumed_run):
    """Node 0's folder holds a checkpoint, node 1's none (each has its own `output_dir`, relative to its folder)."""
    tmp_path, config = resumed_run["root"] / "apart", copy.deepcopy(resumed_run["config"])
    checkpoint = tmp_path / "node0" / "run" / "checkpoint_00000003.pt"
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_bytes((resumed_run["shared"] / "resumed" / "checkpoint_00000003.pt").read_bytes())
    config.collective_timeout = 300.0  # a rank left waiting in a collective would take this long
    config.output_dir = "run"
    codes, out, seconds = forked_nodes(tmp_path, config, ["--resume"], timeout=120)
    assert codes == [1, 1], out[-3000:]
    refusals = lines_with(out, "error: the ranks found different checkpoints")
    assert len(refusals) == 2, out[-3000:]  # one line from each rank
    for line in refusals:
        assert "found step 3 (" in line and f"{checkpoint}" in line
        assert "found none (in " in line and "shared folder" in line and "--resume-from PATH" in line
    print(f"refused after {seconds:.1f} s")
    assert seconds < 60  # no rank waited out the timeout (the refusal itself takes one all-gather)
    print("\n".join(refusals))

    # The same checkpoint given to every node with --resume-from: they agree, resume, and write into output_dir.
    given = tmp_path / "copy.pt"
    given.write_bytes(checkpoint.read_bytes())
    config.optim.max_steps = 4
    codes, out, _ = forked_nodes(tmp_path, config, ["--resume-from", str(given)], timeout=120)
    assert codes == [0, 0], out[-3000:]
    assert len(lines_with(out, f"resumed from step 3 ({given})")) == 2
    assert (tmp_path / "node0" / "run" / "checkpoint_00000004.pt").is_file()  # where rank 0 runs, here node 0


def test_ranks_that_diverge_stop_naming_the_first_tensor_that_differs(tmp_path, config):
    config.sync_check_every, config.checkpoint_every = 2, 1000
    codes, out, _ = forked_nodes(tmp_path, config, ["diverge=4"], module=check)
    assert codes == [1, 1], out[-3000:]
    errors = lines_with(out, "audiocodec.train: error:")
    assert len(errors) == 2, out[-3000:]
    for line in errors:  # the check after step 2 passed; after step 4 it names what rank 1 nudged
        assert "step 4: the ranks diverged: model.quantizer.levels.1.embedding_sum differs between rank 0 and " \
               "rank 1 (1 of" in line, line
    print(errors[0])


def test_a_rank_killed_mid_step_stops_the_others_with_a_message(tmp_path, config):
    config.collective_timeout = 20.0
    codes, out, _ = forked_nodes(tmp_path, config, ["kill=2"], module=check)
    assert codes == [1, -9], out[-3000:]  # rank 0 stopped with its error; rank 1 killed itself (SIGKILL)
    errors = lines_with(out, "audiocodec.train: error:")
    assert len(errors) == 1 and "step 2: a collective with the other ranks failed" in errors[0], out[-3000:]
    assert "--resume continues" in errors[0]
    killed = float(lines_with(out, "rank 1 kills itself at")[0].split()[-1])
    stopped = float(lines_with(out, "rank 0 stopped at")[0].split()[-1])
    print(f"rank 0 stopped {stopped - killed:.1f} s after rank 1 was killed")
    assert stopped - killed < config.collective_timeout
    print(errors[0])
