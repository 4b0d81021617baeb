"""The Grid Engine backend against a real Son of Grid Engine (scripts/sge-up).

Jobs are submitted and cancelled as the ordinary user alice through the
command runner's as-user prefix; status queries run as the hub would, all
through the shared JobMonitor. Every test deletes its jobs, even on failure.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
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
from batchhub.testing import missing
from batchhub.testing.jobs import private_workdir
from batchhub_sge.backend import SGEBackend

pytestmark = pytest.mark.sge

REPO = Path(__file__).resolve().parents[2]
SGE_ENV = {"SGE_ROOT": "/var/lib/gridengine", "SGE_CELL": "default"}
REAL_BIN = Path("/usr/lib/gridengine")  # Debian's real binaries: no wrapper shell per call
USER = "alice"
HOST = socket.gethostname().split(".")[0]


def sge(*argv: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    """Run a Grid Engine command directly as this (root) process."""
    env = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "LANG": "C.UTF-8", **SGE_ENV}
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout, check=False)


def qmaster_answers() -> bool:
    return shutil.which("qstat") is not None and sge("qstat", "-u", "*").returncode == 0


@pytest.fixture(scope="module", autouse=True)
def real_sge() -> None:
    if os.geteuid() != 0 or not qmaster_answers():
        missing("Son of Grid Engine (run scripts/sge-up as root)")


class CountingRunner:
    """The real runner, recording every command it ran."""

    def __init__(self, runner: CommandRunner) -> None:
        self.runner = runner
        self.commands: list[Command] = []

    async def run(self, command: Command) -> CommandResult:
        self.commands.append(command)
        return await self.runner.run(command)

    def count(self, predicate: Callable[[tuple[str, ...]], bool]) -> int:
        return sum(1 for c in self.commands if predicate(c.argv))


def binary(name: str) -> str:
    real = REAL_BIN / name
    return str(real) if real.exists() else name


@pytest.fixture
def backend() -> SGEBackend:
    return SGEBackend(
        programs={name: binary(name) for name in ("qsub", "qstat", "qdel")},
        command_env=SGE_ENV,
        command_timeout=20,
    )


@pytest.fixture
def runner() -> CountingRunner:
    return CountingRunner(CommandRunner(as_user_prefix=["runuser", "-u", "{username}", "--"], env=SGE_ENV))


@pytest.fixture
def workdir() -> Iterator[str]:
    with private_workdir(USER, "batchhub-sge-test-") as path:
        yield path


@pytest.fixture
async def submitted() -> AsyncIterator[list[str]]:
    """Ids of the test's jobs: deleted (as root, forced) whatever happens."""
    ids: list[str] = []
    yield ids
    if ids:
        sge("qdel", "-f", ",".join(ids))


@pytest.fixture
def submit(
    backend: SGEBackend, runner: CountingRunner, workdir: str, submitted: list[str]
) -> Callable[..., object]:
    async def submit_job(name: str = "", **resources: object) -> str:
        spec = JobSpec(
            username=USER,
            server_name=name,
            job_name=backend.job_name(USER, name),
            resources=ResourceRequest(**resources),  # type: ignore[arg-type]
            workdir=workdir,
        )
        script = "#!/bin/bash\n" + "\n".join(backend.directives(spec)) + "\nsleep 600\n"
        job_id = backend.parse_submit(await runner.run(backend.submit_command(spec, script)))
        submitted.append(job_id)
        return job_id

    return submit_job


async def until(
    monitor: JobMonitor, job_id: str, check: Callable[[Observation], bool], timeout: float = 30
) -> list[Observation]:
    """Tick until the job's observation passes ``check``; every observation seen."""
    seen: list[Observation] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await monitor.tick()
        obs = monitor.observation(job_id)
        if obs is not None and (not seen or seen[-1] != obs):
            seen.append(obs)
        if obs is not None and check(obs):
            return seen
        await asyncio.sleep(0.3)
    pytest.fail(f"job {job_id}: no matching state within {timeout} s; seen {seen}")


