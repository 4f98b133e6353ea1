"""Training on synthesised audio: the loss falls, resume is exact, bad data and configs are refused clearly."""

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import audiocodec
from audiocodec.errors import AudioCodecError, ConfigError
from audiocodec.modules import PaddedConvTranspose1d
from audiocodec.training import trainer as trainer_module
from audiocodec.training.config import TrainConfig, load_config
from audiocodec.training.trainer import Trainer, default_finetune_warning

RECIPE = Path(__file__).parents[2] / "recipes" / "tiny_cpu.yaml"


def write_corpus(root: Path, files: int = 6, seconds: float = 1.0, rate: int = 8000) -> Path:
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        t = np.arange(int(seconds * rate)) / rate
        f0 = 150 + 60 * i
        x = 0.3 * np.sin(2 * np.pi * f0 * t * (1 + 0.2 * t)) + 0.02 * rng.standard_normal(len(t))
        sf.write(root / f"clip{i}.wav", x.astype(np.float32), rate)
    return root


def tiny_config(tmp_path: Path, **optim) -> TrainConfig:
    config = load_config(RECIPE)
    config.data.train = str(write_corpus(tmp_path / "train"))
    config.data.valid = str(write_corpus(tmp_path / "valid", files=2))
    config.output_dir = str(tmp_path / "run")
    for key, value in optim.items():
        setattr(config.optim, key, value)
    return config


def test_log_mel_loss_weighs_quiet_audio_as_much_as_loud():
    from audiocodec.training.losses import MultiScaleMelLoss

    rng = torch.Generator().manual_seed(0)
    loud = 0.5 * torch.randn(1, 1, 8000, generator=rng)
    log_loss, linear_loss = MultiScaleMelLoss(8000, scale="log"), MultiScaleMelLoss(8000)
    # Halving the level costs the same at any level on the log scale, 2500x less at 1/50 the level on the linear.
    assert torch.isclose(log_loss(0.5 * loud, loud), log_loss(0.01 * loud, 0.02 * loud), rtol=1e-3)
    assert linear_loss(0.01 * loud, 0.02 * loud) < 0.01 * linear_loss(0.5 * loud, loud)
    assert log_loss(loud, loud) == 0
    with pytest.raises(ConfigError, match="mel_scale"):
        TrainConfig.from_dict({"loss": {"mel_scale": "decibel"}})


@pytest.mark.parametrize("mel_scale", ["linear", "log"])
def test_loss_falls_and_validation_runs(tmp_path, mel_scale):
    config = tiny_config(tmp_path, max_steps=60)
    config.loss.discriminator = False  # the reconstruction loss alone must fall
    config.loss.mel_scale = mel_scale
    trainer = Trainer(config)
    # The loss on one fixed batch before and after training: batches differ in loudness too much for the logged
    # per-step values to show the trend. After 40 steps the linear loss had fallen by only 16-23% (by thread
    # count), too near the bound; after 60, by 78-92%.
    fixed = torch.stack([trainer.train_data[i] for i in range(4)])

    def loss_on_fixed() -> float:  # in eval mode: no codebook statistics change
        trainer.model.eval()
        with torch.no_grad():
            loss = float(trainer.mel(trainer.model(fixed, n_q=trainer.model.quantizer.n_q).audio, fixed))
        trainer.model.train()
        return loss

    first = loss_on_fixed()
    trainer.train()
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    valid = [json.loads(line) for line in lines if "valid/si_sdr" in line]
    assert valid and all(k in valid[-1] for k in ("valid/mel_distance", "valid/q0/perplexity", "valid/q0/dead"))
    # Validation runs right after an expiry check (valid_every is a multiple of expire_every): it reports what
    # that check found, not the window that has just restarted.
    level = trainer.model.quantizer.levels[0]
    assert not level.window_usage.any() and valid[-1]["valid/q0/dead"] == level.last_dead
    assert loss_on_fixed() < 0.8 * first
    assert (trainer.model.code_frequencies.sum() > 0)


def test_validation_scores_valid_batches_of_batch_size_segments(tmp_path):
    from audiocodec.evaluation.health import codebook_health
    from audiocodec.evaluation.metrics import mel_distance, si_sdr

    config = tiny_config(tmp_path)
    config.data.valid = str(write_corpus(tmp_path / "valid5", files=5))
    config.data.batch_size = 2
    trainer = Trainer(config)
    model, n_q = trainer.model, trainer.model.quantizer.n_q

    def one_by_one(segments: int) -> dict[str, float]:  # each of the first files' segment on its own
        model.eval()
        sdr, mel, counts = [], [], np.zeros((n_q, model.quantizer.bins))
        with torch.no_grad():
            for i in range(segments):
                wav = trainer.valid_data[i][None]
                out = model(wav, n_q=n_q)
                sdr.append(float(si_sdr(wav, out.audio).mean()))
                mel.append(float(mel_distance(wav, out.audio, config.model.sample_rate).mean()))
                for k in range(n_q):
                    counts[k] += np.bincount(out.codes[0, k].numpy(), minlength=counts.shape[1])
        model.train()
        return {"valid/si_sdr": np.mean(sdr), "valid/mel_distance": np.mean(mel),
                "valid/q0/used": codebook_health(counts)[0].used}

    for batches, segments in ((1, 2), (3, 5)):  # 3 batches of 2 from 5 files: the last one holds 1
        config.valid_batches = batches
        result, expected = trainer.validate(), one_by_one(segments)
        for key, value in expected.items():
            assert result[key] == pytest.approx(value, rel=1e-4, abs=1e-5), (batches, key)


