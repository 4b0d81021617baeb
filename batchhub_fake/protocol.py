"""The fake scheduler's small command language, shared by the in-memory
scheduler, the local executor and the backend's parsers.

Commands (argv, never a shell line)::

    fake-submit                  script on stdin, ``#FAKE --opt=value`` directives in it
    fake-status ID,ID,...        one listing for many jobs
    fake-cancel ID,ID,...        cancel as the job's owner
    fake-list                    every user's live jobs, with names

Outputs are plain text, parsed by ``FakeBackend`` exactly as the SGE and
Slurm backends parse ``qstat``/``squeue``:

    fake-submit   stdout ``Submitted fake job 17``; on refusal rc 1 and
                  ``fake-submit: error: <why>`` on stderr
    fake-status   a header line, then ``ID|STATE|HOST|EXIT|REASON`` per job the
                  scheduler still lists (unknown ids are simply missing)
    fake-cancel   ``ID cancelled`` / ``ID finished`` / ``ID not-found`` /
                  ``ID denied`` per job
    fake-list     a header line, then ``ID|STATE|OWNER|NAME`` per live job
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from batchhub.jobs import JobState

SUBMIT = "fake-submit"
STATUS = "fake-status"
CANCEL = "fake-cancel"
LIST = "fake-list"
VERBS = (SUBMIT, STATUS, CANCEL, LIST)

DIRECTIVE = "#FAKE"
STATUS_HEADER = "JOBID|STATE|HOST|EXIT|REASON"
LIST_HEADER = "JOBID|STATE|OWNER|NAME"
SUBMITTED_RE = re.compile(r"^Submitted fake job (\d+)$", re.MULTILINE)

#: The fake's native state codes and what they mean in batchhub's terms.
NATIVE_STATES: dict[str, JobState] = {
    "PD": JobState.PENDING,
    "H": JobState.HELD,
    "ST": JobState.STARTING,
    "R": JobState.RUNNING,
    "CG": JobState.STOPPING,
    "CD": JobState.COMPLETED,
    "F": JobState.FAILED,
    "NF": JobState.FAILED,  # node failure
    "OOM": JobState.FAILED,  # out of memory
    "CA": JobState.CANCELLED,
    "TO": JobState.TIMEOUT,
}

#: Reasons implied by a native state when the listing gives none.
NATIVE_REASONS = {
    "NF": "the job's node failed",
    "OOM": "the job ran out of memory",
    "TO": "the job reached its run-time limit",
    "H": "the job is held",
}

#: Options a ``#FAKE`` directive may carry, with the kind of value each takes.
OPTIONS = {
    "name": r"[A-Za-z0-9_.@-]{1,200}",
    "cores": r"[1-9][0-9]{0,4}",
    "mem": r"[1-9][0-9]{0,9}",  # MB
    "gpus": r"[0-9]{1,3}",
    "time": r"[1-9][0-9]{0,9}",  # seconds
    "queue": r"[A-Za-z0-9_.-]{1,64}",
    "project": r"[A-Za-z0-9_.-]{1,64}",
    "pe": r"[A-Za-z0-9_.-]{1,64}",
    "nodes": r"[1-9][0-9]{0,4}",
    "tasks": r"[1-9][0-9]{0,4}",  # per node
    "mail": r"[A-Za-z0-9_+][A-Za-z0-9._+-]{0,63}@[A-Za-z0-9.-]{1,190}",
    "output": r"\S{1,4096}",
    "error": r"\S{1,4096}",
    "chdir": r"\S{1,4096}",
    "hold": r"",
}


class DirectiveError(ValueError):
    """A ``#FAKE`` line the scheduler does not accept (the message says which)."""


def parse_directives(script: str) -> dict[str, str]:
    """The ``#FAKE --opt=value`` options of a job script, as a submitting
    scheduler reads them: only in the leading comment block, and every
    option and value checked."""
    options: dict[str, str] = {}
    for line in script.splitlines():
        stripped = line.strip()
        if not stripped or (stripped.startswith("#") and not stripped.startswith(DIRECTIVE)):
            continue
        if not stripped.startswith(DIRECTIVE + " "):
            break  # directives end at the first command, as with #SBATCH
        for word in stripped[len(DIRECTIVE) :].split():
            match = re.fullmatch(r"--([a-z]+)(?:=(.*))?", word)
            if not match or match.group(1) not in OPTIONS:
                raise DirectiveError(f"unknown directive {word!r}")
            key, value = match.group(1), match.group(2) or ""
            if not re.fullmatch(OPTIONS[key], value):
                raise DirectiveError(f"invalid value {value!r} for --{key}")
            options[key] = value
    return options


def split_ids(arg: str) -> list[str]:
    return [part for part in arg.split(",") if part]


def join_ids(job_ids: Sequence[str]) -> str:
    for job_id in job_ids:
        if not job_id.isdigit():
            raise ValueError(f"not a fake job id: {job_id!r}")
    return ",".join(job_ids)


def status_line(job_id: str, native: str, host: str | None, exit_code: int | None, reason: str) -> str:
    reason = " ".join(reason.split())  # one line, whatever the reason held
    return f"{job_id}|{native}|{host or ''}|{'' if exit_code is None else exit_code}|{reason}"


def list_line(job_id: str, native: str, owner: str, name: str) -> str:
    return f"{job_id}|{native}|{owner}|{name}"


def verb_of(argv: Sequence[str]) -> str | None:
    """The fake verb in an argv, wherever a launcher prefix put it."""
    for word in argv:
        if word in VERBS:
            return word
    return None
