"""The `audiocodec` command: a dispatcher over sub-commands registered by the modules that own them.

Each sub-command module exposes `register(subparsers)`, which adds its parser and sets `func`, a
callable taking the parsed arguments and returning an exit status. Heavy imports (torch) happen
inside `func`, so `audiocodec --help` stays fast.

Errors a user can cause (`AudioCodecError`) become one line on stderr and exit status 1; anything
else is a bug, reported in one line too (set AUDIOCODEC_DEBUG=1 for the traceback), exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import threading
from types import FrameType
from typing import Sequence

from .. import __version__
from ..errors import AudioCodecError

# Modules that register sub-commands, in the order `--help` lists them.
COMMAND_MODULES = (
    "audiocodec.cli.commands",
    "audiocodec.cli.info",
    "audiocodec.cli.demo",
    "audiocodec.cli.train",
    "audiocodec.cli.evaluate",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="audiocodec", description="Neural audio codec: compress, decompress, train and evaluate."
    )
    parser.add_argument("--version", action="version", version=f"audiocodec {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name != module_name:
                raise
            continue
        module.register(subparsers)
    return parser


#: Signals that end the process the way Ctrl-C does, unwinding so that temporary outputs are removed: a kill, and a
#: closed terminal or dropped ssh session.
ENDING_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


class _Terminated(BaseException):
    """An ending signal, raised where the program is (a BaseException, so that no `except Exception` swallows it)."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _terminated(signum: int, frame: FrameType | None) -> None:
    raise _Terminated(signum)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help(sys.stderr)
        return 2
    # Python's default SIGTERM and SIGHUP end the process at once, leaving a half-written temporary file beside the
    # output; as an exception they unwind, and the temporary file is removed (the trainer installs its own handler).
    on_main_thread = threading.current_thread() is threading.main_thread()
    previous = {sig: signal.signal(sig, _terminated) for sig in ENDING_SIGNALS} if on_main_thread else {}
    try:
        return int(args.func(args) or 0)
    except AudioCodecError as error:
        print(f"audiocodec: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("audiocodec: interrupted", file=sys.stderr)
        return 130
    except _Terminated as ending:
        print(f"audiocodec: {'hung up' if ending.signum == signal.SIGHUP else 'terminated'}", file=sys.stderr)
        return 128 + ending.signum
    except BrokenPipeError:  # not silent: a cut-off .ac or WAV must not pass for a whole one
        print("audiocodec: error: the output's reader closed it before everything was written", file=sys.stderr)
        return 1
    except OSError as error:  # the file system said no: a full disk, no permission, a file where a folder goes
        where = f"{error.filename}: " if error.filename else ""
        print(f"audiocodec: error: {where}{error.strerror or error}", file=sys.stderr)
        return 1
    except Exception as error:  # noqa: BLE001 - last line of defence: one line, not a traceback
        if os.environ.get("AUDIOCODEC_DEBUG"):
            raise
        print(
            f"audiocodec: internal error: {type(error).__name__}: {error} "
            "(set AUDIOCODEC_DEBUG=1 for the traceback, and please report it)",
            file=sys.stderr,
        )
        return 2
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)


if __name__ == "__main__":
    sys.exit(main())
