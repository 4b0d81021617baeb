"""Grid Engine's own check (``qsub -w v``, which submits nothing) of the job
scripts batchhub writes for a parallel environment and mail, on the real
Son of Grid Engine of scripts/sge-up (PEs smp and mpi, 8 slots on one host)."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from batchhub.jobs import JobSpec, ResourceRequest
from batchhub.template import render_job_script
from batchhub.testing import missing
from batchhub_sge.backend import SGEBackend

pytestmark = pytest.mark.sge

SGE_ENV = {"SGE_ROOT": "/var/lib/gridengine", "SGE_CELL": "default"}


def qsub_verify(**resources: object) -> subprocess.CompletedProcess[str]:
    backend = SGEBackend()
    spec = JobSpec(
        "alice",
        "",
        backend.job_name("alice", ""),
        ResourceRequest(**resources),  # type: ignore[arg-type]
        "/tmp",
        command=("/bin/true",),
    )
    script = render_job_script(backend, spec)
    return subprocess.run(
        ["runuser", "-u", "alice", "--", "env", *(f"{k}={v}" for k, v in SGE_ENV.items()), "qsub", "-w", "v"],
        input=script,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.fixture(scope="module", autouse=True)
def real_sge() -> None:
    if os.geteuid() != 0 or shutil.which("qsub") is None:
        missing("Son of Grid Engine (run scripts/sge-up as root)")
    if subprocess.run(["qconf", "-sp", "mpi"], capture_output=True, env={**os.environ, **SGE_ENV}).returncode:
        missing("the mpi parallel environment (run scripts/sge-up again)")


def test_mpi_job_spread_over_nodes_passes_grid_engines_check() -> None:
    result = qsub_verify(cores=4, memory_mb=2048, pe="mpi", email="alice@example.org")
    assert result.returncode == 0 and "found suitable queue" in result.stdout, result


def test_the_check_is_real_more_slots_than_the_cluster_has_fail() -> None:
    result = qsub_verify(cores=64, pe="mpi")
    assert result.returncode != 0
    assert 'cannot run in PE "mpi" because it only offers' in result.stdout + result.stderr, result
