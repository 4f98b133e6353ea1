"""The training loop: one process or DDP under torchrun, exact resume, faults handled.

Each step: the generator reconstructs a batch; L1, mel, adversarial and feature-matching losses are balanced
w.r.t. the output audio and pushed back in ONE backward together with the quantizer loss; then the
discriminator takes one step on real and (detached) generated audio. Codebooks sync their own statistics, so
DDP does not sync buffers at each forward.

Resuming restores model, discriminator, optimizers, schedulers, balancer, code counts, RNG states and the data
position (epoch and batch within it), so an interrupted and resumed CPU run ends bit for bit where an
uninterrupted one does.
"""

from __future__ import annotations

import dataclasses
import gc
import inspect
import json
import logging
import math
import os
import random
import signal
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import distributed as dist

from ..atomic import atomic_path
from ..defaults import model_directory
from ..errors import AudioCodecError, ConfigError, ModelMismatchError, NonFiniteError
from ..evaluation.health import codebook_health
from ..evaluation.metrics import mel_distance, si_sdr
from ..model import Codec, CodecConfig
from .balancer import Balancer
from .checkpoint import has_checkpoints, load_latest, save_checkpoint
from .config import TrainConfig, check_device
from .data import BatchPrefetcher, SegmentDataset
from .discriminator import MultiScaleSTFTDiscriminator
from .losses import MultiScaleMelLoss, discriminator_loss, feature_matching_loss, generator_adversarial_loss
from .precision import round_conv_inputs_to_bf16
from .schedule import CosineSchedule
from .time_budget import TIMED_STEPS, TimeBudget

log = logging.getLogger("audiocodec.train")

# Fine-tunes of the embedded default on the CPU in fp32 above this learning rate made it worse from their first
# steps; with bf16 rounding, as the default was trained, they held it (docs/training.md, "Fine-tuning the default
# model").
DEFAULT_FINETUNE_SAFE_LR = 3e-6


def default_finetune_warning(device_type: str, bf16_rounding: bool, lr: float) -> str | None:
    """What to tell a user about to fine-tune the embedded default, if measurements say it will only lose.

    `bf16_rounding`: whether the run rounds to bf16 (autocast, or `round_conv_inputs_to_bf16`)."""
    if device_type != "cpu" or bf16_rounding or lr <= DEFAULT_FINETUNE_SAFE_LR:
        return None
    return (f"fine-tuning the default model on the CPU in fp32 at lr {lr:.3g}: measured fine-tunes of it so made it "
            "worse from their first steps, while the same with bf16 rounding, as it was trained, held it: set "
            "round_conv_inputs_to_bf16: true (as fast as fp32) or bf16_on_cpu: true "
            "(docs/training.md, \"Fine-tuning the default model\")")


def cpu_has_native_bf16() -> bool:
    """Whether oneDNN computes bf16 convolutions and matrix products natively on this CPU (x86 with AVX-512 or AMX,
    Arm with bf16 instructions). Without, PyTorch falls back to reference kernels: on an AVX2 CPU a bf16 step of
    the CPU continue recipe took 8-9 times as long as an fp32 one (benchmarks/train_throughput.py)."""
    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)  # private, so looked up with care
    if check is not None:
        return bool(check())
    return torch.backends.cpu.get_cpu_capability().startswith("AVX512")


class BatchOrder:
    """Which items make batch b of epoch e on this rank: a permutation seeded by (seed, epoch), dealt to ranks.

    Computing positions instead of iterating a sampler is what lets a resumed run start mid-epoch exactly.
    """

    def __init__(self, size: int, batch_size: int, rank: int, world: int, seed: int):
        self.size, self.batch_size, self.rank, self.world, self.seed = size, batch_size, rank, world, seed
        per_epoch = max(size, batch_size * world)
        self.batches_per_epoch = per_epoch // (batch_size * world)

    def batch(self, epoch: int, index: int) -> list[int]:
        generator = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        needed = self.batches_per_epoch * self.batch_size * self.world
        order = torch.cat([torch.randperm(self.size, generator=generator)
                           for _ in range(math.ceil(needed / self.size))])[:needed]
        mine = order[self.rank :: self.world]
        return mine[index * self.batch_size : (index + 1) * self.batch_size].tolist()


