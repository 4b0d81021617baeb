"""The fake scheduler's backend: the same contract as SGE's and Slurm's.

It builds the fake's commands and parses their text output with real
parsers, so tests that run against the fake exercise the core's code
paths exactly as a real scheduler would. Two modes share it:

- in memory (default): argv ``["fake-submit"]`` etc., executed in process
  by ``FakeRunner`` against a ``FakeScheduler`` on virtual time;
- local (``c.FakeBackend.local = True``): argv
  ``[python, "-m", "batchhub_fake.local", "--spool", DIR, "fake-submit"]``,
  run by the ordinary ``CommandRunner`` (as the user), which really runs
  job scripts as local processes: the demo.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import replace

from traitlets import Bool, Unicode, default

from batchhub.backend import Backend
from batchhub.jobs import (
    CancelOutcome,
    Command,
    CommandResult,
    ConfigError,
    JobSpec,
    Observation,
    QueryError,
    SubmitError,
    TaggedJob,
)

from . import protocol

#: Directive options whose values the user chose in the form.
USER_OPTIONS = frozenset({"queue", "project", "cores", "mem", "gpus", "time", "pe", "nodes", "tasks", "mail"})


class FakeBackend(Backend):
    """Backend of the fake scheduler (tests and the local demo)."""

    name = "fake"
    max_ids_per_query = 1000
    program_names = protocol.VERBS
    directive_prefix = protocol.DIRECTIVE

    local = Bool(
        False,
        help="Really run job scripts as local processes (the demo) instead of "
        "talking to an in-memory scheduler. Commands then run through the "
        "ordinary command runner, as the user, using ``python -m batchhub_fake.local``.",
    ).tag(config=True)

    spool_dir = Unicode(
        help="Local mode: the directory where job records live (created sticky and "
        "world-writable like /tmp, one private sub-directory per job). Default: "
        "``batchhub-fake-spool`` in the system's temporary directory.",
    ).tag(config=True)

    python = Unicode(
        help="Local mode: the Python interpreter that runs ``batchhub_fake.local``; "
        "every user must be able to run it. Default: the hub's own interpreter.",
    ).tag(config=True)

    @default("spool_dir")
    def _default_spool(self) -> str:
        return os.path.join(tempfile.gettempdir(), "batchhub-fake-spool")

    @default("python")
    def _default_python(self) -> str:
        return sys.executable

    # --- argv ------------------------------------------------------------
    def command(
        self, program: str, *args: str, stdin: str | None = None, as_user: str | None = None
    ) -> Command:
        if self.local:  # the verbs are sub-commands of the local scheduler
            command = super().command(program, *args, stdin=stdin, as_user=as_user)
            local = (self.python, "-m", "batchhub_fake.local", "--spool", self.spool_dir)
            return replace(command, argv=(*local, *command.argv))
        return super().command(program, *args, stdin=stdin, as_user=as_user)

    # --- job script ------------------------------------------------------
    def directives(self, spec: JobSpec) -> list[str]:
        res = spec.resources
        options = [f"--name={spec.job_name}", f"--cores={res.cores}"]
        if res.memory_mb is not None:
            options.append(f"--mem={res.memory_mb}")
        if res.gpus:
            options.append(f"--gpus={res.gpus}")
        if res.runtime_s is not None:
            options.append(f"--time={res.runtime_s}")
        if res.queue:
            options.append(f"--queue={res.queue}")
        if res.project:
            options.append(f"--project={res.project}")
        if res.pe:
            options.append(f"--pe={res.pe}")
        if res.nodes != 1 or res.tasks_per_node != 1:
            options += [f"--nodes={res.nodes}", f"--tasks={res.tasks_per_node}"]
        if res.email:
            options.append(f"--mail={res.email}")
        options += [f"--output={spec.output_path}", f"--error={spec.error_path}", f"--chdir={spec.workdir}"]
        lines = []
        for option in options:
            key, _, value = option[2:].partition("=")
            if not re.fullmatch(protocol.OPTIONS[key], value):
                if key in USER_OPTIONS:  # the user's choice: tell the user, not the admins
                    raise SubmitError(
                        f"The {key} {value!r} is not valid: use letters, digits, '.', '_' and '-' only."
                    )
                raise ConfigError(
                    f"the fake scheduler cannot take {key} {value!r} (no spaces or control characters)"
                )
            lines.append(f"{protocol.DIRECTIVE} {option}")
        return lines

    # --- submit ----------------------------------------------------------
    def submit_command(self, spec: JobSpec, script: str) -> Command:
        return self.command(protocol.SUBMIT, stdin=script, as_user=spec.username)

    def parse_submit(self, result: CommandResult) -> str:
        if result.returncode != 0:
            why = result.stderr.strip().removeprefix(f"{protocol.SUBMIT}: error: ") or result.describe()
            raise SubmitError(f"The scheduler refused the job: {why}")
        match = protocol.SUBMITTED_RE.search(result.stdout)
        if not match:
            raise SubmitError(f"The scheduler's answer held no job id: {result.stdout.strip()[:200]!r}")
        return match.group(1)

    # --- listing by tag ---------------------------------------------------
    def list_command(self) -> Command | None:
        return self.command(protocol.LIST)

    def parse_list(self, result: CommandResult) -> list[TaggedJob]:
        self.require_answer(result)
        lines = result.stdout.splitlines()
        if not lines or lines[0] != protocol.LIST_HEADER:
            raise QueryError(f"unreadable job listing: {result.stdout[:200]!r}")
        jobs = []
        for line in lines[1:]:
            fields = line.split("|", 3)
            if len(fields) != 4 or not fields[0].isdigit() or fields[1] not in protocol.NATIVE_STATES:
                raise QueryError(f"unreadable listing line: {line[:200]!r}")
            job_id, native, owner, name = fields
            jobs.append(TaggedJob(job_id, name, owner, protocol.NATIVE_STATES[native]))
        return jobs

    # --- status ----------------------------------------------------------
    def status_command(self, job_ids: Sequence[str], owners: Sequence[str] = ()) -> Command:
        return self.command(protocol.STATUS, protocol.join_ids(job_ids))

    def parse_status(self, result: CommandResult, job_ids: Sequence[str]) -> dict[str, Observation]:
        self.require_answer(result)
        lines = result.stdout.splitlines()
        if not lines or lines[0] != protocol.STATUS_HEADER:
            raise QueryError(f"unreadable status listing: {result.stdout[:200]!r}")
        wanted = set(job_ids)
        found: dict[str, Observation] = {}
        for line in lines[1:]:
            fields = line.split("|", 4)
            if len(fields) != 5 or not fields[0].isdigit() or fields[1] not in protocol.NATIVE_STATES:
                raise QueryError(f"unreadable status line: {line[:200]!r}")
            job_id, native, host, exit_text, reason = fields
            if job_id not in wanted:
                continue
            try:
                exit_code = int(exit_text) if exit_text else None
            except ValueError:
                raise QueryError(f"unreadable exit code in status line: {line[:200]!r}") from None
            found[job_id] = Observation(
                job_id=job_id,
                state=protocol.NATIVE_STATES[native],
                native_state=native,
                reason=reason or protocol.NATIVE_REASONS.get(native, ""),
                host=host or None,
                exit_code=exit_code,
            )
        return found

    # --- cancel ----------------------------------------------------------
    def cancel_command(self, job_ids: Sequence[str], username: str) -> Command:
        return self.command(protocol.CANCEL, protocol.join_ids(job_ids), as_user=username)

    def parse_cancel(self, result: CommandResult, job_ids: Sequence[str]) -> dict[str, CancelOutcome]:
        words = {
            "cancelled": CancelOutcome.REQUESTED,
            "finished": CancelOutcome.ALREADY_GONE,
            "not-found": CancelOutcome.ALREADY_GONE,
            "denied": CancelOutcome.DENIED,
        }
        outcome: dict[str, CancelOutcome] = {}
        for line in result.stdout.splitlines():
            job_id, _, word = line.strip().partition(" ")
            if job_id in job_ids:
                outcome[job_id] = words.get(word, CancelOutcome.FAILED)
        return {job_id: outcome.get(job_id, CancelOutcome.FAILED) for job_id in job_ids}
