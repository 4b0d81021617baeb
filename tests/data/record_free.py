"""Record what the free-resources commands print on the real schedulers.

Run as root with Grid Engine and Slurm up (about 20 seconds)::

    .venv/bin/python tests/data/record_free.py

For each backend it records its own ``free_command`` twice: with nothing
running (``*-idle``) and while one job of alice's holds 2 cores and 1 GPU
(``*-busy``). Files: NAME.cmd, NAME.rc, NAME.stdout, NAME.stderr, in
tests/data/sge and tests/data/slurm. The job is cancelled at the end.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import time
from pathlib import Path

from batchhub_sge.backend import SGEBackend
from batchhub_slurm.backend import SlurmBackend

HERE = Path(__file__).resolve().parent
SGE_ENV = {**os.environ, "SGE_ROOT": "/var/lib/gridengine", "SGE_CELL": "default"}


def run(
    argv: list[str], user: str | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    full = (["runuser", "-u", user, "--"] if user else []) + argv
    return subprocess.run(
        full, input=stdin, capture_output=True, text=True, timeout=60, env=SGE_ENV, cwd="/tmp"
    )


def record(directory: str, name: str, argv: list[str]) -> str:
    proc = run(argv)
    where = HERE / directory
    (where / f"{name}.cmd").write_text(shlex.join(argv) + "\n")
    (where / f"{name}.rc").write_text(f"{proc.returncode}\n")
    (where / f"{name}.stdout").write_text(proc.stdout)
    (where / f"{name}.stderr").write_text(proc.stderr)
    print(f"{directory}/{name}: rc={proc.returncode}")
    return proc.stdout


def until(check: str, argv: list[str]) -> None:
    for _ in range(60):
        if check in run(argv).stdout:
            return
        time.sleep(0.5)
    raise SystemExit(f"timed out waiting for {check!r} in {shlex.join(argv)}")


def main() -> None:
    sge, slurm = list(SGEBackend().free_command().argv), list(SlurmBackend().free_command().argv)
    record("sge", "qstat-free-idle", sge)
    record("slurm", "sinfo-free-idle", slurm)
    sge_job = run(["qsub", "-terse", "-pe", "smp", "2", "-l", "gpu=1", "-b", "y", "sleep", "120"], "alice")
    slurm_job = run(
        ["sbatch", "--parsable", "-c", "2", "--gres=gpu:1", "-o", "/dev/null"],
        "alice",
        "#!/bin/sh\nsleep 120\n",
    )
    try:
        until("<slots_used>2</slots_used>", sge)
        until("RUNNING", ["squeue", "-h", "-o", "%T", "-j", slurm_job.stdout.strip()])
        record("sge", "qstat-free-busy", sge)
        record("slurm", "sinfo-free-busy", slurm)
    finally:
        run(["qdel", sge_job.stdout.strip()], "alice")
        run(["scancel", slurm_job.stdout.strip()], "alice")


if __name__ == "__main__":
    main()