def test_resume_is_bit_for_bit(tmp_path):
    straight = Trainer(tiny_config(tmp_path / "a", max_steps=20))
    straight.train()
    config = tiny_config(tmp_path / "b", max_steps=20)
    config.checkpoint_every = 100
    first = Trainer(config)
    step = first._train_step

    def step_then_interrupt(batch):  # as Ctrl-C does: the loop stops and writes a final checkpoint
        metrics = step(batch)
        first.stop_requested = first.step == 9
        return metrics

    first._train_step = step_then_interrupt
    first.train()
    resumed = Trainer(config, resume=True)
    assert resumed.step == 9
    resumed.train()
    for (name, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name


def test_steps_trained_again_after_a_lost_checkpoint_are_logged_once(tmp_path):
    """A SIGKILL loses the checkpoints after the last one on disk; the steps after it used to be logged twice."""
    config = tiny_config(tmp_path, max_steps=10)
    config.checkpoint_every, config.log_every = 5, 1
    Trainer(config).train()
    (tmp_path / "run" / "checkpoint_00000010.pt").unlink()
    before = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    Trainer(config, resume=True).train()
    after = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in after] == [row["step"] for row in before]
    assert after[:5] == before[:5] and after[5:] == before[5:]  # the same steps, trained again to the same losses


def test_training_is_the_same_with_and_without_prefetching(tmp_path):
    runs = []
    for workers in (0, 3):
        config = tiny_config(tmp_path / str(workers), max_steps=8)
        config.data.workers = workers
        trainer = Trainer(config)
        trainer.train()
        runs.append(trainer.model.state_dict())
    for (name, a), b in zip(runs[0].items(), runs[1].values()):
        assert torch.equal(a, b), name


def test_device_choice_is_checked(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="device must be one of auto, cpu, cuda"):
        TrainConfig.from_dict({"device": "gpu"})
    config = tiny_config(tmp_path)
    config.device = "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="PyTorch sees no CUDA GPU"):
        Trainer(config)
    config.device = "auto"
    assert Trainer(config).device.type == "cpu"
    config.device = "CPU"  # set in code, past the YAML check: still refused, not read as "not cpu"
    with pytest.raises(ConfigError, match="device must be one of"):
        Trainer(config)


def test_damaged_checkpoint_falls_back_to_the_previous(tmp_path, caplog):
    config = tiny_config(tmp_path, max_steps=10)
    config.checkpoint_every = 5
    Trainer(config).train()
    newest = sorted((tmp_path / "run").glob("checkpoint_*.pt"))[-1]
    newest.write_bytes(newest.read_bytes()[:1000])
    resumed = Trainer(config, resume=True)
    assert resumed.step == 5 and "damaged" in caplog.text


def test_a_run_directory_is_not_overwritten_and_unreadable_checkpoints_are_not_replaced(tmp_path):
    """A second run without --resume overwrote the first's checkpoints and mixed with them; --resume over damaged
    checkpoints alone started from scratch and wrote over them."""
    config = tiny_config(tmp_path, max_steps=5)
    config.checkpoint_every = 5
    Trainer(config).train()
    with pytest.raises(AudioCodecError, match="holds the checkpoints of a run: --resume continues it"):
        Trainer(config)
    (only,) = (tmp_path / "run").glob("checkpoint_*.pt")
    only.write_bytes(only.read_bytes()[:1000])
    with pytest.raises(AudioCodecError, match=r"none of its 1 checkpoint\(s\) can be read"):
        Trainer(config, resume=True)
    assert only.stat().st_size == 1000


def test_resuming_under_another_model_layout_is_refused_in_one_line(tmp_path):
    config = tiny_config(tmp_path, max_steps=5)
    config.checkpoint_every = 5
    Trainer(config).train()
    for changes, named in (({"n_filters": 8}, "n_filters"), ({"sample_rate": 16000}, "sample_rate")):
        changed = tiny_config(tmp_path, max_steps=10)
        changed.model = changed.model.replace(**changes)
        with pytest.raises(AudioCodecError, match=f"model differs from the recipe's in {named}"):
            Trainer(changed, resume=True)


def test_resume_from_a_checkpoint_file_or_folder_and_bad_paths_are_one_line(tmp_path):
    config = tiny_config(tmp_path, max_steps=4)
    config.checkpoint_every = 2
    Trainer(config).train()
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    (tmp_path / "run" / "checkpoint_00000002.pt").rename(moved / "step2.pt")
    other = tiny_config(tmp_path / "other", max_steps=4)
    assert Trainer(other, resume_from=str(moved / "step2.pt")).step == 2  # a file, into a fresh output_dir
    assert Trainer(other, resume_from=str(tmp_path / "run")).step == 4  # a run folder: its newest
    (moved / "notes.txt").write_text("hello")
    for path, message in ((tmp_path / "nowhere", "no such checkpoint file or run folder"),
                          (moved / "notes.txt", "not a readable checkpoint"),
                          (tmp_path / "other", "the folder holds no checkpoint")):
        with pytest.raises(AudioCodecError, match=f"--resume-from {path}: {message}"):
            Trainer(other, resume_from=str(path))


