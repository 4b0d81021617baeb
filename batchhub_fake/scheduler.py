"""An in-memory batch scheduler on virtual time, with fault injection.

It behaves like a small cluster: a number of slots (cores), a queue delay
before a job may start, a start-up phase, run-time limits, cancellation,
and finished jobs that stay listed for ``purge_age`` seconds (Slurm's
MinJobAge) before they vanish. Everything is deterministic from the seed
and the calls made, so a failing property test replays exactly.

``execute`` answers the fake's textual commands (see ``protocol``) the
way a real scheduler's command-line tools would, faults included.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from batchhub.jobs import Command, CommandResult, JobState

from . import protocol
from .clock import FakeClock
from .faults import Fault, Faults

__all__ = ["FakeClock", "FakeJob", "FakeScheduler", "Faults", "SubmitRejected"]


class SubmitRejected(Exception):
    """The fake scheduler refused a job; the message is what it printed."""


@dataclass
class FakeJob:
    """One job as the fake scheduler knows it."""

    job_id: str
    owner: str
    name: str
    script: str
    options: dict[str, str]
    cores: int
    submit_time: float
    runtime_limit: float | None = None
    #: Test hook: a job that ends by itself this long after it starts running.
    exit_after: float | None = None
    exit_code_when_done: int = 0
    state: JobState = JobState.PENDING
    native: str = "PD"
    reason: str = "waiting in the queue"
    held: bool = False
    host: str | None = None
    start_time: float | None = None
    stop_time: float | None = None
    end_time: float | None = None
    exit_code: int | None = None
    purged: bool = False
    #: Every state the job went through, in order (for invariant checks).
    history: list[JobState] = field(default_factory=list)

    @property
    def live(self) -> bool:
        """Still holds (or waits for) resources: not ended."""
        return not self.state.terminal

    @property
    def listed(self) -> bool:
        return not self.purged


class FakeScheduler:
    """The scheduler itself. Use ``execute`` (through ``FakeRunner``) for the
    textual command interface, and the methods below to set up scenarios
    and inject faults."""

    def __init__(
        self,
        seed: int = 0,
        clock: FakeClock | None = None,
        *,
        slots: int = 4,
        queue_delay: float = 2.0,
        start_delay: float = 3.0,
        stop_delay: float = 0.0,
        purge_age: float = 300.0,
        hosts: Sequence[str] = ("fake-node-1",),
        faults: Faults | None = None,
    ) -> None:
        self.rng = random.Random(seed)
        self.clock = clock or FakeClock()
        self.slots = slots
        self.queue_delay = queue_delay
        self.start_delay = start_delay
        self.stop_delay = stop_delay
        self.purge_age = purge_age
        self.hosts = tuple(hosts)
        self.faults = faults or Faults()
        self.jobs: dict[str, FakeJob] = {}
        self._next_id = 1
        self._synced = self.clock.now()

    # --- what a test can look at ---------------------------------------
    def live_jobs(self) -> list[FakeJob]:
        self.sync()
        return [job for job in self.jobs.values() if job.live]

    def listed_jobs(self) -> list[FakeJob]:
        self.sync()
        return [job for job in self.jobs.values() if job.listed]

    def used_slots(self) -> int:
        return sum(job.cores for job in self.jobs.values() if job.state.active)

    # --- scheduler operations ------------------------------------------
    def submit(self, script: str, owner: str) -> str:
        """Queue a job; its ``#FAKE`` directives set name, cores, limits."""
        self.sync()
        if self.faults.fire(Fault.SUBMIT_FAIL, self.rng):
            raise SubmitRejected("Batch job submission failed: the fake controller is not accepting jobs")
        try:
            options = protocol.parse_directives(script)
        except protocol.DirectiveError as exc:
            raise SubmitRejected(f"Batch job submission failed: {exc}") from None
        cores = int(options.get("cores", "1"))
        if cores > self.slots:
            raise SubmitRejected(
                f"Batch job submission failed: requested {cores} cores but the fake cluster has {self.slots}"
            )
        job_id = str(self._next_id)
        self._next_id += 1
        job = FakeJob(
            job_id=job_id,
            owner=owner,
            name=options.get("name", "job"),
            script=script,
            options=options,
            cores=cores,
            submit_time=self.clock.now(),
            runtime_limit=float(options["time"]) if "time" in options else None,
        )
        self.jobs[job_id] = job
        if "hold" in options:
            self._set(job, JobState.HELD, "H", "the job is held")
            job.held = True
        else:
            self._set(job, JobState.PENDING, "PD", "waiting in the queue")
        self.sync()
        return job_id

    def cancel(self, job_ids: Iterable[str], user: str | None) -> dict[str, str]:
        """Cancel jobs as ``user`` (``None``: the administrator). Returns the
        word the cancel command prints for each job."""
        self.sync()
        outcome: dict[str, str] = {}
        for job_id in job_ids:
            job = self.jobs.get(job_id)
            if job is None or job.purged:
                outcome[job_id] = "not-found"
            elif user is not None and user != job.owner:
                outcome[job_id] = "denied"
            elif job.state.terminal or job.state is JobState.STOPPING:
                outcome[job_id] = "finished"
            else:
                if job.state.queued or self.stop_delay <= 0:
                    self._end(job, JobState.CANCELLED, "CA", "cancelled by its owner", None)
                else:
                    job.stop_time = self.clock.now()
                    self._set(job, JobState.STOPPING, "CG", "being cancelled")
                outcome[job_id] = "cancelled"
        self.sync()
        return outcome

    def hold(self, job_id: str) -> None:
        self.sync()
        job = self.jobs[job_id]
        if job.state.queued:
            job.held = True
            self._set(job, JobState.HELD, "H", "the job is held")

    def release(self, job_id: str) -> None:
        self.sync()
        job = self.jobs[job_id]
        if job.state is JobState.HELD:
            job.held = False
            self._set(job, JobState.PENDING, "PD", "waiting in the queue")
        self.sync()

    def kill(self, job_id: str, reason: str = "node failure") -> None:
        """A job dies: ``reason`` is "node failure" or "out of memory"."""
        self.sync()
        job = self.jobs[job_id]
        if job.live:
            native = "OOM" if "memory" in reason else "NF"
            self._end(job, JobState.FAILED, native, reason, 137 if native == "OOM" else None)
        self.sync()

    def requeue(self, job_id: str) -> None:
        """A started job goes back to the queue (as after a node failure
        with requeue): its state moves backwards, which consumers must ignore."""
        self.sync()
        job = self.jobs[job_id]
        if job.state.active and job.state is not JobState.STOPPING:
            job.start_time, job.host = None, None
            self._set(job, JobState.PENDING, "PD", "requeued")
        self.sync()

    def finish(self, job_id: str, exit_code: int = 0) -> None:
        """The job's script ends by itself now (the server was shut down)."""
        self.sync()
        job = self.jobs[job_id]
        if job.state.active and job.state is not JobState.STOPPING:
            job.exit_code_when_done = exit_code
            self._finish(job, self.clock.now())
        self.sync()

    def purge(self, job_id: str) -> None:
        """The job vanishes from every listing at once; a live job ends."""
        self.sync()
        job = self.jobs[job_id]
        if job.live:
            self._end(job, JobState.FAILED, "F", "purged from the scheduler", None)
        job.purged = True

    # --- the simulation ------------------------------------------------
    def sync(self) -> None:
        """Bring every job up to the clock's time, event by event."""
        now = self.clock.now()
        while True:
            event = self._next_event()
            if event is None or event[0] > now:
                break
            at, job, action = event
            self._synced = max(self._synced, at)
            action(job, at)
        elapsed = max(now - self._synced, 0.0)
        if (elapsed > 0 and self.faults.job_death > 0) or self.faults.forced[Fault.JOB_DEATH]:
            hazard = 1 - (1 - min(self.faults.job_death, 1.0)) ** elapsed
            for job in self.jobs.values():
                dies = job.state.active and job.state is not JobState.STOPPING
                if dies and self.faults.fire(Fault.JOB_DEATH, self.rng, hazard):
                    reason = self.rng.choice(["node failure", "out of memory"])
                    native = "OOM" if reason == "out of memory" else "NF"
                    self._end(job, JobState.FAILED, native, reason, 137 if native == "OOM" else None)
        self._synced = now

    def _next_event(self) -> tuple[float, FakeJob, object] | None:
        best: tuple[float, FakeJob, object] | None = None

        def consider(at: float, job: FakeJob, action: object) -> None:
            nonlocal best
            if best is None or at < best[0]:
                best = (at, job, action)

        free = self.slots - self.used_slots()
        head_seen = False
        for job in self.jobs.values():  # submission order: strict first-come first-served
            if job.state is JobState.PENDING and not head_seen:
                head_seen = True
                if job.cores <= free:
                    consider(max(self._synced, job.submit_time + self.queue_delay), job, self._start)
            elif job.state is JobState.STARTING:
                consider(job.start_time + self.start_delay, job, self._run)
            elif job.state is JobState.RUNNING:
                if job.runtime_limit is not None:
                    consider(job.start_time + job.runtime_limit, job, self._time_out)
                if job.exit_after is not None:
                    consider(job.start_time + job.exit_after, job, self._finish)
            elif job.state is JobState.STOPPING:
                consider(job.stop_time + self.stop_delay, job, self._stopped)
            elif job.state.terminal and not job.purged:
                consider(job.end_time + self.purge_age, job, self._purge)
        return best

    def _start(self, job: FakeJob, at: float) -> None:
        job.start_time = at
        job.host = self.hosts[int(job.job_id) % len(self.hosts)]
        self._set(job, JobState.STARTING, "ST", "")

    def _run(self, job: FakeJob, at: float) -> None:
        self._set(job, JobState.RUNNING, "R", "")

    def _time_out(self, job: FakeJob, at: float) -> None:
        self._end(job, JobState.TIMEOUT, "TO", "the job reached its run-time limit", None, at)

    def _finish(self, job: FakeJob, at: float) -> None:
        code = job.exit_code_when_done
        state, native = (JobState.COMPLETED, "CD") if code == 0 else (JobState.FAILED, "F")
        self._end(job, state, native, "", code, at)

    def _stopped(self, job: FakeJob, at: float) -> None:
        self._end(job, JobState.CANCELLED, "CA", "cancelled by its owner", None, at)

    def _purge(self, job: FakeJob, at: float) -> None:
        job.purged = True

    def _set(self, job: FakeJob, state: JobState, native: str, reason: str) -> None:
        job.state, job.native, job.reason = state, native, reason
        job.history.append(state)

    def _end(
        self,
        job: FakeJob,
        state: JobState,
        native: str,
        reason: str,
        exit_code: int | None,
        at: float | None = None,
    ) -> None:
        job.end_time = self.clock.now() if at is None else at
        job.exit_code = exit_code
        self._set(job, state, native, reason)

    # --- the command-line interface -------------------------------------
    def execute(self, command: Command, default_timeout: float = 30.0) -> CommandResult:
        """Run one fake command in process and return what it printed.

        A hanging command advances the clock by its timeout and comes back
        ``timed_out``, as the real runner reports a command it had to kill.
        A hung or killed submit creates no job, except under the ``submit_lost``
        fault, which creates it and loses the answer (a frozen controller).
        """
        started = self.clock.now()
        timeout = command.timeout or default_timeout
        verb = protocol.verb_of(command.argv)

        def result(rc: int, out: str = "", err: str = "", timed_out: bool = False) -> CommandResult:
            return CommandResult(command, rc, out, err, self.clock.now() - started, timed_out)

        if self.faults.fire(Fault.SLOW, self.rng):
            self.clock.advance(min(self.faults.slow_seconds, timeout))
            if self.faults.slow_seconds >= timeout:
                return result(-9, timed_out=True)
        if verb in (protocol.STATUS, protocol.LIST) and self.faults.fire(Fault.STATUS_HANG, self.rng):
            self.clock.advance(timeout)
            return result(-9, timed_out=True)
        args = list(command.argv[command.argv.index(verb) + 1 :]) if verb else []
        if verb == protocol.SUBMIT:
            return self._cmd_submit(command, result, timeout)
        if verb == protocol.STATUS and len(args) == 1:
            return self._cmd_status(protocol.split_ids(args[0]), result)
        if verb == protocol.LIST and not args:
            return self._cmd_list(result)
        if verb == protocol.CANCEL and len(args) == 1:
            return self._cmd_cancel(protocol.split_ids(args[0]), command.as_user, result)
        return result(2, err=f"fake: usage: {' | '.join(protocol.VERBS)} (got {list(command.argv)!r})\n")

    def _cmd_submit(self, command: Command, result, timeout: float) -> CommandResult:
        try:
            job_id = self.submit(command.stdin or "", command.as_user or "root")
        except SubmitRejected as exc:
            return result(1, err=f"{protocol.SUBMIT}: error: {exc}\n")
        if self.faults.fire(Fault.SUBMIT_LOST, self.rng):
            self.clock.advance(timeout)  # the job exists; its id never comes back
            return result(-9, timed_out=True)
        return result(0, out=f"Submitted fake job {job_id}\n")

    def _cmd_status(self, job_ids: list[str], result) -> CommandResult:
        if self.faults.fire(Fault.STATUS_FAIL, self.rng):
            return result(1, err=f"{protocol.STATUS}: error: unable to contact the fake controller\n")
        if self.faults.fire(Fault.STATUS_GARBAGE, self.rng):
            return result(0, out="\x00\x17<html>502 Bad Gateway</html>\n")
        self.sync()
        lines = [protocol.STATUS_HEADER]
        for job_id in job_ids:
            job = self.jobs.get(job_id)
            if job is None or job.purged:
                continue
            if self.faults.fire(Fault.PURGE_EARLY, self.rng):
                self.purge(job_id)
                continue
            lines.append(protocol.status_line(job.job_id, job.native, job.host, job.exit_code, job.reason))
        return result(0, out="\n".join(lines) + "\n")

    def _cmd_list(self, result) -> CommandResult:
        if self.faults.fire(Fault.STATUS_FAIL, self.rng):
            return result(1, err=f"{protocol.LIST}: error: unable to contact the fake controller\n")
        self.sync()
        lines = [protocol.LIST_HEADER]
        lines += [protocol.list_line(job.job_id, job.native, job.owner, job.name) for job in self.live_jobs()]
        return result(0, out="\n".join(lines) + "\n")

    def _cmd_cancel(self, job_ids: list[str], user: str | None, result) -> CommandResult:
        if self.faults.fire(Fault.CANCEL_FAIL, self.rng):
            return result(1, err=f"{protocol.CANCEL}: error: the fake controller is busy, try again\n")
        outcome = self.cancel(job_ids, user)
        return result(0, out="".join(f"{job_id} {word}\n" for job_id, word in outcome.items()))
