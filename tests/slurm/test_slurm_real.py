"""The Slurm backend against a real Slurm (scripts/slurm-up), as the
ordinary user alice, through the real command runner and job monitor.

Needs root (to switch to alice, to stop and start slurmctld, and to clean
up); every test cancels its jobs, also when it fails.
"""

from __future__ import annotations

import asyncio
import pwd
import re
import socket
import subprocess
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from batchhub.jobs import (
    CancelOutcome,
    Command,
    CommandResult,
    JobSpec,
    JobState,
    Observation,
    ResourceRequest,
)
from batchhub.monitor import JobMonitor
from batchhub.runner import CommandRunner
from batchhub.template import render_job_script
from batchhub_slurm.backend import SlurmBackend

pytestmark = pytest.mark.slurm

REPO = Path(__file__).resolve().parents[2]
HOST = socket.gethostname().split(".")[0]
USER = "alice"


class CountingRunner:
    """The real runner, counting the programs it runs."""

    def __init__(self) -> None:
        self.inner = CommandRunner(as_user_prefix=["runuser", "-u", "{username}", "--"])
        self.programs: list[str] = []
        self.kinds: list[str] = []

    async def run(self, command: Command) -> CommandResult:
        self.programs.append(Path(command.argv[0]).name)
        self.kinds.append(command.kind)
        return await self.inner.run(command)


@pytest.fixture
def runner(slurm: None) -> CountingRunner:
    return CountingRunner()


Submit = Callable[..., Awaitable[str]]


@pytest.fixture
def submit(runner: CountingRunner, workdir: str, jobs: list[str]) -> Submit:
    async def submit(
        backend: SlurmBackend, shell: str = "sleep 300", server: str = "", **resources: object
    ) -> str:
        spec = JobSpec(
            USER,
            server,
            backend.job_name(USER, server),
            ResourceRequest(**resources),  # type: ignore[arg-type]
            workdir,
            command=("/bin/sh", "-c", shell),
            env={"BATCHHUB_TEST": "1"},
        )
        script = render_job_script(backend, spec)
        result = await runner.run(backend.submit_command(spec, script))
        job_id = backend.parse_submit(result)
        jobs.append(job_id)
        return job_id

    return submit


async def until(
    monitor: JobMonitor, job_id: str, check: Callable[[Observation], bool], timeout: float = 30
) -> Observation:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await monitor.tick()
        obs = monitor.observation(job_id)
        if obs is not None and check(obs):
            return obs
        await asyncio.sleep(0.3)
    raise AssertionError(f"job {job_id} never got there; last seen {monitor.observation(job_id)}")


async def test_gpu_job_runs_with_its_gpu_then_is_cancelled_and_gone(
    runner: CountingRunner, submit: Submit, workdir: str
) -> None:
    backend = SlurmBackend()
    monitor = JobMonitor(backend, runner)
    job_id = await submit(backend, "env; sleep 300", server="gpu", cores=2, memory_mb=1024, gpus=1)
    monitor.track(job_id, USER)

    running = await until(monitor, job_id, lambda obs: obs.state is JobState.RUNNING)
    assert running.host == HOST

    output = Path(workdir, "job.out")
    deadline = time.monotonic() + 15
    while "CUDA_VISIBLE_DEVICES=" not in (output.read_text() if output.exists() else ""):
        assert time.monotonic() < deadline, "the job never wrote its environment"
        await asyncio.sleep(0.2)
    env = dict(line.split("=", 1) for line in output.read_text().splitlines() if "=" in line)
    assert env["CUDA_VISIBLE_DEVICES"] in ("0", "1")
    assert env["SLURM_CPUS_PER_TASK"] == "2"
    assert env["BATCHHUB_TEST"] == "1", "the script's own variables arrive"
    assert "PYTEST_CURRENT_TEST" not in env, "nothing of the hub's environment leaks in"
    assert env["USER"] == USER and output.stat().st_uid == pwd.getpwnam(USER).pw_uid

    cancel = await runner.run(backend.cancel_command([job_id], USER))
    assert backend.parse_cancel(cancel, [job_id]) == {job_id: CancelOutcome.REQUESTED}
    monitor.expect_gone(job_id)
    gone = await until(monitor, job_id, lambda obs: obs.state.terminal)
    assert gone.state is JobState.CANCELLED

    again = await runner.run(backend.cancel_command([job_id], USER))
    assert backend.parse_cancel(again, [job_id]) == {job_id: CancelOutcome.ALREADY_GONE}


async def test_unsatisfiable_job_waits_and_says_why(runner: CountingRunner, submit: Submit) -> None:
    backend = SlurmBackend()
    monitor = JobMonitor(backend, runner)
    job_id = await submit(backend, cores=64)
    monitor.track(job_id, USER)
    obs = await until(monitor, job_id, lambda obs: bool(obs.reason))
    assert obs.state is JobState.PENDING
    assert "no node in the partition has that many cores" in obs.reason
    print(f"job {job_id}: {obs.native_state}: {obs.reason}")


