"""Record real Slurm outputs for the parser tests.

Run as root on the single-node Slurm of scripts/slurm-up (it takes about
two minutes, mostly waiting for a time limit)::

    scripts/slurm-up && .venv/bin/python tests/data/slurm/record.py

Every sample is NAME.cmd (the argv, for people), NAME.rc, NAME.stdout and
NAME.stderr. Status samples use the backend's own status command, so the
parser is tested against exactly what it will read. The script shuts the
controller down and marks the node down on purpose, and restores both.
"""

from __future__ import annotations

import shlex
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from batchhub_slurm.backend import SlurmBackend

HERE = Path(__file__).resolve().parent
HOST = socket.gethostname().split(".")[0]
REPO = HERE.parents[2]
backend = SlurmBackend()
work = Path(tempfile.mkdtemp(prefix="slurm-record-"))
work.chmod(0o777)
submitted: list[str] = []


def run(argv: list[str], user: str | None = None, stdin: str | None = None) -> tuple[int, str, str]:
    full = (["runuser", "-u", user, "--"] if user else []) + argv
    proc = subprocess.run(full, input=stdin, capture_output=True, text=True, timeout=60)
    return proc.returncode, proc.stdout, proc.stderr


def save(name: str, argv: list[str], rc: int, out: str, err: str) -> None:
    (HERE / f"{name}.cmd").write_text(shlex.join(argv) + "\n")
    (HERE / f"{name}.rc").write_text(f"{rc}\n")
    (HERE / f"{name}.stdout").write_text(out)
    (HERE / f"{name}.stderr").write_text(err)
    print(f"{name}: rc={rc} {out.strip()[:100]!r} {err.strip()[:100]!r}")


def record(
    name: str, argv: list[str], user: str | None = None, stdin: str | None = None
) -> tuple[int, str, str]:
    rc, out, err = run(argv, user, stdin)
    save(name, argv, rc, out, err)
    return rc, out, err


def sbatch(*options: str, body: str = "sleep 300", user: str = "alice", name: str | None = None) -> str:
    script = (
        "#!/bin/bash\n" + "".join(f"#SBATCH {o}\n" for o in options) + f"#SBATCH --output={work}/%j.out\n"
    )
    script += body + "\n"
    argv = ["sbatch", "--parsable"]
    rc, out, _ = record(name, argv, user, script) if name else run(argv, user, script)
    if rc != 0:
        return ""
    job_id = out.strip().split(";")[0]
    submitted.append(job_id)
    return job_id


def status(name: str, ids: list[str]) -> str:
    argv = list(backend.status_command(ids).argv)
    return record(name, argv)[1]


