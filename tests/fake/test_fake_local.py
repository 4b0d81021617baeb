"""Local mode: job scripts really run as processes, through the ordinary
CommandRunner, and the backend's parsers read what the local tool prints."""

from __future__ import annotations

import asyncio
import getpass
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from batchhub.jobs import CancelOutcome, JobSpec, JobState, ResourceRequest
from batchhub.runner import CommandRunner
from batchhub.testing import missing
from batchhub_fake import FakeBackend

#: Who runs the jobs when the tests run as root.
JOB_USER = "alice"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[FakeBackend, CommandRunner, Path]]:
    """A local fake cluster. As root (whose jobs every runner refuses) its
    jobs run as the test user alice, else as the developer (a personal hub)."""
    if os.geteuid() != 0:
        backend = FakeBackend(local=True, spool_dir=str(tmp_path / "spool"))
        yield backend, CommandRunner(as_user_prefix=[]), tmp_path
        return
    python = _python_for(JOB_USER)
    if python is None:
        missing("a Python the test users can run (run scripts/node-env)")
    shared = Path(tempfile.mkdtemp(prefix="batchhub-fake-"))
    os.chmod(shared, 0o755)
    spool, workdir = shared / "spool", shared / "work"
    spool.mkdir(mode=0o1777)
    os.chmod(spool, 0o1777)
    workdir.mkdir()
    shutil.chown(workdir, JOB_USER, JOB_USER)
    runner = CommandRunner(
        as_user_prefix=["runuser", "-u", "{username}", "--"],
        env={} if python == NODE_PYTHON else {"PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    yield FakeBackend(local=True, spool_dir=str(spool), python=python), runner, workdir
    shutil.rmtree(shared, ignore_errors=True)


def job(backend: FakeBackend, workdir: Path, body: str, user: str | None = None, **resources: object):
    user = user or (JOB_USER if os.geteuid() == 0 else getpass.getuser())
    spec = JobSpec(user, "", "batchhub-test", ResourceRequest(**resources), str(workdir))
    return spec, "#!/bin/sh\n" + "\n".join(backend.directives(spec)) + "\n" + body + "\n"


async def submit(backend, runner, spec, script) -> str:
    result = await runner.run(backend.submit_command(spec, script))
    return backend.parse_submit(result)


async def status(backend, runner, job_id: str):
    result = await runner.run(backend.status_command([job_id]))
    return backend.parse_status(result, [job_id]).get(job_id)


async def wait_for(backend, runner, job_id: str, done, seconds: float = 10.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        obs = await status(backend, runner, job_id)
        if obs is not None and done(obs):
            return obs
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {job_id} never got there; last {obs}")


async def test_a_script_really_runs_and_exits_with_its_code(world) -> None:
    backend, runner, tmp = world
    spec, script = job(backend, tmp, "echo hello from the job; echo oops >&2; exit 3")
    job_id = await submit(backend, runner, spec, script)
    obs = await wait_for(backend, runner, job_id, lambda o: o.state.terminal)
    assert (obs.state, obs.exit_code, obs.host) == (JobState.FAILED, 3, "127.0.0.1")
    assert (tmp / "job.out").read_text() == "hello from the job\n"
    assert (tmp / "job.err").read_text() == "oops\n"
    script_file = Path(backend.spool_dir) / job_id / "script"
    assert script_file.stat().st_mode & 0o777 == 0o600  # only its owner reads the script
    assert Path(backend.spool_dir).stat().st_mode & 0o1777 == 0o1777


async def test_running_then_completed(world) -> None:
    backend, runner, tmp = world
    spec, script = job(backend, tmp, f"while [ ! -e {tmp}/go ]; do sleep 0.05; done; exit 0")
    job_id = await submit(backend, runner, spec, script)
    obs = await wait_for(backend, runner, job_id, lambda o: True)
    assert (obs.state, obs.host) == (JobState.RUNNING, "127.0.0.1")
    (tmp / "go").touch()
    obs = await wait_for(backend, runner, job_id, lambda o: o.state.terminal)
    assert (obs.state, obs.exit_code) == (JobState.COMPLETED, 0)


async def test_cancel_kills_the_whole_process_group_and_is_idempotent(world) -> None:
    backend, runner, tmp = world
    # the script starts a child that records its pid: cancel must end it too
    spec, script = job(backend, tmp, f"sleep 300 & echo $! > {tmp}/child; wait")
    job_id = await submit(backend, runner, spec, script)
    await wait_for(backend, runner, job_id, lambda o: (tmp / "child").exists())
    child = int((tmp / "child").read_text())
    cancel = backend.cancel_command([job_id], spec.username)
    assert backend.parse_cancel(await runner.run(cancel), [job_id]) == {job_id: CancelOutcome.REQUESTED}
    obs = await wait_for(backend, runner, job_id, lambda o: o.state.terminal)
    assert obs.state is JobState.CANCELLED
    await asyncio.sleep(0.1)
    assert not _alive(child)
    assert backend.parse_cancel(await runner.run(cancel), [job_id]) == {job_id: CancelOutcome.ALREADY_GONE}


async def test_runtime_limit_ends_the_job_as_timeout(world) -> None:
    backend, runner, tmp = world
    spec, script = job(backend, tmp, "sleep 300", runtime_s=1)
    job_id = await submit(backend, runner, spec, script)
    obs = await wait_for(backend, runner, job_id, lambda o: o.state.terminal, seconds=15)
    assert obs.state is JobState.TIMEOUT


async def test_unknown_ids_are_absent_and_a_bad_script_is_refused(world) -> None:
    backend, runner, tmp = world
    assert await status(backend, runner, "4242") is None
    spec, _ = job(backend, tmp, "true")
    result = await runner.run(backend.submit_command(spec, "#!/bin/sh\n#FAKE --cores=many\ntrue\n"))
    with pytest.raises(Exception, match="invalid value"):
        backend.parse_submit(result)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True).stdout
    return bool(state.strip()) and not state.strip().startswith("Z")  # a zombie is dead


#: The environment scripts/node-env builds for jobs: every user can run it,
#: unlike a developer's virtual environment under a private home.
NODE_PYTHON = "/opt/batchhub/venv/bin/python"


def _python_for(user: str) -> str | None:
    """An interpreter ``user`` can run that imports the fake, if any."""
    for python, env in (
        (NODE_PYTHON, {}),
        (sys.executable, {"PYTHONPATH": str(Path(__file__).resolve().parents[2])}),
    ):
        probe = subprocess.run(
            ["runuser", "-u", user, "--", python, "-c", "import batchhub_fake.local"],
            capture_output=True,
            env={"PATH": os.environ.get("PATH", ""), **env},
        )
        if probe.returncode == 0:
            return python
    return None


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A folder every user can reach (pytest's own tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="batchhub-fake-"))
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


async def test_jobs_run_as_their_user_and_others_cannot_cancel_them(shared_tmp: Path) -> None:
    tmp_path = shared_tmp
    if os.geteuid() != 0 or not shutil.which("runuser"):
        missing("root with runuser, to run jobs as the test users")
    python = _python_for("alice")
    if python is None or _python_for("bob") != python:
        missing("a Python the test users can run (run scripts/node-env)")
    spool = tmp_path / "spool"
    spool.mkdir()
    os.chmod(spool, 0o1777)  # as the admin makes it: sticky, shared by all users
    backend = FakeBackend(local=True, spool_dir=str(spool), python=python)
    runner = CommandRunner(
        as_user_prefix=["runuser", "-u", "{username}", "--"],
        env={} if python == NODE_PYTHON else {"PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    workdir = tmp_path / "alice"
    workdir.mkdir()
    shutil.chown(workdir, "alice", "alice")
    spec, script = job(backend, workdir, "id -un; sleep 300", user="alice")
    job_id = await submit(backend, runner, spec, script)
    await wait_for(backend, runner, job_id, lambda o: (workdir / "job.out").exists())
    bob = backend.cancel_command([job_id], "bob")
    assert backend.parse_cancel(await runner.run(bob), [job_id]) == {job_id: CancelOutcome.DENIED}
    alice = backend.cancel_command([job_id], "alice")
    assert backend.parse_cancel(await runner.run(alice), [job_id]) == {job_id: CancelOutcome.REQUESTED}
    await wait_for(backend, runner, job_id, lambda o: o.state.terminal)
    assert (workdir / "job.out").read_text() == "alice\n"
