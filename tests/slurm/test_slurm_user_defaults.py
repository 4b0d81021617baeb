"""Nothing in the hub's environment changes the hub's Slurm job.

sbatch takes ``SBATCH_*`` variables from its environment as options, and
they win over the script's ``#SBATCH`` lines: ``SBATCH_TIMELIMIT`` replaces
``--time``, ``SBATCH_ARRAY_INX`` makes an array. The command runner gives
sbatch only PATH, LANG, its configured variables and the command's own, so
such variables in the hub's environment (or in a user's shell files: sbatch
runs through no shell) never reach it. Proven here against the real Slurm
(scripts/slurm-up), as alice through ``runuser`` without ``-l``, which keeps
exactly the environment it is given. Every job is held and cancelled.
"""

from __future__ import annotations

import os
import re
import subprocess
import uuid

import pytest

from batchhub.jobs import JobSpec, ResourceRequest
from batchhub.runner import CommandRunner
from batchhub.template import render_job_script
from batchhub_slurm.backend import SlurmBackend

pytestmark = pytest.mark.slurm

USER = "alice"


def hostile_env(tag: str, workdir: str) -> dict[str, str]:
    """What a hub's environment might carry (a login shell's profile, an
    admin's debugging): each would replace one of the hub's options."""
    return {
        "SBATCH_TIMELIMIT": "2-00:00:00",
        "SBATCH_ARRAY_INX": "1-3",
        "SBATCH_MEM_PER_NODE": "999M",
        "SBATCH_GRES": "gpu:2",
        "SBATCH_JOB_NAME": f"evil-{tag}",
        "SBATCH_OUTPUT": f"{workdir}/evil.out",
        "SBATCH_EXPORT": "ALL",
    }


def show_job(job_id: str) -> dict[str, str]:
    out = subprocess.run(
        ["scontrol", "-o", "show", "job", job_id], capture_output=True, text=True, timeout=20, check=True
    ).stdout
    first = out.splitlines()[0]  # an array lists each task record: the first will do
    return dict(re.findall(r"(\S+?)=(\S*)", first))


async def test_sbatch_variables_in_the_hubs_environment_never_reach_the_job(
    workdir: str, jobs: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    tag = uuid.uuid4().hex[:8]
    backend = SlurmBackend(extra_directives=["--hold"])  # held: inspected, never run
    spec = JobSpec(
        USER,
        f"env-{tag}",
        backend.job_name(USER, f"env-{tag}"),
        ResourceRequest(cores=1, memory_mb=512, runtime_s=3600),
        workdir,
        command=("sleep", "600"),
        env={"JUPYTERHUB_USER": USER},
    )
    script = render_job_script(backend, spec)
    for name, value in hostile_env(tag, workdir).items():
        monkeypatch.setenv(name, value)

    # The threat is real: an sbatch that inherits the environment obeys it,
    # over the script's own #SBATCH lines.
    leaky = subprocess.run(
        ["runuser", "-u", USER, "--", "sbatch", "--parsable"],
        input=script,
        capture_output=True,
        text=True,
        timeout=30,
        env=dict(os.environ),
    )
    assert leaky.returncode == 0, leaky.stderr
    jobs.append(leaky.stdout.strip().split(";")[0])
    obeyed = show_job(jobs[-1])
    assert obeyed["TimeLimit"] == "2-00:00:00" and obeyed["ArrayTaskId"] == "1-3", obeyed
    assert obeyed["JobName"] == f"evil-{tag}" and obeyed["MinMemoryNode"] == "999M", obeyed

    # The hub's way: CommandRunner (runuser without -l) and the backend's command.
    runner = CommandRunner(as_user_prefix=["runuser", "-u", "{username}", "--"])
    command = backend.submit_command(spec, script)
    assert not any(name.startswith("SBATCH_") for name in runner.env_for(command))
    result = await runner.run(command)
    jobs.append(backend.parse_submit(result))
    job = show_job(jobs[-1])
    assert job["JobName"] == spec.job_name, job
    assert job["TimeLimit"] == "01:00:00", job
    assert job["MinMemoryNode"] == "512M", job
    assert "ArrayTaskId" not in job and "ArrayJobId" not in job, job
    assert job.get("TresPerNode", "") in ("", "(null)"), job
    assert job["StdOut"] == spec.output_path, job
