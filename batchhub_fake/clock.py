"""Virtual time for the fake scheduler: tests move it on, nothing sleeps."""

from __future__ import annotations


class FakeClock:
    """A clock that only moves when told to.

    Everything in the fake (queue delays, run-time limits, purge ages, a
    command that hangs until its timeout) is measured on this clock, so a
    test covering hours of scheduler life runs in milliseconds.
    """

    def __init__(self, start: float = 1_000_000.0) -> None:
        self._now = float(start)

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> float:
        """Move time forward by ``seconds`` (never back) and return the new time."""
        if seconds < 0:
            raise ValueError(f"time only moves forward, not by {seconds}")
        self._now += seconds
        return self._now

    def __call__(self) -> float:  # usable wherever a ``time.monotonic``-like callable is wanted
        return self._now
