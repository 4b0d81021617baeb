"""The contract a scheduler backend fulfils.

A backend only builds commands and parses their results; it never runs
anything. The core runs every command (see ``batchhub.runner``), so a
backend is a set of pure functions that tests can drive with recorded
scheduler output.

Backends are traitlets ``Configurable``: a site sets their options in
``jupyterhub_config.py`` on the backend's own class (``c.SGEBackend.pe =
"mpi"``).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import re
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, ClassVar

from traitlets import Dict, Float, List, Unicode, validate
from traitlets.config import LoggingConfigurable

from .free import Free
from .jobs import (
    CancelOutcome,
    Command,
    CommandResult,
    ConfigError,
    JobSpec,
    JobState,
    Observation,
    QueryError,
    TaggedJob,
)

#: What a job name may hold once the core has built it (see ``job_name``).
JOB_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")


def wall_clock(seconds: int) -> str:
    """A run time as ``HH:MM:SS`` (hours may exceed 24), the form most
    schedulers take for a wall-clock limit."""
    hours, rest = divmod(int(seconds), 3600)
    return f"{hours:02d}:{rest // 60:02d}:{rest % 60:02d}"


def deprecated_program(program: str) -> Unicode:
    """An old option naming one program's path, kept so existing configs
    still work: ``qsub = deprecated_program("qsub")``. ``programs`` wins
    over it; setting it logs a warning saying what to write instead."""
    return Unicode(None, allow_none=True, help=f"Deprecated: use ``programs = {{{program!r}: PATH}}``.").tag(
        config=True, deprecated_program=program
    )


#: The ``*_command`` builders; what each returns is stamped with its kind.
COMMAND_KINDS = ("submit", "status", "reason", "start", "history", "list", "cancel", "free")


def _stamped(builder: Callable[..., Command | None], kind: str) -> Callable[..., Command | None]:
    """``builder``, whose ``Command`` carries ``kind`` and the backend's name
    (for the metrics), without the backend having to say either."""

    @functools.wraps(builder)
    def build(self: Backend, *args: Any, **kwargs: Any) -> Command | None:
        command = builder(self, *args, **kwargs)
        if isinstance(command, Command) and not command.kind:
            command = dataclasses.replace(command, kind=kind, backend=command.backend or self.name)
        return command

    return build


class Backend(LoggingConfigurable):
    """Base class of scheduler backends.

    A backend is its options (traits), its class attributes below, and pure
    methods: ``directives`` and the ``*_command`` argv builders, and the
    ``parse_*`` readers. The base owns the mechanics every backend shares:
    building a ``Command`` with the timeout and environment applied
    (``command``), judging whether a result carries an answer
    (``require_answer``), the validated ``extra_directives`` option and the
    job-name tag. A timed-out submit never reaches ``parse_submit``: the
    controller treats it as uncertain (the job may exist) and looks for it
    by name.
    """

    #: Short name a site uses in config: ``c.BatchSpawner.backend = name``.
    name: ClassVar[str] = ""
    #: The scheduler programs this backend runs, by the names ``programs``
    #: takes (``("qsub", "qstat", "qdel")``); each runs as its own name on
    #: the runner's PATH unless the site gives a path.
    program_names: ClassVar[tuple[str, ...]] = ()
    #: Most job ids one status command may carry; ``None`` means no limit.
    #: The monitor sends one command per this many tracked jobs per tick, so
    #: keep it large (hundreds at least).
    max_ids_per_query: ClassVar[int | None] = 500
    #: ``status_command`` lists jobs by their owners (``qstat -u a,b``), not by
    #: id; the answer may hold other jobs, which ``parse_status`` leaves out.
    status_by_owner: ClassVar[bool] = False
    #: Exit codes of a status (and history) command whose output still is a
    #: valid answer: PBS ``qstat`` exits 153 when one of several ids is
    #: unknown yet describes the others. Every other exit is a failed query.
    answer_exit_codes: ClassVar[frozenset[int]] = frozenset({0})
    #: The directive prefix in job scripts, e.g. ``#$`` or ``#SBATCH``.
    directive_prefix: ClassVar[str] = "#"
    #: The default job-script template: ``(package, path inside it)``, read
    #: with importlib.resources, so a plugin ships its own. A site's
    #: ``c.BatchSpawner.job_template`` replaces it.
    template: ClassVar[tuple[str, str]] = ("batchhub", "templates/default.sh.j2")
    #: Whether a job's environment is readable by its owner alone. Only then
    #: may a site set ``c.BatchSpawner.token_delivery = "env"``; Grid Engine
    #: shows every job's environment to every user (``qstat -j``).
    private_job_env: ClassVar[bool] = False
    #: ``extra_directives`` options this scheduler must never get, each with
    #: the reason given to the admin (``{"-V": "every user can read ..."}``).
    refused_directives: ClassVar[dict[str, str]] = {}
    #: Exit codes of the cancel command whose output says what happened to
    #: each job (``None``: read it whatever the exit). After any other exit,
    #: or a timeout, every job counts as FAILED (it may still run) and
    #: ``parse_cancel`` is not called.
    cancel_exit_codes: ClassVar[frozenset[int] | None] = frozenset({0})
    #: Characters the scheduler cannot take in a job's directory and output
    #: paths (``-o``): whitespace splits a directive line; add your own, e.g.
    #: ``Backend.unsafe_path_chars + ":"`` for Grid Engine's ``host:path``.
    #: Control characters are always refused.
    unsafe_path_chars: ClassVar[str] = " \t"

    command_timeout = Float(
        30.0,
        help="Seconds any scheduler command may take before it is killed and "
        "counted as failed (a failed status query never ends a server; a timed-out "
        "submission is looked for by its job name).",
    ).tag(config=True)

    command_env = Dict(
        value_trait=Unicode(),
        help="Environment for every command of this scheduler, on top of the command "
        "runner's own (``c.CommandRunner.env``, shared by all backends), e.g. "
        "``{'SGE_ROOT': '/var/lib/gridengine'}``. Never put a secret here.",
    ).tag(config=True)

    programs = Dict(
        value_trait=Unicode(),
        help="Paths of the scheduler's programs by name, e.g. "
        "``{'qsub': '/usr/lib/gridengine/qsub'}``. A program not listed runs by its "
        "name from the runner's PATH.",
    ).tag(config=True)

    extra_directives = List(
        Unicode(),
        help="More scheduler options for every job, one per item, each written as one "
        "directive line (without the prefix), e.g. ``['-l arch=lx-amd64']`` or "
        "``['--constraint=avx2']``.",
    ).tag(config=True)

    job_name_prefix = Unicode(
        "batchhub",
        help="Tag that starts every job name, so the site (and the orphan report) "
        "can find the hub's jobs in the scheduler's listings.",
    ).tag(config=True)

    @validate("programs")
    def _known_programs(self, proposal: Any) -> dict[str, str]:
        unknown = sorted(set(proposal.value) - set(self.program_names))
        if unknown:
            raise ConfigError(
                f"c.{type(self).__name__}.programs names {', '.join(map(repr, unknown))}, which this "
                f"backend never runs; it runs {', '.join(self.program_names) or 'no programs'}"
            )
        return dict(proposal.value)

    @validate("extra_directives")
    def _one_option_each(self, proposal: Any) -> list[str]:
        where = f"c.{type(self).__name__}.extra_directives"
        options = []
        for item in proposal.value:
            option = item.strip()
            if not option.startswith("-") or any(c in option for c in "\n\r\x00"):
                raise ConfigError(f"{where}: {item!r} is not one scheduler option starting with '-'")
            flag = re.split(r"[\s=]", option, maxsplit=1)[0]
            if flag in self.refused_directives:
                raise ConfigError(f"{where}: {flag} is refused: {self.refused_directives[flag]}")
            options.append(option)
        return options

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for kind in COMMAND_KINDS:
            builder = cls.__dict__.get(f"{kind}_command")
            if builder is not None:
                setattr(cls, f"{kind}_command", _stamped(builder, kind))

    # --- mechanics for subclasses --------------------------------------
    def program(self, name: str) -> str:
        """The path (or PATH name) to run for program ``name``."""
        if name in self.programs:
            return self.programs[name]
        old = self._deprecated_options().get(name)
        value = getattr(self, old) if old else None
        return value if value is not None else name

    @classmethod
    @functools.cache
    def _deprecated_options(cls) -> dict[str, str]:
        """program name -> the old option naming its path (one lookup per class)."""
        return {
            trait.metadata["deprecated_program"]: trait_name
            for trait_name, trait in cls.class_traits(deprecated_program=lambda v: v is not None).items()
        }

    def command(
        self, program: str, *args: str, stdin: str | None = None, as_user: str | None = None
    ) -> Command:
        """The ``Command`` running ``program`` (one of ``program_names``) with
        ``args``, under this backend's timeout and environment. ``as_user``:
        run as that user (submit and cancel); otherwise as the hub."""
        return Command(
            (self.program(program), *args),
            stdin=stdin,
            as_user=as_user,
            env=dict(self.command_env),
            timeout=self.command_timeout,
        )

    def answered(self, result: CommandResult) -> bool:
        """Whether a status-like command's output is an answer to read."""
        return not result.timed_out and result.returncode in self.answer_exit_codes

    def require_answer(self, result: CommandResult) -> None:
        """``QueryError`` unless ``answered``: a failed query says nothing
        about any job, and must never end one."""
        if not self.answered(result):
            raise QueryError(result.describe())

    def option_lines(self, options: Sequence[str]) -> list[str]:
        """Directive lines for ``options``, then the site's ``extra_directives``."""
        return [f"{self.directive_prefix} {option}" for option in (*options, *self.extra_directives)]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        for program, old in self._deprecated_options().items():
            if getattr(self, old) is not None:
                cls = type(self).__name__
                self.log.warning(
                    "c.%s.%s is deprecated: write c.%s.programs = {%r: %r}",
                    cls,
                    old,
                    cls,
                    program,
                    getattr(self, old),
                )

    # --- job script -----------------------------------------------------
    def directives(self, spec: JobSpec) -> list[str]:
        """Scheduler directive lines for the job script (with prefix)."""
        raise NotImplementedError

    # --- submit ---------------------------------------------------------
    def submit_command(self, spec: JobSpec, script: str) -> Command:
        """The command that submits ``script`` (on stdin) as the user."""
        raise NotImplementedError

    def parse_submit(self, result: CommandResult) -> str:
        """The new job's id, or ``SubmitError`` with a message for the user."""
        raise NotImplementedError

    # --- status ---------------------------------------------------------
    def status_command(self, job_ids: Sequence[str], owners: Sequence[str] = ()) -> Command:
        """ONE command that reports on all of ``job_ids`` at once.
        ``owners`` are the users those jobs belong to, for schedulers that
        list by user rather than by id (Grid Engine's ``qstat -u``)."""
        raise NotImplementedError

    def parse_status(self, result: CommandResult, job_ids: Sequence[str]) -> dict[str, Observation]:
        """Observations for the jobs the scheduler still knows.

        A job missing from the answer is simply absent from the dict (the
        monitor decides when absence means lost). If the query itself
        failed, raise ``QueryError``: never report a terminal state for a
        job the scheduler did not describe.
        """
        raise NotImplementedError

    def reason_command(self, job_ids: Sequence[str]) -> Command | None:
        """Optional: one command that explains why queued or failed jobs
        are where they are, for schedulers whose listing lacks the reason.
        Return ``None`` when the status listing already says why."""
        return None

    def parse_reasons(self, result: CommandResult, job_ids: Sequence[str]) -> dict[str, str]:
        """Reasons by job id from ``reason_command``'s output."""
        return {}

    def explain_reason(self, reason: str) -> str:
        """Plain words for a reason as the scheduler gave it (a Slurm code,
        Grid Engine's messages), from this backend's own table: "Waiting for
        resources", "Held", ... The core shows these to the user and logs
        the scheduler's text beside them. Plain text passes through
        unchanged; so does anything the table lacks."""
        return reason

    def start_command(self, job_ids: Sequence[str]) -> Command | None:
        """Optional: ONE command asking when the scheduler expects waiting
        jobs to start (Slurm's ``squeue --start``). The monitor runs it only
        for queued jobs someone waits on. ``None``: no estimates here."""
        return None

    def parse_starts(self, result: CommandResult, job_ids: Sequence[str]) -> dict[str, datetime]:
        """Expected start times (timezone-aware) by job id from
        ``start_command``'s output; jobs without an estimate are left out."""
        return {}

    def history_command(self, job_ids: Sequence[str]) -> Command | None:
        """Optional: one command asking the scheduler's accounting how jobs
        that left the live listing ended. ``None`` when there is none."""
        return None

    def parse_history(self, result: CommandResult, job_ids: Sequence[str]) -> dict[str, Observation]:
        """Terminal observations from ``history_command``'s output."""
        return {}

    # --- listing by tag -------------------------------------------------
    def list_command(self) -> Command | None:
        """Optional but recommended: ONE command listing every live job of
        every user with its name and owner, so the hub can find its jobs by
        their tag (a submit whose answer was lost, strays, orphans).
        ``None`` when the scheduler cannot list jobs that way."""
        return None

    def parse_list(self, result: CommandResult) -> list[TaggedJob]:
        """The live jobs in ``list_command``'s output (the caller keeps those
        whose name carries the hub's tag). ``QueryError`` when the listing
        failed: absence from a failed listing means nothing."""
        raise NotImplementedError

    # --- free resources (optional) ----------------------------------------
    def free_command(self) -> Command | None:
        """Optional: ONE command, run as the hub at most once a minute, that
        says what is free right now on every queue or partition (cores, and
        GPUs where it can), for the spawn form. ``None``: the form shows none."""
        return None

    def parse_free(self, result: CommandResult) -> dict[str, Free]:
        """Free resources by queue or partition name from ``free_command``'s
        output. Raise ``QueryError`` (or anything) when the answer cannot be
        read: the form then shows nothing, and still comes up."""
        return {}

    # --- cancel ---------------------------------------------------------
    def cancel_command(self, job_ids: Sequence[str], username: str) -> Command:
        """The command that cancels ``job_ids``, run as their owner."""
        raise NotImplementedError

    def parse_cancel(self, result: CommandResult, job_ids: Sequence[str]) -> dict[str, CancelOutcome]:
        """What the cancel did for each job, from an answer (see
        ``cancel_exit_codes``). A job that no longer exists is
        ``ALREADY_GONE``: cancel is idempotent."""
        raise NotImplementedError

    def read_cancel(self, result: CommandResult, job_ids: Sequence[str]) -> dict[str, CancelOutcome]:
        """What the core calls: an outcome for every id, FAILED unless the
        cancel command answered and its output says otherwise."""
        codes = self.cancel_exit_codes
        if result.timed_out or (codes is not None and result.returncode not in codes):
            return dict.fromkeys(job_ids, CancelOutcome.FAILED)
        outcomes = self.parse_cancel(result, job_ids)
        return {job_id: outcomes.get(job_id, CancelOutcome.FAILED) for job_id in job_ids}

    # --- helpers for parsers ---------------------------------------------
    def unknown_state(self, job_id: str, native: str) -> JobState:
        """The state for a native state the backend's table lacks (one newer
        than its code): PENDING, the lowest, so nothing ends or moves back
        on a guess; the hub's log says which word was not understood."""
        self.log.warning("the %s scheduler reported job %s in an unknown state %r", self.name, job_id, native)
        return JobState.PENDING

    # --- job names -------------------------------------------------------
    def server_tag(self, username: str, server_name: str) -> str:
        """The start of the name of every job of one user's server: the
        hub's tag, the user and the server (every character a scheduler
        might choke on replaced), and a digest of both, so two servers
        never share a tag even where their cleaned names look alike."""
        name = f"{self.job_name_prefix}-{username}" + (f"-{server_name}" if server_name else "")
        digest = hashlib.sha256(f"{username}\0{server_name}".encode()).hexdigest()[:6]
        return re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:150] + f".{digest}"  # matches JOB_NAME_RE

    def job_name(self, username: str, server_name: str, submission: str = "") -> str:
        """The name of one submission's job: its server's tag, then the
        submission's own id, so a job found by name is that submission's."""
        tag = self.server_tag(username, server_name)
        return f"{tag}.{submission}" if submission else tag

    def carries_hub_tag(self, name: str) -> bool:
        """Whether a job of this name was submitted by a hub with this tag."""
        return name.startswith(f"{self.job_name_prefix}-")
