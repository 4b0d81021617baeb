"""A hub that dies in the middle of a spawn loses no job: on restart the
half-started spawn is cancelled cleanly and the user can start again."""

from __future__ import annotations

import os
import signal

import pytest

from batchhub.testing.hub import RealHub

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
    # the user is not stuck: a new start submits a new job
    r = hub.api("POST", "users/alice/server", json={"user_options": {}})
    assert r.status_code in (201, 202), r.text
    hub.wait_for("a new job", lambda: hub.spawner_state("alice").get("job_id") not in (None, job_id), 60)
    assert hub.api("DELETE", "users/alice/server").status_code in (202, 204)
    hub.wait_stopped("alice", timeout=90)
    assert not hub.live_jobs()
