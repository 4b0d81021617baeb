"""Values shared by the core and every backend: job states, observations,
commands and their results, resource requests and job specs.

Everything here is an immutable value with no I/O, so backends and the
lifecycle can be tested as pure functions.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


class JobState(enum.IntEnum):
    """A scheduler-neutral job state, ordered along a job's life.

    The order matters: a job only moves forward (a higher value), and the
    terminal states absorb. Backends map their native states onto these.
    """

    PENDING = 10
    HELD = 20
    STARTING = 30
    RUNNING = 40
    SUSPENDED = 50
    STOPPING = 60
    COMPLETED = 100
    FAILED = 101
    CANCELLED = 102
    TIMEOUT = 103
    LOST = 104

    @property
    def terminal(self) -> bool:
        return self >= JobState.COMPLETED

    @property
    def queued(self) -> bool:
        """Waiting for the scheduler to start it (pending or held)."""
        return self in (JobState.PENDING, JobState.HELD)

    @property
    def active(self) -> bool:
        """Started on a node and not yet finished."""
        return JobState.STARTING <= self < JobState.COMPLETED


@dataclass(frozen=True)
class Observation:
    """What one status query said about one job.

    ``native_state`` keeps the scheduler's own word (``Eqw``, ``PENDING``)
    for display and logs; ``reason`` is a human sentence where the scheduler
    gave one (why it waits, why it failed).
    """

    job_id: str
    state: JobState
    native_state: str = ""
    reason: str = ""
    host: str | None = None
    exit_code: int | None = None


@dataclass(frozen=True)
class TaggedJob:
    """One live job of a listing by tag (``Backend.list_command``): enough to
    tell which server it belongs to and whom to cancel it as."""

    job_id: str
    name: str
    owner: str
    state: JobState


class CancelOutcome(enum.Enum):
    """What a cancel command achieved for one job."""

    REQUESTED = "requested"  # the scheduler accepted the cancel
    ALREADY_GONE = "already_gone"  # the job no longer exists: nothing to do
    DENIED = "denied"  # not ours to cancel (privileges)
    FAILED = "failed"  # the command failed; the job may still be live


def _frozen(mapping: Mapping[str, str] | None) -> Mapping[str, str]:
    return MappingProxyType(dict(mapping or {}))


def _hidden(value: str | None) -> str:
    return "None" if value is None else f"<{len(value)} characters>"


@dataclass(frozen=True, repr=False)
class Command:
    """One program to run: an argv list, never a shell line.

    ``as_user`` asks the runner to run it as that user (through the runner's
    configured prefix). ``env`` is the complete environment the program gets
    on top of the runner's small base; nothing of the hub's own environment
    leaks in by default. ``stdin`` is fed to the program, which is how job
    scripts reach ``qsub``/``sbatch``.
    """

    argv: tuple[str, ...]
    stdin: str | None = None
    as_user: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    timeout: float | None = None
    #: What the command is for (``submit``, ``status``, ``reason``, ``history``,
    #: ``list``, ``cancel``) and the backend that built it: set by the ``Backend``
    #: base on what its ``*_command`` builders return, read by the metrics only.
    kind: str = field(default="", compare=False)
    backend: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not self.argv or not all(isinstance(a, str) for a in self.argv):
            raise ValueError(f"a command needs a non-empty list of strings, got {self.argv!r}")
        object.__setattr__(self, "argv", tuple(self.argv))
        object.__setattr__(self, "env", _frozen(self.env))

    def __str__(self) -> str:  # for logs: never includes stdin or env
        who = f" (as {self.as_user})" if self.as_user else ""
        return " ".join(self.argv) + who

    def __repr__(self) -> str:
        # stdin and env values may carry the server's token: show their size and names only
        env = "{" + ", ".join(f"{key!r}: <hidden>" for key in self.env) + "}"
        return (
            f"Command(argv={self.argv!r}, stdin={_hidden(self.stdin)}, as_user={self.as_user!r}, "
            f"env={env}, timeout={self.timeout!r})"
        )


@dataclass(frozen=True, repr=False)
class CommandResult:
    """How a command ended. ``timed_out`` means it was killed at its limit."""

    command: Command
    returncode: int
    stdout: str = ""
    stderr: str = ""
    duration: float = 0.0
    timed_out: bool = False

    def __repr__(self) -> str:  # the command's own repr hides its stdin and env
        return (
            f"CommandResult(command={self.command!r}, returncode={self.returncode!r}, "
            f"stdout={self.stdout!r}, stderr={self.stderr!r}, duration={self.duration!r}, "
            f"timed_out={self.timed_out!r})"
        )

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    def describe(self) -> str:
        """A short account of a failure, for error messages."""
        if self.timed_out:
            return f"`{self.command.argv[0]}` did not answer within {self.command.timeout or 0:g} s"
        text = (self.stderr.strip() or self.stdout.strip() or "no output").splitlines()
        return f"`{self.command.argv[0]}` exited {self.returncode}: {' '.join(text[-3:])[:500]}"


#: A mail address a directive may carry: one ``@``, no spaces, quotes,
#: commas or control characters, and nothing that could look like an option.
EMAIL_RE = re.compile(
    r"(?=.{3,254}\Z)[A-Za-z0-9_+][A-Za-z0-9._+-]{0,63}"
    r"@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
)


@dataclass(frozen=True)
class ResourceRequest:
    """What a user asked for, already validated against the admin's limits.

    ``memory_mb`` is the total for the job, ``runtime_s`` the wall-clock limit;
    ``None`` leaves the choice to the scheduler's defaults.
    """

    cores: int = 1
    memory_mb: int | None = None
    gpus: int = 0
    runtime_s: int | None = None
    queue: str | None = None
    project: str | None = None
    #: Grid Engine's parallel environment (``-pe mpi 8``); ``None``: the backend's own rule.
    pe: str | None = None
    #: Slurm: nodes, and tasks on each; ``cores`` is then the cores of each task.
    nodes: int = 1
    tasks_per_node: int = 1
    #: Where the scheduler mails when the job ends or fails; ``None``: no mail.
    email: str | None = None

    @property
    def total_cores(self) -> int:
        """Cores of the whole job: ``cores`` on each of ``nodes`` x ``tasks_per_node`` tasks."""
        return self.cores * self.nodes * self.tasks_per_node


@dataclass(frozen=True)
class JobSpec:
    """Everything a backend needs to build one job's submission.

    ``job_name`` carries the batchhub tag so that jobs can be found again by
    name. ``workdir`` is the private per-server directory (0700, owned by the
    user) that holds the token file and the job's output and error files.
    ``env`` holds non-secret variables for the job; the server token never
    travels here. ``command`` is the argv the job script runs.
    """

    username: str
    server_name: str
    job_name: str
    resources: ResourceRequest
    workdir: str
    command: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    prologue: str = ""
    epilogue: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "env", _frozen(self.env))
        object.__setattr__(self, "command", tuple(self.command))

    @property
    def output_path(self) -> str:
        return f"{self.workdir}/job.out"

    @property
    def error_path(self) -> str:
        return f"{self.workdir}/job.err"


class BatchhubError(Exception):
    """Base of every error batchhub raises on purpose.

    The message is written for the person who will read it: the user at the
    spawn page or the admin reading the log, and says what to do.
    """


class SubmitError(BatchhubError):
    """The scheduler refused the job; the message is fit to show the user."""


class SubmitUncertain(SubmitError):
    """The submit command timed out or lost its connection: the scheduler
    may have created the job. The controller looks for it by its name."""


class QueryError(BatchhubError):
    """A status query failed: the jobs' states are unknown, not ended."""


class HistoryUnavailable(QueryError):
    """The scheduler keeps no accounting here: raised by ``parse_history``
    so the monitor stops asking, instead of asking again for every job."""


class ConfigError(BatchhubError):
    """The site's configuration is wrong; the message says how to fix it."""