@pytest.mark.parametrize("section, key, value", [
    ("data", "batch_size", 0), ("data", "batch_size", -2), ("data", "segment_seconds", -1),
    ("data", "segment_seconds", 100_000),
    ("optim", "lr", -0.003), ("optim", "lr", float("nan")), ("optim", "max_steps", -1),
    ("loss", "adversarial_loss", "wgan"), ("loss", "l1", -1), ("loss", "discriminator_ffts", []),
    ("loss", "discriminator_ffts", [3]),
    (None, "checkpoint_every", 0), (None, "log_every", 0), (None, "valid_every", -1), (None, "seed", -1),
    (None, "seed", 2**70), (None, "keep_checkpoints", -1), (None, "sync_check_every", -1),
    (None, "collective_timeout", 0),
])
def test_recipe_values_out_of_range_are_refused_naming_the_key(tmp_path, section, key, value):
    recipe = tmp_path / "bad.yaml"
    recipe.write_text(RECIPE.read_text() + (f"{key}: {json.dumps(value)}\n" if section is None else ""))
    if section is not None:
        import yaml

        data = yaml.safe_load(RECIPE.read_text())
        data.setdefault(section, {})[key] = value
        recipe.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=f"{key} must be"):
        load_config(recipe)


def test_a_recipe_without_training_data_is_refused(tmp_path):
    """As a path, "" is the current folder: every audio file below it would have been trained on."""
    config = tiny_config(tmp_path)
    config.data.train = ""
    with pytest.raises(ConfigError, match="data train is not set"):
        Trainer(config)


def test_empty_dataset_and_unknown_keys_are_clear_errors(tmp_path):
    config = tiny_config(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "silence.wav").write_bytes(b"")
    config.data.train = str(empty)
    with pytest.raises(AudioCodecError, match="no usable audio files"):
        Trainer(config)
    bad = tmp_path / "bad.yaml"
    bad.write_text("optim: {lr: 0.1, learning_rate: 2}\n")
    with pytest.raises(ConfigError, match="learning_rate"):
        load_config(bad)


def run_two_ranks(tmp_path: Path, config: TrainConfig, mode: str) -> str:
    """tests/training/ddp_check.py on two CPU ranks of one node, forked from this process as torchrun would start
    them (`ddp_check.fork_ranks`); their output."""
    import yaml

    from .ddp_check import fork_ranks, main

    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(config.to_dict()))
    codes, out, _ = fork_ranks([tmp_path / "rank0", tmp_path / "rank1"], [str(recipe), mode], target=main,
                               timeout=120)
    # Both ends of the ranks' output: a rank's own error comes first.
    assert codes == [0, 0], out[:3000] + "\n[...]\n" + out[-3000:]
    assert "ranks identical" in out
    assert "broadcast_buffers" not in out  # deprecated in torch 2.13: no FutureWarning for users
    return out


def test_two_ranks_stay_in_sync_and_stop_together(tmp_path):
    config = tiny_config(tmp_path, max_steps=8)
    config.checkpoint_every = 3
    out = run_two_ranks(tmp_path, config, "stop=5")
    # Only rank 1 was asked to stop, after step 5: both stopped there, and rank 0 wrote the final checkpoint.
    assert "rank 0 stopped after step 5," in out and "rank 1 stopped after step 5," in out
    checkpoints = sorted(p.name for p in (tmp_path / "run").glob("checkpoint_*.pt"))
    assert checkpoints == ["checkpoint_00000003.pt", "checkpoint_00000005.pt"]


def test_two_ranks_agree_on_a_time_limits_schedule_and_deadline(tmp_path):
    config = tiny_config(tmp_path, warmup_steps=12, time_limit=30.0)
    config.checkpoint_every = config.valid_every = 10_000
    out = run_two_ranks(tmp_path, config, "clocks")
    # Rank 0 fits 12 + 17 steps, rank 1 (2 s a step, 6 s left) 12 + 2: both take 14. Rank 1's clock then passes
    # its deadline after step 13 (24 + 10 s): both stop there.
    assert "rank 0 stopped after step 13, schedule end 14" in out
    assert "rank 1 stopped after step 13, schedule end 14" in out


@pytest.mark.parametrize("recipe", sorted((Path(__file__).parents[2] / "recipes").glob("*.yaml")), ids=lambda p: p.name)
def test_every_recipe_builds_its_codec(recipe):
    from audiocodec import Codec

    config = load_config(recipe)
    codec = Codec(config.model)
    assert codec.bandwidths == [float(b) for b in config.model.target_bandwidths]


def test_non_finite_losses_skip_steps_then_stop(tmp_path):
    config = tiny_config(tmp_path, max_steps=20)
    config.max_bad_steps = 3
    trainer = Trainer(config)
    before = {k: v.detach().clone() for k, v in trainer.model.named_parameters()}
    trainer.mel.forward = lambda estimate, reference: torch.tensor(float("nan"))
    assert trainer._train_step(trainer._next_batch()) == {"skipped": 1.0}
    # No optimizer step: the weights are untouched (the codebooks learn in the forward pass, before any loss).
    assert trainer.step == 0 and all(torch.equal(before[k], v) for k, v in trainer.model.named_parameters())
    with pytest.raises(AudioCodecError, match="3 steps in a row had NaN or Inf"):
        trainer.train()