def wait_state(job_id: str, wanted: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = run(list(backend.status_command([job_id]).argv))[1]
        if f"|{wanted}|" in out:
            return
        time.sleep(0.2)
    sys.exit(f"job {job_id} never reached {wanted}")


def wait_reason(job_id: str, wanted: str, timeout: float = 30, negate: bool = False) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = run(list(backend.status_command([job_id]).argv))[1]
        if (f"|{wanted}|" in out) != negate:
            return
        time.sleep(0.2)
    sys.exit(f"job {job_id} never got the reason {wanted}")


def main() -> None:
    # Fill the node (4 CPUs): two running jobs, one with a GPU.
    gpu_job = sbatch("--cpus-per-task=2", "--mem=1G", "--gres=gpu:1", name="sbatch-ok")
    other = sbatch("--cpus-per-task=2")
    wait_state(gpu_job, "RUNNING")
    wait_state(other, "RUNNING")
    waits_resources = sbatch("--cpus-per-task=4")
    waits_priority = sbatch("--cpus-per-task=1")
    held = sbatch("-H")
    unsatisfiable = sbatch("--cpus-per-task=64")  # accepted: partition limits are not enforced
    wait_reason(waits_resources, "Resources")
    wait_reason(waits_priority, "Priority")
    wait_reason(unsatisfiable, "None", negate=True)
    status("squeue-unsatisfiable", [unsatisfiable])
    status("squeue-running-pending", [gpu_job, other, waits_resources, waits_priority, held])
    status("squeue-held", [held])

    # Finished jobs stay listed (with -t all) for MinJobAge.
    run(["scancel", other], "alice")
    run(["scancel", waits_resources, waits_priority, held, unsatisfiable], "alice")
    done = sbatch(body="true")
    failed = sbatch(body="exit 3")
    wait_state(done, "COMPLETED")
    wait_state(failed, "FAILED")
    wait_state(other, "CANCELLED")
    timeout = sbatch("--time=1", body="sleep 600")
    status("squeue-finished", [done, failed, other])

    # COMPLETING: a job that ignores SIGTERM lingers until KillWait.
    stubborn = sbatch(body="trap '' TERM; sleep 600 & wait; sleep 600")
    wait_state(stubborn, "RUNNING")
    run(["scancel", stubborn], "alice")
    wait_state(stubborn, "COMPLETING", 10)
    status("squeue-completing", [stubborn])

    # REQUEUED: scontrol requeue of a running job; record each state it passes.
    again = sbatch(body="sleep 600")
    wait_state(again, "RUNNING")
    run(["scontrol", "requeue", again])
    seen: set[str] = set()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and "PENDING" not in seen:
        out = run(list(backend.status_command([again]).argv))[1]
        state = out.split("|")[1] if "|" in out else ""
        if state and state not in seen:
            seen.add(state)
            status(f"squeue-requeue-{state.lower()}", [again])
        time.sleep(0.05)
    run(["scancel", again])

    # SUSPENDED (an admin's scontrol suspend), and requeue with hold.
    paused = sbatch(body="sleep 600")
    wait_state(paused, "RUNNING")
    run(["scontrol", "suspend", paused])
    status("squeue-suspended", [paused])
    run(["scontrol", "resume", paused])
    run(["scontrol", "requeuehold", paused])
    seen = set()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not ({"PENDING", "REQUEUE_HOLD"} & seen):
        out = run(list(backend.status_command([paused]).argv))[1]
        state = out.split("|")[1] if "|" in out else ""
        if state and state not in seen:
            seen.add(state)
            status(f"squeue-requeuehold-{state.lower()}", [paused])
        time.sleep(0.05)
    run(["scancel", paused])

    # TIMEOUT: the one-minute limit is enforced within about a minute more.
    wait_state(timeout, "TIMEOUT", 150)
    status("squeue-timeout", [timeout])

    # NODE_FAIL: a node set down kills its jobs (requeued unless --no-requeue).
    victim = sbatch("--no-requeue", body="sleep 600")
    wait_state(victim, "RUNNING")
    run(["scontrol", "update", f"nodename={HOST}", "state=down", "reason=recording"])
    wait_state(victim, "NODE_FAIL", 10)
    status("squeue-node-fail", [victim])
    run(["scontrol", "update", f"nodename={HOST}", "state=resume"])

    # Unknown ids: one alone fails, several are simply absent.
    status("squeue-unknown-single", ["999999"])
    status("squeue-unknown-list", ["999998", "999999"])
    status("squeue-mixed", [done, "999999"])

    # sbatch refusals.
    sbatch("--partition=nosuch", name="sbatch-invalid-partition")
    sbatch("--cpus-per-task=64", name="sbatch-too-many-cpus")
    sbatch("--mem=100000", name="sbatch-too-much-memory")
    sbatch("--gres=gpu:5", name="sbatch-too-many-gpus")
    sbatch("--gres=tpu:1", name="sbatch-unknown-gres")
    sbatch("--qos=nosuch", name="sbatch-invalid-qos")
    sbatch("--time=bogus", name="sbatch-invalid-time")

    # Cancels, through the backend's own command.
    live = sbatch(body="sleep 600")
    wait_state(live, "RUNNING")
    record("scancel-other-user", list(backend.cancel_command([live], "bob").argv), "bob")
    record("scancel-running", list(backend.cancel_command([live], "alice").argv), "alice")
    record("scancel-finished", list(backend.cancel_command([done], "alice").argv), "alice")
    record("scancel-unknown", list(backend.cancel_command(["999999"], "alice").argv), "alice")
    fresh = sbatch(body="sleep 600")
    wait_state(fresh, "RUNNING")
    record("scancel-mixed", list(backend.cancel_command([done, "999999", fresh], "alice").argv), "alice")
    record("scancel-plain-unknown", ["scancel", "999999"], "alice")

    # Accounting is off here: sacct fails.
    history = backend.history_command([done, failed])
    assert history is not None
    record("sacct-disabled", list(history.argv))

    # The controller down.
    run(["scontrol", "shutdown", "slurmctld"])
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and run(["scontrol", "ping"])[0] == 0:
        time.sleep(0.2)
    time.sleep(0.5)
    status("squeue-controller-down", [done, failed])
    status("squeue-controller-down-single", [done])
    sbatch(name="sbatch-controller-down")
    record("scancel-controller-down", list(backend.cancel_command([done], "alice").argv), "alice")
    subprocess.run([str(REPO / "scripts" / "slurm-up"), "restart-slurmctld"], check=True)
    status("squeue-after-restart", [done, failed])


if __name__ == "__main__":
    try:
        main()
    finally:
        if submitted:
            run(["scancel", *submitted])
        subprocess.run(["rm", "-rf", str(work)])
