"""The Prometheus metrics, on the fake scheduler: commands by backend, kind
and outcome; spawn phases from job events through the plugin hook; tracked
jobs, failed queries and the last query's age read from the live monitor;
orphans from the sweeper."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence

import pytest
from prometheus_client import REGISTRY, generate_latest

from batchhub import metrics
from batchhub.backend import Backend
from batchhub.controller import JobController
from batchhub.jobs import Command, CommandResult, JobSpec, ResourceRequest
from batchhub.monitor import JobMonitor
from batchhub.plugins import get_registry
from batchhub.runner import CommandRunner
from batchhub.shared import Shared
from batchhub.sweeper import Sweeper
from batchhub_fake import FakeBackend, FakeClock, FakeRunner, FakeScheduler
from batchhub_fake.faults import Fault

_names = itertools.count()


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class MeteredRunner(FakeRunner):
    """The fake's in-process runner, reporting each command as the
    ``CommandRunner`` does."""

    async def run(self, command: Command) -> CommandResult:
        result = await super().run(command)
        metrics.command_ran(result)
        return result


class Cluster:
    """One fake cluster whose backend has a name of its own, so each test
    reads series nobody else writes."""

    def __init__(self, cancel_orphans: bool = False) -> None:
        self.name = f"fake{next(_names)}"
        self.backend = type("Metered", (FakeBackend,), {"name": self.name})()
        self.clock = FakeClock()
        self.sched = FakeScheduler(clock=self.clock, queue_delay=2.0, start_delay=3.0)
        self.runner = MeteredRunner(self.sched)
        self.monitor = JobMonitor(self.backend, self.runner, interval=30, fast_interval=2, jitter=0)
        self.sweeper = Sweeper(
            self.backend, self.runner, known=lambda: set(self.monitor.jobs), cancel_orphans=cancel_orphans
        )

    def controller(self, user: str = "alice") -> JobController:
        return JobController(
            self.backend,
            self.runner,
            self.monitor,
            username=user,
            # the hub's path: every event goes through the plugin hook
            on_event=lambda event: get_registry().hook.batchhub_job_event(event=event),
            clock=self.clock,
        )

    def spec(self, user: str = "alice") -> tuple[JobSpec, str]:
        spec = JobSpec(user, "", self.backend.job_name(user, ""), ResourceRequest(), f"/tmp/metrics/{user}")
        return spec, "#!/bin/sh\n" + "\n".join(self.backend.directives(spec)) + "\nexec sleep 600\n"

    async def after(self, seconds: float) -> None:
        self.clock.advance(seconds)
        await self.monitor.tick()

    def commands(self, kind: str, outcome: str) -> float:
        return value("batchhub_scheduler_commands_total", backend=self.name, kind=kind, outcome=outcome)

    def phase(self, phase: str, suffix: str) -> float:
        return value(f"batchhub_spawn_phase_duration_seconds_{suffix}", backend=self.name, phase=phase)


@pytest.fixture
def live() -> Iterator[dict[str, JobMonitor]]:
    """The hub's monitors and sweepers as the collector reads them, emptied after."""
    monitors, sweepers = dict(Shared.monitors), dict(Shared.sweepers)
    yield Shared.monitors
    Shared.monitors.clear()
    Shared.monitors.update(monitors)
    Shared.sweepers.clear()
    Shared.sweepers.update(sweepers)


# --- which command is which ---------------------------------------------------


class Builder(Backend):
    """Builds its commands every way a backend may."""

    name = "builder"

    def status_command(self, job_ids: Sequence[str], owners: Sequence[str] = ()) -> Command:
        return self.command("stat", *job_ids)

    def cancel_command(self, job_ids: Sequence[str], username: str) -> Command:
        return Command(("del", *job_ids), as_user=username)  # built by hand, not through command()


class Narrower(Builder):
    name = "narrower"

    def status_command(self, job_ids: Sequence[str], owners: Sequence[str] = ()) -> Command:
        return super().status_command(job_ids[:1])


