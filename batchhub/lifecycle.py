"""The spawn lifecycle as a pure state machine.

One ``Lifecycle`` per server. It consumes events (the job was submitted,
the scheduler said something, the job reported its port, a stop was asked
for, a timeout passed) and moves between phases. It does no I/O and reads
no clock, so property tests can drive it through any sequence; the
controller (``batchhub.controller``) turns its phases into commands.

Phases::

    IDLE ─start─► SUBMITTING ─submitted─► QUEUED ─running─► STARTING ─port+host─► READY
                      │ rejected            │  ended          │ ended               │ ended
                      ▼                     ▼                 ▼                     ▼
                    FAILED ◄────────────────┴─────────────────┘                  STOPPED
    any live phase ─stop/timeout─► STOPPING ─job gone─► STOPPED
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, fields
from typing import Any

from .jobs import CancelOutcome, JobState, Observation


class Phase(enum.Enum):
    IDLE = "idle"
    SUBMITTING = "submitting"
    QUEUED = "queued"
    STARTING = "starting"
    READY = "ready"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"

    @property
    def waiting(self) -> bool:
        """The spawn is under way: the user is watching the progress page."""
        return self in (Phase.SUBMITTING, Phase.QUEUED, Phase.STARTING)

    @property
    def finished(self) -> bool:
        return self in (Phase.IDLE, Phase.STOPPED, Phase.FAILED)


# --- events ------------------------------------------------------------


@dataclass(frozen=True)
class StartRequested:
    pass


@dataclass(frozen=True)
class Submitted:
    job_id: str


@dataclass(frozen=True)
class SubmitFailed:
    message: str


@dataclass(frozen=True)
class SubmitUnanswered:
    """The submit command's answer was lost: the job may exist, and is
    being looked for by its name."""

    message: str


@dataclass(frozen=True)
class Observed:
    observation: Observation


@dataclass(frozen=True)
class PortReported:
    port: int


@dataclass(frozen=True)
class StopRequested:
    reason: str = ""


@dataclass(frozen=True)
class TimedOut:
    message: str


@dataclass(frozen=True)
class CancelDone:
    outcome: CancelOutcome
    message: str = ""


Event = (
    StartRequested
    | Submitted
    | SubmitFailed
    | SubmitUnanswered
    | Observed
    | PortReported
    | StopRequested
    | TimedOut
    | CancelDone
)


@dataclass
class Lifecycle:
    """The state of one server's spawn. Mutated only by ``apply``."""

    phase: Phase = Phase.IDLE
    job_id: str | None = None
    job_state: JobState | None = None
    native_state: str = ""
    host: str | None = None
    port: int | None = None
    message: str = ""
    exit_code: int | None = None
    #: Set when the spawn ended badly (rejected, died, timed out) so the
    #: user is told why even after the stop that follows.
    failure: str = ""
    #: A cancel was accepted by the scheduler; do not send another.
    cancel_sent: bool = False
    history: list[str] = field(default_factory=list, repr=False)

    # --- queries ---------------------------------------------------------
    @property
    def job_live(self) -> bool:
        """A job exists that the scheduler may still be running."""
        return self.job_id is not None and not (self.job_state is not None and self.job_state.terminal)

    @property
    def needs_cancel(self) -> bool:
        return self.phase is Phase.STOPPING and self.job_live and not self.cancel_sent

    @property
    def awaiting_port(self) -> bool:
        """Whether a port report is welcome now: once, only while starting."""
        return self.phase in (Phase.QUEUED, Phase.STARTING) and self.port is None

    # --- transitions -----------------------------------------------------
    def apply(self, event: Event) -> bool:
        """Apply one event; returns whether anything changed. Events that
        make no sense in the current phase are ignored, never raised: the
        scheduler and the hub race, and a late message is normal."""
        before = self.snapshot()
        handler = getattr(self, f"_on_{type(event).__name__}")
        handler(event)
        changed = self.snapshot() != before
        if changed:
            self.history.append(f"{type(event).__name__} -> {self.phase.value}")
            del self.history[:-50]
        return changed

    def _on_StartRequested(self, event: StartRequested) -> None:
        if self.phase.finished:
            # a new spawn starts from nothing but the history
            fresh = Lifecycle(phase=Phase.SUBMITTING, message="Submitting the job", history=self.history)
            self.__dict__.update(fresh.__dict__)

    def _on_Submitted(self, event: Submitted) -> None:
        if self.phase is Phase.SUBMITTING:
            self.job_id, self.job_state, self.phase = event.job_id, JobState.PENDING, Phase.QUEUED
            self.message = f"Job {event.job_id} submitted"
        elif self.phase is Phase.STOPPING and self.job_id is None:
            # stopped while the submit was in flight: the new job must be cancelled
            self.job_id, self.job_state = event.job_id, JobState.PENDING

    def _on_SubmitFailed(self, event: SubmitFailed) -> None:
        if self.phase is Phase.SUBMITTING:
            self.phase, self.message, self.failure = Phase.FAILED, event.message, event.message
        elif self.phase is Phase.STOPPING and self.job_id is None:
            self.phase = Phase.STOPPED

    def _on_SubmitUnanswered(self, event: SubmitUnanswered) -> None:
        if self.phase is Phase.SUBMITTING:
            self.message = event.message

    def _on_Observed(self, event: Observed) -> None:
        obs = event.observation
        if obs.job_id != self.job_id or self.phase.finished:
            return
        if self.job_state is not None and (self.job_state.terminal or obs.state < self.job_state):
            return  # states only move forward; terminal states absorb
        self.job_state, self.native_state = obs.state, obs.native_state
        if obs.host:
            self.host = obs.host
        if obs.state.terminal:
            self._job_ended(obs)
        elif self.phase is Phase.QUEUED:
            if obs.state.active:
                self.phase = Phase.STARTING
                self.message = f"Job {self.job_id} running on {self.host}" if self.host else "Job starting"
            else:
                self.message = f"Job {self.job_id} queued" + (f": {obs.reason}" if obs.reason else "")
            self._maybe_ready()
        elif self.phase is Phase.STARTING:
            self._maybe_ready()

    def _job_ended(self, obs: Observation) -> None:
        self.exit_code = obs.exit_code
        if self.phase.waiting:
            why = obs.reason or f"state {obs.native_state or obs.state.name}"
            self.failure = f"The job ended before the server started ({why})."
            self.phase, self.message = Phase.FAILED, self.failure
        else:  # READY or STOPPING: the server is gone
            self.phase = Phase.STOPPED
            self.message = f"Job {self.job_id} ended" + (f": {obs.reason}" if obs.reason else "")

    def _maybe_ready(self) -> None:
        if self.port is not None and self.host and self.job_state is JobState.RUNNING:
            self.phase, self.message = Phase.READY, f"Server ready on {self.host}:{self.port}"

    def _on_PortReported(self, event: PortReported) -> None:
        if self.awaiting_port:
            self.port = event.port
            self.message = f"Server listening on port {event.port}"
            self._maybe_ready()

    def _on_StopRequested(self, event: StopRequested) -> None:
        if self.phase is Phase.IDLE:
            self.phase = Phase.STOPPED
        elif not self.phase.finished and self.phase is not Phase.STOPPING:
            self.phase = Phase.STOPPING
            self.message = event.reason or "Stopping"

    def _on_TimedOut(self, event: TimedOut) -> None:
        if self.phase.waiting:
            self.failure = event.message
            self.phase, self.message = Phase.STOPPING, event.message

    def _on_CancelDone(self, event: CancelDone) -> None:
        if self.phase is not Phase.STOPPING:
            return
        if event.outcome is CancelOutcome.ALREADY_GONE:
            if self.job_state is None or not self.job_state.terminal:
                self.job_state = JobState.CANCELLED
            self.phase = Phase.STOPPED
        elif event.outcome is CancelOutcome.REQUESTED:
            self.cancel_sent = True
            self.message = f"Cancelling job {self.job_id}"
        else:
            self.message = f"Could not cancel job {self.job_id}: {event.message}"

    # --- persistence -----------------------------------------------------
    def snapshot(self) -> tuple[Any, ...]:
        return tuple(getattr(self, f.name) for f in fields(self) if f.name != "history")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able record, for the hub's database."""
        return {
            "phase": self.phase.value,
            "job_id": self.job_id,
            "job_state": self.job_state.name if self.job_state else None,
            "native_state": self.native_state,
            "host": self.host,
            "port": self.port,
            "message": self.message,
            "exit_code": self.exit_code,
            "failure": self.failure,
            "cancel_sent": self.cancel_sent,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Lifecycle:
        state = data.get("job_state")
        return cls(
            phase=Phase(data.get("phase", "idle")),
            job_id=data.get("job_id"),
            job_state=JobState[state] if state else None,
            native_state=data.get("native_state", ""),
            host=data.get("host"),
            port=data.get("port"),
            message=data.get("message", ""),
            exit_code=data.get("exit_code"),
            failure=data.get("failure", ""),
            cancel_sent=bool(data.get("cancel_sent", False)),
        )
