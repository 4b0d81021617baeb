"""FakeRunner: executes the fake's commands in process and counts them."""

from __future__ import annotations

from batchhub.jobs import Command, JobSpec, ResourceRequest
from batchhub.monitor import JobMonitor
from batchhub_fake import FakeBackend, FakeClock, FakeRunner, FakeScheduler


async def test_counts_commands_by_kind_and_one_status_per_tick_for_fifty_jobs() -> None:
    clock = FakeClock()
    sched = FakeScheduler(clock=clock, slots=64)
    runner = FakeRunner(sched)
    backend = FakeBackend()
    monitor = JobMonitor(backend, runner, clock=clock)
    for n in range(50):
        spec = JobSpec(f"user{n}", "", f"batchhub-user{n}", ResourceRequest(), "/tmp/x")
        script = "#!/bin/sh\n" + "\n".join(backend.directives(spec)) + "\nexec server\n"
        job_id = backend.parse_submit(await runner.run(backend.submit_command(spec, script)))
        monitor.track(job_id, spec.username)
    assert runner.counts == {"submit": 50}
    clock.advance(10)
    await monitor.tick()
    assert runner.counts["status"] == 1
    assert all(monitor.observation(job_id).state.active for job_id in monitor.jobs)
    await monitor.tick()
    assert runner.counts["status"] == 2


async def test_an_unknown_program_fails_like_a_missing_command() -> None:
    runner = FakeRunner(FakeScheduler())
    res = await runner.run(Command(("qstat",)))
    assert res.returncode == 2 and "usage" in res.stderr
    assert runner.counts == {"other": 1}
