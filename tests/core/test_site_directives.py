"""What each backend writes for the fields sites enable: a parallel
environment, nodes and tasks per node, and mail at the end; and the job's
node list the default job script gives user code."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from batchhub.jobs import ConfigError, JobSpec, ResourceRequest, SubmitError
from batchhub.template import check_spec, render_job_script
from batchhub_fake.backend import FakeBackend
from batchhub_fake.protocol import parse_directives
from batchhub_sge.backend import SGEBackend
from batchhub_slurm.backend import SlurmBackend

WORKDIR = "/home/alice/.batchhub/default"


def spec(**resources: object) -> JobSpec:
    return JobSpec(
        username="alice",
        server_name="",
        job_name="batchhub-alice",
        resources=ResourceRequest(**resources),  # type: ignore[arg-type]
        workdir=WORKDIR,
        command=("batchhub-singleuser",),
    )


# --- Grid Engine -------------------------------------------------------------
def test_sge_chosen_pe_takes_every_core_even_one() -> None:
    lines = SGEBackend().directives(spec(cores=8, memory_mb=8192, pe="mpi"))
    assert "#$ -pe mpi 8" in lines and "#$ -l rmem=1024M" in lines  # memory per slot
    assert "#$ -pe mpi 1" in SGEBackend().directives(spec(cores=1, pe="mpi"))
    # no choice: the site's rule, as before
    assert "#$ -pe smp 4" in SGEBackend().directives(spec(cores=4))


def test_sge_mail_at_end_and_abort() -> None:
    lines = SGEBackend().directives(spec(email="alice@example.org"))
    assert lines[-2:] == ["#$ -M alice@example.org", "#$ -m ea"]
    assert not any("-M" in line or "-m " in line for line in SGEBackend().directives(spec()))


def test_sge_refuses_nodes_and_tasks_per_node_for_the_admin() -> None:
    with pytest.raises(ConfigError, match="pe_choices"):
        SGEBackend().directives(spec(nodes=2))
    with pytest.raises(ConfigError, match="parallel environment"):
        SGEBackend().directives(spec(tasks_per_node=2))


def test_sge_refuses_a_pe_name_it_cannot_write() -> None:
    with pytest.raises(SubmitError, match="parallel environment"):
        SGEBackend().directives(spec(cores=2, pe="mpi@x"))


# --- Slurm -------------------------------------------------------------------
def test_slurm_nodes_and_tasks_per_node() -> None:
    lines = SlurmBackend().directives(spec(cores=2, nodes=2, tasks_per_node=4, memory_mb=8193, gpus=2))
    for line in (
        "#SBATCH --nodes=2",
        "#SBATCH --ntasks=8",
        "#SBATCH --ntasks-per-node=4",
        "#SBATCH --cpus-per-task=2",
        "#SBATCH --mem=4097M",  # --mem is per node: the total over 2 nodes, rounded up
        "#SBATCH --gres=gpu:1",  # --gres is per node too
    ):
        assert line in lines, (line, lines)


def test_slurm_one_node_one_task_as_before() -> None:
    lines = SlurmBackend().directives(spec(cores=4))
    assert "#SBATCH --nodes=1" in lines and "#SBATCH --ntasks=1" in lines
    assert not any("ntasks-per-node" in line for line in lines)


def test_slurm_gpus_shared_over_nodes() -> None:
    with pytest.raises(SubmitError, match="gpus: 3 GPUs cannot be shared evenly over 2 nodes"):
        SlurmBackend().directives(spec(nodes=2, gpus=3))
    assert "#SBATCH --gpus=3" in SlurmBackend(gpu_request="gpus").directives(spec(nodes=2, gpus=3))


def test_slurm_mail_at_end_and_failure() -> None:
    lines = SlurmBackend().directives(spec(email="alice@example.org"))
    assert "#SBATCH --mail-user=alice@example.org" in lines
    assert "#SBATCH --mail-type=END,FAIL" in lines
    assert not any("--mail" in line for line in SlurmBackend().directives(spec()))


def test_slurm_refuses_a_pe_for_the_admin() -> None:
    with pytest.raises(ConfigError, match="nodes and tasks_per_node"):
        SlurmBackend().directives(spec(pe="mpi"))


# --- the fake ----------------------------------------------------------------
def test_fake_writes_and_reads_them() -> None:
    backend = FakeBackend()
    script = render_job_script(
        backend, spec(cores=2, pe="mpi", nodes=2, tasks_per_node=3, email="alice@example.org")
    )
    options = parse_directives(script)
    assert (options["pe"], options["nodes"], options["tasks"], options["mail"]) == (
        "mpi",
        "2",
        "3",
        "alice@example.org",
    )


# --- the core's check, whoever builds the request ------------------------------
@pytest.mark.parametrize("address", ["a b@x.org", "a@x.org\n#$ -u root", "a@x.org,b@y.org", "-x@y.org", ""])
@pytest.mark.parametrize("backend", [SGEBackend(), SlurmBackend(), FakeBackend()])
def test_core_refuses_an_unchecked_address_before_any_backend(backend: object, address: str) -> None:
    with pytest.raises(SubmitError, match="email"):
        check_spec(backend, spec(email=address))  # type: ignore[arg-type]


def test_core_refuses_a_bad_pe_or_count() -> None:
    with pytest.raises(SubmitError, match="parallel environment"):
        check_spec(SGEBackend(), spec(pe="mpi -l h_rt=99:0:0"))
    with pytest.raises(SubmitError, match="nodes"):
        check_spec(SlurmBackend(), spec(nodes=0))


# --- BATCHHUB_NODES ------------------------------------------------------------
def nodes_seen(script: str, env: dict[str, str], tmp_path: Path) -> str:
    """Run the script's setup part (up to the cd) with ``env`` and read BATCHHUB_NODES."""
    setup = script.split("\ncd ", 1)[0] + '\necho "NODES=$BATCHHUB_NODES"\n'
    path = tmp_path / "setup.sh"
    path.write_text(setup)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    scontrol = bin_dir / "scontrol"  # Slurm's host-list expansion, as on a node
    scontrol.write_text('#!/bin/sh\n[ "$1 $2" = "show hostnames" ] && printf "n01\\nn02\\nn03\\n"\n')
    scontrol.chmod(0o755)
    out = subprocess.run(
        ["/bin/bash", str(path)],
        env={"PATH": f"{bin_dir}:/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return out.strip().rsplit("NODES=", 1)[1]


def test_the_job_tells_user_code_its_nodes(tmp_path: Path) -> None:
    script = render_job_script(FakeBackend(), spec())
    hostfile = tmp_path / "pe_hostfile"
    hostfile.write_text("n07 4 all.q@n07 UNDEFINED\nn02 4 all.q@n02 UNDEFINED\n")
    assert nodes_seen(script, {"PE_HOSTFILE": str(hostfile)}, tmp_path) == "n07,n02"
    assert nodes_seen(script, {"SLURM_JOB_NODELIST": "n[01-03]"}, tmp_path) == "n01,n02,n03"
    assert nodes_seen(script, {}, tmp_path) == os.uname().nodename