def leave_process_group() -> None:
    """Destroy the process group of a torchrun process, if there is one, before Python shuts down.

    Drop every trainer first: their DDP wrappers hold the group. Destroyed here, the group joins its worker
    threads in this thread; left to the interpreter's shutdown, a gloo worker could release a collective's tensors
    while Python was finalising, and abort rank 0 after a finished run (about once in 25 runs). NCCL warns, and
    may hang at exit, without it.
    """
    if dist.is_initialized():
        gc.collect()  # the trainers dropped by the caller may sit in reference cycles
        dist.destroy_process_group()


def training_device(choice: str) -> torch.device:
    """The device of this process for `TrainConfig.device`: under torchrun, the GPU numbered by LOCAL_RANK."""
    check_device(choice)
    if choice == "cpu" or (choice == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ConfigError("device is 'cuda' but PyTorch sees no CUDA GPU: use device 'cpu' or 'auto'")
    local_rank, count = int(os.environ.get("LOCAL_RANK", "0")), torch.cuda.device_count()
    if local_rank >= count:
        raise ConfigError(f"this process has LOCAL_RANK {local_rank} but the node has {count} GPU(s): start at most "
                          f"{count} processes per node (torchrun --nproc_per_node), or train with device 'cpu'")
    return torch.device("cuda", local_rank)


def _forget_steps_after(path: Path, step: int) -> None:
    """Drop the lines of `metrics.jsonl` logged after `step`: a run resumed from an older checkpoint (a SIGKILL
    lost the newer ones) trains those steps again and logs them anew."""
    if not path.is_file():
        return
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    kept = [line for line in lines if json.loads(line).get("step", 0) <= step]
    if len(kept) < len(lines):
        with atomic_path(path) as tmp:
            Path(tmp).write_text("".join(kept), encoding="utf-8")


#: What a model's audio means: weights trained under one of these cannot be taken for another's.
LAYOUT = ("sample_rate", "channels", "ratios", "causal", "normalize", "segment")


def layout_differences(ours: CodecConfig, theirs: CodecConfig) -> list[str]:
    """The fields of the model config a checkpoint's weights cannot be resumed under when they differ: `LAYOUT`,
    and whatever gives the weights their shapes. The quantizer's training options and the bandwidths may change."""
    free = ("name", "quantizer", "conv_init", "target_bandwidths")  # neither shapes nor meaning
    fixed = [f.name for f in dataclasses.fields(CodecConfig) if f.name not in free]
    differing = [name for name in fixed if getattr(ours, name) != getattr(theirs, name)]
    ours_q, theirs_q = ours.quantizer.identity(), theirs.quantizer.identity()
    differing += [f"quantizer {name}" for name in ours_q if ours_q[name] != theirs_q.get(name)]
    return differing


class Trainer:
    def __init__(self, config: TrainConfig, resume: bool = False):
        self.config = config
        self.distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
        self.device = training_device(config.device)
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        if self.distributed and not dist.is_initialized():
            dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
        self.rank = dist.get_rank() if self.distributed else 0
        self.world = dist.get_world_size() if self.distributed else 1
        self.output = Path(config.output_dir)
        if not config.data.train:  # as a path, "" is the current folder, which would be searched for audio
            raise ConfigError("data train is not set: give the recipe a folder or manifest of audio (docs/data.md)")
        if not resume and has_checkpoints(self.output):  # a new run would overwrite them and mix with them
            raise AudioCodecError(f"{self.output}: holds the checkpoints of a run: --resume continues it; to start "
                                  f"afresh, choose another output_dir or move them away")
        torch.manual_seed(config.seed)
        random.seed(config.seed)
        np.random.seed(config.seed)

        segment = int(config.data.segment_seconds * config.model.sample_rate)
        self.train_data = SegmentDataset(config.data.train, config.model.sample_rate, config.model.channels,
                                         segment, seed=config.seed)
        self.valid_data = (SegmentDataset(config.data.valid, config.model.sample_rate, config.model.channels,
                                          segment, seed=config.seed + 1) if config.data.valid else None)
        self.order = BatchOrder(len(self.train_data), config.data.batch_size, self.rank, self.world, config.seed)
        self.loader = BatchPrefetcher(self.train_data, config.data.workers)
        if self.rank == 0:
            log.info("training data: %d files (skipped: %s)", len(self.train_data), self.train_data.skipped)
            if self.device.type == "cpu" and self._bf16() and not cpu_has_native_bf16():
                log.warning("bf16_on_cpu: this CPU (%s) has no native bf16 kernels, so bf16 steps run several "
                            "times slower than fp32 ones here (8-9 times on an AVX2 CPU); round_conv_inputs_to_bf16: "
                            "true instead, without bf16_on_cpu, runs at fp32's speed",
                            torch.backends.cpu.get_cpu_capability())

        self.model = Codec(config.model).to(self.device)
        if config.round_conv_inputs_to_bf16:
            round_conv_inputs_to_bf16(self.model)
        if config.init_from:
            self._init_from(config.init_from)
        self.discriminator = MultiScaleSTFTDiscriminator(
            config.model.channels, config.loss.discriminator_filters, config.loss.discriminator_ffts
        ).to(self.device) if config.loss.discriminator else None
        self.generator = self.model
        if self.distributed:
            # Levels that learn by gradient (Gumbel, FSQ's projections) get none when quantizer dropout skips them.
            learnt = any(True for _ in self.model.quantizer.parameters())
            # The codebooks all-reduce their own statistics: DDP must not overwrite them with rank 0's at every
            # forward. (torch 2.13 renamed that switch and deprecated the old name; its new one still syncs
            # buffers once at start, which is harmless: every rank starts from the same weights.)
            ddp = torch.nn.parallel.DistributedDataParallel
            no_buffer_sync = ({"forward_sync_buffers": False} if "forward_sync_buffers" in
                              inspect.signature(ddp).parameters else {"broadcast_buffers": False})
            self.generator = ddp(self.model, find_unused_parameters=learnt, **no_buffer_sync)
            if self.discriminator is not None:
                self.discriminator = torch.nn.parallel.DistributedDataParallel(self.discriminator)
        optim = config.optim
        # With a time limit the cosine's end is unknown until the limit fits it: the rate holds at its peak till then.
        self.schedule = CosineSchedule(optim.warmup_steps, math.inf if optim.time_limit else optim.max_steps)
        self.opt_g = torch.optim.Adam(self.model.parameters(), lr=optim.lr, betas=tuple(optim.betas))
        self.opt_d = (torch.optim.Adam(self.discriminator.parameters(), lr=optim.lr, betas=tuple(optim.betas))
                      if self.discriminator is not None else None)
        self.sched_g = torch.optim.lr_scheduler.LambdaLR(self.opt_g, self._lr_factor)
        self.sched_d = (torch.optim.lr_scheduler.LambdaLR(self.opt_d, self._lr_factor)
                        if self.opt_d is not None else None)
        self.mel = MultiScaleMelLoss(config.model.sample_rate, scale=config.loss.mel_scale).to(self.device)
        loss = config.loss
        weights = {"l1": loss.l1, "mel": loss.mel}
        if self.discriminator is not None:
            weights.update(adversarial=loss.adversarial, feature_matching=loss.feature_matching)
        self.balancer = Balancer(weights, loss.balance, loss.balancer_total_norm, loss.balancer_ema_decay)
        self.step, self.epoch, self.batch_index, self.bad_steps = 0, 0, 0, 0
        self.stop_requested, self.stop_reason = False, ""
        self.clock = time.monotonic  # what the time limit is measured by (tests replace it)
        if resume:
            self._resume()

    # -- schedule ---------------------------------------------------------------------------------------------
    def _lr_factor(self, step: int) -> float:
        return self.schedule.factor(step)

    # -- main loop --------------------------------------------------------------------------------------------
    def train(self) -> dict[str, float]:
        previous = {sig: signal.signal(sig, self._request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        metrics_file = self.output / "metrics.jsonl"
        if self.rank == 0:
            self.output.mkdir(parents=True, exist_ok=True)
            _forget_steps_after(metrics_file, self.step)
        writer = self._tensorboard()
        progress = self._progress()
        budget = self._time_budget() if self.config.optim.time_limit else None
        last: dict[str, float] = {}
        try:
            while ((self.step < self.schedule.end or (budget is not None and not budget.fitted))
                   and not self._should_stop(budget)):
                started = self.clock()
                batch = self._next_batch().to(self.device)
                last = self._train_step(batch)
                if "skipped" in last:  # no step was made: nothing to count, log, validate or save
                    continue
                if budget is not None and (fitted := budget.after_step(self.step, self.clock() - started)) is not None:
                    self._fit_schedule(fitted, progress, first=True)
                if progress is not None:
                    progress.update(1)
                    progress.set_postfix(loss=f"{last.get('mel', float('nan')):.3f}")
                if self.rank == 0 and (self.step % self.config.log_every == 0 or self.step == 1):
                    self._log(metrics_file, writer, {"step": self.step, **last})
                if self.rank == 0 and self.valid_data is not None and self.step % self.config.valid_every == 0:
                    self._log(metrics_file, writer, {"step": self.step, **self.validate()})
                if self.step % self.config.checkpoint_every == 0:
                    self.save()
                    if budget is not None and (refitted := budget.refit(self.step)) is not None:
                        self._fit_schedule(refitted, progress, first=False)
            if self.stop_reason and self.rank == 0:
                log.warning("stopping %s at step %d: writing a final checkpoint", self.stop_reason, self.step)
            if self.stop_reason == "at the time limit" and not budget.fitted and self.rank == 0:
                log.warning("the time limit came before the schedule was fitted to it (at step %d): the learning "
                            "rate did not anneal", budget.fit_step)
            self.save()
        except torch.cuda.OutOfMemoryError:
            raise AudioCodecError("out of GPU memory: use a smaller data.batch_size or data.segment_seconds") from None
        finally:
            self.loader.close()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            if progress is not None:
                progress.close()
            if writer is not None:
                writer.close()
        return last

    def _request_stop(self, signum, frame) -> None:
        self.stop_requested = True

    def _should_stop(self, budget: TimeBudget | None) -> bool:
        """Whether any rank was asked to stop or ran out of time (the reason in `stop_reason`). Ranks must agree:
        one that left the loop alone would leave the others waiting in the next step's collectives (a signal can
        reach the ranks a step apart, and their clocks differ)."""
        requested, expired = self.stop_requested, budget is not None and budget.expired()
        if self.distributed:
            flags = torch.tensor([float(requested), float(expired)], device=self.device)
            dist.all_reduce(flags)
            requested, expired = (bool(flag) for flag in flags.tolist())
        self.stop_reason = "on request" if requested else "at the time limit" if expired else ""
        return bool(self.stop_reason)

    def _time_budget(self) -> TimeBudget:
        """Time steps that cost what the rest will: not the first of this process, nor those before the
        discriminator joins."""
        joins = self.config.loss.discriminator_warmup if self.discriminator is not None else 0
        time_from = max(self.step + 1, joins)
        return TimeBudget(self.config.optim.time_limit, time_from, self.schedule.warmup, self.clock)

    def _fit_schedule(self, end: int, progress, first: bool) -> None:
        """End the cosine at `end`, the smallest of the ranks' estimates, so that all agree."""
        if self.distributed:
            value = torch.tensor([float(end)], dtype=torch.float64, device=self.device)
            dist.all_reduce(value, op=dist.ReduceOp.MIN)
            end = int(value.item())
        previous = self.schedule.end
        self.schedule.retarget(self.step, end)
        self.config.optim.max_steps = end
        if progress is not None:
            progress.total = end
        if self.rank != 0 or (not first and abs(end - previous) < 0.01 * end):  # refits that matter only
            return
        log.info("time limit: the schedule now ends at step %d", end)
        if first and end - self.step < TIMED_STEPS:
            log.warning("the time limit leaves %d steps after the fit: the learning rate falls to its floor within "
                        "them", end - self.step)

    def _next_batch(self) -> torch.Tensor:
        self.epoch, self.batch_index = self._wrapped(self.epoch, self.batch_index)
        batch = self.loader.get(self.epoch, self.order.batch(self.epoch, self.batch_index))
        self.batch_index += 1
        following = self._wrapped(self.epoch, self.batch_index)
        self.loader.prefetch(following[0], self.order.batch(*following))
        return batch

    def _wrapped(self, epoch: int, index: int) -> tuple[int, int]:
        """The position of batch `index` of `epoch`, moved to the next epoch's start if past this one's end."""
        return (epoch + 1, 0) if index >= self.order.batches_per_epoch else (epoch, index)

    def _train_step(self, batch: torch.Tensor) -> dict[str, float]:
        config = self.config
        self.model.train()
        autocast = torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self._bf16())
        with autocast:
            try:
                out = self.generator(batch)
            except NonFiniteError:  # raised on every rank alike, before any codebook changed
                self._count_bad_step("NaN or Inf in the encoder's output")
                return {"skipped": 1.0}
            audio = out.audio
            losses = {"l1": torch.nn.functional.l1_loss(audio, batch), "mel": self.mel(audio, batch)}
            if self.discriminator is not None and self.step >= config.loss.discriminator_warmup:
                fake_logits, fake_features = self.discriminator(audio)
                with torch.no_grad():
                    _, real_features = self.discriminator(batch)
                losses["adversarial"] = generator_adversarial_loss(fake_logits, config.loss.adversarial_loss)
                losses["feature_matching"] = feature_matching_loss(real_features, fake_features)
        values = torch.stack([v.detach().float() for v in losses.values()] + [out.quantizer_loss.detach().float()])
        if not self._finite(values):
            return {"skipped": 1.0}
        self.opt_g.zero_grad(set_to_none=True)
        norms = self.balancer.backward(losses, audio, out.quantizer_loss)
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), config.optim.grad_clip)
        self.opt_g.step()
        self.sched_g.step()
        metrics = {name: float(v) for name, v in zip(list(losses) + ["quantizer"], values.tolist())}
        metrics["grad_norm"] = float(grad_norm)
        metrics.update({f"gradnorm/{k}": v for k, v in norms.items()})
        if self.discriminator is not None:
            with autocast:
                real_logits, _ = self.discriminator(batch)
                fake_logits, _ = self.discriminator(audio.detach())
                d_loss = discriminator_loss(real_logits, fake_logits, config.loss.adversarial_loss)
            self.opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            torch.nn.utils.clip_grad_norm_(self.discriminator.parameters(), config.optim.grad_clip)
            self.opt_d.step()
            self.sched_d.step()
            metrics["discriminator"] = float(d_loss.detach())
        self._count_codes(out.codes)
        metrics.update(out.metrics)
        self.step += 1
        return metrics

    def _finite(self, values: torch.Tensor) -> bool:
        """All ranks agree whether this step's losses are finite; bad steps are skipped, too many stop training."""
        bad = (~torch.isfinite(values)).any().float().reshape(1)
        if self.distributed:
            dist.all_reduce(bad)
        if bad.item() == 0:
            self.bad_steps = 0
            return True
        self._count_bad_step("non-finite loss")
        return False

    def _count_bad_step(self, what: str) -> None:
        """Skip a step that met NaN or Inf; stop after `max_bad_steps` in a row."""
        self.bad_steps += 1
        log.warning("step %d: %s, step skipped (%d in a row)", self.step, what, self.bad_steps)
        self.opt_g.zero_grad(set_to_none=True)
        if self.bad_steps >= self.config.max_bad_steps:
            raise AudioCodecError(f"training stopped: {self.bad_steps} steps in a row had NaN or Inf losses or "
                                  "encoder outputs (lower optim.lr, or check the data)")

    def _count_codes(self, codes: torch.Tensor) -> None:
        """Accumulate code usage (summed over ranks) into `code_frequencies`, the entropy coder's tables."""
        quantizer = self.model.quantizer
        if not all(level.is_initialized for level in quantizer.levels):
            return
        counts = torch.zeros_like(self.model.code_frequencies)
        for k in range(codes.shape[1]):
            counts[k] += torch.bincount(codes[:, k].reshape(-1), minlength=quantizer.bins).to(counts.dtype)
        if self.distributed:
            dist.all_reduce(counts)
        self.model.code_frequencies += counts

    # -- validation -------------------------------------------------------------------------------------------
    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Distortion of held-out audio, and how the codebooks are used on it.

        The audio: `valid_batches` batches of `data.batch_size` segments, one from each of the first files of
        `data.valid`, the same segments every time so that validations compare. Per level: perplexity and
        fraction of codes used, counted over those segments' frames (the eval-mode quantizer reports nothing
        itself), and the codes the last expiry check found dead (the current window may have just restarted, so
        counting it now would say 0).
        """
        self.model.eval()
        quantizer = self.model.quantizer
        totals: dict[str, list[float]] = {}
        counts = torch.zeros(quantizer.n_q, quantizer.bins, dtype=torch.float64)
        size = self.config.data.batch_size
        segments = min(self.config.valid_batches * size, len(self.valid_data))
        for start in range(0, segments, size):
            batch = torch.stack([self.valid_data[i] for i in range(start, min(start + size, segments))])
            batch = batch.to(self.device)
            out = self.model(batch, n_q=quantizer.n_q)  # every level, the highest bandwidth
            audio = out.audio.float()
            per_segment = {  # [B, C] -> [B]: every segment weighs the same, whatever its batch
                "valid/si_sdr": si_sdr(batch, audio),
                "valid/mel_distance": mel_distance(batch, audio, self.config.model.sample_rate),
            }
            for name, values in per_segment.items():
                totals.setdefault(name, []).extend(values.mean(1).tolist())
            for k in range(out.codes.shape[1]):
                counts[k] += torch.bincount(out.codes[:, k].reshape(-1).cpu(), minlength=quantizer.bins).double()
        self.model.train()
        result = {k: float(np.mean(v)) for k, v in totals.items()}
        for level in codebook_health(counts.numpy()):
            k = level.level
            result[f"valid/q{k}/perplexity"] = level.perplexity
            result[f"valid/q{k}/used"] = level.used
            if hasattr(quantizer.levels[k], "last_dead"):
                result[f"valid/q{k}/dead"] = float(quantizer.levels[k].last_dead)
        return result

    # -- checkpoints ------------------------------------------------------------------------------------------
    def save(self) -> None:
        if self.rank != 0:
            return
        state = {
            "config": self.config.to_dict(),
            "step": self.step, "epoch": self.epoch, "batch_index": self.batch_index,
            "model": self.model.state_dict(),
            "discriminator": None if self.discriminator is None else _unwrap(self.discriminator).state_dict(),
            "opt_g": self.opt_g.state_dict(), "sched_g": self.sched_g.state_dict(),
            "opt_d": None if self.opt_d is None else self.opt_d.state_dict(),
            "sched_d": None if self.sched_d is None else self.sched_d.state_dict(),
            "balancer": self.balancer.state_dict(),
            "schedule": dataclasses.asdict(self.schedule),
            "rng": {"torch": torch.get_rng_state(), "python": list(random.getstate()[1]),
                    "python_version": random.getstate()[0], "python_gauss": random.getstate()[2],
                    "numpy": _numpy_state(),
                    "cuda": torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None},
        }
        save_checkpoint(state, self.output, self.step, self.config.keep_checkpoints)

    def _init_from(self, directory: str) -> None:
        """Start from a trained model's weights (a compact one's training state is rebuilt on loading). Its
        layout must be the recipe's; its entropy-coder counts are dropped, since the codebooks will move."""
        source = Codec.from_pretrained(directory)
        differing = [name for name in LAYOUT if getattr(self.config.model, name) != getattr(source.config, name)]
        if differing:
            raise AudioCodecError(f"init_from {directory}: its {', '.join(differing)} differ from the recipe's model")
        state = source.state_dict()
        state["code_frequencies"] = torch.zeros_like(state["code_frequencies"])
        try:
            self.model.load_weights(state, source=f"init_from {directory}")
        except ModelMismatchError:  # say which settings differ, not only which of a hundred tensors
            fields = layout_differences(self.config.model, source.config)  # LAYOUT's were refused above
            if not fields:
                raise
            raise ModelMismatchError(f"init_from {directory}: its weights do not fit the recipe's model: its "
                                     f"{', '.join(fields)} differ") from None
        if self.rank == 0:
            log.info("weights from %s (%s)", directory, source.model_id())
            self._warn_of_default_finetune(directory)

    def _bf16(self) -> bool:
        """Whether steps compute in bf16 (autocast): on a GPU with `bf16`, on the CPU with `bf16_on_cpu` too."""
        return self.config.bf16 and (self.device.type == "cuda" or self.config.bf16_on_cpu)

    def _warn_of_default_finetune(self, directory: str) -> None:
        """Says so before hours are spent where measurements say a fine-tune of the default only loses."""
        if model_directory(directory).resolve() != model_directory("default").resolve():
            return
        rounds = self._bf16() or self.config.round_conv_inputs_to_bf16
        warning = default_finetune_warning(self.device.type, rounds, self.config.optim.lr)
        if warning:
            log.warning(warning)

    def _resume(self) -> None:
        state = load_latest(self.output)
        if state is None:
            log.info("no checkpoint in %s: starting from scratch", self.output)
            return
        differing = layout_differences(self.config.model, CodecConfig.from_dict(state["config"]["model"]))
        if differing:  # the weights would not fit, or would fit and mean another sample rate or channel count
            raise AudioCodecError(f"{self.output}: its checkpoints' model differs from the recipe's in "
                                  f"{', '.join(differing)}: resume with the recipe it was trained with")
        if self.discriminator is not None and state["discriminator"] is None:
            # Its optimizer and schedule would start at step 0 and its warm-up would be long past: the fresh
            # discriminator would face the generator's full pull at once (docs/training.md).
            raise AudioCodecError(f"{self.output}: its checkpoints have no discriminator, and this recipe adds one: "
                                  "export the run and start a new one from it with --init-from")
        self.model.load_weights(state["model"], source=f"{self.output}'s checkpoint")
        if self.discriminator is not None:
            _unwrap(self.discriminator).load_state_dict(state["discriminator"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.sched_g.load_state_dict(state["sched_g"])
        if self.opt_d is not None:
            self.opt_d.load_state_dict(state["opt_d"])
            self.sched_d.load_state_dict(state["sched_d"])
        self.balancer.load_state_dict(state["balancer"])
        self.step, self.epoch, self.batch_index = state["step"], state["epoch"], state["batch_index"]
        optim = self.config.optim
        # Checkpoints written before the schedule could move hold only the max_steps it ended at.
        self.schedule = (CosineSchedule(**state["schedule"]) if "schedule" in state
                         else CosineSchedule(optim.warmup_steps, state["config"]["optim"]["max_steps"]))
        if not optim.time_limit and self.schedule.end != optim.max_steps:
            if self.rank == 0:
                old = ("was held at its peak, waiting for a time limit's fit" if math.isinf(self.schedule.end)
                       else f"ends at step {self.schedule.end} (--max-steps {self.schedule.end} keeps it)")
                log.warning("the checkpoint's schedule %s; the rest of the cosine now runs from step %d to this "
                            "run's max_steps, %d", old, self.step, optim.max_steps)
            self.schedule.retarget(self.step, optim.max_steps)
        if not math.isinf(self.schedule.end):
            optim.max_steps = self.schedule.end  # what the checkpoints' config records
        rng = state["rng"]
        torch.set_rng_state(rng["torch"])
        if self.device.type == "cuda" and rng.get("cuda") is not None:
            torch.cuda.set_rng_state(rng["cuda"], self.device)
        random.setstate((rng["python_version"], tuple(rng["python"]), rng["python_gauss"]))
        np.random.set_state(("MT19937", np.array(rng["numpy"][0], dtype=np.uint32), *rng["numpy"][1:]))
        log.info("resumed from step %d", self.step)

    # -- logging ----------------------------------------------------------------------------------------------
    def _log(self, path: Path, writer, metrics: dict) -> None:
        with path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(metrics) + "\n")
        if writer is not None:
            for key, value in metrics.items():
                if key != "step":
                    writer.add_scalar(key, value, metrics["step"])

    def _tensorboard(self):
        if self.rank != 0:
            return None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            log.info("TensorBoard is not installed (pip install 'audiocodec[train]'): metrics go to metrics.jsonl only")
            return None
        # Resumed from an older checkpoint (after a SIGKILL), the steps after it are trained again: their first
        # events are purged, as `_forget_steps_after` drops their lines, so that no step is logged twice.
        return SummaryWriter(str(self.output / "tensorboard"), purge_step=self.step + 1 if self.step else None)

    def _progress(self):
        if self.rank != 0 or not sys.stderr.isatty():
            return None
        from tqdm import tqdm

        total = None if math.isinf(self.schedule.end) else self.schedule.end
        return tqdm(total=total, initial=self.step, unit="step")


def _unwrap(module: torch.nn.Module) -> torch.nn.Module:
    return module.module if hasattr(module, "module") else module


def _numpy_state() -> list:
    _, keys, position, has_gauss, cached = np.random.get_state()
    return [keys.tolist(), int(position), int(has_gauss), float(cached)]
