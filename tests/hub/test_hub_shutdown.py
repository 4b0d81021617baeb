"""A hub told to stop (SIGTERM) exits promptly, every time, with a running
server and a spawn still pending: the shared monitor and every waiting
spawn end when JupyterHub cancels its tasks."""

from __future__ import annotations

import signal
import subprocess
import time

import pytest

from batchhub.testing.hub import RealHub

pytestmark = pytest.mark.hub

ROUNDS = 20
EXIT_WITHIN = 10.0


def sigterm_exit_seconds(hub: RealHub) -> float:
    assert hub.proc is not None
    started = time.monotonic()
    hub.proc.send_signal(signal.SIGTERM)
    try:
        hub.proc.wait(EXIT_WITHIN + 20)
    except subprocess.TimeoutExpired:
        hub.stop()  # SIGKILL: the next round needs a hub
        return float("inf")
    return time.monotonic() - started


def test_sigterm_exits_promptly_every_time(waiting_hub: RealHub) -> None:
    hub = waiting_hub
    hub.api("POST", "users", json={"usernames": ["alice", "bob"]})
    assert hub.api("POST", "users/alice/server", json={"user_options": {}}).status_code in (201, 202)
    hub.wait_ready("alice")
    exits = []
    for _ in range(ROUNDS):
        # a restart cancels bob's half-started spawn: ask again each round
        r = hub.api("POST", "users/bob/server", json={"user_options": {}})
        assert r.status_code in (201, 202), r.text
        hub.wait_for("bob's job to be queued", lambda: hub.spawner_state("bob").get("job_id"), 60)
        exits.append(sigterm_exit_seconds(hub))
        hub.start()
        assert hub.wait_ready("alice", timeout=60), "alice's server did not survive the restart"
        hub.wait_stopped("bob", timeout=60)
    slow = [f"{s:.1f}" for s in exits if s > EXIT_WITHIN]
    assert not slow, f"the hub took over {EXIT_WITHIN:g} s to exit in rounds {slow} (all: {exits})"
