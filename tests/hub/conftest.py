"""Fixtures for tests against a real JupyterHub process with the real proxy."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from batchhub.testing.hub import RealHub, running_hub


def start_hub(backend: str, extra_config: str = "") -> Iterator[RealHub]:
    yield from running_hub(backend, extra_config)


#: Runs as bob fail before the server starts: the failure path, for real.
BOB_FAILS = (
    "c.BatchSpawner.job_prologue = "
    '\'if [ "$JUPYTERHUB_USER" = bob ]; then echo "bob has no licence for this queue" >&2; exit 3; fi\'\n'
)


@pytest.fixture(scope="module")
def fake_hub() -> Iterator[RealHub]:
    """A hub on the fake backend in local mode: jobs are local processes."""
    yield from start_hub("fake", BOB_FAILS)


@pytest.fixture(scope="module")
def slow_hub() -> Iterator[RealHub]:
    """A hub whose jobs run but whose servers take 40 s to start: a spawn
    stays half-way long enough to crash the hub during it."""
    yield from start_hub("fake", "c.BatchSpawner.job_prologue = 'sleep 40'\n")


#: bob's servers never get past the job's prologue: his spawn stays pending.
BOB_WAITS = "c.BatchSpawner.job_prologue = 'if [ \"$JUPYTERHUB_USER\" = bob ]; then sleep 600; fi'\n"


@pytest.fixture(scope="module")
def waiting_hub() -> Iterator[RealHub]:
    """A hub where bob's spawns stay pending; the monitor ticks every 0.5 s,
    so its loop is mid-sleep or mid-tick whenever the hub is stopped."""
    yield from start_hub("fake", BOB_WAITS + "c.JobMonitor.interval = 0.5\n")


@pytest.fixture(scope="module", params=["fake", "sge", "slurm"])
def scheduler_hub(request: pytest.FixtureRequest) -> Iterator[RealHub]:
    """A hub on each scheduler: the local fake (quick, always there), then real SGE and Slurm."""
    yield from start_hub(request.param)


@pytest.fixture
def jobs_before(scheduler_hub: RealHub) -> set[str]:
    return scheduler_hub.live_jobs()
