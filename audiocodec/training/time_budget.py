"""Training for a wall-clock budget: the cosine schedule fitted to the time there is.

The schedule's length (`optim.max_steps`) must be known from the start, but how many steps fit into a GPU loan, a
batch job's slot or a night is not. With `optim.time_limit` the trainer times its first steps, then sets
`max_steps` to the step the run will reach when the time is up, so the learning rate anneals when the time ends
instead of being cut off at its peak; and it stops, with a final checkpoint, if the time runs out first.

The fit is made at the end of the warm-up, whose learning rates do not depend on `max_steps`: a run repeated with
`--max-steps` set to the fitted value (logged, and kept in the checkpoints' config) is the same run.
"""

from __future__ import annotations

import time
from typing import Callable

#: Steps timed before the fit. The first step of a process is not among them: it pays for loading the first
#: batch, allocating memory and, on GPUs, choosing kernels.
TIMED_STEPS = 10
#: Share of the remaining time left unplanned, for checkpoints, validation and the final checkpoint.
MARGIN = 0.03


class TimeBudget:
    """The deadline of one training process, and the schedule length that reaches it."""

    def __init__(self, seconds: float, start_step: int, warmup_steps: int,
                 clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self.deadline = clock() + seconds
        self.fit_step = max(warmup_steps, start_step + TIMED_STEPS + 1)
        self._first: tuple[int, float] | None = None

    def expired(self) -> bool:
        return self.clock() >= self.deadline

    def after_step(self, step: int) -> int | None:
        """Call after each step; at `fit_step`, returns the schedule length that ends at the deadline."""
        now = self.clock()
        if self._first is None:
            self._first = (step, now)
            return None
        if step != self.fit_step:
            return None
        first_step, first_time = self._first
        seconds_per_step = max(now - first_time, 1e-9) / (step - first_step)
        return step + max(0, int((self.deadline - now) * (1 - MARGIN) / seconds_per_step))


def parse_duration(text: str) -> float:
    """Seconds in '5400', '90m', '1.5h' or '45s'; ValueError (with the text) for anything else."""
    units = {"s": 1.0, "m": 60.0, "h": 3600.0}
    number, scale = (text[:-1], units[text[-1]]) if text and text[-1] in units else (text, 1.0)
    try:
        seconds = float(number) * scale
    except ValueError:
        raise ValueError(f"not a duration: {text!r} (seconds, or a number ending in s, m or h)") from None
    if not seconds > 0 or seconds == float("inf"):
        raise ValueError(f"a time limit must be positive and finite, got {text!r}")
    return seconds
