"""`audiocodec compress IN_DIR OUT_DIR` and `decompress IN_DIR OUT_DIR`: every file of a folder tree, mirrored.

A collection (a podcast archive, a dataset) is coded in one command with the model loaded once. Everything that
can be checked before the work is: the output names (`a.wav` and `a.flac` would both become `a.ac`) and the
outputs that already exist, so a run is not refused halfway. A file that cannot be read or decoded is reported
in one line and skipped, the others are still coded, and the exit status is 1 if any failed.
"""

from __future__ import annotations

import argparse
import functools
import os
import time
from pathlib import Path
from typing import Callable

from ..errors import AudioCodecError
from .common import compress_audio, decompress_bytes, duration, load_model, read_input_bytes, report


def compress_folder(args: argparse.Namespace) -> int:
    """Every audio file under `args.input` to a `.ac` file at the same place under `args.output`."""
    from ..io.audio import AUDIO_SUFFIXES, AudioSource

    pairs = plan(Path(args.input), args.output, AUDIO_SUFFIXES, ".ac", args.force)
    model = load_model(args.model, args.device)
    if args.bandwidth is not None:
        model.set_target_bandwidth(args.bandwidth)
    totals = {"bytes": 0, "seconds": 0.0}

    def one(source: Path, output: Path) -> None:
        audio = AudioSource(source)
        totals["bytes"] += compress_audio(model, audio, output, args.quiet)
        totals["seconds"] += audio.frames_read / audio.sample_rate

    start = time.perf_counter()
    done, failed = run_each(pairs, one, args.quiet)
    rate = f", {8 * totals['bytes'] / totals['seconds'] / 1000:.2f} kb/s on average" if totals["seconds"] else ""
    report(f"{args.output}: {done} file(s) compressed, {duration(totals['seconds'])} of audio into "
            f"{totals['bytes']} bytes{rate} at {model.bandwidth:g} kb/s nominal"
            f"{f'; {failed} failed' if failed else ''} ({time.perf_counter() - start:.1f} s)")
    return 1 if failed else 0


def decompress_folder(args: argparse.Namespace) -> int:
    """Every `.ac` file under `args.input` to an audio file (`args.format`) at the same place under `args.output`."""
    pairs = plan(Path(args.input), args.output, {".ac"}, f".{args.format or 'wav'}", args.force)
    get_model = functools.cache(lambda: load_model(args.model, args.device))
    seconds = 0.0

    def one(source: Path, output: Path) -> None:
        nonlocal seconds
        seconds += decompress_bytes(read_input_bytes(source), source, output, get_model, args.quiet)[0]

    start = time.perf_counter()
    done, failed = run_each(pairs, one, args.quiet)
    report(f"{args.output}: {done} file(s) decompressed, {duration(seconds)} of audio"
            f"{f'; {failed} failed' if failed else ''} ({time.perf_counter() - start:.1f} s)")
    return 1 if failed else 0


def plan(root: Path, output: str, suffixes: set[str], new_suffix: str, force: bool) -> list[tuple[Path, Path]]:
    """(input, output) for every file under `root` with one of `suffixes`; refused as a whole, before any work,
    when the output is not a folder, two inputs would share an output, or outputs exist (without `force`)."""
    if output == "-":
        raise AudioCodecError(f"{root}: a folder's files go to a folder, not to standard output")
    from ..io.audio import AUDIO_SUFFIXES, files_below

    out_root = Path(output)
    if out_root.exists() and not out_root.is_dir() or not out_root.exists() and (
            out_root.suffix.lower() in AUDIO_SUFFIXES | {".ac"}):
        raise AudioCodecError(f"{out_root}: the input is a folder, so the output must be a folder too")
    if out_root.is_dir() and not os.access(out_root, os.W_OK | os.X_OK):  # else every file fails after its coding
        raise AudioCodecError(f"{out_root}: permission denied: the output folder is not writable")
    sources = files_below(root, suffixes)
    if not sources:
        raise AudioCodecError(f"{root}: no {' or '.join(sorted(suffixes))} files in this folder or below")
    pairs, claimed = [], {}
    for source in sources:
        target = out_root / source.relative_to(root).with_suffix(new_suffix)
        if target in claimed:
            raise AudioCodecError(f"{claimed[target]} and {source} would both be written to {target}; rename one")
        claimed[target] = source
        pairs.append((source, target))
    existing = [target for _, target in pairs if target.exists()]
    folders = [target for target in existing if target.is_dir()]
    if folders:  # --force cannot replace them, and each file would fail only after its coding
        raise AudioCodecError(f"{folders[0]}: is a folder where an output file goes; rename or remove it")
    inputs = {_identity(source): source for source in sources}
    for target in existing:  # a link in the output folder to an input: writing through it would replace the input
        if _identity(target) in inputs:
            raise AudioCodecError(f"{target}: is the input file {inputs[_identity(target)]} (a link to it); remove it "
                                  f"or write to another folder")
    if existing and not force:
        raise AudioCodecError(f"{len(existing)} output(s) already exist, such as {existing[0]} (use --force to "
                              f"overwrite them)")
    return pairs


def _identity(path: Path) -> tuple[int, int]:
    """The file `path` names, links followed: what `os.path.samefile` compares."""
    status = path.stat()
    return status.st_dev, status.st_ino


def run_each(pairs: list[tuple[Path, Path]], work: Callable[[Path, Path], None],
             quiet: bool = False) -> tuple[int, int]:
    """`work(input, output)` for each pair, creating output folders; a user error or a refusing file system fails
    that file alone, in one line. The numbers of files done and failed. Progress in files unless `quiet`."""
    from ..io.progress import progress

    done = failed = 0
    for source, target in progress(pairs, label="files", unit="file", enabled=not quiet):
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            work(source, target)
            done += 1
        except AudioCodecError as error:
            message = str(error) if str(source) in str(error) else f"{source}: {error}"
            report(f"audiocodec: error: {message} (skipped)")
            failed += 1
        except OSError as error:
            report(f"audiocodec: error: {error.filename or source}: {error.strerror or error} (skipped)")
            failed += 1
    return done, failed

