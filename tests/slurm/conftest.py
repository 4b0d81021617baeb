"""What the real-Slurm tests share: Slurm answering (else a failure in CI,
never a skip), a private directory of alice's as the spawner makes per
server, and the test's jobs cancelled whatever happens."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator

import pytest

from batchhub.testing import missing, need_root_and_user
from batchhub.testing.jobs import private_workdir

USER = "alice"


def slurm_answers() -> bool:
    if shutil.which("sbatch") is None or shutil.which("scontrol") is None:
        return False
    ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=20)
    return ping.returncode == 0 and "UP" in ping.stdout


@pytest.fixture(scope="module")
def slurm() -> None:
    if not slurm_answers():
        missing("Slurm (run scripts/slurm-up)")
    need_root_and_user(USER, "to run jobs as alice and restart slurmctld (Slurm tests)")


@pytest.fixture
def workdir(slurm: None) -> Iterator[str]:
    """A private directory of alice's, as the spawner makes per server."""
    with private_workdir(USER, "batchhub-slurm-") as path:
        yield path


@pytest.fixture
def jobs(slurm: None) -> Iterator[list[str]]:
    """Ids submitted by a test; all cancelled at the end whatever happens."""
    ids: list[str] = []
    yield ids
    if ids:
        subprocess.run(["scancel", *ids], capture_output=True, timeout=30)