def test_nan_in_the_encoders_output_skips_steps_then_stops(tmp_path):
    config = tiny_config(tmp_path, max_steps=20)
    config.max_bad_steps = 2
    trainer = Trainer(config)
    trainer._train_step(trainer._next_batch())  # the codebooks initialise on their first batch
    with torch.no_grad():
        next(trainer.model.encoder.parameters()).fill_(float("nan"))
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    assert trainer._train_step(trainer._next_batch()) == {"skipped": 1.0}
    # Nothing learnt from the step: weights, codebooks and their EMA statistics as they were.
    assert trainer.step == 1 and all(torch.allclose(v, before[k], rtol=0, atol=0, equal_nan=True)
                                     for k, v in trainer.model.state_dict().items())
    with pytest.raises(AudioCodecError, match="2 steps in a row had NaN or Inf losses or encoder outputs"):
        trainer.train()


def test_time_limit_fits_the_schedule_to_the_time_and_stops_at_it(tmp_path, caplog):
    from audiocodec.training.time_budget import MARGIN, TIMED_STEPS

    config = tiny_config(tmp_path, max_steps=10_000, warmup_steps=12, time_limit=30.0)
    config.valid_every = config.checkpoint_every = 10_000
    trainer = Trainer(config)
    trainer.clock = lambda: float(trainer.step)  # one second a step
    with caplog.at_level("INFO", logger="audiocodec.train"):
        trainer.train()
    # Timed from step 1 (the first step is not typical) to the warm-up's end, step 12: 18 s left at 1 step/s.
    assert 12 >= 1 + TIMED_STEPS
    fitted = 12 + int(18 * (1 - MARGIN))
    assert trainer.config.optim.max_steps == trainer.step == fitted
    assert f"schedule now ends at step {fitted}" in caplog.text
    assert trainer._lr_factor(fitted) == pytest.approx(0.1)  # the learning rate annealed to its floor
    saved = torch.load(tmp_path / "run" / f"checkpoint_{fitted:08d}.pt", weights_only=False)
    assert saved["config"]["optim"]["max_steps"] == fitted

    # Steps three times slower after the fit: the deadline, not the schedule, ends the run, with a checkpoint.
    config = tiny_config(tmp_path / "slow", max_steps=10_000, warmup_steps=12, time_limit=30.0)
    config.valid_every = config.checkpoint_every = 10_000
    trainer = Trainer(config)
    trainer.clock = lambda: float(min(trainer.step, 12) + 3 * max(trainer.step - 12, 0))
    trainer.train()
    assert trainer.step == 18 < trainer.config.optim.max_steps  # 12 + 3 * 6 = 30 s at step 18
    assert (tmp_path / "slow" / "run" / "checkpoint_00000018.pt").is_file()


def test_time_limit_refits_after_checkpoints_which_the_timed_steps_leave_out(tmp_path, caplog):
    config = tiny_config(tmp_path, max_steps=10_000, warmup_steps=12, time_limit=60.0)
    config.checkpoint_every, config.valid_every = 5, 10_000
    trainer = Trainer(config)
    saves, save = [], trainer.save

    def slow_save():  # 2 s a checkpoint, on top of 1 s a step
        saves.append(trainer.step)
        save()

    trainer.save = slow_save
    trainer.clock = lambda: float(trainer.step + 2 * len(saves))
    with caplog.at_level("INFO", logger="audiocodec.train"):
        trainer.train()
    # The first fit, on steps alone (1 s each; 16 s gone at step 12): 12 + int(44 * 0.97) = 54, which the
    # checkpoints' 0.4 s a step would have cut short at the deadline. The refits end the schedule in time.
    assert "schedule now ends at step 54" in caplog.text
    assert trainer.stop_reason == "" and trainer.step == trainer.schedule.end < 54
    assert trainer.clock() <= 60 and trainer._lr_factor(trainer.step) == pytest.approx(0.1)


def test_a_time_limited_run_resumed_with_a_new_limit_keeps_its_learning_rate_continuous(tmp_path):
    """Preempted at step 15, resumed with another time limit: the rest of the cosine is refitted to the new time,
    from the rate it had, and the run goes on past the recipe's max_steps (which a time limit overrides)."""
    rates = []

    def trainer_for(resume: bool) -> Trainer:
        config = tiny_config(tmp_path, max_steps=5, warmup_steps=4, time_limit=30.0)
        config.checkpoint_every = config.valid_every = 10_000
        trainer = Trainer(config, resume=resume)
        trainer.clock = lambda: float(trainer.step)
        step = trainer._train_step

        def step_and_record(batch):
            rates.append(trainer.opt_g.param_groups[0]["lr"])
            metrics = step(batch)
            trainer.stop_requested = trainer.step == 15 and not resume
            return metrics

        trainer._train_step = step_and_record
        return trainer

    first = trainer_for(resume=False)
    first.train()
    assert first.step == 15 and first.schedule.end == 11 + int(19 * 0.97)  # fitted at step 11 (1 + 10 timed)
    resumed = trainer_for(resume=True)
    resumed.train()
    # Deadline 15 + 30 = 45 s; fitted at step 26 (16 + 10 timed) with 19 s left.
    assert resumed.step == resumed.schedule.end == 26 + int(19 * 0.97) > 5
    assert len(rates) == resumed.step
    cosine = rates[4:]
    assert all(later <= earlier * (1 + 1e-12) for earlier, later in zip(cosine, cosine[1:])), rates
    assert cosine[-1] == pytest.approx(0.1 * rates[3], rel=0.05) and cosine[8] < rates[3]


