"""End to end on real schedulers: a real JupyterHub process with the real
proxy spawns alice's server as an SGE or Slurm job through the REST API."""

from __future__ import annotations

import os
import pwd
import stat
import time
from pathlib import Path

import pytest
import requests

from batchhub.testing.hub import RealHub
from batchhub.testing.jobs import (
    all_command_lines,
    files_containing,
    job_details,
    scheduler_spool_dirs,
    server_process,
)

pytestmark = pytest.mark.hub

OPTIONS = {"cores": 2, "memory": "1G", "gpus": 1}


def workdir(user: str) -> Path:
    return Path(pwd.getpwnam(user).pw_dir) / ".batchhub" / "default"


#: A file in alice's home that her server's file browser must show.
HOME_MARKER = "batchhub-home-marker.txt"


def test_spawn_progress_proxy_and_stop(scheduler_hub: RealHub, jobs_before: set[str]) -> None:
    hub = scheduler_hub
    marker = Path(pwd.getpwnam("alice").pw_dir) / HOME_MARKER
    marker.write_text("visible in JupyterLab\n")
    hub.api("POST", "users", json={"usernames": ["alice", "bob"]})
    r = hub.api("POST", "users/alice/server", json={"user_options": OPTIONS})
    assert r.status_code in (201, 202), r.text
    progress = hub.progress_events("alice")
    server = hub.wait_ready("alice")
    events = progress.join()
    messages = [e["message"] for e in events]

    # the progress stream climbed through the job's life
    assert any("queued" in m for m in messages), messages
    assert any("running on" in m for m in messages), messages
    assert events[-1].get("ready") is True, events
    percents = [e["progress"] for e in events]
    assert percents == sorted(percents), percents

    # the job is the scheduler's, with alice's options
    state = server["state"]["batchhub"]
    job_id = state["job_id"]
    assert state["backend"] == hub.backend and state["phase"] == "ready"
    assert job_id in hub.live_jobs() - jobs_before
    assert server["user_options"] == OPTIONS

    # the server answers through the proxy, as alice
    token = hub.user_token("alice")
    api = requests.get(f"{hub.url}/user/alice/api", headers={"Authorization": f"token {token}"}, timeout=30)
    assert api.status_code == 200 and "version" in api.json()
    # JupyterLab's file browser opens in alice's home, not in the job's private directory
    contents = requests.get(
        f"{hub.url}/user/alice/api/contents", headers={"Authorization": f"token {token}"}, timeout=30
    )
    assert contents.status_code == 200, contents.text
    assert HOME_MARKER in {item["name"] for item in contents.json()["content"]}

    # it runs as alice, and its token is where nobody else can read it
    proc = server_process(state["port"])
    assert proc is not None, "no jupyterhub-singleuser process on the reported port"
    assert proc.uid == pwd.getpwnam("alice").pw_uid
    secret = proc.env["JUPYTERHUB_API_TOKEN"]
    assert secret not in job_details(hub.backend, job_id)
    assert secret not in all_command_lines()
    assert secret not in hub.log_text()
    for spool in scheduler_spool_dirs(hub.backend):
        assert files_containing(spool, secret) == []
    assert not (workdir("alice") / "token").exists(), "the launcher must delete the token file"
    assert files_containing(workdir("alice"), secret) == []
    assert stat.S_IMODE(os.stat(workdir("alice")).st_mode) == 0o700

    # stop cancels the job: the scheduler no longer lists it
    r = hub.api("DELETE", "users/alice/server")
    assert r.status_code in (202, 204), r.text
    hub.wait_stopped("alice")
    deadline = time.monotonic() + 60  # Grid Engine shows `dr` until execd reports the end
    while job_id in hub.live_jobs() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert job_id not in hub.live_jobs()
    assert hub.live_jobs() - jobs_before == set(), "a job was left behind"


@pytest.mark.parametrize(
    ("options", "said"),
    [
        ({"cores": 999}, "cores"),
        ({"memory": "4G; rm -rf /"}, "memory"),
        ({"cores": 1, "rm": "-rf"}, "unknown option"),
        ({"queue": "all.q\n#$ -u root"}, "queue"),
    ],
)
def test_invalid_options_refused_without_a_job(
    scheduler_hub: RealHub, jobs_before: set[str], options: dict, said: str
) -> None:
    hub = scheduler_hub
    hub.api("POST", "users", json={"usernames": ["alice"]})
    r = hub.api("POST", "users/alice/server", json={"user_options": options})
    assert 400 <= r.status_code < 500, r.text
    body = r.json()
    assert said in body["message"], body
    assert "Traceback" not in r.text
    time.sleep(1)
    assert hub.server("alice") is None
    new_jobs = hub.live_jobs() - jobs_before
    assert new_jobs == set(), "an invalid request reached the scheduler"
