"""Property tests: the lifecycle, the shared monitor and the job controller
driven against the fake scheduler through any sequence of starts, stops,
polls, port reports, time passing, scheduler faults and hub restarts.

The invariants of docs/architecture.md are checked after every step. Time
is the fake's virtual clock: nothing sleeps. Profiles: the default runs
2,000 sequences (CI); ``HYPOTHESIS_PROFILE=deep`` runs many more.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
from dataclasses import dataclass

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from batchhub.controller import JobController, SpawnFailed
from batchhub.jobs import JobSpec, JobState, ResourceRequest
from batchhub.lifecycle import Phase
from batchhub.monitor import JobMonitor
from batchhub.sweeper import Sweeper
from batchhub_fake import FakeBackend, FakeClock, FakeRunner, FakeScheduler, Fault

settings.register_profile(
    "default",
    max_examples=2000,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "deep",
    max_examples=20000,
    stateful_step_count=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

#: The servers of the simulated hub: (user, server name).
SERVERS = [("alice", ""), ("alice", "gpu"), ("bob", "")]
FAST_INTERVAL = 2.0
servers = st.integers(min_value=0, max_value=len(SERVERS) - 1)
FAULTS = [Fault.SUBMIT_FAIL, Fault.SUBMIT_LOST, Fault.STATUS_FAIL, Fault.STATUS_GARBAGE, Fault.STATUS_HANG]
QUERY_FAULTS = st.sampled_from(FAULTS)


@dataclass
class Death:
    """A job that died while its spawn waited: the spawn must fail at the
    next successful status query, with the reason."""

    job_id: str
    reason: str
    at: float


class SpawnMachine(RuleBasedStateMachine):
    """One hub (monitor + a controller per server) against one fake cluster."""

    @initialize(
        seed=st.integers(min_value=0, max_value=2**32 - 1),
        slots=st.integers(min_value=1, max_value=4),
        stop_delay=st.sampled_from([0.0, 5.0]),
        runtime=st.sampled_from([None, 120, 3600]),
    )
    def setup(self, seed: int, slots: int, stop_delay: float, runtime: int | None) -> None:
        self.loop = asyncio.new_event_loop()
        self.clock = FakeClock()
        self.sched = FakeScheduler(
            seed=seed, clock=self.clock, slots=slots, queue_delay=2.0, start_delay=3.0, stop_delay=stop_delay
        )
        self.backend = FakeBackend(command_timeout=20.0)
        self.seed = seed
        self.runtime = runtime
        self.deaths: dict[int, Death] = {}
        self.seen_job_states: dict[str, JobState] = {}
        self.seen_lifecycle: dict[int, tuple[str | None, JobState | None]] = {}
        self.accepted_cancels: set[str] = set()
        self.boot(states=None)

    def boot(self, states: list[dict] | None) -> None:
        """Start (or restart) the hub: a fresh runner, monitor and controllers,
        loading each server's saved state."""
        self.runner = FakeRunner(self.sched, default_timeout=30.0)
        self.looked_at = 0
        self.monitor = JobMonitor(
            self.backend,
            self.runner,
            interval=30.0,
            fast_interval=FAST_INTERVAL,
            clock=self.clock,
            rng=random.Random(self.seed),
        )
        # finds jobs by name: a submission whose answer was lost is adopted, strays end
        self.sweeper = Sweeper(self.backend, self.runner, retry=0.0)
        self.controllers = [
            JobController(
                self.backend,
                self.runner,
                self.monitor,
                username=user,
                server_name=name,
                clock=self.clock,
                sweeper=self.sweeper,
            )
            for user, name in SERVERS
        ]
        if states is not None:
            for controller, state in zip(self.controllers, states, strict=True):
                controller.load_state(state)

    def teardown(self) -> None:
        if hasattr(self, "loop"):
            self.loop.close()

    def run(self, coro):
        return self.loop.run_until_complete(coro)

    def spec(self, index: int, cores: int) -> tuple[JobSpec, str]:
        user, name = SERVERS[index]
        resources = ResourceRequest(cores=cores, runtime_s=self.runtime)
        workdir = f"/home/{user}/.batchhub/{name}"
        spec = JobSpec(user, name, self.backend.job_name(user, name), resources, workdir)
        return spec, "#!/bin/sh\n" + "\n".join(self.backend.directives(spec)) + "\nexec batchhub-singleuser\n"

    def job_of(self, index: int):
        job_id = self.controllers[index].lifecycle.job_id
        return self.sched.jobs.get(job_id) if job_id else None

    def current_jobs(self) -> list[tuple[int, object]]:
        """(server index, scheduler job) for each server's current live job."""
        found = []
        for index, controller in enumerate(self.controllers):
            job = self.sched.jobs.get(controller.lifecycle.job_id or "")
            if job is not None and job.live and job.state is not JobState.STOPPING:
                found.append((index, job))
        return found

    def has_current_job(self) -> bool:
        return bool(self.current_jobs())

    # --- the hub's actions ---------------------------------------------
    @rule(index=servers, cores=st.integers(min_value=1, max_value=2))
    def start(self, index: int, cores: int) -> None:
        controller = self.controllers[index]
        if not (controller.lifecycle.phase.finished or controller.lifecycle.phase is Phase.STOPPING):
            return  # the hub starts only a server it believes stopped
        spec, script = self.spec(index, cores)
        try:
            self.run(controller.submit(spec, script))
        except SpawnFailed as exc:
            assert str(exc), "a failed spawn says why"
        self.deaths.pop(index, None)

    @rule(index=servers)
    def stop(self, index: int) -> None:
        self.run(self.controllers[index].request_stop("stopped by the user"))
        self.deaths.pop(index, None)

    @rule(index=servers)
    def stop_twice(self, index: int) -> None:
        """Cancel is idempotent: a second stop right after the first never
        fails, and once the server is stopped it sends nothing at all."""
        controller = self.controllers[index]
        self.run(controller.request_stop())
        self.deaths.pop(index, None)
        before = controller.lifecycle.snapshot()
        settled = controller.lifecycle.phase.finished or controller.lifecycle.cancel_sent
        commands = len(self.runner.commands)
        self.run(controller.request_stop())
        if settled:
            assert controller.lifecycle.snapshot() == before
            cancels = [c for c in self.runner.commands[commands:] if "fake-cancel" in c.argv]
            assert cancels == [], "a stopped server, or one whose cancel was accepted, sends no cancel"

    def note_cancels(self) -> None:
        """Every cancel command since the last look: none may follow one the
        scheduler accepted for the same job."""
        for result in self.runner.results[self.looked_at :]:
            if "fake-cancel" not in result.command.argv:
                continue
            job_id = result.command.argv[-1]
            assert job_id not in self.accepted_cancels, (
                f"job {job_id} cancelled again after the scheduler accepted"
            )
            if result.ok and f"{job_id} cancelled" in result.stdout:
                self.accepted_cancels.add(job_id)
        self.looked_at = len(self.runner.results)

    @rule(index=servers)
    def start_timeout(self, index: int) -> None:
        controller = self.controllers[index]
        if controller.lifecycle.phase.waiting:
            controller.time_out("The server did not start in time.")
            self.run(controller.request_stop())
            self.deaths.pop(index, None)

    @precondition(has_current_job)
    @rule(pick=st.integers(min_value=0), port=st.integers(min_value=1024, max_value=65535))
    def report_port(self, pick: int, port: int) -> None:
        started = [(i, job) for i, job in self.current_jobs() if job.state.active]
        if started:  # the server inside a started job reports where it listens
            index, _ = started[pick % len(started)]
            self.controllers[index].report_port(port)

    @rule(index=servers)
    def poll(self, index: int) -> None:
        controller = self.controllers[index]
        status = self.run(controller.poll())
        job = self.job_of(index)
        if status is not None and job is not None:
            assert not self.job_counts_as_live(job), f"poll said {status} but job {job.job_id} lives"

    @rule()
    def tick(self) -> None:
        """One round of the monitor's loop: wait its delay, query once."""
        self.clock.advance(self.monitor.next_delay())
        tracked = len(self.monitor.jobs)
        before = self.runner.counts["status"]
        failed = self.monitor.stats["failed_queries"]
        self.run(self.monitor.tick())
        assert self.runner.counts["status"] - before == (1 if tracked else 0), "one status command per tick"
        if tracked and self.monitor.stats["failed_queries"] == failed:
            self.check_deaths_reported()

    @rule(seconds=st.floats(min_value=0, max_value=60))
    def time_passes(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.sched.sync()

    @rule()
    def hub_restart(self) -> None:
        states = [json.loads(json.dumps(c.get_state())) for c in self.controllers]
        self.note_cancels()
        self.boot(states)
        # the new monitor's cache starts empty; the servers' saved states carry on
        self.seen_job_states.clear()

    # --- the scheduler's faults ----------------------------------------
    @rule(fault=QUERY_FAULTS)
    def force_fault(self, fault: Fault) -> None:
        self.sched.faults.force(fault)

    @rule(seconds=st.sampled_from([1.0, 5.0, 45.0]))
    def slow_command(self, seconds: float) -> None:
        self.sched.faults.slow_seconds = seconds
        self.sched.faults.force(Fault.SLOW)

    @rule()
    def cancel_fails(self) -> None:
        self.sched.faults.force(Fault.CANCEL_FAIL)

    @precondition(has_current_job)
    @rule(pick=st.integers(min_value=0), reason=st.sampled_from(["node failure", "out of memory"]))
    def job_dies(self, pick: int, reason: str) -> None:
        jobs = self.current_jobs()
        index, job = jobs[pick % len(jobs)]
        self.sched.kill(job.job_id, reason)
        if self.controllers[index].lifecycle.phase.waiting:
            self.deaths[index] = Death(job.job_id, reason, self.clock.now())

    def listed_jobs(self) -> list[tuple[int, object]]:
        """(server index, scheduler job) for each server's job still listed,
        finished or not: a finished job may also vanish early."""
        found = []
        for index, controller in enumerate(self.controllers):
            job = self.sched.jobs.get(controller.lifecycle.job_id or "")
            if job is not None and not job.purged:
                found.append((index, job))
        return found

    def has_listed_job(self) -> bool:
        return bool(self.listed_jobs())

    @precondition(has_listed_job)
    @rule(pick=st.integers(min_value=0))
    def job_purged_early(self, pick: int) -> None:
        jobs = self.listed_jobs()
        index, job = jobs[pick % len(jobs)]
        self.sched.purge(job.job_id)
        self.deaths.pop(index, None)

    @precondition(has_current_job)
    @rule(pick=st.integers(min_value=0), code=st.sampled_from([0, 1]))
    def server_exits(self, pick: int, code: int) -> None:
        jobs = self.current_jobs()
        _, job = jobs[pick % len(jobs)]
        self.sched.finish(job.job_id, code)

    @precondition(has_current_job)
    @rule(pick=st.integers(min_value=0))
    def job_requeued(self, pick: int) -> None:
        jobs = self.current_jobs()
        _, job = jobs[pick % len(jobs)]
        self.sched.requeue(job.job_id)

    @precondition(has_current_job)
    @rule(pick=st.integers(min_value=0), release=st.booleans())
    def hold_or_release(self, pick: int, release: bool) -> None:
        jobs = self.current_jobs()
        _, job = jobs[pick % len(jobs)]
        (self.sched.release if release else self.sched.hold)(job.job_id)

    # --- invariants ----------------------------------------------------
    def job_counts_as_live(self, job) -> bool:
        """Live and not already being cancelled by the scheduler."""
        return job.live and job.state is not JobState.STOPPING

    def check_deaths_reported(self) -> None:
        for index, death in list(self.deaths.items()):
            lc = self.controllers[index].lifecycle
            job = self.sched.jobs[death.job_id]
            if lc.job_id != death.job_id or job.purged:
                continue
            assert lc.phase is Phase.FAILED, (
                f"job {death.job_id} died ({death.reason}) at {death.at}; at {self.clock.now()} "
                f"after a successful query the spawn is still {lc.phase.value}"
            )
            assert death.reason in lc.failure, f"the failure {lc.failure!r} lacks the reason {death.reason!r}"
            del self.deaths[index]

    @invariant()
    def no_orphans(self) -> None:
        if not hasattr(self, "sched"):
            return
        for job in self.sched.jobs.values():
            if self.job_counts_as_live(job):
                assert job.job_id in self.monitor.jobs, f"live job {job.job_id} ({job.name}) is untracked"

    @invariant()
    def one_live_job_per_server(self) -> None:
        if not hasattr(self, "sched"):
            return
        live = [job.name for job in self.sched.jobs.values() if self.job_counts_as_live(job)]
        assert len(live) == len(set(live)), f"two live jobs for one server: {sorted(live)}"

    @invariant()
    def stopped_means_the_job_is_gone(self) -> None:
        """A failed or timed-out query never makes a server stopped: a
        finished spawn's job is really over (or being cancelled)."""
        if not hasattr(self, "sched"):
            return
        for controller in self.controllers:
            lc = controller.lifecycle
            job = self.sched.jobs.get(lc.job_id) if lc.job_id else None
            if lc.phase.finished and job is not None:
                assert not self.job_counts_as_live(job), (
                    f"server {controller.username}/{controller.server_name} is {lc.phase.value} "
                    f"but its job {job.job_id} is {job.state.name}"
                )

    @invariant()
    def states_only_move_forward(self) -> None:
        if not hasattr(self, "sched"):
            return
        for job_id, entry in self.monitor.jobs.items():
            if entry.observation is None:
                continue
            state = entry.observation.state
            old = self.seen_job_states.get(job_id)
            if old is not None:
                assert state >= old, f"job {job_id} went back from {old.name} to {state.name}"
                assert not old.terminal or state is old, f"terminal {old.name} of job {job_id} did not absorb"
            self.seen_job_states[job_id] = state
        for index, controller in enumerate(self.controllers):
            lc = controller.lifecycle
            old_id, old_state = self.seen_lifecycle.get(index, (None, None))
            if lc.job_id == old_id and old_state is not None and lc.job_state is not None:
                assert lc.job_state >= old_state, f"server {index} job state went back"
                assert not old_state.terminal or lc.job_state is old_state, "a terminal state did not absorb"
            self.seen_lifecycle[index] = (lc.job_id, lc.job_state)

    @invariant()
    def cancel_is_idempotent(self) -> None:
        if hasattr(self, "sched"):
            self.note_cancels()

    @invariant()
    def deaths_fail_promptly(self) -> None:
        """Between ticks a dead job's spawn may still wait, but never past
        one monitor interval plus any backoff of failed queries."""
        if not hasattr(self, "sched"):
            return
        for index, death in self.deaths.items():
            lc = self.controllers[index].lifecycle
            if lc.job_id == death.job_id:
                assert lc.phase in (Phase.FAILED, Phase.QUEUED, Phase.STARTING)


SpawnMachine.TestCase.settings = settings()
TestSpawnProperties = SpawnMachine.TestCase
