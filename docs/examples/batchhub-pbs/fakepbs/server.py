"""The fake PBS server: job records in a spool directory, jobs as local
processes.

The spool is sticky and world-writable, like /tmp, so users submitting
through sudo each own their jobs' directories. ``DIR/<n>/`` holds:

- ``script``       the job script, mode 0600 (only its owner reads it);
- ``record.json``  owner, name, queue, paths, walltime, supervisor pid;
- ``started``      written once the script runs (the job leaves Q for R);
- ``deleted``      qdel's mark: the job ends as deleted (substate 91);
- ``exit.json``    how it ended, written by its supervisor.

Each job runs under a supervisor (its own session) that runs the script
with bash in a process group of its own, writes its output where ``-o``
and ``-e`` say, kills it at its walltime, and records the exit status as
PBS does: the exit code, 256 + N for death by signal N, -29 past walltime.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

SERVER = "fakepbs"
HOST = "localhost"  # where jobs run: the hub must reach their servers there
QUEUES = ("workq", "gpu")
#: Exit codes of the real commands: the PBS error number, modulo 256.
UNKNOWN_JOB, UNKNOWN_QUEUE, UNAUTHORIZED, JOB_FINISHED = 153, 172, 159, 35
KILL_GRACE = 10.0
WALLTIME_EXCEEDED = -29


def _write_json(path: Path, data: dict) -> None:
    """Atomically, so a concurrent qstat never reads half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps(data))
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _me() -> str:
    return pwd.getpwuid(os.getuid()).pw_name


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's live process
    return True


def _seconds(walltime: str) -> int:
    seconds = 0
    for part in walltime.split(":"):
        seconds = seconds * 60 + int(part)
    return seconds


# --- qsub ---------------------------------------------------------------


def directives(script: str) -> dict[str, str]:
    """The ``#PBS`` options of a script, read as qsub reads them: up to the
    first line that is neither blank nor a comment."""
    options: dict[str, str] = {}
    for line in script.splitlines()[1:]:
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            break
        if not stripped.startswith("#PBS "):
            continue
        flag, _, value = stripped[5:].strip().partition(" ")
        if flag == "-l":
            key, _, resource = value.partition("=")
            options[key] = resource
        else:
            options[flag] = value.strip()
    return options


