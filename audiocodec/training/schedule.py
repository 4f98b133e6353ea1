"""The learning-rate schedule: a linear warm-up, then a cosine down to a tenth of the peak, whose end can move.

The end moves when a time limit fits it to the time there is (time_budget.py), or when a run resumes with another
`max_steps`. The rest of the cosine is then stretched or squeezed from the current step on, so the learning rate
never jumps: a resumed run that was preempted carries on where it was, and one that had finished its schedule
stays at the floor (to raise the learning rate again, start a new run with `--init-from`).
"""

from __future__ import annotations

import dataclasses
import math

#: The learning rate at the schedule's end, as a share of the peak.
FLOOR = 0.1


@dataclasses.dataclass
class CosineSchedule:
    warmup: int
    #: Step at which the cosine reaches its floor; infinite: held at the peak until a time limit fits it.
    end: float
    #: The cosine runs from progress `anchor_progress` at step `anchor` (or at the warm-up's end, if later) to 1 at
    #: `end`; 0 and 0 for a schedule that never moved.
    anchor: int = 0
    anchor_progress: float = 0.0

    def progress(self, step: int) -> float:
        if math.isinf(self.end):
            return self.anchor_progress
        start = max(self.anchor, self.warmup)
        return self.anchor_progress + (1 - self.anchor_progress) * max(0, step - start) / max(1, self.end - start)

    def factor(self, step: int) -> float:
        """The learning rate of step `step` (counted from 0) as a share of the peak."""
        if step < self.warmup:
            return (step + 1) / self.warmup
        return FLOOR + (1 - FLOOR) * 0.5 * (1 + math.cos(math.pi * min(1.0, self.progress(step))))

    def retarget(self, step: int, end: float) -> None:
        """Reach the floor at `end` instead, continuing from the progress made by `step`."""
        self.anchor_progress, self.anchor, self.end = min(1.0, self.progress(step)), step, end
