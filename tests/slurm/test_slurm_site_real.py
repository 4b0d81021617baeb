"""Slurm's own check (``sbatch --test-only``, which submits nothing) of the
job scripts batchhub writes for nodes, tasks per node and mail, on the real
single-node Slurm of scripts/slurm-up."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from batchhub.jobs import CommandResult, JobSpec, ResourceRequest, SubmitError
from batchhub.template import render_job_script
from batchhub.testing import missing
from batchhub_slurm.backend import SlurmBackend

pytestmark = pytest.mark.slurm


def sbatch_test_only(**resources: object) -> subprocess.CompletedProcess[str]:
    backend = SlurmBackend()
    spec = JobSpec(
        "alice",
        "",
        backend.job_name("alice", ""),
        ResourceRequest(**resources),  # type: ignore[arg-type]
        "/tmp",
        command=("/bin/true",),
    )
    return subprocess.run(
        ["runuser", "-u", "alice", "--", "sbatch", "--test-only"],
        input=render_job_script(backend, spec),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.fixture(scope="module", autouse=True)
def real_slurm() -> None:
    if (
        os.geteuid() != 0
        or shutil.which("sbatch") is None
        or subprocess.run(["sinfo"], capture_output=True).returncode
    ):
        missing("Slurm (run scripts/slurm-up as root)")


def test_multi_task_job_with_mail_passes_slurms_check() -> None:
    result = sbatch_test_only(cores=1, nodes=1, tasks_per_node=2, memory_mb=1024, email="alice@example.org")
    assert result.returncode == 0, result
    assert "to start at" in result.stderr and "using 2 processors" in result.stderr, result


def test_two_nodes_are_judged_by_slurm_against_the_cluster() -> None:
    result = sbatch_test_only(cores=1, nodes=2, tasks_per_node=1)
    nodes = int(subprocess.run(["sinfo", "-h", "-o", "%D"], capture_output=True, text=True).stdout.split()[0])
    if nodes >= 2:
        assert result.returncode == 0, result
        return
    # this machine has one node: Slurm says so, and the user reads advice, not a crash
    assert "Requested node configuration is not available" in result.stdout + result.stderr, result
    outcome = CommandResult(command=None, returncode=result.returncode, stderr=result.stderr)  # type: ignore[arg-type]
    with pytest.raises(SubmitError, match="No node in the chosen partition"):
        SlurmBackend().parse_submit(outcome)
