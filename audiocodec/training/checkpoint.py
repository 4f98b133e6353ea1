"""Checkpoints written atomically, the last K kept, and loaded skipping damaged ones.

A checkpoint is a `torch.save` dict of tensors and plain values (no objects), loaded with
`weights_only=True`. It is written to a temporary file and renamed, so a run killed mid-write leaves the
previous checkpoints intact; a truncated or corrupt file (a disk filled up, a copy cut short) is reported and
the one before it is used.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from ..errors import AudioCodecError
from ..io.atomic import atomic_path

log = logging.getLogger("audiocodec.train")
PATTERN = "checkpoint_*.pt"


def checkpoint_path(directory: Path, step: int) -> Path:
    return directory / f"checkpoint_{step:08d}.pt"


def save_checkpoint(state: dict, directory: Path, step: int, keep: int) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    target = checkpoint_path(directory, step)
    with atomic_path(target) as tmp:
        torch.save(state, tmp)
    for old in sorted(directory.glob(PATTERN))[:-keep]:
        old.unlink()
    return target


def has_checkpoints(directory: Path) -> bool:
    return any(directory.glob(PATTERN))


def load_latest(directory: Path) -> dict | None:
    """The newest readable checkpoint in `directory`, or None when there is none; damaged ones are reported and
    skipped, and when all are damaged that is an error: starting afresh would write over them."""
    found = find_latest(directory)
    return None if found is None else found[0]


def find_latest(directory: Path) -> tuple[dict, Path] | None:
    """`load_latest`, with the path of the checkpoint it read (what ranks compare before resuming)."""
    paths = sorted(directory.glob(PATTERN), reverse=True)
    for path in paths:
        try:
            return torch.load(path, map_location="cpu", weights_only=True), path
        except Exception as error:  # a truncated zip, a bad pickle opcode, ...: all mean "unusable"
            detail = str(error).splitlines()[0][:80] if str(error) else ""
            log.warning("checkpoint %s is damaged (%s: %s); trying an older one", path.name, type(error).__name__,
                        detail)
    if paths:
        raise AudioCodecError(f"{directory}: none of its {len(paths)} checkpoint(s) can be read; move them away "
                              f"to start afresh")
    return None


def load_checkpoint(path: Path) -> tuple[dict, Path]:
    """What `--resume-from PATH` names: a checkpoint file, or a run folder (its newest readable checkpoint)."""
    if path.is_dir():
        found = find_latest(path)
        if found is None:
            raise AudioCodecError(f"--resume-from {path}: the folder holds no checkpoint ({PATTERN})")
        return found
    if not path.is_file():
        raise AudioCodecError(f"--resume-from {path}: no such checkpoint file or run folder")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise AudioCodecError(f"--resume-from {path}: not a readable checkpoint ({type(error).__name__})") from None
    if not (isinstance(state, dict) and {"model", "step", "config"} <= set(state)):
        raise AudioCodecError(f"--resume-from {path}: not a checkpoint of `audiocodec train`")
    return state, path
