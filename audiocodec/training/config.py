"""Training configuration: dataclasses loaded from YAML, unknown keys rejected by name."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import yaml

from ..config import Config
from ..errors import ConfigError
from ..model import CodecConfig
from .losses import ADVERSARIAL_LOSSES, MEL_SCALES

DEVICES = ("auto", "cpu", "cuda")


def check_device(choice: str) -> None:
    """Refuse a `TrainConfig.device` other than DEVICES (checked on loading, and again by the trainer, since code
    can set the field after loading)."""
    if choice not in DEVICES:
        raise ConfigError(f"device must be one of {', '.join(DEVICES)}, got {choice!r}")


@dataclasses.dataclass
class DataConfig(Config):
    """train / valid: a folder of audio files, or a manifest (one path per line, relative to the manifest)."""

    train: str = ""
    valid: str = ""
    segment_seconds: float = 1.0
    batch_size: int = 8
    workers: int = 4  # processes that load the next batches during the steps (0: load each in its step)

    def __post_init__(self) -> None:
        self._check("data", [
            # Codecs train on a second or so; 100,000 s was an out-of-memory kill without a word.
            ("segment_seconds", 0 < self.segment_seconds <= 60, "positive, at most 60 seconds"),
            ("batch_size", self.batch_size >= 1, "at least 1"),
            ("workers", self.workers >= 0, "0 or more processes"),
        ])


@dataclasses.dataclass
class LossConfig(Config):
    """Weights of the balanced losses (EnCodec's defaults) and the adversarial setup."""

    l1: float = 0.1
    mel: float = 1.0
    mel_scale: str = "linear"  # EnCodec's L1 + L2 on magnitudes; "log": L1 on log magnitudes (MultiScaleMelLoss)
    adversarial: float = 3.0
    feature_matching: float = 3.0
    adversarial_loss: str = "hinge"  # or "lsgan"
    balance: bool = True
    balancer_total_norm: float = 1.0
    balancer_ema_decay: float = 0.999
    discriminator: bool = True
    discriminator_filters: int = 32
    discriminator_ffts: tuple = (1024, 2048, 512, 256, 128)
    # Steps in which the discriminator trains but the generator ignores it. Fine-tuning a generator that is
    # already good needs this: a fresh discriminator's preferences start faint, the balancer scales the generator's
    # response to them up to the adversarial losses' full share, and the generator erases them every step (a hinge
    # loss stuck at chance).
    discriminator_warmup: int = 0

    def __post_init__(self) -> None:
        weights = ("l1", "mel", "adversarial", "feature_matching")
        self._check("loss", [
            ("mel_scale", self.mel_scale in MEL_SCALES, "'linear' or 'log'"),
            ("adversarial_loss", self.adversarial_loss in ADVERSARIAL_LOSSES, "'hinge' or 'lsgan'"),
            *((name, 0 <= getattr(self, name) < math.inf, "0 or more") for name in weights),
            ("discriminator_warmup", self.discriminator_warmup >= 0, "0 or more steps"),
            ("discriminator_filters", self.discriminator_filters >= 1, "at least 1"),
            ("discriminator_ffts", not self.discriminator or (len(self.discriminator_ffts) > 0 and all(
                isinstance(n, int) and n >= 4 for n in self.discriminator_ffts)),
             "a non-empty list of FFT sizes of 4 or more (the hop is a quarter)"),
        ])


@dataclasses.dataclass
class OptimConfig(Config):
    lr: float = 3e-4
    betas: tuple = (0.5, 0.9)
    grad_clip: float = 1.0
    warmup_steps: int = 0
    max_steps: int = 1000
    # Seconds of training (0: no limit; `audiocodec train --time-limit 2h`). Once it has timed ten steps, and no
    # earlier than the warm-up's end, the trainer sets max_steps (ignored until then) to the step it will reach
    # when the time is up, fits it again after each checkpoint, and stops at the first step boundary past the
    # limit if it comes sooner (time_budget.py).
    time_limit: float = 0.0

    def __post_init__(self) -> None:
        self._check("optim", [
            ("lr", 0 < self.lr < math.inf, "positive"),
            ("grad_clip", 0 <= self.grad_clip < math.inf, "0 (none) or more"),
            ("warmup_steps", self.warmup_steps >= 0, "0 or more steps"),
            ("max_steps", self.max_steps >= 0, "0 (save the initial model) or more steps"),
            ("time_limit", 0 <= self.time_limit < math.inf, "0 (none) or a number of seconds"),
        ])


@dataclasses.dataclass
class TrainConfig(Config):
    model: CodecConfig = dataclasses.field(default_factory=CodecConfig)
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    loss: LossConfig = dataclasses.field(default_factory=LossConfig)
    optim: OptimConfig = dataclasses.field(default_factory=OptimConfig)
    output_dir: str = "runs/default"
    # A model directory (or "default", the embedded model) whose weights start the run: fine-tuning, or going on
    # with a shipped model whose checkpoints are gone. A checkpoint to resume from takes precedence.
    init_from: str = ""
    seed: int = 0
    log_every: int = 10
    valid_every: int = 200
    valid_batches: int = 4  # of data.batch_size segments, from the first files of data.valid
    checkpoint_every: int = 200
    keep_checkpoints: int = 3
    max_bad_steps: int = 5
    # DDP: every this many steps, and before each checkpoint, ranks compare checksums of their weights and buffers
    # and stop, naming the first tensor that differs, if they diverged (0: before checkpoints only; ranks.py).
    sync_check_every: int = 100
    # DDP: seconds a rank waits in a collective (or to join the group) before it stops with a message: how long the
    # others take to notice a rank that hangs. Saving a checkpoint or validating on rank 0 must take less.
    collective_timeout: float = 600.0
    bf16: bool = True  # autocast on GPUs
    # Autocast in bf16 on the CPU too (1.5 to 9 times slower there, by CPU): what a model trained on a GPU in bf16
    # is continued with; in fp32, CPU fine-tunes of the GPU-trained default lost more (docs/training.md).
    bf16_on_cpu: bool = False
    # fp32 kernels with every convolution's input rounded to bf16 in training (training/precision.py): held the
    # bf16-trained default in CPU fine-tunes as bf16_on_cpu did, at fp32's speed.
    round_conv_inputs_to_bf16: bool = False
    # "auto": the GPU of this process's LOCAL_RANK when CUDA is available, else the CPU. "cpu" forces the CPU (and
    # the gloo backend under torchrun), where a fixed seed reproduces a run bit for bit; "cuda" refuses to start
    # without a GPU rather than train on the CPU by surprise.
    device: str = "auto"

    def __post_init__(self) -> None:
        check_device(self.device)
        self._check("", [
            ("seed", 0 <= self.seed < 2**32, "in [0, 2**32)"),
            ("log_every", self.log_every >= 1, "at least 1 step"),
            ("valid_every", self.valid_every >= 1, "at least 1 step"),
            ("valid_batches", self.valid_batches >= 1, "at least 1"),
            ("checkpoint_every", self.checkpoint_every >= 1, "at least 1 step"),
            ("keep_checkpoints", self.keep_checkpoints >= 0, "0 (all) or more"),
            ("max_bad_steps", self.max_bad_steps >= 0, "0 or more"),
            ("sync_check_every", self.sync_check_every >= 0, "0 (before checkpoints only) or more steps"),
            ("collective_timeout", 0 < self.collective_timeout < math.inf, "a positive number of seconds"),
        ])


def load_config(path: str | Path) -> TrainConfig:
    """Read a YAML recipe; an unknown key anywhere is a `ConfigError` naming it."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML ({str(error).splitlines()[0]})") from None
    except UnicodeDecodeError:  # an audio file or a checkpoint, say
        raise ConfigError(f"{path}: not a text file; a recipe is YAML (recipes/*.yaml)") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return TrainConfig.from_dict(data)
