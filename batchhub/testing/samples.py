"""Recorded scheduler output for the conformance kit, with what it must
parse to.

A plugin author records what the scheduler's commands really print and
says what each output means; the kit then checks that the backend reads it
so. Three kinds, one per command a backend parses::

    StatusSample("qstat-153", job_ids=("101.pbs", "999.pbs"), returncode=153,
                 stdout=..., stderr=..., expect={"101.pbs": JobState.RUNNING})
    CancelSample("qdel-gone", job_ids=("101.pbs",), returncode=35, stderr=...,
                 expect={"101.pbs": CancelOutcome.ALREADY_GONE})
    SubmitSample("qsub-ok", stdout="101.pbs\\n", expect="101.pbs")
    SubmitSample("qsub-bad-queue", returncode=1, stderr=..., expect=SubmitError)

A status sample's ``expect`` maps each id that must be reported to its
state; an asked id left out of ``expect`` must be absent from the answer
(the scheduler no longer lists it). ``expect=QueryError`` says the output is
a failed query. Samples kept as files (``NAME.stdout``, ``NAME.stderr``,
``NAME.rc``, each optional but the ``.rc``) load with ``from_files``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from batchhub.jobs import CancelOutcome, Command, CommandResult, JobState, QueryError, SubmitError

__all__ = ["CancelSample", "StatusSample", "SubmitSample", "read_sample"]

S = TypeVar("S", bound="_Sample")


def read_sample(directory: str | Path, name: str) -> tuple[int, str, str]:
    """``(returncode, stdout, stderr)`` of the sample ``name`` kept as
    ``NAME.rc``, ``NAME.stdout`` and ``NAME.stderr`` in ``directory`` (a
    missing ``.stdout`` or ``.stderr`` is empty; the ``.rc`` is required)."""
    base = Path(directory)
    if not (base / f"{name}.rc").exists():
        raise FileNotFoundError(f"no recorded sample {name!r} in {base} (needs {name}.rc)")

    def read(suffix: str) -> str:
        path = base / f"{name}.{suffix}"
        return path.read_text() if path.exists() else ""

    return int(read("rc").strip()), read("stdout"), read("stderr")


@dataclass(frozen=True)
class _Sample:
    name: str
    stdout: str = ""
    stderr: str = ""
    returncode: int = 0

    def result(self, command: Command) -> CommandResult:
        """This output as the result of ``command``."""
        return CommandResult(command, self.returncode, self.stdout, self.stderr, 0.01, False)

    @classmethod
    def from_files(cls: type[S], directory: str | Path, name: str, **fields: Any) -> S:
        """The sample kept in ``directory`` as ``NAME.rc``/``.stdout``/``.stderr``."""
        returncode, stdout, stderr = read_sample(directory, name)
        return cls(name=name, stdout=stdout, stderr=stderr, returncode=returncode, **fields)


@dataclass(frozen=True)
class StatusSample(_Sample):
    """A status command's output, the ids it was asked about, and the state
    each reported id must parse to (ids not in ``expect`` must be absent);
    ``expect=QueryError``: the query failed."""

    job_ids: tuple[str, ...] = ()
    expect: Mapping[str, JobState] | type[QueryError] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "job_ids", tuple(self.job_ids))
        if not self.job_ids:
            raise ValueError(f"status sample {self.name!r}: say which job ids it was asked about")
        if isinstance(self.expect, Mapping) and not set(self.expect) <= set(self.job_ids):
            raise ValueError(f"status sample {self.name!r}: expects ids it was not asked about")


@dataclass(frozen=True)
class CancelSample(_Sample):
    """A cancel command's output, the ids it cancelled, and the outcome each
    must parse to (every id needs one)."""

    job_ids: tuple[str, ...] = ()
    expect: Mapping[str, CancelOutcome] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "job_ids", tuple(self.job_ids))
        if set(self.expect) != set(self.job_ids) or not self.job_ids:
            raise ValueError(f"cancel sample {self.name!r}: give an expected outcome for each of its ids")


@dataclass(frozen=True)
class SubmitSample(_Sample):
    """A submit command's output and the job id it must parse to, or the
    error it must raise (``SubmitError``, or its ``SubmitUncertain``)."""

    expect: str | type[SubmitError] = SubmitError
