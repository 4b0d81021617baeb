"""Spawn, list and stop a server through a real JupyterHub on the fake PBS,
as whoever runs this (no root: the hub runs as you, and so do the jobs).

Used by test_pbs_hub.py, and runnable alone with a Python that has
batchhub and batchhub-pbs installed (``python hub_check.py``): it exits 0
when all went well, 77 (printing why) when something it needs is missing.
"""

from __future__ import annotations

import getpass
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import requests

from batchhub.testing.hub import RealHub, hub_prerequisites, shared_state_dir

BIN = Path(sys.executable).parent  # fakepbs-qsub & co. are installed beside this Python
MISSING = 77


def problem() -> str | None:
    """What is missing for the check, or ``None``."""
    if not (BIN / "fakepbs-qsub").exists():
        return f"fakepbs beside {sys.executable} (pip install docs/examples/batchhub-pbs)"
    return hub_prerequisites("pbs", users=[getpass.getuser()])


def fake_pbs_config(spool: Path) -> dict[str, dict[str, Any]]:
    """``backend_config`` pointing the PBS backend at the fake's commands."""
    programs = {name: str(BIN / f"fakepbs-{name}") for name in ("qsub", "qstat", "qdel")}
    return {"PBSBackend": {"programs": programs, "command_env": {"FAKEPBS_SPOOL": str(spool)}}}


def start_hub() -> RealHub:
    state = shared_state_dir("batchhub-pbs-")
    hub = RealHub(state, backend="pbs", backend_config=fake_pbs_config(state / "fakepbs-spool"))
    hub.start()
    return hub


def finish(hub: RealHub) -> None:
    """Stop any server left and the hub, and remove its state."""
    me = getpass.getuser()
    try:
        if hub.proc and hub.proc.poll() is None and hub.server(me) is not None:
            hub.api("DELETE", f"users/{me}/server")
            hub.wait_stopped(me)
    finally:
        hub.stop()
        shutil.rmtree(hub.state_dir, ignore_errors=True)


def qstat(hub: RealHub, job_id: str) -> dict[str, Any]:
    """What the fake PBS says about ``job_id`` (finished jobs too)."""
    env = {"FAKEPBS_SPOOL": str(hub.state_dir / "fakepbs-spool"), "PATH": "/usr/bin:/bin"}
    argv = [str(BIN / "fakepbs-qstat"), "-f", "-F", "json", "-x", job_id]
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=30, check=True)
    return json.loads(done.stdout)["Jobs"][job_id]


def spawn_list_and_stop(hub: RealHub) -> None:
    me = getpass.getuser()
    hub.api("POST", "users", json={"usernames": [me]})
    r = hub.api("POST", f"users/{me}/server", json={"user_options": {"cores": 2, "memory": "1G"}})
    assert r.status_code in (201, 202), r.text
    server = hub.wait_ready(me)
    state = server["state"]["batchhub"]
    job_id = state["job_id"]
    assert state["backend"] == "pbs" and job_id.endswith(".fakepbs"), state
    live = hub.live_jobs()  # the backend's own listing (qstat -f -F json), through RealHub
    assert live == {job_id}, live
    assert qstat(hub, job_id)["Resource_List"]["ncpus"] == 2

    # the server answers through the proxy
    token = hub.user_token(me)
    api = requests.get(f"{hub.url}/user/{me}/api", headers={"Authorization": f"token {token}"}, timeout=30)
    assert api.status_code == 200 and "version" in api.json(), api.text

    # stop: qdel as the user; PBS keeps the job as finished by deletion
    r = hub.api("DELETE", f"users/{me}/server")
    assert r.status_code in (202, 204), r.text
    hub.wait_stopped(me)
    hub.wait_jobs_gone({job_id})
    job = qstat(hub, job_id)
    assert (job["job_state"], job["substate"]) == ("F", 91), job


def main() -> int:
    why = problem()
    if why:
        print(f"missing: {why}")
        return MISSING
    hub = start_hub()
    try:
        spawn_list_and_stop(hub)
    except BaseException:
        print(hub.log_tail(), file=sys.stderr)
        raise
    finally:
        finish(hub)
    print("ok: spawned, listed and stopped a server on the fake PBS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
