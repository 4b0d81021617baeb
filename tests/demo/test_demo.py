"""The README's first command: scripts/demo starts a real hub with
BatchSpawner on the fake backend; a user logs in over HTTP, spawns from
the form, reaches the server, and stopping the demo stops everything."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
import requests

from batchhub.demo import free_port
from batchhub.testing import missing
from batchhub.testing.demo import DemoProcess
from batchhub.testing.hub import hub_prerequisites, login
from batchhub.testing.jobs import live_job_ids

pytestmark = pytest.mark.hub
REPO = Path(__file__).resolve().parents[2]


def test_demo_from_the_readme(tmp_path: Path) -> None:
    problem = hub_prerequisites()
    if problem:
        missing(problem)
    port = free_port()
    state = Path("/tmp") / f"batchhub-demo-test-{os.getpid()}"
    argv = [str(REPO / "scripts" / "demo"), "--port", str(port), "--state-dir", str(state)]
    demo = DemoProcess(argv, cwd=REPO)
    try:
        found = demo.wait_for(r"log in as user '(\w+)' with password '([^']+)'", timeout=300)
        user, password = found.groups()
        url = f"http://127.0.0.1:{port}"
        assert f"{url}/" in demo.output
        assert requests.get(f"{url}/hub/api/", timeout=5).ok, "the hub answers once its URL is printed"

        session = login(url, user, password)
        form = session.get(f"{url}/hub/spawn", timeout=30)
        form.encoding = "utf-8"
        assert 'name="cores"' in form.text and "1\u20134 cores" in form.text
        r = session.post(
            f"{url}/hub/spawn",
            data={
                "cores": "1",
                "memory": "1G",
                "gpus": "0",
                "runtime": "1h",
                "_xsrf": session.cookies["_xsrf"],
            },
            timeout=60,
        )
        assert r.status_code == 200, r.text[:500]
        deadline = time.monotonic() + 90
        while True:  # the spawn page, then the server through the proxy (OAuth with the cookie)
            api = session.get(f"{url}/user/{user}/api", timeout=30)
            if api.status_code == 200 and api.headers.get("content-type", "").startswith("application/json"):
                break
            assert time.monotonic() < deadline, f"server never answered: {api.status_code} {api.text[:300]}"
            time.sleep(1)
        assert "version" in api.json()
        assert len(live_job_ids("fake", state)) == 1
    finally:
        demo.stop()
    # stopping the demo stopped the hub and cancelled the job
    deadline = time.monotonic() + 30
    while live_job_ids("fake", state) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert live_job_ids("fake", state) == set(), demo.output[-3000:]
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/hub/api/", timeout=5)
    shutil.rmtree(state, ignore_errors=True)
