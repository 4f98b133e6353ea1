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
    would, so the link stays a link.
    """
    path = Path(os.path.realpath(path))
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, stat.S_IMODE(path.stat().st_mode) if path.exists() else 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    """The process's umask, read once: reading it means setting it, which is not thread-safe to repeat."""
    global _UMASK
    if _UMASK is None:
        _UMASK = os.umask(0o022)
        os.umask(_UMASK)
    return _UMASK
