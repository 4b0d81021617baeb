"""A hub that runs another spawner first (batchspawner, sgespawner), then
switches to batchhub: what the migration tests share."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from batchhub.demo import repo_root
from batchhub.testing import missing
from batchhub.testing.hub import HUB_PYTHON, RealHub, hub_prerequisites, shared_state_dir
from batchhub.testing.jobs import scheduler_problem

#: The environment of the other spawners, with JupyterHub and JupyterLab,
#: for the first hub and its jobs (scripts/batchspawner-env).
FOREIGN_ENV = Path("/opt/batchhub/batchspawner-venv")

#: What the first hub keeps of the generated config: JupyterHub's own
#: settings (ports, database, proxy, authenticator, admin service).
HUB_CLASSES = (
    "c.JupyterHub.",
    "c.ConfigurableHTTPProxy.",
    "c.Authenticator.",
    "c.SharedPasswordAuthenticator.",
)


def foreign_env_problem(check: str, what: str) -> str | None:
    """What is missing for the other spawner's hub: runs
    scripts/batchspawner-env (idempotent) from a checkout, then ``check``
    (Python code) in that environment."""
    root = repo_root()
    script = root / "scripts" / "batchspawner-env" if root else None
    if script is not None and script.is_file():
        subprocess.run([str(script)], capture_output=True, timeout=900, check=False)
    python = FOREIGN_ENV / "bin" / "python"
    if not python.exists() or subprocess.run([str(python), "-c", check], capture_output=True).returncode:
        return f"{what} in {FOREIGN_ENV} (scripts/batchspawner-env, as root)"
    return None


def foreign_config(batchhub_config: Path, spawner_config: str, name: str) -> Path:
    """The config of the hub before the switch: the generated hub's own
    settings, with the other spawner's (and nothing of batchhub's, which
    its environment lacks), written beside it as ``name``."""
    lines = batchhub_config.read_text().splitlines()
    kept = [line for line in lines if line.startswith(HUB_CLASSES) and "spawner_class" not in line]
    text = "c = get_config()  # noqa: F821\n" + "\n".join(kept) + "\n" + spawner_config
    compile(text, name, "exec")
    path = batchhub_config.with_name(name)
    path.write_text(text)
    return path


def switch_to_batchhub(hub: RealHub, batchhub_config: Path) -> None:
    """The same hub (database, ports, cookie secret), now with batchhub as
    its spawner, from batchhub's environment, which holds neither of the others."""
    hub.stop()
    hub.config_file = batchhub_config
    hub.python = HUB_PYTHON
    hub.start()


@dataclass
class Foreign:
    """The spawner a site runs before batchhub, as its migration test runs it."""

    name: str  # "batchspawner"
    backend: str  # batchhub's backend after the switch
    check: str  # Python that passes where it is installed
    requirement: str  # what to install otherwise, in words
    config: str  # its spawner's settings; "{state}" is the hub's state directory
    jobs: Callable[[], set[str]]  # alice's live jobs it started
    cancel: Callable[[str], None]  # cancel one, as root
    outputs: Callable[[], set[Path]]  # the files its jobs leave
    files: dict[str, str] = field(default_factory=dict)  # written to the state directory first


def foreign_hub(foreign: Foreign) -> Iterator[RealHub]:
    """A hub running ``foreign``'s spawner; whatever the test does, no job
    of it, output file or state directory is left behind."""
    problem = (
        hub_prerequisites(foreign.backend)
        or scheduler_problem(foreign.backend)
        or foreign_env_problem(foreign.check, foreign.requirement)
    )
    if problem:
        missing(problem)
    state = shared_state_dir(f"batchhub-adopt-{foreign.name}-")
    for name, text in foreign.files.items():  # the state directory becomes the hub account's
        (state / name).write_text(text)
    hub = RealHub(state, backend=foreign.backend, python=FOREIGN_ENV / "bin" / "python")
    config = foreign.config.format(state=state)
    hub.config_file = foreign_config(hub.config_file, config, f"jupyterhub_config_{foreign.name}.py")
    jobs, outputs = foreign.jobs(), foreign.outputs()
    try:
        hub.start()
        yield hub
    finally:
        hub.stop()
        for job_id in foreign.jobs() - jobs:
            foreign.cancel(job_id)
        for output in foreign.outputs() - outputs:
            output.unlink(missing_ok=True)
        shutil.rmtree(state, ignore_errors=True)


def start_alices_server(hub: RealHub, timeout: float) -> dict[str, Any]:
    """alice's server, started by the hub's (other) spawner: its saved state."""
    assert "c.JupyterHub.cleanup_servers = False" in batchhub_config(hub).read_text()
    hub.api("POST", "users", json={"usernames": ["alice"]})
    r = hub.api("POST", "users/alice/server")
    assert r.status_code in (201, 202), r.text
    hub.wait_ready("alice", timeout=timeout)
    return hub.user_model("alice")["servers"][""]["state"]


def server_started(hub: RealHub) -> str:
    """When alice's server process started, asked through the proxy with her token."""
    token = hub.user_token("alice")
    r = requests.get(
        f"{hub.url}/user/alice/api/status", headers={"Authorization": f"token {token}"}, timeout=30
    )
    assert r.status_code == 200, r.text
    return str(r.json()["started"])


def batchhub_config(hub: RealHub) -> Path:
    """The config RealHub generated for batchhub, beside the other spawner's."""
    return hub.config_file.with_name("jupyterhub_config.py")


def switch_adopt_and_stop(
    hub: RealHub, foreign: Foreign, job_id: str, job_state: Callable[[str], str], running: str
) -> None:
    """Switch the hub to batchhub; the running job and its server go on,
    adopted, with nothing submitted; a stop through the hub cancels it."""
    jobs = foreign.jobs()
    started = server_started(hub)
    switch_to_batchhub(hub, batchhub_config(hub))

    assert job_state(job_id) == running, "the hub restart left the job alone"
    log = hub.log_text()
    assert f"Job {job_id} adopted from {foreign.name} for alice, on the {foreign.backend} backend" in log
    assert "had invalid url" not in log, "the server keeps the URL the hub recorded"
    assert hub.wait_ready("alice", timeout=60)["ready"]
    assert server_started(hub) == started, "the same server process answers"
    assert foreign.jobs() == jobs, "nothing was submitted again"
    assert hub.live_jobs() == set(), "nor a job of batchhub's"

    r = hub.api("DELETE", "users/alice/server")
    assert r.status_code in (202, 204), r.text
    hub.wait_stopped("alice", timeout=90)
    # (a deleted running Grid Engine job shows as dr until its node reports the end)
    hub.wait_for(f"job {job_id} to end", lambda: job_state(job_id) == "", 90)
    saved = hub.spawner_state("alice")
    assert saved.get("backend") == foreign.backend and saved.get("phase") in ("idle", "stopped"), saved
