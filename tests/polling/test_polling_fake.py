"""What JupyterHub's own polling costs the scheduler, on the in-memory fake.

Servers are driven exactly as a hub drives them after a restart: saved
state loaded, one concurrent first poll of all of them (``init_spawners``),
then each polled every ``poll_interval`` by JupyterHub's own
``Spawner.start_polling()``. The scheduler must be asked once per monitor
interval, however many servers poll."""

from __future__ import annotations

import asyncio

from traitlets.config import Config

from batchhub.jobs import JobState
from batchhub.shared import Shared
from batchhub.testing.polling import adopted_spawners, first_poll, poll_for, shared_runner, stop_monitors
from batchhub_fake import FakeClock, FakeRunner, FakeScheduler
from batchhub_fake.faults import Fault

SCRIPT = "#FAKE --name=batchhub-{user} --cores=1\nexec jupyterhub-singleuser\n"


def cluster(n: int) -> tuple[FakeScheduler, FakeRunner, list[tuple[str, str]]]:
    """A fake cluster with ``n`` running jobs, one per user."""
    sched = FakeScheduler(clock=FakeClock(), slots=n, queue_delay=0.0, start_delay=0.0)
    jobs = [(f"user{i}", sched.submit(SCRIPT.format(user=f"user{i}"), f"user{i}")) for i in range(n)]
    sched.clock.advance(1.0)
    assert all(job.state is JobState.RUNNING for job in sched.live_jobs())
    return sched, FakeRunner(sched), jobs


def config(interval: float) -> Config:
    c = Config()
    c.BatchSpawner.backend = "fake"
    c.BatchSpawner.poll_interval = interval
    c.JobMonitor.interval = interval
    return c


async def test_hub_restart_first_poll_of_a_thousand_servers_is_one_query() -> None:
    _, runner, jobs = cluster(1000)
    with shared_runner(runner):
        spawners = adopted_spawners(config(30), jobs)
        statuses = await first_poll(spawners)
        await asyncio.sleep(0.5)  # an early tick a poke asked for would run by now
        await stop_monitors()
    assert statuses == [None] * 1000, "a running server was declared stopped"
    assert runner.counts["status"] == 1


async def test_start_polling_of_300_servers_costs_one_query_per_interval() -> None:
    _, runner, jobs = cluster(300)
    with shared_runner(runner):
        spawners = adopted_spawners(config(1), jobs)
        await first_poll(spawners)
        polls = 0
        for spawner in spawners:  # count the polls, so the test cannot pass by not polling
            real_poll, real_poll_now = spawner.poll, spawner.poll_now

            async def counted(real_poll=real_poll) -> int | None:
                nonlocal polls
                polls += 1
                return await real_poll()

            def counted_now(real_poll_now=real_poll_now) -> object:
                nonlocal polls
                polls += 1  # the hub's poller asks the cache first (batchhub/poller.py)
                return real_poll_now()

            spawner.poll = counted  # type: ignore[method-assign]
            spawner.poll_now = counted_now  # type: ignore[method-assign]
        stopped = await poll_for(spawners, 5.0)
        await stop_monitors()
    assert stopped == [], "a running server was declared stopped"
    assert polls >= 300 * 3, f"JupyterHub polled only {polls} times"
    assert runner.counts["status"] <= 7, f"{runner.counts['status']} status queries in 5 intervals"


async def test_polls_during_failed_queries_cost_nothing_and_stop_nobody() -> None:
    sched, runner, jobs = cluster(50)
    with shared_runner(runner):
        spawners = adopted_spawners(config(1), jobs)
        await first_poll(spawners)
        before = runner.counts["status"]
        sched.faults.force(Fault.STATUS_FAIL, 100)
        stopped = await poll_for(spawners, 3.0)
        await stop_monitors()
    assert stopped == []
    # the monitor backs off (2 s, then 4 s): polls never ask on their own
    assert runner.counts["status"] - before <= 2


async def test_one_timer_polls_every_server_and_an_ended_job_stops_its_server() -> None:
    """JupyterHub's start_polling() joins the hub's one poller (no timer or
    task per server), and a job that ends still reaches JupyterHub's poll
    callbacks, as its own polling would run them."""
    sched, runner, jobs = cluster(200)
    with shared_runner(runner):
        spawners = adopted_spawners(config(1), jobs)
        await first_poll(spawners)
        tasks_before = len(asyncio.all_tasks())
        stopped: list[int] = []
        for spawner in spawners:
            spawner.add_poll_callback(lambda s=spawner: stopped.append(s.controller.exit_status()))
            spawner.start_polling()
        assert len(asyncio.all_tasks()) - tasks_before <= 1, "one poller task"
        assert not any(s._poll_callback for s in spawners), "no JupyterHub timer per server"
        assert len(Shared.pollers[1.0].members) == 200
        sched.finish(jobs[7][1], exit_code=3)
        await asyncio.sleep(3.5)
        ended = spawners[7]
        for spawner in spawners:
            spawner.stop_polling()
        await stop_monitors()
    assert stopped == [3], "the ended job's server, and only it, was reported stopped"
    assert ended.controller.exit_status() == 3
