"""Fixtures for tests against a real JupyterHub process with the real proxy."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from batchhub.testing import missing
from batchhub.testing.hub import RealHub, hub_prerequisites, shared_state_dir
from batchhub.testing.jobs import scheduler_problem


def _state_dir() -> Iterator[Path]:
    path = shared_state_dir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


def start_hub(backend: str, extra_config: str = "") -> Iterator[RealHub]:
    problem = hub_prerequisites() or scheduler_problem(backend)
    if problem:
        missing(problem)
    for state in _state_dir():
        hub = RealHub(state, backend=backend, extra_config=extra_config)
        hub.start()
        try:
            yield hub
        finally:
            for user in ("alice", "bob"):  # never leave a job behind
                try:
                    if hub.proc and hub.proc.poll() is None and hub.server(user) is not None:
                        hub.api("DELETE", f"users/{user}/server")
                        hub.wait_stopped(user)
                except Exception:
                    pass
            hub.stop()


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
