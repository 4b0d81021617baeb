"""Fault injection for the fake scheduler.

Each fault can be given a probability (drawn from the scheduler's seeded
random generator, so a seed replays the same faults) and can be forced for
the next N occasions, which is how rule-based tests inject one precisely.
"""

from __future__ import annotations

import enum
import random
from collections import Counter
from dataclasses import dataclass, field


class Fault(str, enum.Enum):
    SUBMIT_FAIL = "submit_fail"  # the scheduler refuses the job
    SUBMIT_LOST = "submit_lost"  # the submit times out, yet the scheduler creates the job
    STATUS_FAIL = "status_fail"  # the status query exits non-zero
    STATUS_GARBAGE = "status_garbage"  # the status query exits 0 with output nobody can read
    STATUS_HANG = "status_hang"  # the status query hangs until the runner's timeout kills it
    CANCEL_FAIL = "cancel_fail"  # the cancel command fails; the job lives on
    JOB_DEATH = "job_death"  # a started job dies (node failure or out of memory)
    PURGE_EARLY = "purge_early"  # a job leaves the listing at once, as if purged
    SLOW = "slow"  # a command takes ``slow_seconds`` of (virtual) time


@dataclass
class Faults:
    """Probabilities of each fault, plus faults forced for the next occasions.

    ``job_death`` is a hazard per started job per virtual second;
    ``purge_early`` is per listed job per status query; the others are per
    command of their kind.
    """

    submit_fail: float = 0.0
    submit_lost: float = 0.0
    status_fail: float = 0.0
    status_garbage: float = 0.0
    status_hang: float = 0.0
    cancel_fail: float = 0.0
    job_death: float = 0.0
    purge_early: float = 0.0
    slow: float = 0.0
    slow_seconds: float = 5.0
    forced: Counter[Fault] = field(default_factory=Counter)

    def force(self, fault: Fault | str, times: int = 1) -> None:
        """Make ``fault`` happen on its next ``times`` occasions."""
        self.forced[Fault(fault)] += times

    def clear(self) -> None:
        """No more faults: every probability zero and nothing forced."""
        for fault in Fault:
            setattr(self, fault.value, 0.0)
        self.forced.clear()

    def fire(self, fault: Fault, rng: random.Random, probability: float | None = None) -> bool:
        """Whether ``fault`` happens on this occasion (forced ones first)."""
        if self.forced[fault] > 0:
            self.forced[fault] -= 1
            return True
        p = getattr(self, fault.value) if probability is None else probability
        return p > 0 and rng.random() < p
