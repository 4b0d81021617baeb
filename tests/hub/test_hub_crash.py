"""A hub that dies in the middle of a spawn loses no job: on restart the
half-started spawn is cancelled cleanly, the user is told why on the spawn
page, and can start again."""

from __future__ import annotations

import os
import signal

import pytest

from batchhub.testing.hub import RealHub, login

pytestmark = pytest.mark.hub


def crash(hub: RealHub) -> None:
    """Kill the hub and its proxy at once, as a power cut or OOM kill would:
    no cleanup code of the hub runs."""
    assert hub.proc is not None
    os.killpg(hub.proc.pid, signal.SIGKILL)
    hub.proc.wait()


def test_hub_crash_mid_spawn_cancels_the_job_on_restart(slow_hub: RealHub) -> None:
    hub = slow_hub
    hub.api("POST", "users", json={"usernames": ["alice"]})
    r = hub.api("POST", "users/alice/server", json={"user_options": {}})
    assert r.status_code in (201, 202), r.text
    state = hub.wait_for(
        "alice's job to be submitted and saved",
        lambda: (s := hub.spawner_state("alice")).get("job_id") and s,
        timeout=60,
    )
    job_id = state["job_id"]
    assert state["phase"] in ("queued", "starting"), state
    assert job_id in hub.live_jobs()

    crash(hub)
    assert job_id in hub.live_jobs(), "the job outlives the hub, as a batch job does"
    hub.start()

    hub.wait_for("the half-started job to be cancelled", lambda: job_id not in hub.live_jobs(), 60)
    hub.wait_stopped("alice")
    # cancelled on purpose at start-up, not left to time out probing a server that never was
    assert f"cancelling job {job_id} of alice" in hub.log_text()
    # alice's next visit says what happened, also after another restart
    notice = (
        f"The hub restarted while your server was starting; its job {job_id} was cancelled. Start it again."
    )
    hub.restart()
    session = login(hub.url, "alice", hub.password)
    page = session.get(f"{hub.url}/hub/spawn", timeout=30)
    assert page.status_code == 200, page.text
    assert notice in page.text, page.text
    # the user is not stuck: a new start submits a new job
    r = hub.api("POST", "users/alice/server", json={"user_options": {}})
    assert r.status_code in (201, 202), r.text
    hub.wait_for("a new job", lambda: hub.spawner_state("alice").get("job_id") not in (None, job_id), 60)
    assert hub.api("DELETE", "users/alice/server").status_code in (202, 204)
    hub.wait_stopped("alice", timeout=90)
    assert not hub.live_jobs()
    # the notice was for that one visit's start: once she started again, it is gone
    page = session.get(f"{hub.url}/hub/spawn", timeout=30)
    assert page.status_code == 200 and "The hub restarted" not in page.text
