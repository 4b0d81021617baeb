"""A real hub on the fake scheduler in local mode (jobs are real local
processes): hub restart with a running server, the port-report endpoint
against a real spawner, and a spawn that fails."""

from __future__ import annotations

import pytest
import requests

from batchhub.testing.hub import RealHub
from batchhub.testing.jobs import server_process

pytestmark = pytest.mark.hub


def answers(hub: RealHub, user: str) -> bool:
    token = hub.user_token(user)
    r = requests.get(f"{hub.url}/user/{user}/api", headers={"Authorization": f"token {token}"}, timeout=30)
    return r.status_code == 200 and "version" in r.json()


@pytest.fixture(scope="module")
def alice_running(fake_hub: RealHub) -> dict:
    hub = fake_hub
    hub.api("POST", "users", json={"usernames": ["alice", "bob"]})
    r = hub.api("POST", "users/alice/server", json={"user_options": {"cores": 1}})
    assert r.status_code in (201, 202), r.text
    return hub.wait_ready("alice")["state"]["batchhub"]


def report(hub: RealHub, token: str | None, body: object) -> requests.Response:
    headers = {"Authorization": f"token {token}"} if token else {}
    return requests.post(f"{hub.url}/hub/api/batchhub/port", json=body, headers=headers, timeout=30)


@pytest.mark.parametrize(
    ("who", "body", "status"),
    [
        ("server", {"port": 23456}, 409),  # a second report, after ready
        ("server", {"port": 23456, "cmd": ["/bin/sh"]}, 400),  # other keys
        ("server", {"port": "23456"}, 400),  # not an integer
        ("server", {"port": 23456.0}, 400),
        ("server", {"port": 80}, 400),  # out of range
        ("server", {"port": 70000}, 400),
        ("alice-user", {"port": 23456}, 403),  # alice's own token, not the server's
        ("bob-user", {"port": 23456}, 403),  # another user's token
        ("nobody", {"port": 23456}, 403),
    ],
)
def test_port_report_refused_and_nothing_changes(
    fake_hub: RealHub, alice_running: dict, who: str, body: object, status: int
) -> None:
    hub = fake_hub
    proc = server_process(alice_running["port"])
    assert proc is not None
    token = {
        "server": proc.env["JUPYTERHUB_API_TOKEN"],
        "alice-user": hub.user_token("alice"),
        "bob-user": hub.user_token("bob"),
        "nobody": None,
    }[who]
    r = report(hub, token, body)
    assert r.status_code == status, r.text
    after = hub.server("alice")["state"]["batchhub"]
    assert after["port"] == alice_running["port"] and after["phase"] == "ready"
    assert answers(hub, "alice")


def test_hub_restart_readopts_running_server(fake_hub: RealHub, alice_running: dict) -> None:
    hub = fake_hub
    jobs = hub.live_jobs()
    assert alice_running["job_id"] in jobs
    hub.restart()
    server = hub.wait_ready("alice", timeout=60)
    state = server["state"]["batchhub"]
    assert state["job_id"] == alice_running["job_id"], "a new job replaced the running one"
    assert state["port"] == alice_running["port"]
    assert hub.live_jobs() == jobs, "the restart submitted or lost a job"
    assert answers(hub, "alice")
    # still fully under control: stop after the restart cancels the job
    assert hub.api("DELETE", "users/alice/server").status_code in (202, 204)
    hub.wait_stopped("alice")
    assert alice_running["job_id"] not in hub.live_jobs()


def test_failed_job_reports_clean_reason(fake_hub: RealHub) -> None:
    hub = fake_hub
    hub.api("POST", "users", json={"usernames": ["bob"]})
    r = hub.api("POST", "users/bob/server", json={"user_options": {}})
    assert r.status_code in (201, 202, 500), r.text
    events = hub.progress_events("bob").join()
    last = events[-1]
    assert last.get("failed") is True, events
    assert "ended before the server started" in last["message"]
    assert "bob has no licence for this queue" in last["message"], "the job's error file tail is shown"
    assert last["message"].count("bob has no licence") == 1, "only this job's errors"
    assert "Traceback" not in last["message"] and "SpawnException" not in last["message"]
    hub.wait_stopped("bob")
