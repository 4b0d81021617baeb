"""One server's job, driven through its lifecycle.

The controller binds a ``Lifecycle`` to the commands that move it: submit,
cancel and the shared monitor's observations. It knows nothing of
JupyterHub, so the property tests drive it against the fake scheduler
exactly as the spawner drives it against a real one.

Each blocking operation has a step form the tests use on a virtual clock
(``submit``, ``request_stop``, ``outcome``) and a waiting form the spawner
uses (``wait_ready``, ``stop``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from .aio import wait_event
from .backend import Backend
from .events import JobEvent
from .jobs import BatchhubError, CancelOutcome, JobSpec, JobState, Observation, SubmitUncertain
from .lifecycle import (
    CancelDone,
    Lifecycle,
    Observed,
    Phase,
    PortReported,
    StartRequested,
    StopRequested,
    SubmitFailed,
    Submitted,
    SubmitUnanswered,
    TimedOut,
)
from .monitor import JobMonitor, Runner
from .poller import ASK
from .sweeper import Sweeper

log = logging.getLogger("batchhub.controller")


class SpawnFailed(Exception):
    """The spawn cannot succeed; the message is for the user."""


def describe_duration(seconds: float) -> str:
    """``3 min 10 s``, ``45 s``, ``2 h 5 min``: a wait as people say it."""
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if minutes:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    return f"{secs} s"


def describe_start(start: datetime, now: float) -> str:
    """``at 14:05 (in 12 min)``; the date as well when not today."""
    local = start.astimezone()
    today = datetime.fromtimestamp(now).astimezone().date()
    when = local.strftime("%H:%M") if local.date() == today else local.strftime("%Y-%m-%d %H:%M")
    ahead = start.timestamp() - now
    return f"at {when}" + (f" (in {describe_duration(ahead)})" if ahead >= 60 else "")


class JobController:
    """Submits, watches and cancels the job of one user's server."""

    def __init__(
        self,
        backend: Backend,
        runner: Runner,
        monitor: JobMonitor,
        *,
        username: str,
        server_name: str = "",
        on_event: Callable[[JobEvent], None] | None = None,
        clock: Callable[[], float] = time.time,
        sweeper: Sweeper | None = None,
        uncertain_wait: float = 120.0,
    ) -> None:
        self.backend = backend
        self.runner = runner
        self.monitor = monitor
        self.username = username
        self.server_name = server_name
        self.on_event = on_event
        self.clock = clock
        #: Finds this server's jobs by name; ``None`` where the backend cannot list.
        self.sweeper = sweeper if sweeper is not None and sweeper.can_list else None
        #: Seconds a submission whose answer was lost is looked for before giving up.
        self.uncertain_wait = uncertain_wait
        self.lifecycle = Lifecycle()
        self._wake = asyncio.Event()
        self._submitting: asyncio.Task[str] | None = None
        #: The state came from a previous hub process (``load_state``).
        self.adopted = False
        #: When (``clock``) the job entered the queue: its submission, or its adoption.
        self.queued_since: float | None = None

    # --- events ---------------------------------------------------------
    def _emit(self, kind: str, message: str = "") -> None:
        if self.on_event is None:
            return
        lc = self.lifecycle
        event = JobEvent(
            kind=kind,
            username=self.username,
            server_name=self.server_name,
            backend=self.backend.name,
            job_id=lc.job_id,
            time=self.clock(),
            state=lc.job_state.name if lc.job_state else "",
            message=message or lc.message,
        )
        try:
            self.on_event(event)
        except Exception:  # observers never break a spawn
            log.exception("job event observer failed")

    def _changed(self) -> None:
        self._wake.set()

    def _on_observation(self, obs: Observation) -> None:
        lc = self.lifecycle
        before = lc.phase
        if not lc.apply(Observed(obs)):
            return
        self._emit("state")
        if lc.phase is Phase.READY and before is not Phase.READY:
            self.monitor.set_starting(obs.job_id, False)
            self._emit("ready")
        if lc.phase.finished:
            # the job reached a terminal state: nothing left to watch or cancel
            self.monitor.untrack(obs.job_id)
            self._emit("failed" if lc.phase is Phase.FAILED else "stopped")
        self._changed()

    def _track(self) -> None:
        lc = self.lifecycle
        if lc.job_id is not None and lc.job_live:
            self.monitor.track(lc.job_id, self.username, self._on_observation, starting=lc.phase.waiting)
            if lc.phase is Phase.STOPPING:
                self.monitor.expect_gone(lc.job_id)

    # --- start ----------------------------------------------------------
    async def submit(self, spec: JobSpec, script: str, env: Mapping[str, str] | None = None) -> str:
        """Submit the job and start tracking it. Raises ``SpawnFailed``
        with the scheduler's reason when it is refused. ``env`` is added to
        the submit command's environment (never its argv).

        The submission runs shielded in a task of its own: if the caller is
        cancelled (a start timeout), the job id still reaches the lifecycle
        and the monitor, so a job is never submitted and forgotten.
        """
        if self.lifecycle.job_live:
            # a previous job of this server still lives: end it first, never run two
            await self.request_stop()
            if self.lifecycle.job_live and self.lifecycle.cancel_sent:
                await self.monitor.refresh()  # a cancelled queued job is usually gone at once
            if self.lifecycle.job_live:
                raise SpawnFailed(
                    f"The previous job {self.lifecycle.job_id} of this server could not be "
                    "cancelled yet. Try again in a minute; if it persists, ask the admins."
                )
        await self.end_strays()
        self.lifecycle.apply(StartRequested())
        self.adopted = False
        self._submitting = asyncio.ensure_future(self._submit(spec, script, env or {}))
        return await asyncio.shield(self._submitting)

    async def _submit(self, spec: JobSpec, script: str, env: Mapping[str, str]) -> str:
        lc = self.lifecycle
        try:
            command = self.backend.submit_command(spec, script)
            if env:
                command = dataclasses.replace(command, env={**command.env, **env})
            result = await self.runner.run(command)
            try:
                if result.timed_out:
                    raise SubmitUncertain(f"the scheduler did not answer within {command.timeout or 0:g} s")
                job_id = self.backend.parse_submit(result)
            except SubmitUncertain as exc:
                job_id = await self._find_lost_submission(spec, str(exc))
        except BatchhubError as exc:  # a refusal, or a runner that could not run it
            lc.apply(SubmitFailed(str(exc)))
            self._emit("failed", str(exc))
            self._changed()
            raise SpawnFailed(str(exc)) from None
        lc.apply(Submitted(job_id))
        self.queued_since = self.clock()
        self._track()
        self._emit("submitted")
        if lc.needs_cancel:  # a stop arrived while the submission was in flight
            await self._cancel()
        self._changed()
        return job_id

    async def _find_lost_submission(self, spec: JobSpec, why: str) -> str:
        """The submission's answer was lost, so its job may exist: look for
        it by its name, adopting it when found; otherwise give up with
        ``SubmitError`` and have it cancelled if it shows up later."""
        message = f"The scheduler did not answer the submission ({why}): the job may exist."
        if self.sweeper is None:
            raise SubmitUncertain(
                f"{message} This scheduler cannot be searched by job name; ask the admins to check "
                f"for a job named {spec.job_name} and cancel it, then try again."
            )
        self.lifecycle.apply(SubmitUnanswered(f"{message} Looking for it by its name"))
        self._emit("uncertain", message)
        self._changed()
        job_id = await self.sweeper.find(spec.job_name, spec.username, timeout=self.uncertain_wait)
        if job_id is not None:
            log.warning(
                "found job %s (%s) of %s after its submission went unanswered",
                job_id,
                spec.job_name,
                self.username,
            )
            return job_id
        self.sweeper.cancel_when_seen(spec.job_name, spec.username)
        raise SubmitUncertain(
            f"{message} No such job has appeared; if it does, it will be cancelled. "
            "Try again in a few minutes; tell the admins if the scheduler stays slow."
        )

    async def end_strays(self) -> list[str]:
        """Cancel every live job of this server the scheduler lists but
        this controller does not track (a submission whose answer was lost,
        a job a crashed hub never recorded): never two live jobs."""
        if self.sweeper is None:
            return []
        lc = self.lifecycle
        keep = [lc.job_id] if lc.job_id is not None and lc.job_live else []
        tag = self.backend.server_tag(self.username, self.server_name)
        return await self.sweeper.end_server_jobs(tag, self.username, keep)

    def report_port(self, port: int) -> bool:
        """The job reported its port. Accepted once, only while waiting."""
        if not self.lifecycle.awaiting_port:
            return False
        self.lifecycle.apply(PortReported(port))
        if self.lifecycle.phase is Phase.READY:
            assert self.lifecycle.job_id is not None
            self.monitor.set_starting(self.lifecycle.job_id, False)  # nobody waits now: poll slowly
            self._emit("ready")
        elif self.lifecycle.job_id is not None:
            self.monitor.poke()  # learn the host now rather than next interval
        self._changed()
        return True

    async def until_running(self, timeout: float) -> bool:
        """Wait until the scheduler says the job runs on a host, asking the
        monitor for an early tick; False when it does not within
        ``timeout`` or the spawn stops waiting for a port meanwhile."""
        deadline = time.monotonic() + timeout
        if not self._running():
            self.monitor.poke(urgent=True)  # the server is up and waits on this answer
        while not self._running():
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self.lifecycle.awaiting_port:
                return False
            self._wake.clear()
            await wait_event(self._wake, remaining)
        return True

    def _running(self) -> bool:
        lc = self.lifecycle
        return lc.job_state is JobState.RUNNING and bool(lc.host)

    def outcome(self) -> tuple[str, int] | None:
        """``(host, port)`` once ready; ``None`` while still starting.
        Raises ``SpawnFailed`` when the spawn has failed or was stopped."""
        lc = self.lifecycle
        if lc.phase is Phase.READY:
            assert lc.host is not None and lc.port is not None
            return lc.host, lc.port
        if lc.phase.waiting:
            return None
        raise SpawnFailed(lc.failure or lc.message or "The server was stopped before it started.")

    def time_out(self, message: str) -> None:
        """Give up waiting; the job is cancelled by the next ``request_stop``."""
        if self.lifecycle.apply(TimedOut(message)):
            self._emit("failed", message)
            self._changed()

    def queue_status(self) -> str:
        """While the job waits in the queue: how long, why, and when the
        scheduler expects it to start ("Job 12 queued for 3 min 10 s:
        Waiting for resources; expected to start at 14:05"); else ""."""
        lc = self.lifecycle
        if lc.phase is not Phase.QUEUED or lc.job_id is None:
            return ""
        waited = describe_duration(self.clock() - (self.queued_since or self.clock()))
        obs = self.monitor.observation(lc.job_id)
        line = f"Job {lc.job_id} queued for {waited}" + (f": {obs.reason}" if obs and obs.reason else "")
        start = self.monitor.expected_start(lc.job_id)
        if start is not None:
            line += f"; expected to start {describe_start(start, self.clock())}"
        return line

    def _timeout_message(self) -> str:
        """Why the spawn is given up, in the user's terms: how long it
        waited and where it stood."""
        lc = self.lifecycle
        waited = describe_duration(self.clock() - self.queued_since) if self.queued_since else ""
        if lc.phase is Phase.QUEUED:
            obs = self.monitor.observation(lc.job_id) if lc.job_id else None
            reason = obs.reason if obs and obs.reason else "the scheduler gave no reason"
            return f"Still queued after {waited}: {reason}"
        if lc.phase is Phase.STARTING:
            where = f" on {lc.host}" if lc.host else ""
            return f"The job started{where}, but its server did not answer within {waited} of submission"
        return "The scheduler did not take the job in time"

    async def wait_ready(self, timeout: float, *, cancel_wait: float = 60.0) -> tuple[str, int]:
        """Wait until the server is ready, failing promptly when the job
        ends first. When ``timeout`` passes the job is cancelled, waiting at
        most ``cancel_wait`` seconds for the scheduler, and ``SpawnFailed``
        says how long it waited, why, and whether the job is cancelled."""
        deadline = time.monotonic() + timeout
        while (ready := self.outcome()) is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                message = self._timeout_message()
                self.time_out(message)
                # the cancel goes on in the background if the scheduler is slow
                await asyncio.wait(
                    {asyncio.ensure_future(self.request_stop())}, timeout=max(cancel_wait, 0.1)
                )
                lc = self.lifecycle
                if lc.phase.finished or lc.cancel_sent:
                    message += "; the job was cancelled."
                else:
                    message += f"; the job {lc.job_id} could not be cancelled yet, and the hub keeps trying."
                message += " Try again later, or ask for fewer resources or another queue."
                raise SpawnFailed(message)
            self._wake.clear()
            await wait_event(self._wake, remaining)
        return ready

    # --- stop -----------------------------------------------------------
    async def request_stop(self, reason: str = "") -> None:
        """Ask for the job to end: idempotent, from any phase. Sends at
        most one cancel; the monitor then sees the job go."""
        if self._submitting is not None and not self._submitting.done():
            self.lifecycle.apply(StopRequested(reason))
            with contextlib.suppress(Exception):
                await asyncio.shield(self._submitting)  # its job id must be known to cancel it
        self.lifecycle.apply(StopRequested(reason))
        if self.lifecycle.needs_cancel:
            await self._cancel()
        if self.lifecycle.phase.finished and self.lifecycle.job_id is not None:
            self.monitor.untrack(self.lifecycle.job_id)
        self._changed()

    async def _cancel(self) -> None:
        lc = self.lifecycle
        job_id = lc.job_id
        assert job_id is not None
        self._track()  # keep watching it until it is gone
        self.monitor.expect_gone(job_id)
        result = await self.runner.run(self.backend.cancel_command([job_id], self.username))
        outcome = self.backend.read_cancel(result, [job_id])[job_id]
        if outcome is not CancelOutcome.REQUESTED and outcome is not CancelOutcome.ALREADY_GONE:
            log.warning("cancel of job %s failed (%s): %s", job_id, outcome.value, result.describe())
        lc.apply(CancelDone(outcome, "" if result.ok else result.describe()))
        if lc.phase.finished:
            self.monitor.untrack(job_id)
            self._emit("cancelled")
        else:
            self.monitor.poke()

    async def stop(self, timeout: float = 60.0) -> None:
        """Stop the server and return once its job is gone, or once
        ``timeout`` passes (the job then stays tracked and is cancelled
        again before this server's next start)."""
        await self.request_stop()
        await self.end_strays()
        deadline = time.monotonic() + timeout
        while self.lifecycle.phase is Phase.STOPPING and time.monotonic() < deadline:
            if self.lifecycle.needs_cancel:  # the last cancel failed: try again shortly
                await asyncio.sleep(min(2.0, max(0.0, deadline - time.monotonic())))
                await self._cancel()
                continue
            self._wake.clear()
            await wait_event(self._wake, deadline - time.monotonic())
        if self.lifecycle.phase is Phase.STOPPING:
            lc = self.lifecycle
            log.warning("job %s of %s not gone after %gs; still tracked", lc.job_id, self.username, timeout)

    # --- poll and state -------------------------------------------------
    async def poll(self) -> int | None:
        """``None`` while the job may still be running (also when the
        scheduler cannot be asked), else an exit status. After a hub restart
        the first poll waits for the monitor's first answer."""
        status = self.poll_now()
        if status is ASK:
            await self.monitor.settled(self.lifecycle.job_id)  # type: ignore[arg-type]
            return self.exit_status() if self.lifecycle.phase.finished else None
        return status

    def poll_now(self) -> int | object | None:
        """``poll()`` from what the monitor already knows, or ``ASK`` when
        only the awaited ``poll()`` can answer (the job has not been
        queried since this hub started)."""
        lc = self.lifecycle
        if lc.phase.finished:
            return self.exit_status()
        if lc.job_id is not None:
            self._track()
            if not self.monitor.is_settled(lc.job_id):
                return ASK
        return self.exit_status() if lc.phase.finished else None

    def exit_status(self) -> int:
        lc = self.lifecycle
        if lc.exit_code is not None:
            return lc.exit_code
        return 1 if lc.phase is Phase.FAILED else 0

    def get_state(self) -> dict[str, Any]:
        return {"backend": self.backend.name, **self.lifecycle.to_dict()}

    def load_state(self, state: dict[str, Any]) -> None:
        """Adopt a saved state (hub restart): a live job is tracked again,
        never submitted twice."""
        if not state or state.get("backend", self.backend.name) != self.backend.name:
            return
        self.lifecycle = Lifecycle.from_dict(state)
        self.adopted = True
        self._track()
