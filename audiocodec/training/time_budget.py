"""Training for a wall-clock budget: the cosine schedule fitted to the time there is.

The schedule's length (`optim.max_steps`) must be known from the start, but how many steps fit into a GPU loan, a
batch job's slot or a night is not. With `optim.time_limit` the trainer times its first steps, then sets
`max_steps` to the step the run will reach when the time is up, so the learning rate anneals when the time ends
instead of being cut off at its peak; and if steps slow down, it stops at the first step boundary past the
limit, with a final checkpoint.

Until the fit the learning rate of a fresh run warms up, then holds at its peak, and a resumed run follows its
checkpoint's schedule; the fit ends the cosine at the fitted step, without a jump in the rate (schedule.py). The
steps timed come after the first of the process (which pays for loading the first batch, allocating memory and,
on GPUs, choosing kernels) and after the discriminator's warm-up (before which steps are cheaper), and the fit
waits for the warm-up's end. Ten steps do not show what checkpoints and validations cost, so the end is fitted
again after each checkpoint, from all the time since the fit.
"""

from __future__ import annotations

import time
from typing import Callable

#: Steps timed before the fit.
TIMED_STEPS = 10
#: Share of the remaining time left unplanned, for checkpoints, validation and the final checkpoint.
MARGIN = 0.03


class TimeBudget:
    """The deadline of one training process, and the schedule end that reaches it.

    The TIMED_STEPS steps after `time_from` are timed (their loading and training, not the checkpoints or
    validations that follow some of them: one checkpoint can outlast ten GPU steps); `after_step` returns the
    fitted end once, at `fit_step`: the last of them, or the warm-up's end if later.
    """

    def __init__(self, seconds: float, time_from: int, warmup: int, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self.deadline = clock() + seconds
        self.time_from, self.fit_step = time_from, max(warmup, time_from + TIMED_STEPS)
        self._timed_seconds = 0.0
        self._fitted_at: tuple[int, float] | None = None  # step and time of the fit

    @property
    def fitted(self) -> bool:
        return self._fitted_at is not None

    def expired(self) -> bool:
        return self.clock() >= self.deadline

    def after_step(self, step: int, seconds: float) -> int | None:
        """Call after each step, which reached `step` in `seconds`; at `fit_step`, returns the step that the
        deadline will find the run at."""
        if self.fitted or step <= self.time_from:
            return None
        self._timed_seconds += seconds
        if step != self.fit_step:
            return None
        self._fitted_at = (step, self.clock())
        return self._end(step, self._timed_seconds / (step - self.time_from))

    def refit(self, step: int) -> int | None:
        """The end again, from all the time since the fit: checkpoints and validations included, which the ten
        timed steps leave out (None before any step after the fit). Call after a step's checkpoint, so that the
        time since the fit holds whole checkpoint intervals."""
        if self._fitted_at is None or step <= self._fitted_at[0]:
            return None
        fit_step, fit_time = self._fitted_at
        return self._end(step, (self.clock() - fit_time) / (step - fit_step))

    def _end(self, step: int, seconds_per_step: float) -> int:
        return step + max(0, int((self.deadline - self.clock()) * (1 - MARGIN) / max(seconds_per_step, 1e-9)))


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
