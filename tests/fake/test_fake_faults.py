"""Every fault the fake can inject, seen through its commands and the
backend's parsers, as the core sees them."""

from __future__ import annotations

import asyncio

import pytest

from batchhub.jobs import CancelOutcome, JobSpec, JobState, QueryError, ResourceRequest, SubmitError
from batchhub_fake import FakeBackend, FakeClock, FakeRunner, FakeScheduler, Fault, Faults

SPEC = JobSpec("alice", "", "batchhub-alice", ResourceRequest(), "/home/alice/.batchhub/x")


class World:
    def __init__(self, **faults: float) -> None:
        self.clock = FakeClock()
        self.sched = FakeScheduler(seed=3, clock=self.clock, faults=Faults(**faults))
        self.runner = FakeRunner(self.sched, default_timeout=30)
        self.backend = FakeBackend(command_timeout=20)
        self.script = "#!/bin/sh\n" + "\n".join(self.backend.directives(SPEC)) + "\nexec server\n"

    def run(self, command):
        return asyncio.run(self.runner.run(command))

    def submit(self) -> str:
        return self.backend.parse_submit(self.run(self.backend.submit_command(SPEC, self.script)))

    def status(self, ids: list[str]):
        return self.backend.parse_status(self.run(self.backend.status_command(ids)), ids)

    def cancel(self, ids: list[str]):
        return self.backend.parse_cancel(self.run(self.backend.cancel_command(ids, "alice")), ids)


def test_no_faults_by_default() -> None:
    w = World()
    job_id = w.submit()
    w.clock.advance(10)
    assert w.status([job_id])[job_id].state is JobState.RUNNING
    assert w.cancel([job_id]) == {job_id: CancelOutcome.REQUESTED}


def test_submit_fails_with_a_message_and_no_job() -> None:
    w = World()
    w.sched.faults.force(Fault.SUBMIT_FAIL)
    with pytest.raises(SubmitError, match="not accepting jobs"):
        w.submit()
    assert w.sched.jobs == {}
    assert w.submit() == "1"  # forced faults are used up


@pytest.mark.parametrize("fault", [Fault.STATUS_FAIL, Fault.STATUS_GARBAGE])
def test_failed_status_query_is_an_error_not_an_answer(fault: Fault) -> None:
    w = World()
    job_id = w.submit()
    w.sched.faults.force(fault)
    with pytest.raises(QueryError):
        w.status([job_id])
    assert w.status([job_id])[job_id].state is JobState.PENDING


def test_hanging_status_query_times_out_on_virtual_time() -> None:
    w = World()
    job_id = w.submit()
    w.sched.faults.force(Fault.STATUS_HANG)
    before = w.clock.now()
    res = w.run(w.backend.status_command([job_id]))
    assert res.timed_out and not res.ok
    assert w.clock.now() - before == 20  # the command's own timeout
    assert res.duration == 20
    with pytest.raises(QueryError, match="did not answer within 20"):
        w.backend.parse_status(res, [job_id])


def test_slow_command_takes_virtual_time_and_times_out_past_its_limit() -> None:
    w = World()
    w.sched.faults.slow_seconds = 5
    w.sched.faults.force(Fault.SLOW)
    before = w.clock.now()
    job_id = w.submit()
    assert w.clock.now() - before == 5
    w.sched.faults.slow_seconds = 60
    w.sched.faults.force(Fault.SLOW)
    res = w.run(w.backend.submit_command(SPEC, w.script))
    assert res.timed_out
    assert [j.job_id for j in w.sched.jobs.values()] == [job_id]  # a killed submit made no job


def test_cancel_fails_and_the_job_lives_on_then_cancel_succeeds() -> None:
    w = World()
    job_id = w.submit()
    w.sched.faults.force(Fault.CANCEL_FAIL)
    assert w.cancel([job_id]) == {job_id: CancelOutcome.FAILED}
    assert w.sched.jobs[job_id].live
    assert w.cancel([job_id]) == {job_id: CancelOutcome.REQUESTED}
    assert w.cancel([job_id]) == {job_id: CancelOutcome.ALREADY_GONE}


def test_job_dies_with_a_reason_the_status_shows() -> None:
    w = World()
    job_id = w.submit()
    w.clock.advance(10)
    w.sched.kill(job_id, "out of memory")
    obs = w.status([job_id])[job_id]
    assert (obs.state, obs.native_state, obs.reason) == (JobState.FAILED, "OOM", "out of memory")


def test_forced_death_kills_a_running_job() -> None:
    w = World()
    job_id = w.submit()
    w.clock.advance(10)
    w.sched.faults.force(Fault.JOB_DEATH)
    w.clock.advance(1)
    obs = w.status([job_id])[job_id]
    assert obs.state is JobState.FAILED and obs.reason in ("node failure", "out of memory")


def test_purged_early_job_vanishes_from_the_listing() -> None:
    w = World()
    job_id = w.submit()
    w.sched.faults.force(Fault.PURGE_EARLY)
    assert w.status([job_id]) == {}
    assert w.status([job_id]) == {}
    assert not w.sched.jobs[job_id].live
    assert w.cancel([job_id]) == {job_id: CancelOutcome.ALREADY_GONE}


def test_probabilistic_faults_follow_the_seed() -> None:
    def outcomes(seed: int) -> list[bool]:
        w = World(status_fail=0.5)
        w.sched.rng.seed(seed)
        job_id = w.submit()
        return [w.run(w.backend.status_command([job_id])).ok for _ in range(40)]

    first = outcomes(11)
    assert first == outcomes(11)
    assert 5 < first.count(False) < 35


def test_clearing_faults_stops_them() -> None:
    w = World(status_fail=1.0, submit_fail=1.0)
    w.sched.faults.clear()
    job_id = w.submit()
    assert job_id in w.status([job_id])
