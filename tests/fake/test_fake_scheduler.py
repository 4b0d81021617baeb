"""The in-memory fake scheduler: queueing, capacity, limits, purge, on virtual time."""

from __future__ import annotations

import pytest

from batchhub.jobs import JobState
from batchhub_fake import FakeClock, FakeScheduler, Faults, SubmitRejected


def script(*options: str, body: str = "sleep infinity") -> str:
    return "#!/bin/sh\n" + "".join(f"#FAKE {o}\n" for o in options) + body + "\n"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sched(clock: FakeClock) -> FakeScheduler:
    return FakeScheduler(seed=1, clock=clock, slots=4, queue_delay=2, start_delay=3, purge_age=300)


def test_job_goes_through_the_queue_on_virtual_time(sched: FakeScheduler, clock: FakeClock) -> None:
    job_id = sched.submit(script("--name=nb"), "alice")
    job = sched.jobs[job_id]
    assert (job.state, job.owner, job.name) == (JobState.PENDING, "alice", "nb")
    clock.advance(1.9)
    sched.sync()
    assert job.state is JobState.PENDING
    clock.advance(0.1)
    sched.sync()
    assert job.state is JobState.STARTING and job.host == "fake-node-1"
    clock.advance(3)
    sched.sync()
    assert job.state is JobState.RUNNING
    assert job.history == [JobState.PENDING, JobState.STARTING, JobState.RUNNING]


def test_a_job_waits_for_free_slots_first_come_first_served(sched: FakeScheduler, clock: FakeClock) -> None:
    big = sched.submit(script("--cores=3", "--time=100"), "alice")
    second = sched.submit(script("--cores=2"), "bob")
    third = sched.submit(script("--cores=1"), "bob")
    clock.advance(50)
    sched.sync()
    assert sched.jobs[big].state is JobState.RUNNING
    # the 1-core job would fit, but does not overtake the waiting 2-core job
    assert sched.jobs[second].state is JobState.PENDING
    assert sched.jobs[third].state is JobState.PENDING
    clock.advance(60)  # the big job hits its limit at 2 + 100
    sched.sync()
    assert sched.jobs[big].state is JobState.TIMEOUT
    assert sched.jobs[second].start_time == pytest.approx(sched.jobs[big].end_time)
    assert sched.jobs[second].state.active and sched.jobs[third].state.active


def test_runtime_limit_ends_the_job_as_timeout_on_time(sched: FakeScheduler, clock: FakeClock) -> None:
    t0 = clock.now()
    job_id = sched.submit(script("--time=60"), "alice")
    clock.advance(1000)
    sched.sync()
    job = sched.jobs[job_id]
    assert job.state is JobState.TIMEOUT
    assert job.end_time == pytest.approx(t0 + 2 + 60)


def test_finished_jobs_stay_listed_until_the_purge_age(sched: FakeScheduler, clock: FakeClock) -> None:
    job_id = sched.submit(script(), "alice")
    sched.cancel([job_id], "alice")
    assert job_id in {j.job_id for j in sched.listed_jobs()}
    clock.advance(299)
    assert job_id in {j.job_id for j in sched.listed_jobs()}
    clock.advance(2)
    assert job_id not in {j.job_id for j in sched.listed_jobs()}


def test_hold_and_release(sched: FakeScheduler, clock: FakeClock) -> None:
    held = sched.submit(script("--hold"), "alice")
    clock.advance(100)
    sched.sync()
    assert sched.jobs[held].state is JobState.HELD
    sched.release(held)
    clock.advance(2)
    sched.sync()
    assert sched.jobs[held].state is JobState.STARTING


def test_cancel_is_idempotent_and_checks_the_owner(sched: FakeScheduler, clock: FakeClock) -> None:
    job_id = sched.submit(script(), "alice")
    clock.advance(10)
    assert sched.cancel([job_id], "bob") == {job_id: "denied"}
    assert sched.jobs[job_id].state is JobState.RUNNING
    assert sched.cancel([job_id], "alice") == {job_id: "cancelled"}
    assert sched.cancel([job_id], "alice") == {job_id: "finished"}
    clock.advance(400)
    assert sched.cancel([job_id, "999"], "alice") == {job_id: "not-found", "999": "not-found"}
    assert sched.jobs[job_id].state is JobState.CANCELLED


def test_cancel_with_a_stop_delay_passes_through_stopping(clock: FakeClock) -> None:
    sched = FakeScheduler(clock=clock, stop_delay=5)
    job_id = sched.submit(script(), "alice")
    clock.advance(10)
    sched.cancel([job_id], "alice")
    assert sched.jobs[job_id].state is JobState.STOPPING
    clock.advance(5)
    sched.sync()
    assert sched.jobs[job_id].state is JobState.CANCELLED


def test_killed_jobs_fail_with_their_reason(sched: FakeScheduler, clock: FakeClock) -> None:
    a = sched.submit(script(), "alice")
    b = sched.submit(script(), "alice")
    clock.advance(10)
    sched.kill(a, "node failure")
    sched.kill(b, "out of memory")
    assert (sched.jobs[a].state, sched.jobs[a].native) == (JobState.FAILED, "NF")
    assert (sched.jobs[b].native, sched.jobs[b].exit_code) == ("OOM", 137)
    assert sched.live_jobs() == []


def test_a_job_that_exits_by_itself_completes_or_fails(sched: FakeScheduler, clock: FakeClock) -> None:
    ok = sched.submit(script(), "alice")
    bad = sched.submit(script(), "alice")
    sched.jobs[ok].exit_after = 20
    sched.jobs[bad].exit_after = 20
    sched.jobs[bad].exit_code_when_done = 2
    clock.advance(30)
    sched.sync()
    assert sched.jobs[ok].state is JobState.COMPLETED
    assert (sched.jobs[bad].state, sched.jobs[bad].exit_code) == (JobState.FAILED, 2)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (("--cores=8",), "requested 8 cores"),
        (("--bogus=1",), "unknown directive"),
        (("--mem=lots",), "invalid"),
    ],
)
def test_the_scheduler_rejects_bad_jobs(sched: FakeScheduler, options: tuple[str, ...], message: str) -> None:
    with pytest.raises(SubmitRejected, match=message):
        sched.submit(script(*options), "alice")
    assert sched.jobs == {}


def test_directives_end_at_the_first_command(sched: FakeScheduler) -> None:
    job_id = sched.submit("#!/bin/sh\n#FAKE --cores=2\necho hi\n#FAKE --cores=4\n", "alice")
    assert sched.jobs[job_id].cores == 2


def test_the_same_seed_replays_the_same_deaths(clock: FakeClock) -> None:
    def run(seed: int) -> list[tuple[str, float | None, str]]:
        c = FakeClock()
        s = FakeScheduler(seed=seed, clock=c, slots=8, faults=Faults(job_death=0.01))
        ids = [s.submit(script(), "alice") for _ in range(8)]
        for _ in range(60):
            c.advance(5)
            s.sync()
        return [(i, s.jobs[i].end_time, s.jobs[i].reason) for i in ids]

    first = run(7)
    assert first == run(7)
    assert any(end is not None for _, end, _ in first), "a 1%/s hazard over 300 s kills some of 8 jobs"
    assert first != run(8)
