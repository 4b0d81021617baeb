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

import hashlib
import re
from collections.abc import Sequence
from typing import ClassVar

from traitlets import Float, Unicode
from traitlets.config import LoggingConfigurable

from .jobs import CancelOutcome, Command, CommandResult, JobSpec, Observation, TaggedJob


class Backend(LoggingConfigurable):
    """Base class of scheduler backends. Subclasses override every method
    that raises ``NotImplementedError``; the others have sensible defaults.
    """

    #: Short name a site uses in config: ``c.BatchSpawner.backend = name``.
    name: ClassVar[str] = ""
    #: Most job ids one status command may carry; ``None`` means no limit
    #: (the command lists every job, like ``qstat -u '*'``).
    max_ids_per_query: ClassVar[int | None] = 500
    #: The directive prefix in job scripts, e.g. ``#$`` or ``#SBATCH``.
    directive_prefix: ClassVar[str] = "#"
    #: Name of the default job-script template shipped with the core.
    template_name: ClassVar[str] = "default.sh.j2"

    command_timeout = Float(
        30.0,
        help="Seconds any scheduler command may take before it is killed and "
        "counted as failed (a failed status query never ends a server).",
    ).tag(config=True)

    job_name_prefix = Unicode(
        "batchhub",
        help="Tag that starts every job name, so the site (and an orphan "
        "reaper) can find the hub's jobs in the scheduler's listings.",
    ).tag(config=True)

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

    # --- cancel ---------------------------------------------------------
    def cancel_command(self, job_ids: Sequence[str], username: str) -> Command:
        """The command that cancels ``job_ids``, run as their owner."""
        raise NotImplementedError

    def parse_cancel(self, result: CommandResult, job_ids: Sequence[str]) -> dict[str, CancelOutcome]:
        """What the cancel did for each job. A job that no longer exists is
        ``ALREADY_GONE``: cancel is idempotent."""
        raise NotImplementedError

    # --- helpers for subclasses ----------------------------------------
    def server_tag(self, username: str, server_name: str) -> str:
        """The start of the name of every job of one user's server: the
        hub's tag, the user and the server (every character a scheduler
        might choke on replaced), and a digest of both, so two servers
        never share a tag even where their cleaned names look alike."""
        name = f"{self.job_name_prefix}-{username}" + (f"-{server_name}" if server_name else "")
        digest = hashlib.sha256(f"{username}\0{server_name}".encode()).hexdigest()[:6]
        return re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:150] + f".{digest}"

    def job_name(self, username: str, server_name: str, submission: str = "") -> str:
        """The name of one submission's job: its server's tag, then the
        submission's own id, so a job found by name is that submission's."""
        tag = self.server_tag(username, server_name)
        return f"{tag}.{submission}" if submission else tag

    def carries_hub_tag(self, name: str) -> bool:
        """Whether a job of this name was submitted by a hub with this tag."""
        return name.startswith(f"{self.job_name_prefix}-")
