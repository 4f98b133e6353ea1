"""Run the `audiocodec` command inside the test process, as a user's shell would run it, but without paying for a
fresh Python and a torch import on every call (about 2 s each on CI's cores).

`run_cli(*args)` calls the entry point `audiocodec.cli.main` with file descriptors 0, 1 and 2 (and `sys.stdin`,
`sys.stdout`, `sys.stderr`) redirected: what the command writes -- through Python's streams or straight to the
descriptors -- is captured as bytes, `isatty()` is false as it is under `subprocess.run(capture_output=True)`, and
bytes given as standard input arrive through a real pipe. Tests that need a real process (signals, a process killed
midway, `python -m audiocodec` itself) use `run_process`, which gives the same result type.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import subprocess
import sys
import tempfile
import threading
from typing import BinaryIO, Iterator


@dataclasses.dataclass
class CliResult:
    """What `subprocess.run(capture_output=True)` gives, for both runners."""

    returncode: int
    stdout: bytes
    stderr: bytes


@contextlib.contextmanager
def _redirected(fd: int, target: int) -> Iterator[None]:
    saved = os.dup(fd)
    try:
        os.dup2(target, fd)
        yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)


def _feed(write_end: int, data: bytes) -> None:
    try:
        with open(write_end, "wb") as pipe:
            pipe.write(data)
    except BrokenPipeError:  # the command stopped reading, as a real reader may
        pass


def run_cli(*args: object, stdin: bytes | BinaryIO | None = None, stdout: BinaryIO | None = None) -> CliResult:
    """`audiocodec ARGS` in this process; its exit status, standard output and standard error.

    `stdin`: bytes arrive through a real pipe (fed by a thread, so `-` and `/dev/stdin` read a pipe as they would in
    a shell); an open file is used as it is (`< file`); None is /dev/null. `stdout`: an open file (a terminal from
    `pty.openpty`, say) to write to instead of capturing.
    """
    from audiocodec.cli import main

    feeder = None
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(tempfile.TemporaryFile())
        err = stack.enter_context(tempfile.TemporaryFile())
        if stdin is None:
            source = stack.enter_context(open(os.devnull, "rb")).fileno()
        elif isinstance(stdin, (bytes, bytearray)):
            source, write_end = os.pipe()
            stack.callback(os.close, source)  # after the command: a feeder still writing gets a broken pipe
            feeder = threading.Thread(target=_feed, args=(write_end, bytes(stdin)), daemon=True)
            feeder.start()
        else:
            source = stdin.fileno()
        streams = sys.stdin, sys.stdout, sys.stderr
        for stream in streams[1:]:
            with contextlib.suppress(Exception):
                stream.flush()
        target = out.fileno() if stdout is None else stdout.fileno()
        with _redirected(0, source), _redirected(1, target), _redirected(2, err.fileno()):
            # The errors= settings are Python's own for a process's streams (stderr never fails on odd names).
            sys.stdin = open(0, "r", closefd=False)  # noqa: SIM115 - restored below
            sys.stdout = open(1, "w", closefd=False, errors=sys.__stdout__.errors)  # noqa: SIM115
            sys.stderr = open(2, "w", closefd=False, errors="backslashreplace")  # noqa: SIM115
            try:
                code = main([os.fspath(arg) if isinstance(arg, os.PathLike) else str(arg) for arg in args])
            except SystemExit as exit_:  # argparse: --help, --version and usage errors
                code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
            finally:
                for stream in (sys.stdout, sys.stderr):
                    with contextlib.suppress(Exception):
                        stream.flush()
                sys.stdin, sys.stdout, sys.stderr = streams
        out.seek(0)
        err.seek(0)
        result = CliResult(int(code), out.read(), err.read())
    if feeder is not None:
        feeder.join(timeout=10)
    return result


def run_process(*args: object, stdin: bytes | None = None, timeout: float | None = None) -> CliResult:
    """`python -m audiocodec ARGS` in a new process, for what needs one (pipes on standard input, signals)."""
    result = subprocess.run([sys.executable, "-m", "audiocodec", *map(str, args)], capture_output=True, input=stdin,
                            timeout=timeout)
    return CliResult(result.returncode, result.stdout, result.stderr)


def run(*args: object, stdin: bytes | BinaryIO | None = None) -> CliResult:
    """The command in this process (the tests' default runner)."""
    return run_cli(*args, stdin=stdin)