def qsub(spool: Path, args: list[str], script: str) -> int:
    options = directives(script)
    queue = options.get("-q", QUEUES[0])
    if queue not in QUEUES:
        print("qsub: Unknown queue", file=sys.stderr)
        return UNKNOWN_QUEUE
    _ensure_spool(spool)
    jobdir = _new_jobdir(spool)
    job_id = f"{jobdir.name}.{SERVER}"
    fd = os.open(jobdir / "script", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(script)
    cores = re.search(r"ncpus=(\d+)", options.get("select", ""))
    record = {
        "id": job_id,
        "owner": _me(),
        "name": options.get("-N", "STDIN"),
        "queue": queue,
        "ncpus": int(cores.group(1)) if cores else 1,
        "output": options.get("-o", ""),
        "error": options.get("-e", ""),
        "walltime": options.get("walltime", ""),
        "submitted": time.time(),
        "pid": 0,
    }
    _write_json(jobdir / "record.json", record)
    supervisor = subprocess.Popen(
        [sys.executable, "-m", "fakepbs", "--spool", str(spool), "_run", jobdir.name],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # outlives qsub; qdel signals its group
    )
    _write_json(jobdir / "record.json", {**record, "pid": supervisor.pid})
    print(job_id)
    return 0


def _ensure_spool(spool: Path) -> None:
    if not spool.is_dir():
        with contextlib.suppress(FileExistsError):
            spool.mkdir(parents=True)
            spool.chmod(0o1777)  # sticky, like /tmp: users cannot touch each other's jobs


def _new_jobdir(spool: Path) -> Path:
    """The next job number, taken atomically with mkdir."""
    while True:
        numbers = [int(p.name) for p in spool.iterdir() if p.name.isdigit()]
        candidate = spool / str(max(numbers, default=100) + 1)
        try:
            candidate.mkdir(mode=0o755)
            return candidate
        except FileExistsError:
            continue


# --- the job's supervisor -----------------------------------------------


def run(spool: Path, number: str) -> int:
    jobdir = spool / number
    record = _read_json(jobdir / "record.json") or {}
    job: list[subprocess.Popen] = []
    stopping = threading.Event()

    def stop(mark: str = "") -> None:
        if mark:
            (jobdir / mark).touch()
        if job and not stopping.is_set():
            stopping.set()
            _signal_group(job[0].pid, signal.SIGTERM)
            threading.Timer(KILL_GRACE, _signal_group, (job[0].pid, signal.SIGKILL)).start()

    signal.signal(signal.SIGTERM, lambda signum, frame: stop())
    with (
        _log(record.get("output"), jobdir / "job.out") as out,
        _log(record.get("error"), jobdir / "job.err") as err,
    ):
        job.append(
            subprocess.Popen(
                ["/bin/bash", str(jobdir / "script")],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                cwd=os.path.expanduser("~"),
                start_new_session=True,
            )
        )
    (jobdir / "started").touch()
    if (jobdir / "deleted").exists():
        stop()
    if record.get("walltime"):
        limit = threading.Timer(_seconds(record["walltime"]), stop, ("walltime",))
        limit.daemon = True
        limit.start()
    code = job[0].wait()
    status = WALLTIME_EXCEEDED if (jobdir / "walltime").exists() else 256 - code if code < 0 else code
    _write_json(jobdir / "exit.json", {"status": status, "ended": time.time()})
    os._exit(0)  # the kill timer's thread must not keep the supervisor alive


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _log(path: str | None, fallback: Path):
    if path:
        try:
            return open(path, "ab")
        except OSError:
            pass
    return open(fallback, "ab")


# --- qstat --------------------------------------------------------------


def describe(jobdir: Path) -> dict | None:
    """A job as ``qstat -f -F json`` shows it, or ``None`` when unknown."""
    record = _read_json(jobdir / "record.json")
    if record is None:
        return None
    job = {
        "Job_Name": record["name"],
        "Job_Owner": f"{record['owner']}@{socket.gethostname()}",
        "queue": record["queue"],
        "server": SERVER,
        "Resource_List": {"ncpus": record["ncpus"], "select": f"1:ncpus={record['ncpus']}"},
    }
    ended = _read_json(jobdir / "exit.json")
    deleted = (jobdir / "deleted").exists()
    if ended is not None:
        status = ended["status"]
        job.update(job_state="F", substate=91 if deleted else 92, Exit_status=status)
        job["comment"] = (
            "Job run at fakepbs and terminated"
            if deleted
            else f"Job run at fakepbs and {'finished' if status == 0 else 'failed'}"
        )
    elif not (jobdir / "started").exists() and _alive(int(record.get("pid") or 0)):
        job.update(job_state="Q", substate=10, comment="Not Running: waiting for the fake server")
    elif _alive(int(record.get("pid") or 0)):
        job.update(job_state="E" if deleted else "R", substate=49 if deleted else 42)
        job.update(exec_host=f"{HOST}/0*{record['ncpus']}", comment=f"Job run at fakepbs on ({HOST})")
    else:  # its supervisor died without a word
        job.update(job_state="F", substate=93, Exit_status=-1, comment="Job failed: its supervisor died")
    return job


def qstat(spool: Path, args: list[str]) -> int:
    history = "-x" in args
    ids = [arg for arg in args if not arg.startswith("-") and arg != "json"]
    if ids:
        numbers = [(job_id, job_id.partition(".")[0]) for job_id in ids]
    else:
        listed = sorted(spool.iterdir(), key=_order) if spool.is_dir() else []
        numbers = [(f"{p.name}.{SERVER}", p.name) for p in listed]
    jobs, code = {}, 0
    for job_id, number in numbers:
        job = describe(spool / number) if number.isdigit() and job_id.endswith(f".{SERVER}") else None
        if job is None and ids:
            print(f"qstat: Unknown Job Id {job_id}", file=sys.stderr)
            code = UNKNOWN_JOB
        elif job is not None and (history or job["job_state"] != "F"):
            jobs[job_id] = job
        elif job is not None and ids:
            print(
                f"qstat: {job_id} Job has finished, use -x or -H to obtain historical job information",
                file=sys.stderr,
            )
            code = JOB_FINISHED
    answer = {"timestamp": int(time.time()), "pbs_version": "fakepbs", "pbs_server": SERVER}
    print(json.dumps({**answer, "Jobs": jobs} if jobs else answer, indent=4))
    return code


def _order(path: Path) -> int:
    return int(path.name) if path.name.isdigit() else -1


# --- qdel ---------------------------------------------------------------


def qdel(spool: Path, args: list[str]) -> int:
    code = 0
    for job_id in args:
        number = job_id.partition(".")[0]
        jobdir = spool / number
        record = _read_json(jobdir / "record.json") if number.isdigit() else None
        if record is None:
            print(f"qdel: Unknown Job Id {job_id}", file=sys.stderr)
            code = UNKNOWN_JOB
        elif (jobdir / "exit.json").exists():
            print(f"qdel: Job has finished {job_id}", file=sys.stderr)
            code = JOB_FINISHED
        elif record["owner"] != _me():
            print(f"qdel: Unauthorized Request  {job_id}", file=sys.stderr)
            code = UNAUTHORIZED
        else:
            (jobdir / "deleted").touch()
            _signal_group(int(record.get("pid") or 0) or -1, signal.SIGTERM)
    return code


# --- entry points -------------------------------------------------------


def spool_dir() -> Path:
    """``$FAKEPBS_SPOOL``, else one spool for the whole machine in /tmp."""
    return Path(os.environ.get("FAKEPBS_SPOOL") or "/tmp/fakepbs-spool")


def run_verb(verb: str, spool: Path, args: list[str]) -> int:
    if verb == "qsub":
        return qsub(spool, args, sys.stdin.read())
    if verb == "qstat":
        return qstat(spool, args)
    if verb == "qdel":
        return qdel(spool, args)
    if verb == "_run" and args:
        return run(spool, args[0])
    print("usage: python -m fakepbs [--spool DIR] qsub|qstat|qdel ARGS...", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    """``python -m fakepbs [--spool DIR] VERB ARGS...``."""
    args = list(sys.argv[1:] if argv is None else argv)
    spool = spool_dir()
    if args[:1] == ["--spool"] and len(args) > 1:
        spool, args = Path(args[1]), args[2:]
    return run_verb(args[0] if args else "", spool, args[1:])


def qsub_main() -> int:
    return run_verb("qsub", spool_dir(), sys.argv[1:])


def qstat_main() -> int:
    return run_verb("qstat", spool_dir(), sys.argv[1:])


def qdel_main() -> int:
    return run_verb("qdel", spool_dir(), sys.argv[1:])
