"""What the Slurm backend writes into job scripts and onto command lines."""

from __future__ import annotations

import pytest

from batchhub.jobs import ConfigError, JobSpec, ResourceRequest, SubmitError
from batchhub.plugins import PluginRegistry
from batchhub.template import render_job_script
from batchhub_slurm.backend import SlurmBackend, slurm_time


def spec(workdir: str = "/home/alice/.batchhub/gpu", **resources: object) -> JobSpec:
    backend = SlurmBackend()
    return JobSpec(
        "alice",
        "gpu",
        backend.job_name("alice", "gpu", "0badcafe"),
        ResourceRequest(**resources),  # type: ignore[arg-type]
        workdir,
        env={"JUPYTERHUB_API_URL": "http://hub:8081/hub/api"},
    )


def test_registered_under_its_name() -> None:
    assert PluginRegistry().backend_class("slurm") is SlurmBackend


def test_full_request_becomes_sbatch_directives() -> None:
    lines = SlurmBackend().directives(
        spec(cores=2, memory_mb=1024, gpus=1, runtime_s=90061, queue="debug", project="physics")
    )
    assert lines == [
        "#SBATCH --job-name=batchhub-alice-gpu.2c15b2.0badcafe",  # tag-user-server.digest.submission
        "#SBATCH --output=/home/alice/.batchhub/gpu/job.out",
        "#SBATCH --error=/home/alice/.batchhub/gpu/job.err",
        "#SBATCH --nodes=1",
        "#SBATCH --ntasks=1",
        "#SBATCH --cpus-per-task=2",
        "#SBATCH --mem=1024M",
        "#SBATCH --gres=gpu:1",
        "#SBATCH --time=1-01:01:01",
        "#SBATCH --partition=debug",
        "#SBATCH --account=physics",
        "#SBATCH --export=NONE",
    ]


def test_defaults_leave_the_choice_to_slurm() -> None:
    lines = SlurmBackend().directives(spec())
    text = "\n".join(lines)
    for absent in ("--mem", "--gres", "--gpus", "--time", "--partition", "--account", "--qos"):
        assert absent not in text


def test_the_hubs_environment_never_travels() -> None:
    lines = SlurmBackend().directives(spec())
    assert "#SBATCH --export=NONE" in lines
    assert not any("JUPYTERHUB_API_URL" in line for line in lines), "variables belong in the script body"


def test_gpus_style_and_typed_gres() -> None:
    assert "#SBATCH --gpus=2" in SlurmBackend(gpu_request="gpus").directives(spec(gpus=2))
    assert "#SBATCH --gres=gpu:a100:2" in SlurmBackend(gpu_gres="gpu:a100").directives(spec(gpus=2))
    assert "#SBATCH --gpus=a100:2" in SlurmBackend(gpu_request="gpus", gpu_gres="gpu:a100").directives(
        spec(gpus=2)
    )


def test_qos_and_extra_directives_from_config() -> None:
    lines = SlurmBackend(qos="interactive", extra_directives=["--constraint=avx2"]).directives(spec())
    assert "#SBATCH --qos=interactive" in lines
    assert lines[-1] == "#SBATCH --constraint=avx2"


@pytest.mark.parametrize("bad", ["--constraint=a\n#SBATCH --uid=0", "echo hi"])
def test_extra_directives_must_each_be_one_option(bad: str) -> None:
    with pytest.raises(ConfigError):
        SlurmBackend(extra_directives=[bad]).directives(spec())


@pytest.mark.parametrize("field", ["queue", "project"])
@pytest.mark.parametrize("value", ["debug --uid=0", "a\nb", "x;y"])
def test_names_that_could_smuggle_options_are_refused(field: str, value: str) -> None:
    with pytest.raises(SubmitError, match=f"The {field} .* is not valid"):
        render_job_script(SlurmBackend(), spec(**{field: value}))


@pytest.mark.parametrize("workdir", ["/home/al ice/x", "/home/alice/%j", "/home/alice/a\\b"])
def test_output_paths_slurm_would_mangle_are_refused(workdir: str) -> None:
    with pytest.raises(ConfigError, match="the slurm scheduler cannot take"):
        render_job_script(SlurmBackend(), spec(workdir=workdir))


def test_export_policy_must_be_names_only() -> None:
    with pytest.raises(ConfigError):
        SlurmBackend(export="NONE,TOKEN=abc").directives(spec())
    assert "#SBATCH --export=NONE,PATH" in SlurmBackend(export="NONE,PATH").directives(spec())


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(60, "0-00:01:00"), (3600, "0-01:00:00"), (86400 * 3 + 59, "3-00:00:59"), (0, "0-00:00:01")],
)
def test_slurm_time(seconds: int, text: str) -> None:
    assert slurm_time(seconds) == text


def test_submit_is_sbatch_parsable_as_the_user_with_the_script_on_stdin() -> None:
    command = SlurmBackend(programs={"sbatch": "/opt/slurm/bin/sbatch"}).submit_command(
        spec(), "#!/bin/bash\n"
    )
    assert command.argv == ("/opt/slurm/bin/sbatch", "--parsable")
    assert command.as_user == "alice"
    assert command.stdin == "#!/bin/bash\n"


def test_one_squeue_for_many_ids_as_the_hub() -> None:
    command = SlurmBackend().status_command(["1", "2", "3"])
    assert command.argv[0] == "squeue"
    assert "--jobs=1,2,3" in command.argv
    assert "--states=all" in command.argv, "finished jobs must stay visible"
    assert command.as_user is None


def test_cancel_is_verbose_scancel_as_the_owner() -> None:
    command = SlurmBackend().cancel_command(["1", "2"], "alice")
    assert command.argv == ("scancel", "-v", "1", "2")
    assert command.as_user == "alice"