def test_every_builder_stamps_its_kind_and_backend() -> None:
    status = Builder().status_command(["1"])
    assert (status.kind, status.backend) == ("status", "builder")
    cancel = Builder().cancel_command(["1"], "alice")
    assert (cancel.kind, cancel.backend) == ("cancel", "builder"), "a hand-built command is stamped too"
    narrowed = Narrower().status_command(["1", "2"])
    assert (narrowed.argv, narrowed.kind, narrowed.backend) == (("stat", "1"), "status", "narrower")
    assert status == Command(("stat", "1"), timeout=30.0), "the stamp is no part of a command's value"
    fake = FakeBackend()
    assert [fake.list_command().kind, fake.cancel_command(["1"], "bob").kind] == ["list", "cancel"]
    assert Builder().command("stat").kind == "", "a command no builder returned has no kind"


# --- commands -----------------------------------------------------------------


async def test_commands_count_by_kind_and_outcome_with_their_durations() -> None:
    c = Cluster()
    ctrl = c.controller()
    await ctrl.submit(*c.spec())
    await c.monitor.tick()
    c.sched.faults.force(Fault.STATUS_FAIL)
    await c.monitor.tick()
    c.sched.faults.force(Fault.STATUS_HANG)
    await c.monitor.tick()
    await c.sweeper.listing()
    await ctrl.request_stop()

    assert c.commands("submit", "ok") == 1
    assert c.commands("status", "ok") == 1
    assert c.commands("status", "failed") == 1
    assert c.commands("status", "timed_out") == 1
    assert c.commands("list", "ok") == 1
    assert c.commands("cancel", "ok") == 1
    assert c.commands("submit", "failed") == 0, "every kind and outcome exists from the first command"
    assert value("batchhub_scheduler_command_duration_seconds_count", backend=c.name, kind="status") == 3
    # the hung query lasted its 30 s timeout (of the fake's virtual time)
    assert value("batchhub_scheduler_command_duration_seconds_sum", backend=c.name, kind="status") >= 30


async def test_the_command_runner_counts_what_it_runs(tmp_path: object) -> None:
    """The real runner, on the fake's local mode: real processes."""
    backend = type("Local", (FakeBackend,), {"name": f"local{next(_names)}"})(
        local=True, spool_dir=str(tmp_path)
    )
    runner = CommandRunner(as_user_prefix=[])
    result = await runner.run(backend.list_command())
    assert result.ok, result.describe()
    assert value("batchhub_scheduler_commands_total", backend=backend.name, kind="list", outcome="ok") == 1
    missing = backend.status_command(["1"])
    missing = Command(("/nonexistent/fake-status",), kind=missing.kind, backend=missing.backend)
    await runner.run(missing)
    assert (
        value("batchhub_scheduler_commands_total", backend=backend.name, kind="status", outcome="failed") == 1
    )
    before = generate_latest().decode().count("\n")
    await runner.run(Command(("true",)))  # the launcher's token write and the like: no scheduler command
    assert generate_latest().decode().count("\n") == before


# --- spawn phases ---------------------------------------------------------------


async def test_a_spawn_records_its_queued_and_starting_phases() -> None:
    c = Cluster()
    ctrl = c.controller()
    await ctrl.submit(*c.spec())
    await c.after(1)  # pending
    await c.after(1.5)  # the scheduler started it at 2 s (starting, then running at 5 s)
    await c.after(3)
    c.clock.advance(4)
    assert ctrl.report_port(8888)
    assert ctrl.outcome() is not None
    await ctrl.request_stop()
    await c.after(1)

    assert c.phase("queued", "count") == 1
    assert c.phase("queued", "sum") == pytest.approx(2.5), "submitted until first seen started"
    assert c.phase("starting", "count") == 1
    assert c.phase("starting", "sum") == pytest.approx(7.0), "first seen started until ready"
    for kind, count in {"submitted": 1, "ready": 1, "stopped": 1}.items():
        assert value("batchhub_job_events_total", backend=c.name, kind=kind) == count, kind


