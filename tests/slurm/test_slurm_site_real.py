"""Slurm's own check (``sbatch --test-only``, which submits nothing) of the
job scripts batchhub writes for nodes, tasks per node and mail, on the real
Slurm of scripts/slurm-up: two nodes on one machine, both in the partition
``multi``, one in the default ``debug``."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

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
    nodes_ready()


def test_multi_task_job_with_mail_passes_slurms_check() -> None:
    result = sbatch_test_only(cores=1, nodes=1, tasks_per_node=2, memory_mb=1024, email="alice@example.org")
    assert result.returncode == 0, result
    assert "to start at" in result.stderr and "using 2 processors" in result.stderr, result


def nodes_ready(timeout: float = 90) -> None:
    """Wait for both nodes to answer: after a controller restart (the fault
    tests make one) a node is `unknown` until its slurmd registers again,
    and Slurm judges a request against answering nodes only."""
    deadline = time.monotonic() + timeout
    while True:
        listing = ["sinfo", "-h", "-N", "-p", "multi", "-o", "%T"]  # multi has both nodes
        states = subprocess.run(listing, capture_output=True, text=True, timeout=20).stdout.split()
        if len(states) == 2 and all(s in ("idle", "mixed", "allocated") for s in states):
            return
        assert time.monotonic() < deadline, f"the Slurm nodes did not come back: {states}"
        time.sleep(1)


def test_two_nodes_pass_slurms_check_where_a_partition_has_them() -> None:
    # scripts/slurm-up runs two slurmd on this machine: `multi` has both nodes
    result = sbatch_test_only(cores=1, nodes=2, tasks_per_node=1, queue="multi")
    assert result.returncode == 0, result
    assert "using 2 processors on nodes" in result.stderr, result


def test_two_nodes_where_the_partition_has_one_is_advice_for_the_user() -> None:
    result = sbatch_test_only(cores=1, nodes=2, tasks_per_node=1, queue="debug")
    assert "Requested node configuration is not available" in result.stdout + result.stderr, result
    outcome = CommandResult(command=None, returncode=result.returncode, stderr=result.stderr)  # type: ignore[arg-type]
    with pytest.raises(SubmitError, match="No node in the chosen partition"):
        SlurmBackend().parse_submit(outcome)


def test_a_two_node_job_runs_on_two_nodes() -> None:
    """The directives batchhub writes for 2 nodes really get two: the job's
    node list (what BATCHHUB_NODES is made from) names both."""
    out_dir = Path(tempfile.mkdtemp(prefix="batchhub-two-nodes-"))  # alice writes here
    out_dir.chmod(0o777)
    backend = SlurmBackend()
    spec = JobSpec(
        "alice",
        "",
        backend.job_name("alice", ""),
        ResourceRequest(cores=1, nodes=2, queue="multi"),
        str(out_dir),
    )
    script = "#!/bin/bash\n" + "\n".join(backend.directives(spec)) + '\necho "$SLURM_JOB_NODELIST"\n'
    try:
        submitted = subprocess.run(
            ["runuser", "-u", "alice", "--", "sbatch", "--parsable", "--wait"],
            input=script,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert submitted.returncode == 0, submitted
        nodelist = Path(spec.output_path).read_text().strip()
        assert nodelist.count(",") == 1 or "[" in nodelist, nodelist  # vm,vm2 or vm[1-2]
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
