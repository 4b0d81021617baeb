"""What is free on each Slurm partition: the parser on output recorded from
the real scheduler (tests/data/record_free.py), and the command on the
real one."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess

import pytest
from slurm_samples import sample

from batchhub.free import Free
from batchhub.jobs import Command, CommandResult, QueryError
from batchhub.runner import CommandRunner
from batchhub.testing import missing
from batchhub_slurm.backend import SlurmBackend
from batchhub_slurm.free import gres_count


def result(text: str) -> CommandResult:
    return CommandResult(Command(("sinfo",)), 0, text, "")


def test_the_command_is_one_sinfo_line_per_node_and_partition() -> None:
    command = SlurmBackend().free_command()
    assert command.argv[:3] == ("sinfo", "--noheader", "--Node") and command.kind == "free"
    assert sample("sinfo-free-idle").command.argv == command.argv  # the recording used it


def test_an_idle_partition_has_every_cpu_and_gpu_free() -> None:
    free = SlurmBackend().parse_free(sample("sinfo-free-idle"))
    assert free == {"debug": Free(cores=4, gpus=2, total_cores=4, total_gpus=2)}


def test_a_running_job_takes_its_cpus_and_gpu() -> None:
    # alice's `-c 2 --gres=gpu:1` job was running
    free = SlurmBackend().parse_free(sample("sinfo-free-busy"))
    assert free == {"debug": Free(cores=2, gpus=1, total_cores=4, total_gpus=2)}
    assert free["debug"].describe() == "2 of 4 cores and 1 of 2 GPUs free now"


def test_gpus_of_a_node_that_takes_no_job_are_not_free() -> None:
    lines = (
        "gpu|drain|0/0/8/8|gpu:a100:4|gpu:a100:0(IDX:N/A)|\n"
        "gpu|alloc|8/0/0/8|gpu:a100:4|gpu:a100:2(IDX:0,2)|\n"
        "gpu|idle*|0/8/0/8|gpu:a100:4|gpu:a100:0|\n"
        "gpu|mix|4/4/0/8|gpu:a100:4,gpu:v100:2|gpu:a100:1(IDX:3),gpu:v100:0|\n"
        "cpu|idle|0/16/0/16|(null)|gpu:0|\n"
    )
    free = SlurmBackend().parse_free(result(lines))
    assert free["gpu"] == Free(cores=12, gpus=5, total_cores=32, total_gpus=18)
    assert free["cpu"] == Free(cores=16, gpus=0, total_cores=16, total_gpus=0)
    assert free["cpu"].describe() == "16 of 16 cores free now"
    assert SlurmBackend(gpu_gres="gpu:v100").parse_free(result(lines))["gpu"].gpus == 2


def test_gres_counts() -> None:
    assert gres_count("gpu:2", "gpu") == 2
    assert gres_count("gpu:a100:1(IDX:0),gpu:v100:3(S:0-1),mps:100", "gpu") == 4
    assert gres_count("gpu:a100:2(IDX:0,2)", "gpu:a100") == 2
    assert gres_count("(null)", "gpu") == 0


def test_a_failed_or_unreadable_answer_is_an_error_not_zero() -> None:
    with pytest.raises(QueryError):
        SlurmBackend().parse_free(
            CommandResult(Command(("sinfo",)), 1, "", "Unable to contact slurm controller")
        )
    with pytest.raises(QueryError):
        SlurmBackend().parse_free(result("debug|idle|lots|gpu:2|gpu:0|\n"))


@pytest.mark.slurm
async def test_the_real_scheduler_answers_and_a_running_job_is_not_free() -> None:
    if os.geteuid() != 0 or shutil.which("sinfo") is None:
        missing("Slurm (run scripts/slurm-up)")
    backend, runner = SlurmBackend(), CommandRunner()
    free = backend.parse_free(await runner.run(backend.free_command()))
    assert "debug" in free and free["debug"].total_gpus == 2

    script = "#!/bin/sh\nsleep 60\n"
    submit = [
        "runuser",
        "-u",
        "alice",
        "--",
        "sbatch",
        "--parsable",
        "-c",
        "2",
        "--gres=gpu:1",
        "-o",
        "/dev/null",
    ]
    job_id = subprocess.run(
        submit, input=script, capture_output=True, text=True, cwd="/tmp", check=True
    ).stdout.strip()
    try:
        for _ in range(60):  # others may share the scheduler: only bounds are sure
            state = subprocess.run(["squeue", "-h", "-o", "%T", "-j", job_id], capture_output=True, text=True)
            if state.stdout.strip() == "RUNNING":
                break
            await asyncio.sleep(0.5)
        else:
            pytest.fail(f"job {job_id} did not start")
        busy = backend.parse_free(await runner.run(backend.free_command()))["debug"]
        assert busy.cores <= 2 and busy.gpus is not None and busy.gpus <= 1
    finally:
        subprocess.run(["runuser", "-u", "alice", "--", "scancel", job_id], capture_output=True)
