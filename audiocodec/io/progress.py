"""Progress of long jobs on standard error: a tqdm bar on a terminal, plain lines in a log.

tqdm draws a bar for a terminal; written to a file its carriage returns make one long line, and hiding it there
left a batch job's log silent for the 25 minutes an hour of audio took to code on a loaded machine. Off a terminal
`progress` writes instead, every `INTERVAL_SECONDS`, a line such as

    decoding: 42% (21/50 chunks), 1.3 chunks/s, 22 s left

and a last one when the job ends. Both are driven the same way (iterate, or `update`, `set_postfix`, `write`,
`close`), so a loop written for tqdm takes either.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Iterable, Iterator, TextIO

#: Seconds between two progress lines in a log.
INTERVAL_SECONDS = 5.0


def progress(iterable: Iterable | None = None, total: int | None = None, label: str = "", unit: str = "step",
             enabled: bool = True, initial: int = 0, stream: TextIO | None = None) -> Any:
    """`iterable` (or a counter, when None) under a progress display on `stream` (standard error): a tqdm bar on a
    terminal, `LogProgress` lines elsewhere, nothing when not `enabled` (`--quiet`, or a short job)."""
    stream = sys.stderr if stream is None else stream
    if total is None and iterable is not None and hasattr(iterable, "__len__"):
        total = len(iterable)
    if not enabled:
        return LogProgress(iterable, total, label, unit, initial, stream, silent=True)
    if _is_terminal(stream):
        from tqdm import tqdm

        return tqdm(iterable, total=total, desc=label or None, unit=unit, initial=initial, leave=False, file=stream)
    return LogProgress(iterable, total, label, unit, initial, stream)


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no such method, or closed
        return False


class LogProgress:
    """Plain progress lines for a log, at most one every `INTERVAL_SECONDS` (none when `silent`), with the
    percentage, the speed and the time left when the total is known."""

    def __init__(self, iterable: Iterable | None, total: int | None, label: str, unit: str, initial: int,
                 stream: TextIO, silent: bool = False, interval: float = INTERVAL_SECONDS):
        self.iterable, self.total, self.label, self.unit = iterable, total, label, unit
        self.n = self.initial = initial
        self.stream, self.silent, self.interval = stream, silent, interval
        self.start = self.last = time.monotonic()
        self.postfix, self.printed, self.closed = "", False, False

    def __iter__(self) -> Iterator[Any]:
        try:
            for item in self.iterable:
                yield item
                self.update(1)
        finally:
            self.close()

    def __len__(self) -> int:
        return self.total or 0

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.monotonic()
        if not self.silent and now - self.last >= self.interval:
            self.last = now
            self._print(now)

    def set_postfix(self, **values: Any) -> None:
        self.postfix = ", ".join(f"{key} {value}" for key, value in values.items())

    def write(self, message: str, file: TextIO | None = None) -> None:
        print(message, file=file or self.stream, flush=True)

    def close(self) -> None:
        """A last line, if any was written (a job too short for one stays silent)."""
        if not self.closed and self.printed:
            self._print(time.monotonic(), done=True)
        self.closed = True

    def __enter__(self) -> "LogProgress":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def line(self, now: float, done: bool = False) -> str:
        elapsed = max(now - self.start, 1e-9)
        speed = (self.n - self.initial) / elapsed
        parts = []
        if self.total:
            parts.append(f"{100 * self.n / self.total:.0f}% ({self.n}/{self.total} {self.unit}s)")
        else:
            parts.append(f"{self.n} {self.unit}s")
        parts.append(f"{speed:.3g} {self.unit}s/s" if speed >= 0.1 or speed == 0 else f"{1 / speed:.3g} s/{self.unit}")
        if done:
            parts.append(f"done in {_duration(elapsed)}")
        elif self.total and speed > 0:
            parts.append(f"{_duration((self.total - self.n) / speed)} left")
        if self.postfix:
            parts.append(self.postfix)
        return f"{self.label + ': ' if self.label else ''}{', '.join(parts)}"

    def _print(self, now: float, done: bool = False) -> None:
        print(self.line(now, done), file=self.stream, flush=True)
        self.printed = True


def _duration(seconds: float) -> str:
    """`45 s`, `12 min 5 s`, `3 h 20 min`."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"