def test_time_limit_times_steps_once_the_discriminator_has_joined(tmp_path):
    config = tiny_config(tmp_path, warmup_steps=5, time_limit=100.0)
    config.loss.discriminator, config.loss.discriminator_warmup = True, 20
    budget = Trainer(config)._time_budget()
    assert (budget.time_from, budget.fit_step) == (20, 30)


def test_schedule_moves_its_end_without_a_jump():
    from audiocodec.training.schedule import CosineSchedule

    fixed = CosineSchedule(warmup=100, end=1000)
    # The formula of the schedule before its end could move, bit for bit (resume must stay exact).
    for step in (0, 50, 99, 100, 101, 550, 999, 1000, 2000):
        progress = (step - 100) / max(1, 1000 - 100)
        old = (step + 1) / 100 if step < 100 else 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
        assert fixed.factor(step) == old
    moved = CosineSchedule(warmup=100, end=1000)
    before = moved.factor(400)
    moved.retarget(400, 3000)
    assert moved.factor(400) == pytest.approx(before) and moved.factor(3000) == pytest.approx(0.1)
    assert fixed.factor(1000) == pytest.approx(0.1) and moved.factor(1000) > 0.5
    held = CosineSchedule(warmup=10, end=math.inf)
    assert held.factor(5) == 0.6 and held.factor(10) == held.factor(10_000) == 1.0


def test_time_limits_are_parsed_and_checked():
    from audiocodec.training.time_budget import parse_duration

    assert [parse_duration(t) for t in ("5400", "90m", "1.5h", "45s")] == [5400, 5400, 5400, 45]
    for bad in ("", "soon", "-1h", "0", "inf", "nan", "2d"):
        with pytest.raises(ValueError, match="duration|positive"):
            parse_duration(bad)
    with pytest.raises(ConfigError, match="time_limit"):
        TrainConfig.from_dict({"optim": {"time_limit": -5}})
    from audiocodec.cli import main

    assert main(["train", "--config", str(RECIPE), "--max-steps", "10", "--time-limit", "1h"]) == 1


def test_command_line_overrides_and_the_recipe_file_are_checked_like_a_recipe(tmp_path, capsys):
    from audiocodec.cli import main

    # --max-steps -3 trained nothing and wrote a checkpoint, exit 0; a binary file was an internal error.
    (tmp_path / "audio.wav").write_bytes(bytes(range(256)))
    for argv, message in (
        (["--config", str(RECIPE), "--max-steps", "-3", "--output-dir", str(tmp_path / "run")],
         "optim max_steps must be 0 (save the initial model) or more steps, got -3"),
        (["--config", str(tmp_path / "audio.wav")], "audio.wav: not a text file; a recipe is YAML"),
    ):
        assert main(["train", *argv]) == 1
        assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_resuming_into_a_recipe_that_adds_the_discriminator_is_refused(tmp_path):
    config = tiny_config(tmp_path, max_steps=2)
    config.loss.discriminator = False
    Trainer(config).train()
    config.loss.discriminator = True
    with pytest.raises(AudioCodecError, match="no discriminator.*--init-from"):
        Trainer(config, resume=True)


