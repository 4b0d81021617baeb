"""The in-memory scheduler as pytest fixtures, loaded by pytest through the
``pytest11`` entry point wherever batchhub is installed, next to
``batchhub.testing.pytest_plugin``. Each imports what it needs when a test
asks for it:

``fake_clock``
    virtual time (``FakeClock``): nothing sleeps, tests move it.
``fake_scheduler``
    an in-memory scheduler on that clock (``FakeScheduler``: slots, queue
    and start delays, run-time limits, fault injection).
``fake_runner``
    a command runner answering the fake's commands in process, counting
    them by kind (``runner.counts["status"]``).
``fake_cluster``
    all three with a ``FakeBackend`` built for them: ``await
    cluster.run(command)``, ``cluster.advance(seconds)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest


@dataclass
class FakeCluster:
    """The fake scheduler, its runner, its clock and a backend for them."""

    clock: Any
    scheduler: Any
    runner: Any
    backend: Any

    async def run(self, command: Any) -> Any:
        """Run ``command`` against the scheduler, as the hub's runner would."""
        return await self.runner.run(command)

    def advance(self, seconds: float) -> float:
        """Move virtual time on; the scheduler catches up on its next command."""
        return self.clock.advance(seconds)


@pytest.fixture
def fake_clock() -> Any:
    from batchhub_fake import FakeClock

    return FakeClock()


@pytest.fixture
def fake_scheduler(fake_clock: Any) -> Any:
    from batchhub_fake import FakeScheduler

    return FakeScheduler(seed=0, clock=fake_clock)


@pytest.fixture
def fake_runner(fake_scheduler: Any) -> Any:
    from batchhub_fake import FakeRunner

    return FakeRunner(fake_scheduler)


@pytest.fixture
def fake_cluster(fake_clock: Any, fake_scheduler: Any, fake_runner: Any) -> FakeCluster:
    from batchhub_fake import FakeBackend

    return FakeCluster(fake_clock, fake_scheduler, fake_runner, FakeBackend())
