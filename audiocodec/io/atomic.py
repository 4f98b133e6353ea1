"""Files written atomically: to a temporary file beside the target, renamed over it once complete.

An interrupted run (Ctrl-C, a full disk, a killed job) then never leaves a half-written output or checkpoint, and
an existing file is replaced only by a complete one.
"""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import tempfile
import threading
from pathlib import Path
from typing import Iterator

_UMASK: int | None = None


@contextlib.contextmanager
def atomic_path(path: str | Path, through_links: bool = True) -> Iterator[str]:
    """A temporary path in `path`'s folder, renamed to `path` if the block succeeds and removed if it fails.

    The result has the permissions of the file it replaces, or those `open(path, "w")` would give (0666 less the
    umask): `mkstemp` alone makes files only their owner can read. A symbolic link is written through, as `open`
    would, so the link stays a link; with `through_links=False` the link itself is replaced, for files of a
    folder whose links may point into another folder of the same kind. A device or FIFO (`is_special_file`) is
    written in place.
    """
    with atomic_paths(path, through_links=through_links) as (tmp,):
        yield tmp


@contextlib.contextmanager
def atomic_paths(*paths: str | Path, through_links: bool = True) -> Iterator[list[str]]:
    """`atomic_path` for files that belong together (a model's weights and the config that names them): every
    temporary file is complete, and has its permissions, before the first rename, and the renames run with
    SIGINT, SIGTERM and SIGHUP held back, so that neither a failure while writing nor an interrupt leaves some of
    the files new and others old. (A crash of the machine between two renames still can.)"""
    targets: list[tuple[str, Path | None]] = []  # (name given, file to replace; None: written in place)
    temporaries: list[str] = []
    try:
        for path in paths:
            if is_special_file(path):
                targets.append((str(path), None))
                temporaries.append(str(path))
                continue
            given = str(path)
            target = Path(os.path.realpath(path) if through_links else os.path.abspath(path))
            try:
                fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
            except OSError as error:  # name the file asked for, not the temporary one
                raise OSError(error.errno, error.strerror, given) from None
            os.close(fd)
            targets.append((given, target))
            temporaries.append(tmp)
        yield list(temporaries)
        replacing = [(target, tmp) for (_, target), tmp in zip(targets, temporaries) if target is not None]
        for target, tmp in replacing:
            os.chmod(tmp, stat.S_IMODE(target.stat().st_mode) if target.exists() else 0o666 & ~_umask())
        with _signals_held():
            for target, tmp in replacing:
                os.replace(tmp, target)
    except BaseException as error:
        for (_, target), tmp in zip(targets, temporaries):
            if target is not None:
                Path(tmp).unlink(missing_ok=True)
        named = [given for (given, _), tmp in zip(targets, temporaries) if isinstance(error, OSError)
                 and error.filename == tmp]
        if named:  # name the file asked for, not the temporary one
            raise OSError(error.errno, error.strerror, named[0]) from None
        raise


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Hold back the signals that stop a run until the block is over: they are recorded, then sent again to
    the handlers they would have reached. Python runs signal handlers in the main thread whichever thread the
    signal lands on, so this holds them in a process with other threads too (torch's, the data loader's);
    outside the main thread handlers cannot be changed, and nothing is held."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    numbers = [getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)]
    previous = {number: signal.signal(number, lambda number, frame: caught.append(number)) for number in numbers}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, signal.SIG_DFL if handler is None else handler)
        for number in caught:
            signal.raise_signal(number)


def is_special_file(path: str | Path) -> bool:
    """An existing file that is not a regular one (a device such as /dev/null, a FIFO, a socket, /dev/stdout on
    a pipe): written in place, since it cannot be replaced by renaming, and writing to it destroys nothing."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


def _umask() -> int:
    """The process's umask, read once: reading it means setting it, which is not thread-safe to repeat."""
    global _UMASK
    if _UMASK is None:
        _UMASK = os.umask(0o022)
        os.umask(_UMASK)
    return _UMASK