async def test_a_job_held_by_its_owner_is_held(runner: CountingRunner, submit: Submit) -> None:
    backend = SlurmBackend(extra_directives=["--begin=now+3600"])  # stays queued
    monitor = JobMonitor(backend, runner)
    job_id = await submit(backend)
    monitor.track(job_id, USER)
    await until(monitor, job_id, lambda obs: obs.state is JobState.PENDING)
    held = await runner.run(Command(("scontrol", "hold", job_id), as_user=USER))
    assert held.ok, held.describe()
    obs = await until(monitor, job_id, lambda obs: obs.state is JobState.HELD)
    assert obs.reason.startswith("Held by its owner")  # the monitor's plain words


async def test_expected_start_of_a_job_queued_behind_another(runner: CountingRunner, submit: Submit) -> None:
    """A job filling the node's CPUs, then ours behind it: Slurm's backfill
    pass estimates our start (its first pass may take 30 s), and the monitor
    fetches it in its batched start-time query."""
    whole = SlurmBackend(extra_directives=["--cpus-per-task=4", "--time=5"])
    first = await submit(whole)
    monitor = JobMonitor(SlurmBackend(), runner, fast_interval=1.0, start_interval=2.0)
    second = await submit(SlurmBackend(extra_directives=["--time=2"]))
    monitor.track(first, USER)
    monitor.track(second, USER)
    await until(monitor, second, lambda obs: obs.state is JobState.PENDING)
    deadline = time.monotonic() + 90
    while monitor.expected_start(second) is None and time.monotonic() < deadline:
        await asyncio.sleep(2)
        await monitor.tick()
    start = monitor.expected_start(second)
    assert start is not None, "no expected start reached the monitor"
    assert start.tzinfo is not None and start.timestamp() > time.time() - 60
    assert monitor.expected_start(first) is None  # running: no estimate
    assert monitor.observation(second).reason.startswith("Waiting for resources")


def restart_slurmctld() -> None:
    subprocess.run([str(REPO / "scripts" / "slurm-up"), "restart-slurmctld"], check=True, timeout=60)


async def test_controller_restart_during_monitoring_ends_nothing(
    runner: CountingRunner, submit: Submit
) -> None:
    backend = SlurmBackend(command_timeout=10)
    seen: list[Observation] = []
    monitor = JobMonitor(backend, runner, interval=1.0, fast_interval=0.3, max_backoff=1.0)
    running_id = await submit(backend, server="a")
    queued_id = await submit(SlurmBackend(extra_directives=["--begin=now+3600"]), server="b")
    for job_id in (running_id, queued_id):
        monitor.track(job_id, USER, seen.append)
    await until(monitor, running_id, lambda obs: obs.state is JobState.RUNNING)
    await until(monitor, queued_id, lambda obs: obs.state is JobState.PENDING)

    monitor.start()
    try:
        stopped = subprocess.run(["scontrol", "shutdown", "slurmctld"], capture_output=True, timeout=30)
        assert stopped.returncode == 0, stopped.stderr
        deadline = time.monotonic() + 20
        while monitor.failures < 2:
            assert time.monotonic() < deadline, "the monitor never noticed the controller was down"
            await asyncio.sleep(0.2)
        print(f"while down: {monitor.failures} failed queries, last error: {monitor.last_error}")
        assert "Unable to contact slurm controller" in monitor.last_error
    finally:
        restart_slurmctld()
    try:
        deadline = time.monotonic() + 30
        while monitor.failures:
            assert time.monotonic() < deadline, f"monitoring did not recover: {monitor.last_error}"
            await asyncio.sleep(0.2)
    finally:
        await monitor.stop()
    assert not any(obs.state.terminal for obs in seen), f"a down controller ended a job: {seen}"
    assert monitor.observation(running_id).state is JobState.RUNNING
    assert monitor.observation(queued_id).state is JobState.PENDING


def sdiag_rpcs() -> int:
    """The controller's total RPC count by message type (sdiag)."""
    out = subprocess.run(["sdiag"], capture_output=True, text=True, timeout=30, check=True).stdout
    by_type = out.split("Remote Procedure Call statistics by message type", 1)[1]
    by_type = by_type.split("Remote Procedure Call statistics by user", 1)[0]
    return sum(int(n) for n in re.findall(r"count:(\d+)", by_type))


async def test_fifty_jobs_cost_one_squeue_per_tick(runner: CountingRunner, submit: Submit) -> None:
    backend = SlurmBackend(extra_directives=["--hold"])  # cheap: none of them runs
    ids = await asyncio.gather(*(submit(backend, server=f"s{n}") for n in range(50)))
    monitor = JobMonitor(backend, runner)
    for job_id in ids:
        monitor.track(job_id, USER)

    ticks = 5
    runner.programs.clear()
    runner.kinds.clear()
    before = sdiag_rpcs()
    for _ in range(ticks):
        await monitor.tick()
    after = sdiag_rpcs()

    # one status query per tick; the jobs are awaited (tracked as starting),
    # so the expected starts are asked too, once for all and not every tick
    assert runner.kinds.count("status") == ticks, runner.kinds
    assert runner.kinds.count("start") <= 1, runner.kinds
    assert set(runner.programs) == {"squeue"}, runner.programs
    assert all(monitor.observation(job_id).state is JobState.HELD for job_id in ids)
    # sdiag's own call counts too; other clients of this controller may add a few.
    rpcs = after - before
    print(f"{ticks} ticks over 50 jobs: {rpcs} controller RPCs ({rpcs / ticks:.1f} per tick)")
    assert rpcs <= 8 * ticks, "the controller's load grew with the number of jobs, not ticks"
