"""OpenPBS / PBS Pro: ``qsub``, ``qstat -f -F json``, ``qdel``, as pure
argv builders and parsers; batchhub runs the commands. What PBS does
(recorded in tests/data/): ``qsub`` reads the script on stdin and prints
the id (``123.server``); ``qstat -x`` keeps finished jobs (state F) and
exits 153 when any id is unknown, still describing the others; ``qdel``
prints ``qdel: <message> <id>`` for each id it did not delete.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from batchhub.backend import Backend, wall_clock
from batchhub.jobs import (
    CancelOutcome,
    Command,
    CommandResult,
    JobSpec,
    JobState,
    Observation,
    QueryError,
    SubmitError,
    SubmitUncertain,
    TaggedJob,
)

#: ``job_state`` letters: Queued, Waiting for its start time, in Transit,
#: Held, Running, Begun (arrays), Suspended, suspended while its node's
#: User is busy, Exiting. F (finished) is read by ``finished``.
STATES = {
    **dict.fromkeys("QWT", JobState.PENDING),
    "H": JobState.HELD,
    **dict.fromkeys("RB", JobState.RUNNING),
    **dict.fromkeys("SU", JobState.SUSPENDED),
    "E": JobState.STOPPING,
}
JOB_ID_RE = re.compile(r"\d+(\[\d*\])?\.[A-Za-z0-9_.-]+")  # 123.server, 12[].server
DELETED = 91  # the substate of a finished job that qdel ended
WALLTIME_EXCEEDED = -29  # PBS's Exit_status for a job killed at its walltime
GONE = ("Unknown Job Id", "Job has finished", "Request invalid for state of job")


def finished(job: dict[str, Any]) -> tuple[JobState, int | None]:
    """How a job in state F ended, and its exit code as a shell shows it
    (PBS reports death by signal N as 256 + N, its own failures below 0)."""
    status = job.get("Exit_status")
    code = status % 256 + 128 * (status > 256) if isinstance(status, int) and status >= 0 else None
    if job.get("substate") == DELETED:
        return JobState.CANCELLED, code
    if status == WALLTIME_EXCEEDED:
        return JobState.TIMEOUT, code
    return (JobState.COMPLETED if status == 0 else JobState.FAILED), code


def outcome(message: str) -> CancelOutcome:
    """What qdel's message about one job says; no message: it was deleted."""
    if not message:
        return CancelOutcome.REQUESTED
    if any(words in message for words in GONE):
        return CancelOutcome.ALREADY_GONE
    return CancelOutcome.DENIED if "Unauthorized Request" in message else CancelOutcome.FAILED


class PBSBackend(Backend):
    """Runs each server as an OpenPBS or PBS Pro job."""

    name = "pbs"
    program_names = ("qsub", "qstat", "qdel")
    directive_prefix = "#PBS"
    answer_exit_codes = frozenset({0, 153})  # 153: an id is unknown, the others are described
    refused_directives = {"-V": "it would give every job the hub's own environment"}
    unsafe_path_chars = Backend.unsafe_path_chars + ":"  # -o host:path
    # qdel's exit codes when the server answered for each job: PBS's error
    # number (modulo 256) for unknown job, finished, wrong state, not yours
    cancel_exit_codes = frozenset({0, 153, 35, 168, 159})

    def directives(self, spec: JobSpec) -> list[str]:
        res = spec.resources
        select = f"select=1:ncpus={res.cores}" + (f":mem={res.memory_mb}mb" if res.memory_mb else "")
        options = [f"-N {spec.job_name}", f"-o {spec.output_path}", f"-e {spec.error_path}"]
        options += ["-k oed", "-r n"]  # output written in place, so it is readable while it runs; no reruns
        options.append(f"-l {select}" + (f":ngpus={res.gpus}" if res.gpus else ""))
        options += [f"-l walltime={wall_clock(res.runtime_s)}"] if res.runtime_s else []
        options += [f"{flag} {value}" for flag, value in (("-q", res.queue), ("-A", res.project)) if value]
        return self.option_lines(options)

    def submit_command(self, spec: JobSpec, script: str) -> Command:
        return self.command("qsub", stdin=script, as_user=spec.username)

    def parse_submit(self, result: CommandResult) -> str:
        job_id = result.stdout.strip()
        if result.ok and JOB_ID_RE.fullmatch(job_id):
            return job_id
        said = " ".join(line.removeprefix("qsub: ") for line in result.stderr.splitlines() if line.strip())
        if "Premature end of message" in said:  # the server may have queued it
            raise SubmitUncertain(f"PBS lost the answer to the submission ({result.describe()})")
        raise SubmitError(f"PBS refused the job: {said[:300] or result.describe()}")

    def status_command(self, job_ids: Sequence[str], owners: Sequence[str] = ()) -> Command:
        return self.command("qstat", "-f", "-F", "json", "-x", *job_ids)

    def list_command(self) -> Command:
        return self.command("qstat", "-f", "-F", "json")  # every user's live jobs

    def jobs(self, result: CommandResult) -> dict[str, dict[str, Any]]:
        """The ``Jobs`` of qstat's JSON, or ``QueryError``."""
        self.require_answer(result)
        if result.returncode == 153 and not result.stdout.strip():
            return {}  # none of the ids is known
        try:
            jobs = json.loads(result.stdout).get("Jobs", {})
        except (ValueError, AttributeError):
            raise QueryError(f"qstat printed no JSON batchhub can read: {result.stdout[:200]!r}") from None
        if not isinstance(jobs, dict) or not all(isinstance(job, dict) for job in jobs.values()):
            raise QueryError(f"qstat's JSON holds no job list batchhub can read: {result.stdout[:200]!r}")
        return jobs

    def read_job(self, job_id: str, job: dict[str, Any]) -> Observation:
        native, code = str(job.get("job_state", "")), None
        state = STATES.get(native)
        if native == "F":
            state, code = finished(job)
        elif state is None:  # a state newer than this code: never guess an end
            state = self.unknown_state(job_id, native)
        host = None if state.queued else str(job.get("exec_host") or "").split("/")[0] or None
        return Observation(job_id, state, native, str(job.get("comment") or ""), host, code)

    def parse_status(self, result: CommandResult, job_ids: Sequence[str]) -> dict[str, Observation]:
        jobs = self.jobs(result)
        return {job_id: self.read_job(job_id, jobs[job_id]) for job_id in job_ids if job_id in jobs}

    def parse_list(self, result: CommandResult) -> list[TaggedJob]:
        listed = []
        for job_id, job in self.jobs(result).items():
            owner = str(job.get("Job_Owner", "")).partition("@")[0]  # user@submit-host
            state = self.read_job(job_id, job).state
            listed.append(TaggedJob(job_id, str(job.get("Job_Name", "")), owner, state))
        return listed

    def cancel_command(self, job_ids: Sequence[str], username: str) -> Command:
        return self.command("qdel", *job_ids, as_user=username)

    def parse_cancel(self, result: CommandResult, job_ids: Sequence[str]) -> dict[str, CancelOutcome]:
        said = {line.rsplit(None, 1)[-1]: line for line in result.stderr.splitlines() if line.strip()}
        return {job_id: outcome(said.get(job_id, "")) for job_id in job_ids}
