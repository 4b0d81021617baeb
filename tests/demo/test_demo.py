"""The README's first command: scripts/demo starts a real hub with
BatchSpawner on the fake backend; a user logs in over HTTP, spawns from
the form, reaches the server, and stopping the demo stops everything."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests

from batchhub.demo import free_port
from batchhub.testing import missing
from batchhub.testing.hub import hub_prerequisites, login
from batchhub.testing.jobs import live_job_ids

pytestmark = pytest.mark.hub
REPO = Path(__file__).resolve().parents[2]


class Demo:
    def __init__(self, port: int, state: Path) -> None:
        self.output: list[str] = []
        self.proc = subprocess.Popen(
            [str(REPO / "scripts" / "demo"), "--port", str(port), "--state-dir", str(state)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.search(pattern, "".join(self.output))
            if match:
                return match
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(f"demo never printed {pattern!r}:\n{''.join(self.output)[-3000:]}")


def test_demo_from_the_readme(tmp_path: Path) -> None:
    problem = hub_prerequisites()
    if problem:
        missing(problem)
    port = free_port()
    state = Path("/tmp") / f"batchhub-demo-test-{os.getpid()}"
    demo = Demo(port, state)
    try:
        found = demo.wait_for(r"log in as user '(\w+)' with password '([^']+)'", timeout=300)
        user, password = found.groups()
        url = f"http://127.0.0.1:{port}"
        assert f"{url}/" in "".join(demo.output)
        deadline = time.monotonic() + 60
        while True:  # the hub answers a moment after it printed its URL
            try:
                if requests.get(f"{url}/hub/api/", timeout=5).ok:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, "".join(demo.output)
            time.sleep(0.3)

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
        demo.proc.send_signal(signal.SIGTERM)
        try:
            demo.proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(demo.proc.pid, signal.SIGKILL)
    # stopping the demo stopped the hub and cancelled the job
    deadline = time.monotonic() + 30
    while live_job_ids("fake", state) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert live_job_ids("fake", state) == set(), "".join(demo.output)[-3000:]
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/hub/api/", timeout=5)
    shutil.rmtree(state, ignore_errors=True)
