"""A hub switches from batchspawner to batchhub without killing a server.

batchspawner 1.3.0's SlurmSpawner, in a hub of its own environment
(scripts/batchspawner-env), starts alice's server as a real Slurm job
(``batchspawner-singleuser jupyterhub-singleuser``, its port reported to
batchspawner's own API handler). That hub stops with ``cleanup_servers =
False``; the same hub (database, ports, cookie secret) restarts with
``c.JupyterHub.spawner_class = "batchhub"`` on the slurm backend, as
docs/migrating.md says. batchhub adopts the job from batchspawner's saved
state: the same job and the same server process go on, reachable through
the proxy, no job is submitted, and a stop through the hub cancels it.
"""

from __future__ import annotations

import pwd
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from batchhub.demo import repo_root
from batchhub.testing import missing
from batchhub.testing.hub import HUB_PYTHON, RealHub, hub_prerequisites, shared_state_dir
from batchhub.testing.jobs import scheduler_problem

pytestmark = [pytest.mark.hub, pytest.mark.slurm]

#: batchspawner 1.3.0 with JupyterHub and JupyterLab, for that hub and its jobs.
BATCHSPAWNER_ENV = Path("/opt/batchhub/batchspawner-venv")

#: The first hub's spawner, as a site running batchspawner configures it.
BATCHSPAWNER_CONFIG = f"""
c.JupyterHub.spawner_class = 'batchspawner.SlurmSpawner'
c.SlurmSpawner.batchspawner_singleuser_cmd = '{BATCHSPAWNER_ENV}/bin/batchspawner-singleuser'
c.Spawner.cmd = ['{BATCHSPAWNER_ENV}/bin/jupyterhub-singleuser']
c.SlurmSpawner.req_runtime = '1:00:00'
c.SlurmSpawner.req_memory = '512M'
c.SlurmSpawner.startup_poll_interval = 1.0
"""


def batchspawner_env_problem() -> str | None:
    """What is missing for batchspawner's hub; runs scripts/batchspawner-env
    (idempotent) from a checkout first."""
    root = repo_root()
    script = root / "scripts" / "batchspawner-env" if root else None
    if script is not None and script.is_file():
        subprocess.run([str(script)], capture_output=True, timeout=900, check=False)
    python = BATCHSPAWNER_ENV / "bin" / "python"
    check = [str(python), "-c", "import batchspawner; assert batchspawner.__version__ == '1.3.0'"]
    if not python.exists() or subprocess.run(check, capture_output=True, check=False).returncode:
        return f"batchspawner 1.3.0 in {BATCHSPAWNER_ENV} (scripts/batchspawner-env, as root)"
    return None


def batchspawner_jobs() -> list[str]:
    """alice's live jobs named as batchspawner's SlurmSpawner names them."""
    argv = ["squeue", "-h", "-u", "alice", "-n", "spawner-jupyterhub", "-o", "%i"]
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=True).stdout.split()


def job_state(job_id: str) -> str:
    """The job's Slurm state, "" once squeue no longer lists it."""
    done = subprocess.run(
        ["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True, text=True, timeout=30, check=False
    )
    return done.stdout.strip() if done.returncode == 0 else ""


@pytest.fixture
def batchspawner_hub() -> Iterator[RealHub]:
    problem = hub_prerequisites("slurm") or scheduler_problem("slurm") or batchspawner_env_problem()
    if problem:
        missing(problem)
    state = shared_state_dir("batchhub-adopt-")
    hub = RealHub(state, backend="slurm", python=BATCHSPAWNER_ENV / "bin" / "python")
    hub.config_file = batchspawner_config(hub.config_file)
    before = set(batchspawner_jobs())
    try:
        hub.start()
        yield hub
    finally:
        hub.stop()
        home = Path(pwd.getpwnam("alice").pw_dir)
        for job_id in set(batchspawner_jobs()) - before:  # never leave a job behind
            subprocess.run(["scancel", job_id], check=False)
            (home / f"jupyterhub_slurmspawner_{job_id}.log").unlink(missing_ok=True)  # its output
        shutil.rmtree(state, ignore_errors=True)


#: What the batchspawner hub keeps of the generated config: JupyterHub's
#: own settings (ports, database, proxy, authenticator, admin service).
HUB_CLASSES = (
    "c.JupyterHub.",
    "c.ConfigurableHTTPProxy.",
    "c.Authenticator.",
    "c.SharedPasswordAuthenticator.",
)


def batchspawner_config(batchhub_config: Path) -> Path:
    """The config of the hub before the switch: the generated hub's own
    settings, with batchspawner's SlurmSpawner (and nothing of batchhub's,
    which its environment lacks)."""
    lines = batchhub_config.read_text().splitlines()
    kept = [line for line in lines if line.startswith(HUB_CLASSES) and "spawner_class" not in line]
    text = "c = get_config()  # noqa: F821\n" + "\n".join(kept) + "\n" + BATCHSPAWNER_CONFIG
    compile(text, "jupyterhub_config_batchspawner.py", "exec")
    path = batchhub_config.with_name("jupyterhub_config_batchspawner.py")
    path.write_text(text)
    return path


def switch_to_batchhub(hub: RealHub, batchhub_config: Path) -> None:
    """The same hub (database, ports, cookie secret), now with batchhub as
    its spawner, from batchhub's environment, which holds no batchspawner."""
    hub.stop()
    hub.config_file = batchhub_config
    hub.python = HUB_PYTHON
    hub.start()


def test_batchhub_adopts_a_server_batchspawner_started(batchspawner_hub: RealHub) -> None:
    hub = batchspawner_hub
    batchhub_config = hub.config_file.with_name("jupyterhub_config.py")
    assert "c.JupyterHub.cleanup_servers = False" in batchhub_config.read_text()
    hub.api("POST", "users", json={"usernames": ["alice"]})
    r = hub.api("POST", "users/alice/server")
    assert r.status_code in (201, 202), r.text
    hub.wait_ready("alice", timeout=240)
    state = hub.user_model("alice")["servers"][""]["state"]
    job_id = state["job_id"]
    assert state["job_status"].startswith("RUNNING"), state  # batchspawner's own record
    assert job_state(job_id) == "RUNNING"
    token = hub.user_token("alice")
    server_url = f"{hub.url}/user/alice/api/status"
    before = requests.get(server_url, headers={"Authorization": f"token {token}"}, timeout=30)
    assert before.status_code == 200, before.text

    switch_to_batchhub(hub, batchhub_config)

    assert job_state(job_id) == "RUNNING", "the hub restart left the job alone"
    log = hub.log_text()
    assert f"Job {job_id} adopted from batchspawner for alice, on the slurm backend" in log
    assert "had invalid url" not in log, "the server keeps the URL the hub recorded"
    assert hub.wait_ready("alice", timeout=60)["ready"]
    after = requests.get(server_url, headers={"Authorization": f"token {token}"}, timeout=30)
    assert after.status_code == 200, after.text
    assert after.json()["started"] == before.json()["started"], "the same server process answers"
    assert batchspawner_jobs() == [job_id], "nothing was submitted again"
    assert hub.live_jobs() == set(), "nor a job of batchhub's"

    r = hub.api("DELETE", "users/alice/server")
    assert r.status_code in (202, 204), r.text
    hub.wait_stopped("alice", timeout=90)
    hub.wait_for(f"job {job_id} to leave squeue", lambda: job_state(job_id) == "", 60)
    saved = hub.spawner_state("alice")
    assert saved.get("backend") == "slurm" and saved.get("phase") in ("idle", "stopped"), saved
