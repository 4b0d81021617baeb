"""A hub whose BatchSpawner cannot spawn refuses to start.

Each test starts a real ``jupyterhub`` process on a config file, with no
proxy (the hub gets no further than its start-up), and reads its log.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from batchhub.plugins import get_registry

JUPYTERHUB = str(Path(sys.executable).with_name("jupyterhub"))
#: Logged once the hub has set up its spawners, after batchhub's check.
PAST_THE_CHECK = "Initialized 0 spawners"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_config(directory: Path, lines: str) -> Path:
    config = directory / "jupyterhub_config.py"
    config.write_text(
        f"""
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = {free_port()}
c.JupyterHub.hub_port = {free_port()}
c.JupyterHub.db_url = "sqlite:///{directory}/hub.sqlite"
c.JupyterHub.cookie_secret_file = "{directory}/cookie_secret"
c.JupyterHub.pid_file = "{directory}/hub.pid"
c.ConfigurableHTTPProxy.should_start = False
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{free_port()}"
c.ConfigurableHTTPProxy.auth_token = "unused"
{lines}
"""
    )
    return config


def run_hub(directory: Path, lines: str, timeout: float = 60.0) -> tuple[int | None, str]:
    """Start a hub; return its exit status (None: still running once it got
    past the check, then stopped) and its log."""
    config = write_config(directory, lines)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [JUPYTERHUB, "-f", str(config)],
        cwd=directory,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    log: list[str] = []
    deadline = time.monotonic() + timeout
    try:
        for line in process.stdout:
            log.append(line)
            if PAST_THE_CHECK in line or time.monotonic() > deadline:
                return None, "".join(log)
        return process.wait(timeout=10), "".join(log)
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=30)


def installed() -> list[str]:
    return list(get_registry().backends)


@pytest.mark.parametrize(
    "spawner_class",
    [
        'c.JupyterHub.spawner_class = "batchhub"',
        "from batchhub.spawner import BatchSpawner\nc.JupyterHub.spawner_class = BatchSpawner",
    ],
    ids=["entry-point", "imported-class"],
)
def test_a_hub_with_no_backend_set_refuses_to_start(tmp_path: Path, spawner_class: str) -> None:
    status, log = run_hub(tmp_path, spawner_class)
    assert status not in (0, None), log
    assert "The hub cannot start: No batchhub backend is set." in log
    assert f"Installed backends: {', '.join(installed())}." in log
    assert "c.BatchSpawner.backend = '<name>'" in log
    assert PAST_THE_CHECK not in log  # stopped before any spawner was set up, let alone served


def test_a_hub_with_an_unknown_backend_refuses_to_start(tmp_path: Path) -> None:
    config = 'c.JupyterHub.spawner_class = "batchhub"\nc.BatchSpawner.backend = "nowhere"'
    status, log = run_hub(tmp_path, config)
    assert status not in (0, None), log
    assert "The hub cannot start: No batchhub backend named 'nowhere'." in log
    assert f"Installed backends: {', '.join(installed())}." in log
    assert "Set c.BatchSpawner.backend to one of them" in log


def test_a_token_in_a_readable_job_environment_refuses_to_start(tmp_path: Path) -> None:
    public = [name for name, cls in get_registry().backends.items() if not cls.private_job_env]
    if not public:
        pytest.skip("every installed backend keeps job environments private")
    config = (
        'c.JupyterHub.spawner_class = "batchhub"\n'
        f"c.BatchSpawner.backend = {public[0]!r}\n"
        'c.BatchSpawner.token_delivery = "env"'
    )
    status, log = run_hub(tmp_path, config)
    assert status not in (0, None), log
    assert f"token_delivery = 'env' is refused for the {public[0]!r} backend" in log


def test_a_hub_with_an_installed_backend_gets_past_the_check(tmp_path: Path) -> None:
    config = f'c.JupyterHub.spawner_class = "batchhub"\nc.BatchSpawner.backend = {installed()[0]!r}'
    status, log = run_hub(tmp_path, config)
    assert status is None, log
    assert "cannot start" not in log
