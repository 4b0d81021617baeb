"""What JupyterHub's own polling costs a real Grid Engine and a real Slurm.

50 real jobs (as alice and bob; most wait, since this is one small node),
50 spawners holding their saved state as after a hub restart, one
concurrent first poll, then JupyterHub's ``start_polling()`` at a 1 s
interval for 5 s: the scheduler is asked at most once per interval (plus
the first poll), and no living job is declared stopped."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pytest
from traitlets.config import Config

from batchhub.runner import CommandRunner
from batchhub.testing import missing
from batchhub.testing.polling import (
    CountingRunner,
    adopted_spawners,
    first_poll,
    poll_for,
    shared_runner,
    stop_monitors,
)

SGE_ENV = {"SGE_ROOT": "/var/lib/gridengine", "SGE_CELL": "default"}
SGE_BIN = "/usr/lib/gridengine"  # Debian's real binaries, without the wrapper shell
USERS = ("alice", "bob")
TAG = "batchhub-polltest"
N = 50
WINDOW = 5.0


def run(argv: list[str], user: str | None = None) -> subprocess.CompletedProcess[str]:
    prefix = ["runuser", "-u", user, "--"] if user else []
    env = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "LANG": "C.UTF-8", **SGE_ENV}
    return subprocess.run([*prefix, *argv], capture_output=True, text=True, env=env, timeout=60, check=False)


SCHEDULERS = {
    "slurm": {
        "submit": ["sbatch", "--parsable", "-J", TAG, "-o", "/dev/null", "--wrap", "sleep 600"],
        "cancel": lambda ids: run(["scancel", *ids]),
        "status_program": "squeue",
        "alive": ["scontrol", "ping"],
    },
    "sge": {
        "submit": [
            f"{SGE_BIN}/qsub",
            "-terse",
            "-b",
            "y",
            "-N",
            TAG,
            "-o",
            "/dev/null",
            "-j",
            "y",
            "sleep",
            "600",
        ],
        "cancel": lambda ids: run([f"{SGE_BIN}/qdel", "-f", ",".join(ids)]),
        "status_program": "qstat",
        "alive": [f"{SGE_BIN}/qstat", "-u", "*"],
    },
}


@pytest.fixture(params=["slurm", "sge"])
def scheduler(request: pytest.FixtureRequest) -> Iterator[str]:
    name = request.param
    request.applymarker(getattr(pytest.mark, name))
    spec = SCHEDULERS[name]
    try:
        answers = os.geteuid() == 0 and run(spec["alive"]).returncode == 0
    except OSError:
        answers = False
    if not answers:
        missing(f"a running {name} and root (scripts/{name}-up)")
    yield name


@pytest.fixture
def jobs(scheduler: str) -> Iterator[list[tuple[str, str]]]:
    spec = SCHEDULERS[scheduler]
    submitted: list[tuple[str, str]] = []
    try:
        for i in range(N):
            user = USERS[i % len(USERS)]
            done = run(spec["submit"], user)
            assert done.returncode == 0, done.stderr
            submitted.append((user, done.stdout.strip().split(";")[0]))
        yield submitted
    finally:
        if submitted:
            spec["cancel"]([job_id for _, job_id in submitted])


def config(scheduler: str) -> Config:
    c = Config()
    c.BatchSpawner.backend = scheduler
    c.BatchSpawner.poll_interval = 1
    c.JobMonitor.interval = 1
    c.SGEBackend.programs = {"qstat": f"{SGE_BIN}/qstat"}
    c.SGEBackend.command_env = SGE_ENV
    return c


async def test_real_scheduler_is_asked_once_per_interval(scheduler: str, jobs: list[tuple[str, str]]) -> None:
    runner = CountingRunner(CommandRunner(as_user_prefix=["runuser", "-u", "{username}", "--"]))
    program = SCHEDULERS[scheduler]["status_program"]
    with shared_runner(runner):
        spawners = adopted_spawners(config(scheduler), jobs)
        statuses = await first_poll(spawners)
        assert statuses == [None] * N, "a living job was declared stopped"
        assert runner.counts[program] == 1, runner.counts
        stopped = await poll_for(spawners, WINDOW)
        await stop_monitors()
    assert stopped == [], "a living job was declared stopped"
    assert runner.counts[program] <= WINDOW + 1, runner.counts
    assert sum(runner.counts.values()) == runner.counts[program], f"other commands ran: {runner.counts}"
