"""The `audiocodec` command. `main(argv)` is the entry point (`audiocodec.cli:main`); `entry` dispatches to the
modules that register sub-commands."""

from .entry import build_parser, main

__all__ = ["build_parser", "main"]
