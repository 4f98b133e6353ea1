"""Files written atomically: to a temporary file beside the target, renamed over it once complete.

An interrupted run (Ctrl-C, a full disk, a killed job) then never leaves a half-written output or checkpoint, and
an existing file is replaced only by a complete one.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path
from typing import Iterator

_UMASK: int | None = None


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[str]:
    """A temporary path in `path`'s folder, renamed to `path` if the block succeeds and removed if it fails.

    The result has the permissions of the file it replaces, or those `open(path, "w")` would give (0666 less the
    umask): `mkstemp` alone makes files only their owner can read. A symbolic link is written through, as `open`
    would, so the link stays a link. A device or FIFO (`is_special_file`) is written in place.
    """
    if is_special_file(path):
        yield str(path)
        return
    given, path = str(path), Path(os.path.realpath(path))
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as error:  # name the file asked for, not the temporary one
        raise OSError(error.errno, error.strerror, given) from None
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, stat.S_IMODE(path.stat().st_mode) if path.exists() else 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException as error:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(error, OSError) and error.filename == tmp:
            raise OSError(error.errno, error.strerror, given) from None
        raise


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