def live_ids() -> set[str]:
    out = sge("qstat", "-u", "*").stdout
    return {line.split()[0] for line in out.splitlines() if line.split() and line.split()[0].isdigit()}


async def test_a_job_with_cores_memory_and_a_gpu_runs_on_its_host_and_is_cancelled(
    backend: SGEBackend, runner: CountingRunner, submit: Callable[..., object]
) -> None:
    job_id = await submit(cores=2, memory_mb=1024, gpus=1, runtime_s=600)  # type: ignore[misc]
    details = sge("qstat", "-j", job_id).stdout
    assert "rmem=512M" in details  # 1 GB over 2 slots
    assert "gpu=1" in details  # one GPU for the job, not per slot
    assert "parallel environment:  smp range: 2" in details

    monitor = JobMonitor(backend, runner, fast_interval=0.3)
    monitor.track(job_id, USER)
    seen = await until(monitor, job_id, lambda o: o.state is JobState.RUNNING)
    assert all(o.state in (JobState.PENDING, JobState.STARTING, JobState.RUNNING) for o in seen)
    assert seen[-1].host == HOST

    result = await runner.run(backend.cancel_command([job_id], USER))
    assert backend.parse_cancel(result, [job_id]) == {job_id: CancelOutcome.REQUESTED}
    monitor.expect_gone(job_id)
    seen = await until(monitor, job_id, lambda o: o.state.terminal, timeout=20)
    assert seen[-1].state in (JobState.CANCELLED, JobState.COMPLETED)
    assert job_id not in live_ids()
    # cancelling again is harmless: the job is already gone
    again = await runner.run(backend.cancel_command([job_id], USER))
    assert backend.parse_cancel(again, [job_id]) == {job_id: CancelOutcome.ALREADY_GONE}


async def test_a_job_bigger_than_the_cluster_waits_with_the_schedulers_reason(
    backend: SGEBackend, runner: CountingRunner, submit: Callable[..., object]
) -> None:
    job_id = await submit("big", gpus=3)  # type: ignore[misc]
    monitor = JobMonitor(backend, runner)
    monitor.track(job_id, USER)  # someone waits on it: reasons are fetched
    seen = await until(monitor, job_id, lambda o: "gpu" in o.reason, timeout=20)
    assert seen[-1].state is JobState.PENDING
    # Grid Engine's "(-l gpu=3) cannot run at host ... offers only hc:gpu=2.000000", in plain words
    assert seen[-1].reason.startswith("Waiting for resources"), seen[-1].reason
    assert "it asks for gpu=3; gpu=2 is free now" in seen[-1].reason, seen[-1].reason


@pytest.fixture
def overloaded_queue() -> Iterator[str]:
    """A queue on this host that Grid Engine always finds overloaded: its
    load threshold (np_load_avg=0) is below any load the host reports."""
    name = "busy.q"
    definition = sge("qconf", "-sq", "all.q").stdout
    assert definition, "all.q is scripts/sge-up's queue"
    lines = []
    for line in definition.splitlines():
        key = line.split(maxsplit=1)[0] if line.strip() else ""
        replaced = {"qname": name, "load_thresholds": "np_load_avg=0.0", "slots": "1", "pe_list": "NONE"}
        lines.append(f"{key} {replaced[key]}" if key in replaced else line)
    with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as f:
        f.write("\n".join(lines) + "\n")
    try:
        sge("qconf", "-dq", name)  # left by an interrupted run
        added = sge("qconf", "-Aq", f.name)
        assert added.returncode == 0, added
        yield name
    finally:
        os.unlink(f.name)
        sge("qconf", "-dq", name)


async def test_an_overloaded_queue_is_the_cluster_is_busy(
    backend: SGEBackend, runner: CountingRunner, submit: Callable[..., object], overloaded_queue: str
) -> None:
    job_id = await submit("busy", queue=overloaded_queue)  # type: ignore[misc]
    monitor = JobMonitor(backend, runner)
    monitor.track(job_id, USER)
    seen = await until(monitor, job_id, lambda o: "busy" in o.reason, timeout=60)
    assert seen[-1].state is JobState.PENDING
    # Grid Engine's 'queue instance "busy.q@vm" dropped because it is overloaded: np_load_avg=...'
    assert seen[-1].reason.startswith("The cluster is busy: every queue that fits your request"), seen[-1]


