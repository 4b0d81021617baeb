"""Jobs found by their tag through a real hub (fake scheduler, local jobs):
stopping a server ends every live job of it, not only the recorded one;
`batchhub jobs --orphans` reports jobs with the hub's tag that no server
knows, cancels them only when asked, and never touches other jobs."""

from __future__ import annotations

import subprocess
import sys

import pytest

from batchhub.demo import job_bin_dir
from batchhub.testing.hub import RealHub
from batchhub.testing.jobs import live_job_ids
from batchhub_fake import FakeBackend

pytestmark = pytest.mark.hub


def submit_behind_the_hubs_back(hub: RealHub, user: str, name: str) -> str:
    """A job in the hub's scheduler that no server submitted."""
    python = job_bin_dir(as_root=True) / "python"
    script = f"#!/bin/sh\n#FAKE --name={name}\nexec sleep 600\n"
    spool = str(hub.state_dir / "fake-spool")
    done = subprocess.run(
        [
            "runuser",
            "-u",
            user,
            "--",
            str(python),
            "-m",
            "batchhub_fake.local",
            "--spool",
            spool,
            "fake-submit",
        ],
        input=script,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.split()[-1]


def jobs_cli(hub: RealHub, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "batchhub.cli", "jobs", "-f", str(hub.config_file), *args],
        cwd=hub.state_dir,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_stop_ends_strays_and_the_cli_reports_orphans(fake_hub: RealHub) -> None:
    hub = fake_hub
    hub.api("POST", "users", json={"usernames": ["alice", "bob"]})
    assert hub.api("POST", "users/alice/server", json={"user_options": {}}).status_code in (201, 202)
    tracked = hub.wait_ready("alice")["state"]["batchhub"]["job_id"]
    backend = FakeBackend(job_name_prefix=hub.job_prefix)
    stray = submit_behind_the_hubs_back(hub, "alice", backend.job_name("alice", "", "0000dead"))
    orphan = submit_behind_the_hubs_back(hub, "bob", backend.job_name("bob", "", "0000beef"))
    untagged = submit_behind_the_hubs_back(hub, "bob", "bobs-own-analysis")
    try:
        listed = jobs_cli(hub, "--orphans")
        assert listed.returncode == 0, listed.stderr
        rows = {line.split()[0] for line in listed.stdout.splitlines()[1:-1]}
        assert rows == {stray, orphan}, listed.stdout  # never the tracked or the untagged job
        assert "2 orphans" in listed.stdout

        # stopping alice's server ends her stray too: never a job left running for a stopped server
        assert hub.api("DELETE", "users/alice/server").status_code in (202, 204)
        hub.wait_stopped("alice")
        hub.wait_jobs_gone({tracked, stray})
        assert orphan in hub.live_jobs()

        cancelled = jobs_cli(hub, "--orphans", "--cancel")
        assert cancelled.returncode == 0, cancelled.stderr
        assert f"cancelled 1: {orphan}" in cancelled.stdout
        hub.wait_jobs_gone({orphan})
        # live_jobs() keeps the hub's tag: ask for every job in the scheduler
        everyone = live_job_ids(hub.backend, hub.state_dir)
        assert untagged in everyone, "a job without the hub's tag is never touched"
    finally:
        cancel_as_root(hub, [stray, orphan, untagged])


def cancel_as_root(hub: RealHub, job_ids: list[str]) -> None:
    """End the test's own jobs whatever happened."""
    python = job_bin_dir(as_root=True) / "python"
    spool = str(hub.state_dir / "fake-spool")
    subprocess.run(
        [str(python), "-m", "batchhub_fake.local", "--spool", spool, "fake-cancel", ",".join(job_ids)],
        capture_output=True,
        timeout=60,
    )
