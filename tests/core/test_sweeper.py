"""Jobs found by their tag: a submission whose answer was lost is adopted
or cancelled, a server's stray jobs end with it, and orphans are reported
(and cancelled only where the admin asked). On the fake scheduler."""

from __future__ import annotations

import asyncio

import pytest

from batchhub.controller import JobController, SpawnFailed
from batchhub.jobs import Command, CommandResult, JobSpec, JobState, ResourceRequest
from batchhub.lifecycle import Phase
from batchhub.monitor import JobMonitor
from batchhub.sweeper import Sweeper
from batchhub_fake import FakeBackend, FakeClock, FakeRunner, FakeScheduler
from batchhub_fake.faults import Fault


class SubmitsHang(FakeRunner):
    """Every submit is killed at its timeout before the scheduler sees it."""

    async def run(self, command: Command) -> CommandResult:
        if "fake-submit" in command.argv:
            return CommandResult(command, -9, timed_out=True)
        return await super().run(command)


class Cluster:
    def __init__(self, known: set[str] | None = None, cancel_orphans: bool = False) -> None:
        self.clock = FakeClock()
        self.sched = FakeScheduler(clock=self.clock, queue_delay=2.0, start_delay=3.0)
        self.runner = FakeRunner(self.sched)
        self.backend = FakeBackend()
        self.monitor = JobMonitor(self.backend, self.runner, interval=0.05, fast_interval=0.01, jitter=0)
        self.known = known if known is not None else set()
        self.sweeper = Sweeper(
            self.backend,
            self.runner,
            known=lambda: self.known | set(self.monitor.jobs),
            retry=0.01,
            cancel_orphans=cancel_orphans,
        )

    def controller(self, user: str = "alice", server: str = "") -> JobController:
        return JobController(
            self.backend,
            self.runner,
            self.monitor,
            username=user,
            server_name=server,
            sweeper=self.sweeper,
            uncertain_wait=5,
        )

    def spec(self, user: str = "alice", server: str = "", submission: str = "0001") -> tuple[JobSpec, str]:
        name = self.backend.job_name(user, server, submission)
        spec = JobSpec(user, server, name, ResourceRequest(), f"/tmp/batchhub-sweep/{user}")
        return spec, "#!/bin/sh\n" + "\n".join(self.backend.directives(spec)) + "\nexec sleep 600\n"

    def job_named(self, name: str, owner: str = "alice") -> str:
        """A job submitted behind the hub's back (a stray, an orphan)."""
        return self.sched.submit(f"#FAKE --name={name}\nexec sleep 600\n", owner)

    def live(self) -> set[str]:
        return {job.job_id for job in self.sched.live_jobs()}


async def test_a_lost_submission_whose_job_exists_is_adopted() -> None:
    c = Cluster()
    ctrl = c.controller()
    c.sched.faults.force(Fault.SUBMIT_LOST)
    job_id = await ctrl.submit(*c.spec())
    assert c.live() == {job_id}, "the job the scheduler created is the one the server tracks"
    assert ctrl.lifecycle.phase is Phase.QUEUED and ctrl.lifecycle.job_id == job_id
    assert job_id in c.monitor.jobs
    assert c.runner.counts["submit"] == 1, "a lost answer is never submitted again"


async def test_a_lost_submission_without_a_job_fails_clearly_and_is_watched_for() -> None:
    c = Cluster()
    ctrl = c.controller()
    c.runner = ctrl.runner = SubmitsHang(c.sched)  # the submit hangs past its timeout: no job
    spec, script = c.spec()
    with pytest.raises(SpawnFailed) as failed:
        await ctrl.submit(spec, script)
    message = str(failed.value)
    assert "did not answer" in message and "may exist" in message and "Try again" in message
    assert "refused" not in message
    assert c.live() == set()
    assert spec.job_name in c.sweeper.doomed
    # the controller catches up and creates it after all: the next sweep cancels it
    late = c.job_named(spec.job_name)
    await c.sweeper.sweep()
    assert late not in c.live()
    assert c.sweeper.doomed == {}


async def test_stop_ends_every_live_job_of_the_server_and_nothing_else() -> None:
    c = Cluster()
    ctrl = c.controller()
    job_id = await ctrl.submit(*c.spec())
    stray = c.job_named(c.backend.job_name("alice", "", "0000dead"))
    other_server = c.job_named(c.backend.job_name("alice", "gpu", "0000beef"))
    bobs = c.job_named(c.backend.job_name("bob", "", "0000f00d"), owner="bob")
    untagged = c.job_named("my-own-analysis")
    await ctrl.stop(timeout=5)
    live = c.live()
    assert job_id not in live and stray not in live
    assert {other_server, bobs, untagged} <= live, "only this server's jobs end"


async def test_a_new_start_ends_the_servers_strays_first() -> None:
    c = Cluster()
    stray = c.job_named(c.backend.job_name("alice", "", "0000dead"))
    ctrl = c.controller()
    job_id = await ctrl.submit(*c.spec())
    assert stray not in c.live()
    assert c.live() == {job_id}, "never two live jobs for one server"


async def test_a_name_that_only_looks_like_the_servers_tag_is_left_alone() -> None:
    c = Cluster()
    tag = c.backend.server_tag("alice", "")
    lookalike = c.job_named(f"{tag}.0000dead.more")
    ctrl = c.controller()
    await ctrl.submit(*c.spec())
    assert lookalike in c.live()


async def test_orphans_are_reported_after_two_sweeps_and_only_cancelled_when_asked() -> None:
    c = Cluster()
    ctrl = c.controller()
    tracked = await ctrl.submit(*c.spec())
    orphan = c.job_named(c.backend.job_name("bob", "", "0000f00d"), owner="bob")
    untagged = c.job_named("my-own-analysis")
    assert (await c.sweeper.sweep()).orphans == [], "a job seen once may be a submission in flight"
    report = await c.sweeper.sweep()
    assert [job.job_id for job in report.orphans] == [orphan]
    assert report.cancelled == [] and orphan in c.live(), "reported, not cancelled, by default"
    c.sweeper.cancel_orphans = True
    report = await c.sweeper.sweep()
    assert report.cancelled == [orphan]
    assert c.live() == {tracked, untagged}, "tracked and untagged jobs are never touched"


async def test_a_failed_listing_concludes_nothing() -> None:
    c = Cluster(cancel_orphans=True)
    orphan = c.job_named(c.backend.job_name("bob", "", "0000f00d"), owner="bob")
    await c.sweeper.sweep()
    c.sched.faults.force(Fault.STATUS_FAIL, 10)  # the listing fails like a status query
    report = await c.sweeper.sweep()
    assert report.orphans == [] and orphan in c.live()
    assert await c.sweeper.end_server_jobs(c.backend.server_tag("bob", ""), "bob") == []
    assert orphan in c.live()


async def test_listing_by_tag_is_one_command_for_concurrent_callers() -> None:
    c = Cluster()
    results = await asyncio.gather(*(c.sweeper.listing() for _ in range(50)))
    assert all(r == results[0] for r in results)
    assert c.runner.counts["list"] == 1
    assert all(job.state is not JobState.COMPLETED for job in results[0] or [])