async def test_a_spawn_that_fails_in_the_queue_records_no_phase() -> None:
    c = Cluster()
    ctrl = c.controller()
    await ctrl.submit(*c.spec())
    await c.after(1)
    await ctrl.request_stop()
    await c.after(1)
    await c.after(5)
    assert c.phase("queued", "count") == 0 and c.phase("starting", "count") == 0
    assert value("batchhub_job_events_total", backend=c.name, kind="submitted") == 1


async def test_a_job_adopted_after_a_restart_records_no_phase(monkeypatch: pytest.MonkeyPatch) -> None:
    c = Cluster()
    first = c.controller()
    job_id = await first.submit(*c.spec())
    state = first.get_state()
    # the hub restarts: a new process never saw the submission
    monkeypatch.setattr(metrics, "phases", metrics.PhaseClock())
    c.monitor.untrack(job_id)
    second = c.controller()
    second.load_state(state)
    await c.after(6)
    assert second.report_port(8888) and second.outcome() is not None
    assert c.phase("queued", "count") == 0 and c.phase("starting", "count") == 0


# --- the live monitor and sweeper ---------------------------------------------------


async def test_tracked_jobs_failed_queries_and_query_age_are_read_at_scrape_time(
    live: dict[str, JobMonitor],
) -> None:
    c = Cluster()
    live[c.name] = c.monitor

    def tracked(state: str) -> float:
        return value("batchhub_jobs_tracked", backend=c.name, state=state)

    assert tracked("PENDING") == 0 and tracked("UNKNOWN") == 0, "every state, even at 0"
    assert REGISTRY.get_sample_value("batchhub_monitor_last_query_age_seconds", {"backend": c.name}) is None
    alice, bob = c.controller("alice"), c.controller("bob")
    await alice.submit(*c.spec("alice"))
    await bob.submit(*c.spec("bob"))
    assert tracked("UNKNOWN") == 2, "tracked, not yet answered for"
    await c.after(1)
    assert tracked("PENDING") == 2 and tracked("UNKNOWN") == 0
    await c.after(5)
    assert tracked("RUNNING") == 2
    age = value("batchhub_monitor_last_query_age_seconds", backend=c.name)
    assert 0 <= age < 5

    c.sched.faults.force(Fault.STATUS_FAIL, 2)
    await c.monitor.tick()
    await c.monitor.tick()
    assert value("batchhub_monitor_consecutive_failed_queries", backend=c.name) == 2
    assert tracked("RUNNING") == 2, "a failed query changes no job"
    await c.monitor.tick()
    assert value("batchhub_monitor_consecutive_failed_queries", backend=c.name) == 0

    await alice.request_stop()
    await bob.request_stop()
    await c.after(1)
    assert sum(tracked(state) for state in ("PENDING", "RUNNING", "UNKNOWN", "CANCELLED")) == 0
    assert REGISTRY.get_sample_value("batchhub_monitor_last_query_age_seconds", {"backend": c.name}) is None


@pytest.mark.parametrize("cancel", [False, True])
async def test_orphans_come_from_the_sweepers_latest_pass(live: dict[str, JobMonitor], cancel: bool) -> None:
    c = Cluster(cancel_orphans=cancel)
    Shared.sweepers[c.name] = c.sweeper
    assert REGISTRY.get_sample_value("batchhub_orphan_jobs", {"backend": c.name}) is None, "no pass yet"
    c.sched.submit(f"#FAKE --name={c.backend.job_name('bob', '', '0001')}\nexec sleep 600\n", "bob")
    await c.sweeper.sweep()
    assert value("batchhub_orphan_jobs", backend=c.name) == 0, "reported once seen in two passes"
    await c.sweeper.sweep()
    assert value("batchhub_orphan_jobs", backend=c.name) == 1
    assert value("batchhub_orphans_cancelled_total", backend=c.name) == (1 if cancel else 0)
    c.sched.faults.force(Fault.STATUS_FAIL)  # the listing is the fake's status verb without ids
    await c.sweeper.sweep()
    assert value("batchhub_orphan_jobs", backend=c.name) == 1, "a failed listing concludes nothing"
