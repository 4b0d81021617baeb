"""The fake PBS prints what the backend reads: a job submitted, described,
deleted and gone, through the fake's commands and the backend's parsers."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from batchhub_pbs.backend import PBSBackend

from batchhub.jobs import CancelOutcome, Command, CommandResult, JobState, SubmitError

#: The fake's commands, installed beside this Python with the example.
PROGRAMS = {name: str(Path(sys.executable).parent / f"fakepbs-{name}") for name in ("qsub", "qstat", "qdel")}


def run(command: Command, spool: Path) -> CommandResult:
    done = subprocess.run(
        command.argv,
        input=command.stdin,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "FAKEPBS_SPOOL": str(spool)},
        timeout=30,
        check=False,
    )
    return CommandResult(command, done.returncode, done.stdout, done.stderr)


@pytest.fixture
def backend() -> PBSBackend:
    if not Path(PROGRAMS["qsub"]).exists():
        pytest.skip("fakepbs is not installed (pip install the example)")
    return PBSBackend(programs=PROGRAMS)


def wait_state(backend: PBSBackend, spool: Path, job_id: str, state: JobState) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        answer = backend.parse_status(run(backend.status_command([job_id]), spool), [job_id])
        if answer.get(job_id) and answer[job_id].state is state:
            return
        time.sleep(0.1)
    raise AssertionError(f"{job_id} never reached {state.name}: {answer}")


def test_a_job_runs_is_deleted_and_ends_cancelled(backend: PBSBackend, tmp_path: Path) -> None:
    spool, out = tmp_path / "spool", tmp_path / "job.out"
    script = f"#!/bin/bash\n#PBS -N batchhub-me.abc123.s1\n#PBS -o {out}\necho started\nsleep 60\n"
    submitted = run(backend.command("qsub", stdin=script), spool)
    job_id = backend.parse_submit(submitted)
    assert job_id.endswith(".fakepbs")
    wait_state(backend, spool, job_id, JobState.RUNNING)
    listed = backend.parse_list(run(backend.list_command(), spool))
    assert [(job.job_id, job.name) for job in listed] == [(job_id, "batchhub-me.abc123.s1")]

    cancel = backend.cancel_command([job_id, "999.fakepbs"], "me")
    assert backend.parse_cancel(run(cancel, spool), [job_id, "999.fakepbs"]) == {
        job_id: CancelOutcome.REQUESTED,
        "999.fakepbs": CancelOutcome.ALREADY_GONE,
    }
    wait_state(backend, spool, job_id, JobState.CANCELLED)
    assert backend.parse_list(run(backend.list_command(), spool)) == []
    assert out.read_text() == "started\n"
    again = backend.parse_cancel(run(cancel, spool), [job_id])
    assert again == {job_id: CancelOutcome.ALREADY_GONE}


def test_walltime_and_exit_codes(backend: PBSBackend, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    slow = backend.parse_submit(
        run(backend.command("qsub", stdin="#!/bin/bash\n#PBS -l walltime=00:00:01\nsleep 30\n"), spool)
    )
    failing = backend.parse_submit(run(backend.command("qsub", stdin="#!/bin/bash\nexit 3\n"), spool))
    wait_state(backend, spool, slow, JobState.TIMEOUT)
    wait_state(backend, spool, failing, JobState.FAILED)
    answer = backend.parse_status(run(backend.status_command([failing, "777.fakepbs"]), spool), [failing])
    assert answer[failing].exit_code == 3


def test_an_unknown_queue_is_refused(backend: PBSBackend, tmp_path: Path) -> None:
    refused = run(backend.command("qsub", stdin="#!/bin/bash\n#PBS -q nowhere\ntrue\n"), tmp_path)
    with pytest.raises(SubmitError, match="Unknown queue"):
        backend.parse_submit(refused)