async def test_a_held_job_is_held(
    backend: SGEBackend, runner: CountingRunner, submit: Callable[..., object]
) -> None:
    job_id = await submit("held", gpus=3)  # type: ignore[misc]  # cannot start before the hold
    hold = await runner.run(Command((binary("qhold"), job_id), as_user=USER, env=SGE_ENV))
    assert hold.ok, hold.describe()
    monitor = JobMonitor(backend, runner)
    monitor.track(job_id, USER)
    seen = await until(monitor, job_id, lambda o: o.state is JobState.HELD, timeout=15)
    assert seen[-1].native_state.startswith("h")


async def test_a_job_grid_engine_cannot_start_fails_with_its_error(
    runner: CountingRunner, submit: Callable[..., object], backend: SGEBackend
) -> None:
    backend.shell = "/nonexistent/shell"  # Grid Engine puts the job in Eqw
    job_id = await submit("broken")  # type: ignore[misc]
    monitor = JobMonitor(backend, runner)
    monitor.track(job_id, USER)
    seen = await until(monitor, job_id, lambda o: o.state.terminal, timeout=20)
    assert seen[-1].state is JobState.FAILED and seen[-1].native_state == "Eqw"
    assert 'unable to find shell "/nonexistent/shell"' in seen[-1].reason


def qmaster_alive() -> bool:
    out = subprocess.run(["ps", "-C", "sge_qmaster", "-o", "stat="], capture_output=True, text=True).stdout
    return any(stat.strip() and not stat.startswith("Z") for stat in out.splitlines())


async def test_a_qmaster_restart_never_ends_a_job_and_monitoring_recovers(
    backend: SGEBackend, runner: CountingRunner, submit: Callable[..., object]
) -> None:
    job_id = await submit("restart")  # type: ignore[misc]
    monitor = JobMonitor(backend, runner)
    monitor.track(job_id, USER)
    await until(monitor, job_id, lambda o: o.state is JobState.RUNNING)
    try:
        assert sge("qconf", "-km").returncode == 0
        deadline = time.monotonic() + 30
        while (qmaster_alive() or monitor.failures == 0) and time.monotonic() < deadline:
            await monitor.tick()
            obs = monitor.observation(job_id)
            assert obs is not None and not obs.state.terminal, obs
            await asyncio.sleep(0.3)
        assert monitor.failures > 0, "queries against a stopped qmaster must fail"
        assert monitor.observation(job_id).state is JobState.RUNNING  # type: ignore[union-attr]
    finally:
        up = subprocess.run(
            [str(REPO / "scripts" / "sge-up"), "restart-qmaster"], capture_output=True, text=True
        )
        assert up.returncode == 0, up.stderr
    seen = await until(monitor, job_id, lambda o: monitor.failures == 0, timeout=20)
    assert not any(o.state.terminal for o in seen)
    assert monitor.observation(job_id).state is JobState.RUNNING  # type: ignore[union-attr]


async def test_fifty_tracked_jobs_cost_one_qstat_per_tick(
    backend: SGEBackend, runner: CountingRunner, submit: Callable[..., object]
) -> None:
    ids = await asyncio.gather(*(submit(f"many{n}", gpus=3) for n in range(50)))  # type: ignore[misc]
    assert len(set(ids)) == 50
    monitor = JobMonitor(backend, runner)
    for job_id in ids:
        monitor.track(job_id, USER, starting=False)
    runner.commands.clear()
    for _ in range(3):
        await monitor.tick()
    assert runner.count(lambda argv: argv[0].endswith("qstat")) == 3
    assert runner.count(lambda argv: True) == 3  # and nothing else
    assert {monitor.observation(i).state for i in ids} == {JobState.PENDING}  # type: ignore[union-attr]