def test_a_skipped_step_is_not_logged_or_counted_as_a_step(tmp_path):
    config = tiny_config(tmp_path, max_steps=6)
    config.log_every, config.checkpoint_every, config.valid_every = 1, 10_000, 10_000
    trainer = Trainer(config)
    mel, calls = trainer.mel.forward, []

    def nan_once(estimate, reference):
        calls.append(trainer.step)
        return torch.tensor(float("nan")) if len(calls) == 4 else mel(estimate, reference)

    trainer.mel.forward = nan_once
    trainer.train()
    steps = [json.loads(line)["step"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert calls == [0, 1, 2, 3, 3, 4, 5] and steps == [1, 2, 3, 4, 5, 6]


def export(*argv) -> int:
    """`audiocodec export ARGV...` through the real argument parser, errors raised rather than printed."""
    import argparse

    from audiocodec.cli.train import register, run_export

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    return run_export(parser.parse_args(["export", *map(str, argv)]))


def test_export_writes_a_loadable_model_with_code_counts(tmp_path):
    from audiocodec import Codec
    from audiocodec.errors import OutputExistsError

    config = tiny_config(tmp_path, max_steps=8)
    trainer = Trainer(config)
    trainer.train()
    run, out = tmp_path / "run", tmp_path / "model"
    assert export(run, out) == 0
    model = Codec.from_pretrained(out)
    for (name, a), b in zip(trainer.model.state_dict().items(), model.state_dict().values()):
        assert torch.equal(a, b), name
    assert model.code_frequencies.sum() > 0  # the entropy coder's tables come from training
    compact = tmp_path / "compact"
    assert export(run, compact, "--compact") == 0
    assert Codec.from_pretrained(compact).code_frequencies.equal(model.code_frequencies)
    assert (compact / "model.safetensors").stat().st_size < (out / "model.safetensors").stat().st_size / 2
    with pytest.raises(OutputExistsError):
        export(run, out)
    with pytest.raises(AudioCodecError, match="no such checkpoint"):
        export(tmp_path / "nowhere", tmp_path / "m2")


def test_export_recounts_the_tables_with_the_final_model(tmp_path):
    from audiocodec import Codec

    config = tiny_config(tmp_path, max_steps=8)
    Trainer(config).train()
    recounted = tmp_path / "recounted"
    # Six 1 s clips at 8 kHz: at 8 kb/s (2 levels of 1000 frames/s) every clip gives 1000 codes per level.
    assert export(tmp_path / "run", recounted, "--recount", config.data.train, "--recount-seconds", 2.5) == 0
    model = Codec.from_pretrained(recounted)
    assert model.code_frequencies.sum(1).tolist() == [3000, 3000, 0, 0]  # three files reach 2.5 s
    model.set_target_bandwidth(8.0)
    codes = [model.encode(torch.from_numpy(sf.read(path, dtype="float32")[0])[None, None]).codes[0]
             for path in sorted(Path(config.data.train).glob("*.wav"))]
    everything = torch.stack([torch.bincount(torch.cat([c[0] for c in codes]), minlength=16)])
    assert (model.code_frequencies[0] <= everything[0]).all()  # counted on a subset of these very files
    with pytest.raises(AudioCodecError, match="no such folder or manifest"):
        export(tmp_path / "run", tmp_path / "m3", "--recount", tmp_path / "nothing")


def test_export_writes_a_model_directory_again_compact_or_recounted(tmp_path):
    from audiocodec import Codec

    config = tiny_config(tmp_path, max_steps=4)
    Trainer(config).train()
    assert export(tmp_path / "run", tmp_path / "full") == 0
    full = Codec.from_pretrained(tmp_path / "full")
    assert export(tmp_path / "full", tmp_path / "compact", "--compact") == 0
    compact = Codec.from_pretrained(tmp_path / "compact")
    for name, value in full.stored_state(compact=True).items():
        assert torch.equal(compact.state_dict()[name], value.to(compact.state_dict()[name].dtype)), name
    assert export(tmp_path / "compact", tmp_path / "again", "--compact") == 0  # float16 to float16: the same model
    ids = [json.loads((tmp_path / name / "config.json").read_text())["model_id"] for name in ("compact", "again")]
    assert ids[0] == ids[1] != json.loads((tmp_path / "full" / "config.json").read_text())["model_id"]
    assert export(tmp_path / "compact", tmp_path / "recounted", "--compact", "--recount", config.data.train,
                  "--recount-seconds", 2.5) == 0
    recounted = Codec.from_pretrained(tmp_path / "recounted")
    assert recounted.code_frequencies.sum(1).tolist() == [3000, 3000, 0, 0]  # as in the test above
    assert all(torch.equal(value, compact.state_dict()[name])
               for name, value in recounted.state_dict().items() if name != "code_frequencies")
    with pytest.raises(AudioCodecError, match="pass --compact too"):
        export(tmp_path / "compact", tmp_path / "int8", "--int8")
    assert export(tmp_path / "compact", tmp_path / "int8", "--compact", "--int8") == 0
    # This tiny model has no matrix of 4096 weights: nothing is stored in 8 bits, and it stays the compact model.
    assert json.loads((tmp_path / "int8" / "config.json").read_text())["model_id"] == ids[0]


def test_export_keeps_8_bit_weights_and_refuses_what_it_cannot_do(tmp_path, capsys):
    from tiny_models import tiny_codec

    tiny_codec(n_filters=16).save_pretrained(tmp_path / "int8", compact=True, int8=True)  # has matrices to store
    assert export(tmp_path / "int8", tmp_path / "again", "--compact") == 0
    assert "keeping the source's 8-bit weights" in capsys.readouterr().out
    meta = [json.loads((tmp_path / name / "config.json").read_text()) for name in ("int8", "again")]
    assert meta[1]["int8"] is True and meta[1]["model_id"] == meta[0]["model_id"]
    assert export(tmp_path / "int8", tmp_path / "full") == 0  # float32: the same weights, so the same id
    assert json.loads((tmp_path / "full" / "config.json").read_text())["model_id"] == meta[0]["model_id"]
    with pytest.raises(AudioCodecError, match="'default' names the embedded model"):
        export(tmp_path / "int8", "default")
    for seconds in ("0", "-5", "nan"):
        with pytest.raises(AudioCodecError, match="positive number of seconds"):
            export(tmp_path / "int8", tmp_path / "x", "--recount", tmp_path, "--recount-seconds", seconds)
    sf.write(tmp_path / "a.wav", np.zeros(800, np.float32), 8000)
    with pytest.raises(AudioCodecError, match="a.wav: not a manifest"):  # a file where a list of files goes
        export(tmp_path / "int8", tmp_path / "x", "--recount", tmp_path / "a.wav")
    (tmp_path / "int8" / "config.json").unlink()
    with pytest.raises(AudioCodecError, match="config.json is missing"):
        export(tmp_path / "int8", tmp_path / "x")
    assert not (tmp_path / "x").exists() and not Path("default").exists()


def test_export_recounts_on_the_weights_it_writes(tmp_path):
    """Codes move when weights are rounded to 8 bits: the tables must be those of the model as it will load."""
    from audiocodec import Codec
    from audiocodec.training.code_counts import count_codes
    from tiny_models import tiny_codec

    full = tiny_codec(n_filters=16)
    full.save_pretrained(tmp_path / "full")
    data = write_corpus(tmp_path / "data")
    assert export(tmp_path / "full", tmp_path / "int8", "--compact", "--int8", "--recount", data) == 0
    shipped = Codec.from_pretrained(tmp_path / "int8")
    on_loaded, _ = count_codes(shipped, data, 1800.0)
    on_float, _ = count_codes(full, data, 1800.0)
    assert torch.equal(shipped.code_frequencies, on_loaded.to(shipped.code_frequencies.dtype))
    assert not torch.equal(on_loaded, on_float)  # so counting on the float model would have shown


def test_init_from_a_compact_model_starts_there_and_trains_on(tmp_path):
    from audiocodec import Codec
    from audiocodec.errors import ModelMismatchError

    config = tiny_config(tmp_path, max_steps=6)
    Trainer(config).train()
    assert export(tmp_path / "run", tmp_path / "model", "--compact") == 0
    shipped = Codec.from_pretrained(tmp_path / "model")

    config.output_dir, config.init_from = str(tmp_path / "finetune"), str(tmp_path / "model")
    trainer = Trainer(config)
    start = trainer.model.state_dict()
    for name, value in shipped.state_dict().items():
        if name != "code_frequencies":
            assert torch.equal(start[name], value), name
    assert not trainer.model.code_frequencies.any()  # counts of codebooks that will move are dropped
    trainer.train()
    assert trainer.step == 6 and trainer.model.code_frequencies.sum() > 0

    config.output_dir = str(tmp_path / "other")
    config.model = config.model.replace(n_filters=6)
    with pytest.raises(ModelMismatchError, match="its n_filters differ"):
        Trainer(config)
    config.model = config.model.replace(n_filters=4, sample_rate=16000)
    with pytest.raises(AudioCodecError, match="sample_rate differ"):
        Trainer(config)


def first_call_in_a_step(tmp_path: Path, option: str, value: bool, pick) -> tuple[tuple, torch.Tensor]:
    """`(inputs, output)` of the first call of module `pick(model)` in one training step of the tiny recipe with
    `option` set to `value`; the inputs are those its forward receives, after any pre-hooks."""
    config = tiny_config(tmp_path / f"{option}-{value}")
    setattr(config, option, value)
    # No worker processes: this trainer is stepped by hand and never closed, and a loader's workers dropped by the
    # garbage collector take seconds to shut down, inside whichever test runs then.
    config.data.workers = 0
    trainer = Trainer(config)
    seen = []
    pick(trainer.model).register_forward_hook(lambda module, inputs, output: seen.append((inputs, output)))
    trainer._train_step(trainer._next_batch())
    return seen[0]


def test_bf16_on_cpu_autocasts_the_cpu_step_and_only_when_asked(tmp_path):
    """GPU rounds train in bf16; `bf16_on_cpu` lets a CPU run compute as they did, and without it the CPU stays
    in fp32 (bit-exact reproducible runs)."""
    def first_conv(model):
        return next(m for m in model.encoder.modules() if isinstance(m, torch.nn.Conv1d))

    dtypes = {on: first_call_in_a_step(tmp_path, "bf16_on_cpu", on, first_conv)[1].dtype for on in (False, True)}
    assert dtypes == {False: torch.float32, True: torch.bfloat16}


def test_round_conv_inputs_to_bf16_rounds_the_training_step_and_only_when_asked(tmp_path):
    """The fast stand-in for bf16 on CPUs: fp32 convolutions whose inputs are rounded to bf16 in the step."""
    def upsampling(model):
        return next(m for m in model.decoder.modules() if isinstance(m, PaddedConvTranspose1d))

    exact = {}
    for on in (False, True):
        x = first_call_in_a_step(tmp_path, "round_conv_inputs_to_bf16", on, upsampling)[0][0]
        exact[on] = x.dtype == torch.float32 and torch.equal(x, x.bfloat16().float())
    assert exact == {False: False, True: True}


def test_bf16_on_a_cpu_without_native_bf16_is_warned_of(tmp_path, caplog, monkeypatch):
    """Without AVX-512 or AMX, PyTorch computes bf16 with reference kernels (8-9 times slower per step measured on an
    AVX2 CPU): a user who asks for bf16_on_cpu there is told so, and nobody else is."""
    warned = {}
    for native, on_cpu in [(False, True), (True, True), (False, False)]:
        monkeypatch.setattr(trainer_module, "cpu_has_native_bf16", lambda native=native: native)
        config = tiny_config(tmp_path / f"{native}{on_cpu}")
        config.bf16_on_cpu = on_cpu
        caplog.clear()
        with caplog.at_level("WARNING", logger="audiocodec.train"):
            Trainer(config)
        warned[native, on_cpu] = any("no native bf16 kernels" in r.getMessage() for r in caplog.records)
    assert warned == {(False, True): True, (True, True): False, (False, False): False}
    assert isinstance(trainer_module.cpu_has_native_bf16(), bool)


def test_an_fp32_cpu_finetune_of_the_default_is_warned_of(tmp_path, caplog):
    """CPU fine-tunes of the default in fp32 at an ordinary lr were measured to make it worse, whatever the batch,
    and in bf16 not: say so at the start; bf16, a lower lr, another model or a GPU gets no warning."""
    config = load_config(RECIPE.parent / "default_24khz_gpu_continue.yaml")
    config.data.train, config.data.workers = str(write_corpus(tmp_path / "train", rate=24000)), 0
    config.output_dir = str(tmp_path / "run")
    default_copy = tmp_path / "copy"
    shutil.copytree(Path(audiocodec.__file__).parent / "pretrained" / "default", default_copy)
    warnings = []
    cases = [("default", 8, 3e-5, False, False), ("default", 8, 3e-6, False, False),
             ("default", 64, 3e-5, False, False), ("default", 8, 3e-5, True, False),
             ("default", 8, 3e-5, False, True), (str(default_copy), 8, 3e-5, False, False)]
    for init_from, batch, lr, bf16_on_cpu, rounded in cases:
        config.init_from, config.data.batch_size, config.optim.lr = init_from, batch, lr
        config.bf16_on_cpu, config.round_conv_inputs_to_bf16 = bf16_on_cpu, rounded
        caplog.clear()
        with caplog.at_level("WARNING", logger="audiocodec.train"):
            Trainer(config)
        warnings.append([r.getMessage() for r in caplog.records if "fine-tuning the default" in r.getMessage()])
    assert [len(w) for w in warnings] == [1, 0, 1, 0, 0, 0]
    assert warnings[0][0].startswith("fine-tuning the default model on the CPU in fp32 at lr 3e-05: ")
    assert "round_conv_inputs_to_bf16: true" in warnings[0][0] and "bf16_on_cpu: true" in warnings[0][0]
    assert default_finetune_warning("cuda", False, 3e-5) is None
    cpu_recipe = load_config(RECIPE.parent / "default_24khz_cpu_continue.yaml")
    # The recipe for the CPU is one the warning lets through, at fp32's speed (no bf16 autocast).
    assert cpu_recipe.round_conv_inputs_to_bf16 and not cpu_recipe.bf16_on_cpu
    assert default_finetune_warning("cpu", False, 3e-5) == warnings[0][0]


def test_export_refuses_files_that_are_not_training_checkpoints_or_encodec_weights(tmp_path):
    torch.save({"encoder.model.0.conv.weight": torch.zeros(1)}, tmp_path / "encodec.th")
    torch.save(torch.zeros(3), tmp_path / "tensor.pt")
    with pytest.raises(AudioCodecError, match="is not an EnCodec 24khz checkpoint: .*missing keys"):
        export(tmp_path / "encodec.th", tmp_path / "model")
    torch.save({"encoder.model.0.conv.norm.weight": torch.zeros(1)}, tmp_path / "encodec_48.th")
    with pytest.raises(AudioCodecError, match="is not an EnCodec 48khz checkpoint: .*missing keys"):
        export(tmp_path / "encodec_48.th", tmp_path / "model")
    torch.save({"encoder.model.0.conv.conv.bias": torch.zeros(1), 0: torch.zeros(1)}, tmp_path / "int_key.th")
    for source in ("tensor.pt", "int_key.th"):
        with pytest.raises(AudioCodecError, match="neither a checkpoint of `audiocodec train` nor EnCodec's weights"):
            export(tmp_path / source, tmp_path / "model")
    assert not (tmp_path / "model").exists()


def test_export_never_writes_over_the_model_it_exports(tmp_path):
    """`export m m --force` turned a compact 8-bit model into a float one under the same id."""
    from tiny_models import tiny_codec

    tiny_codec().save_pretrained(tmp_path / "m")
    before = {f.name: f.read_bytes() for f in (tmp_path / "m").iterdir()}
    (tmp_path / "link").symlink_to(tmp_path / "m")
    for output in ("m", "link", "m/"):
        with pytest.raises(AudioCodecError, match="is the model being exported"):
            export(tmp_path / "m", tmp_path / output, "--compact", "--force")
    with pytest.raises(AudioCodecError, match="is the model being exported"):
        export("default", Path(audiocodec.__file__).parent / "pretrained" / "default", "--force")
    assert {f.name: f.read_bytes() for f in (tmp_path / "m").iterdir()} == before


def test_discriminator_warmup_trains_it_before_the_generator_listens(tmp_path):
    config = tiny_config(tmp_path, max_steps=5)
    config.loss.discriminator_warmup = 3
    config.log_every = 1
    trainer = Trainer(config)
    before = [p.detach().clone() for p in trainer.discriminator.parameters()]
    step = trainer._train_step
    after_warmup = []

    def record(batch):
        metrics = step(batch)
        if trainer.step == 3:
            after_warmup.extend(p.detach().clone() for p in trainer.discriminator.parameters())
        return metrics

    trainer._train_step = record
    trainer.train()
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    rows = [r for r in rows if "discriminator" in r]
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5]
    assert [("adversarial" in r, "feature_matching" in r) for r in rows] == [(False, False)] * 3 + [(True, True)] * 2
    assert any(not torch.equal(a, b) for a, b in zip(before, after_warmup))  # it learned during the warm-up
    with pytest.raises(ConfigError, match="discriminator_warmup"):
        TrainConfig.from_dict({"loss": {"discriminator_warmup": -1}})
