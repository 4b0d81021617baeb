"""What is free on each Grid Engine queue: the parser on output recorded
from the real scheduler (tests/data/record_free.py), and the command on
the real one."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess

import pytest
from test_sge_parse import DATA, sample

from batchhub.free import Free
from batchhub.jobs import Command, CommandResult, QueryError
from batchhub.runner import CommandRunner
from batchhub.testing import missing
from batchhub_sge.backend import SGEBackend

SGE_ENV = {"SGE_ROOT": "/var/lib/gridengine", "SGE_CELL": "default"}


def test_the_command_lists_every_queue_instance_with_what_is_left_of_the_gpu_complex() -> None:
    assert SGEBackend().free_command().argv == ("qstat", "-f", "-F", "gpu", "-xml")
    assert SGEBackend(gpu_complex="").free_command().argv == ("qstat", "-f", "-xml")
    assert SGEBackend().free_command().kind == "free"


def test_an_idle_queue_has_every_slot_and_gpu_free() -> None:
    assert SGEBackend().parse_free(sample("qstat-free-idle")) == {
        "all.q": Free(cores=8, gpus=2, total_cores=8)
    }


def test_a_running_job_takes_its_slots_and_gpu() -> None:
    # alice's `-pe smp 2 -l gpu=1` job was running
    assert SGEBackend().parse_free(sample("qstat-free-busy")) == {
        "all.q": Free(cores=6, gpus=1, total_cores=8)
    }
    assert Free(cores=6, gpus=1, total_cores=8).describe() == "6 of 8 cores and 1 GPU free now"


def test_without_a_gpu_complex_gpus_are_not_said() -> None:
    assert SGEBackend(gpu_complex="").parse_free(sample("qstat-free-busy"))["all.q"].gpus is None


def edited(old: str, new: str) -> CommandResult:
    """The recorded idle answer with one edit (states we must not cause on a shared scheduler)."""
    text = (DATA / "qstat-free-idle.stdout").read_text()
    assert old in text
    return CommandResult(Command(("qstat",)), 0, text.replace(old, new), "")


def test_a_queue_instance_in_any_state_takes_no_job_so_nothing_is_free() -> None:
    for letters in ("d", "u", "a", "E", "S"):
        answer = SGEBackend().parse_free(
            edited("<qtype>BIP</qtype>", f"<qtype>BIP</qtype><state>{letters}</state>")
        )
        assert answer == {"all.q": Free(cores=0, gpus=0, total_cores=8)}


def test_instances_of_a_queue_on_several_hosts_add_up() -> None:
    text = (DATA / "qstat-free-busy.stdout").read_text()
    start, end = text.index("<Queue-List>"), text.index("</Queue-List>") + len("</Queue-List>")
    second = text[start:end].replace("all.q@vm", "all.q@node2")
    result = CommandResult(Command(("qstat",)), 0, text[:end] + second + text[end:], "")
    assert SGEBackend().parse_free(result) == {"all.q": Free(cores=12, gpus=2, total_cores=16)}


def test_a_failed_or_broken_answer_is_an_error_not_zero() -> None:
    with pytest.raises(QueryError):
        SGEBackend().parse_free(sample("qstat-qmaster-down"))
    with pytest.raises(QueryError):
        SGEBackend().parse_free(edited("<slots_used>0</slots_used>", "<slots_used>many</slots_used>"))


@pytest.mark.sge
async def test_the_real_scheduler_answers_and_a_running_job_is_not_free() -> None:
    if os.geteuid() != 0 or shutil.which("qstat") is None:
        missing("Son of Grid Engine (run scripts/sge-up as root)")
    backend = SGEBackend(command_env=SGE_ENV)
    runner = CommandRunner(env=SGE_ENV)
    free = backend.parse_free(await runner.run(backend.free_command()))
    assert "all.q" in free and 0 <= free["all.q"].cores <= free["all.q"].total_cores

    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", **SGE_ENV}
    submit = ["runuser", "-u", "alice", "--", "qsub", "-terse", "-pe", "smp", "2", "-l", "gpu=1", "-b", "y"]
    job = subprocess.run(
        [*submit, "sleep", "60"], capture_output=True, text=True, env=env, cwd="/tmp", check=True
    )
    job_id = job.stdout.strip()
    try:
        for _ in range(60):  # others may share the scheduler: only bounds are sure
            listing = subprocess.run(["qstat", "-u", "alice"], capture_output=True, text=True, env=env).stdout
            if any(line.split()[:1] == [job_id] and " r " in line for line in listing.splitlines()):
                break
            await asyncio.sleep(0.5)
        else:
            pytest.fail(f"job {job_id} did not start")
        busy = backend.parse_free(await runner.run(backend.free_command()))["all.q"]
        assert busy.total_cores is not None and busy.cores <= busy.total_cores - 2
        assert busy.gpus is not None and busy.gpus <= 1
    finally:
        subprocess.run(["runuser", "-u", "alice", "--", "qdel", job_id], capture_output=True, env=env)
