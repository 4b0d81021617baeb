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
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from foreign_hub import FOREIGN_ENV, Foreign, foreign_hub, start_alices_server, switch_adopt_and_stop

from batchhub.testing.hub import RealHub

pytestmark = [pytest.mark.hub, pytest.mark.slurm]

#: batchspawner 1.3.0 with JupyterHub and JupyterLab, for that hub and its jobs.
BATCHSPAWNER_ENV = FOREIGN_ENV

#: The first hub's spawner, as a site running batchspawner configures it.
BATCHSPAWNER_CONFIG = f"""
c.JupyterHub.spawner_class = 'batchspawner.SlurmSpawner'
c.SlurmSpawner.batchspawner_singleuser_cmd = '{BATCHSPAWNER_ENV}/bin/batchspawner-singleuser'
c.Spawner.cmd = ['{BATCHSPAWNER_ENV}/bin/jupyterhub-singleuser']
c.SlurmSpawner.req_runtime = '1:00:00'
c.SlurmSpawner.req_memory = '512M'
c.SlurmSpawner.startup_poll_interval = 1.0
"""


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


def alice_home() -> Path:
    return Path(pwd.getpwnam("alice").pw_dir)


BATCHSPAWNER = Foreign(
    name="batchspawner",
    backend="slurm",
    check="import batchspawner; assert batchspawner.__version__ == '1.3.0'",
    requirement="batchspawner 1.3.0",
    config=BATCHSPAWNER_CONFIG,
    jobs=lambda: set(batchspawner_jobs()),
    cancel=lambda job_id: subprocess.run(["scancel", job_id], check=False),
    outputs=lambda: set(alice_home().glob("jupyterhub_slurmspawner_*.log")),
)


@pytest.fixture
def batchspawner_hub() -> Iterator[RealHub]:
    yield from foreign_hub(BATCHSPAWNER)


def test_batchhub_adopts_a_server_batchspawner_started(batchspawner_hub: RealHub) -> None:
    hub = batchspawner_hub
    state = start_alices_server(hub, timeout=240)
    job_id = state["job_id"]
    assert state["job_status"].startswith("RUNNING"), state  # batchspawner's own record
    assert job_state(job_id) == "RUNNING"
    switch_adopt_and_stop(hub, BATCHSPAWNER, job_id, job_state, "RUNNING")
