"""JobController against the fake scheduler on virtual time: one server's
job from submission to stop, and across a hub restart."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timezone

import pytest

from batchhub.controller import JobController, SpawnFailed, describe_duration
from batchhub.jobs import Command, CommandResult, JobSpec, JobState, ResourceRequest
from batchhub.lifecycle import Phase
from batchhub.monitor import JobMonitor
from batchhub_fake import FakeBackend, FakeClock, FakeRunner, FakeScheduler
from batchhub_fake.faults import Fault

HOST = "fake-node-1"


class GatedRunner(FakeRunner):
    """Holds submit commands at a gate, so a test can act while one is in flight."""

    def __init__(self, scheduler: FakeScheduler) -> None:
        super().__init__(scheduler)
        self.gate = asyncio.Event()
        self.gate.set()
        self.entered = asyncio.Event()

    async def run(self, command: Command) -> CommandResult:
        if "fake-submit" in command.argv:
            self.entered.set()
            await self.gate.wait()
        return await super().run(command)


class Cluster:
    """A fake cluster and everything one hub process needs to drive it."""

    def __init__(self, sched: FakeScheduler | None = None) -> None:
        self.clock = sched.clock if sched else FakeClock()
        self.sched = sched or FakeScheduler(clock=self.clock, queue_delay=2.0, start_delay=3.0)
        self.runner = GatedRunner(self.sched)
        self.backend = FakeBackend()
        self.monitor = JobMonitor(self.backend, self.runner, interval=0.05, fast_interval=0.01, jitter=0)

    def controller(self, username: str = "alice") -> JobController:
        return JobController(self.backend, self.runner, self.monitor, username=username)

    def spec(self, username: str = "alice", cores: int = 1) -> tuple[JobSpec, str]:
        spec = JobSpec(
            username=username,
            server_name="",
            job_name=self.backend.job_name(username, ""),
            resources=ResourceRequest(cores=cores),
            workdir=f"/tmp/batchhub-test/{username}",
        )
        script = "#!/bin/sh\n" + "\n".join(self.backend.directives(spec)) + "\nexec jupyterhub-singleuser\n"
        return spec, script

    async def submit(self, ctrl: JobController, **kw: object) -> str:
        return await ctrl.submit(*self.spec(ctrl.username, **kw))  # type: ignore[arg-type]

    async def after(self, seconds: float) -> None:
        """Let scheduler time pass, then let the monitor look."""
        self.clock.advance(seconds)
        await self.monitor.tick()

    def live(self) -> list[str]:
        return [job.job_id for job in self.sched.live_jobs()]


@pytest.fixture
def cluster() -> Cluster:
    return Cluster()


async def ready(cluster: Cluster, ctrl: JobController, port: int = 8888) -> str:
    job_id = await cluster.submit(ctrl)
    await cluster.after(6)  # queued 2 s, starting 3 s: running
    assert ctrl.report_port(port)
    assert ctrl.outcome() == (HOST, port)
    return job_id


# --- submit ------------------------------------------------------------------


async def test_submit_tracks_the_job(cluster: Cluster) -> None:
    ctrl = cluster.controller()
    job_id = await cluster.submit(ctrl)
    assert cluster.live() == [job_id]
    assert cluster.sched.jobs[job_id].owner == "alice"  # submitted as the user
    assert job_id in cluster.monitor.jobs
    assert ctrl.lifecycle.phase is Phase.QUEUED
    assert ctrl.outcome() is None  # still starting
    await cluster.after(0)
    assert cluster.monitor.observation(job_id).state is JobState.PENDING


async def test_a_refused_job_fails_with_the_schedulers_message(cluster: Cluster) -> None:
    ctrl = cluster.controller()
    with pytest.raises(SpawnFailed, match="requested 8 cores but the fake cluster has 4"):
        await cluster.submit(ctrl, cores=8)
    assert cluster.sched.jobs == {}
    assert cluster.monitor.jobs == {}
    assert ctrl.lifecycle.phase is Phase.FAILED
    with pytest.raises(SpawnFailed, match="requested 8 cores"):
        ctrl.outcome()


async def test_a_scheduler_that_is_down_fails_the_submission_cleanly(cluster: Cluster) -> None:
    cluster.sched.faults.force(Fault.SUBMIT_FAIL)
    ctrl = cluster.controller()
    with pytest.raises(SpawnFailed, match="not accepting jobs"):
        await cluster.submit(ctrl)
    assert cluster.live() == [] and cluster.monitor.jobs == {}


async def test_stop_during_submission_cancels_the_job_that_results(cluster: Cluster) -> None:
    ctrl = cluster.controller()
    cluster.runner.gate.clear()
    submitting = asyncio.ensure_future(cluster.submit(ctrl))
    await cluster.runner.entered.wait()
    stopping = asyncio.ensure_future(ctrl.request_stop("user pressed stop"))
    await asyncio.sleep(0.01)
    cluster.runner.gate.set()  # the scheduler accepts the job now
    job_id = await submitting
    await stopping
    assert cluster.runner.counts["cancel"] == 1
    assert cluster.live() == []
    assert cluster.sched.jobs[job_id].state is JobState.CANCELLED
    await cluster.after(0)
    assert ctrl.lifecycle.phase is Phase.STOPPED
    assert cluster.monitor.jobs == {}  # nothing left to watch
    with pytest.raises(SpawnFailed):
        ctrl.outcome()


async def test_a_job_that_dies_while_queued_fails_the_spawn_promptly(cluster: Cluster) -> None:
    ctrl = cluster.controller()
    job_id = await cluster.submit(ctrl)
    waiting = asyncio.ensure_future(ctrl.wait_ready(timeout=60))
    await asyncio.sleep(0)
    cluster.sched.kill(job_id, "out of memory")
    await cluster.after(0)
    with pytest.raises(SpawnFailed, match="out of memory"):
        await asyncio.wait_for(waiting, 2)
    assert cluster.monitor.jobs == {}
    assert ctrl.exit_status() == 137


# --- port and ready ------------------------------------------------------------


async def test_a_port_report_is_accepted_once_and_only_while_waiting(cluster: Cluster) -> None:
    ctrl = cluster.controller()
    assert not ctrl.report_port(8888)  # nothing is starting
    await cluster.submit(ctrl)
    assert ctrl.report_port(8888)
    assert not ctrl.report_port(9999)  # a second report changes nothing
    await cluster.after(6)
    assert ctrl.outcome() == (HOST, 8888)
    assert not ctrl.report_port(9999)  # after ready
    await ctrl.request_stop()
    assert not ctrl.report_port(9999)  # after stop


async def test_ready_needs_host_port_and_a_running_job(cluster: Cluster) -> None:
    ctrl = cluster.controller()
    job_id = await cluster.submit(ctrl)
    await cluster.after(2.5)  # started on a node, not yet running
    assert cluster.monitor.observation(job_id).state is JobState.STARTING
    assert ctrl.lifecycle.host == HOST
    assert ctrl.report_port(8888)
    assert ctrl.outcome() is None  # has host and port, but the job is not RUNNING
    await cluster.after(3)
    assert ctrl.outcome() == (HOST, 8888)


async def test_once_ready_the_monitor_slows_down_for_this_job(cluster: Cluster) -> None:
    # the usual order: the scheduler says running, then the server reports its port
    ctrl = cluster.controller()
    job_id = await cluster.submit(ctrl)
    await cluster.after(6)
    assert cluster.monitor.jobs[job_id].starting
    assert ctrl.report_port(8888)
    assert ctrl.outcome() == (HOST, 8888)
    assert not cluster.monitor.jobs[job_id].starting
    assert cluster.monitor.next_delay() == cluster.monitor.interval


async def test_wait_ready_returns_host_and_port(cluster: Cluster) -> None:
    ctrl = cluster.controller()
    await cluster.submit(ctrl)
    waiting = asyncio.ensure_future(ctrl.wait_ready(timeout=60))
    await cluster.after(6)
    ctrl.report_port(8765)
    assert await asyncio.wait_for(waiting, 2) == (HOST, 8765)


async def test_wait_ready_times_out_and_cancels_the_job(cluster: Cluster) -> None:
    cluster.monitor.start()
    try:
        ctrl = cluster.controller()
        job_id = await cluster.submit(ctrl)
        with pytest.raises(
            SpawnFailed, match=r"^Still queued after \d+ s: .+; the job was cancelled\."
        ) as err:
            await ctrl.wait_ready(timeout=0.2)
        assert "Try again later" in str(err.value)
        assert cluster.sched.jobs[job_id].state is JobState.CANCELLED  # no orphan
        await ctrl.stop(5)
        assert ctrl.lifecycle.phase is Phase.STOPPED
    finally:
        await cluster.monitor.stop()


async def test_timeout_in_starting_says_where_the_job_ran(cluster: Cluster) -> None:
    ctrl = cluster.controller()
    job_id = await cluster.submit(ctrl)
    await cluster.after(2.5)  # running on the node, no port yet
    with pytest.raises(SpawnFailed, match=rf"started on {HOST}, but its server did not answer"):
        await ctrl.wait_ready(timeout=0)
    assert cluster.sched.jobs[job_id].state in (JobState.CANCELLED, JobState.STOPPING)


async def test_queue_status_says_how_long_why_and_when(cluster: Cluster) -> None:
    now = [1000.0]
    ctrl = JobController(
        cluster.backend, cluster.runner, cluster.monitor, username="alice", clock=lambda: now[0]
    )
    assert ctrl.queue_status() == ""
    job_id = await cluster.submit(ctrl)
    await cluster.monitor.tick()
    now[0] += 190
    assert ctrl.queue_status().startswith(f"Job {job_id} queued for 3 min 10 s")
    start = datetime.fromtimestamp(now[0] + 12 * 60, timezone.utc)
    cluster.monitor.jobs[job_id].expected_start = start
    line = ctrl.queue_status()
    assert line.endswith(f"; expected to start at {start.astimezone().strftime('%H:%M')} (in 12 min)"), line
    await cluster.after(2.5)  # running: no queue line
    assert ctrl.queue_status() == ""


@pytest.mark.parametrize(
    ("seconds", "words"),
    [(0, "0 s"), (45, "45 s"), (60, "1 min"), (190, "3 min 10 s"), (3600, "1 h"), (3900, "1 h 5 min")],
)
def test_describe_duration(seconds: float, words: str) -> None:
    assert describe_duration(seconds) == words


# --- stop ------------------------------------------------------------------------


async def reach(phase: str, cluster: Cluster, ctrl: JobController) -> None:
    if phase == "idle":
        return
    if phase == "rejected":
        with pytest.raises(SpawnFailed):
            await cluster.submit(ctrl, cores=99)
        return
    await cluster.submit(ctrl)
    if phase == "starting":
        await cluster.after(2.5)
    elif phase == "ready":
        await cluster.after(6)
        ctrl.report_port(8888)
    elif phase == "ended":
        await cluster.after(6)
        cluster.sched.finish(ctrl.lifecycle.job_id)
        await cluster.after(0)
    elif phase == "stopping":
        cluster.sched.stop_delay = 5.0
        await cluster.after(6)
        await ctrl.request_stop()


PHASES = {
    "idle": Phase.IDLE,
    "rejected": Phase.FAILED,
    "queued": Phase.QUEUED,
    "starting": Phase.STARTING,
    "ready": Phase.READY,
    "ended": Phase.FAILED,
    "stopping": Phase.STOPPING,
}


@pytest.mark.parametrize("phase", PHASES)
async def test_stop_is_idempotent_from_every_phase(cluster: Cluster, phase: str) -> None:
    ctrl = cluster.controller()
    await reach(phase, cluster, ctrl)
    assert ctrl.lifecycle.phase is PHASES[phase]
    cancels = cluster.runner.counts["cancel"]
    await ctrl.request_stop()
    await ctrl.request_stop()
    assert cluster.runner.counts["cancel"] - cancels <= 1  # at most one cancel per stop
    await cluster.after(10)
    await ctrl.request_stop()
    assert ctrl.lifecycle.phase.finished
    assert cluster.live() == []
    assert cluster.monitor.jobs == {}
    assert await ctrl.poll() is not None


async def test_stop_waits_until_the_job_is_gone(cluster: Cluster) -> None:
    cluster.monitor.start()
    try:
        ctrl = cluster.controller()
        await ready(cluster, ctrl)
        await asyncio.wait_for(ctrl.stop(timeout=5), 6)
        assert ctrl.lifecycle.phase is Phase.STOPPED
        assert cluster.live() == []
        await ctrl.stop(timeout=1)  # again: nothing to do
        assert cluster.runner.counts["cancel"] == 1
    finally:
        await cluster.monitor.stop()


async def test_a_failed_cancel_is_retried_until_the_job_is_gone(cluster: Cluster) -> None:
    cluster.monitor.start()
    try:
        ctrl = cluster.controller()
        await ready(cluster, ctrl)
        cluster.sched.faults.force(Fault.CANCEL_FAIL)
        await asyncio.wait_for(ctrl.stop(timeout=5), 6)
        assert cluster.runner.counts["cancel"] == 2
        assert cluster.live() == []
        assert ctrl.lifecycle.phase is Phase.STOPPED
    finally:
        await cluster.monitor.stop()


# --- poll and restart ------------------------------------------------------------


async def test_state_round_trip_re_tracks_a_live_job_without_a_new_submission(cluster: Cluster) -> None:
    ctrl = cluster.controller()
    job_id = await ready(cluster, ctrl)
    state = json.loads(json.dumps(ctrl.get_state()))

    # the hub restarts: a new monitor and controller, the same scheduler
    hub2 = Cluster(cluster.sched)
    ctrl2 = hub2.controller()
    ctrl2.load_state(state)
    assert ctrl2.adopted
    assert ctrl2.outcome() == (HOST, 8888)
    assert job_id in hub2.monitor.jobs
    assert await ctrl2.poll() is None  # asked the scheduler: still running
    assert hub2.runner.counts["status"] == 1 and hub2.runner.counts["submit"] == 0
    assert cluster.live() == [job_id]

    cluster.sched.finish(job_id, exit_code=0)
    await hub2.after(0)
    assert await ctrl2.poll() == 0
    assert hub2.monitor.jobs == {}


async def test_a_restart_never_leaves_two_live_jobs_for_one_server(cluster: Cluster) -> None:
    ctrl = cluster.controller()
    old = await cluster.submit(ctrl)
    hub2 = Cluster(cluster.sched)
    ctrl2 = hub2.controller()
    ctrl2.load_state(ctrl.get_state())
    new = await hub2.submit(ctrl2)  # a fresh start of the same server
    assert new != old
    assert hub2.live() == [new]


async def test_state_of_another_backend_is_ignored(cluster: Cluster) -> None:
    ctrl = cluster.controller()
    ctrl.load_state({"backend": "sge", "phase": "ready", "job_id": "77", "job_state": "RUNNING"})
    assert ctrl.lifecycle.phase is Phase.IDLE and cluster.monitor.jobs == {}
    ctrl.load_state({})
    assert ctrl.lifecycle.phase is Phase.IDLE


async def test_poll_says_running_while_the_scheduler_is_unreachable(cluster: Cluster) -> None:
    ctrl = cluster.controller()
    job_id = await ready(cluster, ctrl)
    cluster.sched.faults.status_fail = 1.0
    cluster.sched.finish(job_id)  # it ended, but nobody can ask
    for _ in range(5):
        await cluster.after(10)
        assert await ctrl.poll() is None
    assert ctrl.lifecycle.phase is Phase.READY
    assert cluster.monitor.failures >= 5

    # after a restart with the scheduler still down: unknown is not stopped
    hub2 = Cluster(cluster.sched)
    ctrl2 = hub2.controller()
    ctrl2.load_state(ctrl.get_state())
    assert await asyncio.wait_for(ctrl2.poll(), 5) is None

    cluster.sched.faults.status_fail = 0.0
    await hub2.after(0)
    assert await ctrl2.poll() == 0


async def test_a_start_while_the_old_job_is_still_ending_is_refused(cluster: Cluster) -> None:
    cluster.sched.stop_delay = 30.0  # the running job takes a while to die
    ctrl = cluster.controller()
    old = await ready(cluster, ctrl)
    await ctrl.stop(timeout=0)  # the hub's "stop now": the cancel is sent, nobody waits
    with pytest.raises(SpawnFailed, match=f"previous job {old} of this server could not be cancelled yet"):
        await cluster.submit(ctrl)
    assert cluster.runner.counts["submit"] == 1  # never two jobs for one server
    await cluster.after(31)
    new = await cluster.submit(ctrl)
    assert cluster.live() == [new]


async def test_a_caller_giving_up_during_submission_leaves_no_orphan(cluster: Cluster) -> None:
    ctrl = cluster.controller()
    cluster.runner.gate.clear()
    caller = asyncio.ensure_future(cluster.submit(ctrl))
    await cluster.runner.entered.wait()
    caller.cancel()  # the hub's start timeout fires mid-submit
    with pytest.raises(asyncio.CancelledError):
        await caller
    cluster.runner.gate.set()
    await asyncio.sleep(0.01)
    [job_id] = cluster.live()
    assert job_id in cluster.monitor.jobs and ctrl.lifecycle.job_id == job_id  # known, so it can be stopped
    await ctrl.request_stop()
    await cluster.after(0)
    assert cluster.live() == [] and ctrl.lifecycle.phase is Phase.STOPPED
