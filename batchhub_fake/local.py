"""The fake scheduler's local mode: job scripts really run as local processes.

``python -m batchhub_fake.local --spool DIR VERB [IDS]`` speaks the same
command language as the in-memory fake (see ``protocol``), so the one
``FakeBackend`` parses both. The hub runs these commands through its
ordinary ``CommandRunner``: submit and cancel as the user (through the
runner's as-user prefix), status as the hub. State lives in files, so jobs
survive a hub restart exactly as a real scheduler's do.

Layout: ``DIR`` is sticky and world-writable (like /tmp); each job gets
``DIR/<id>/`` owned by its user holding

- ``script``      the job script, mode 0600 (only its owner reads it);
- ``record.json`` owner, name, supervisor pid, times (readable by the hub);
- ``exit.json``   written by the supervisor when the script has ended;
- ``cancelled`` / ``timeout``  markers saying why it ended.

Each job runs under a small supervisor process (its own session and
process group) that runs the script with the interpreter its ``#!`` line
names (``/bin/sh`` without one), as Slurm does, enforces ``--time``, and
records the exit code; cancel sends SIGTERM to the whole group, then
SIGKILL after a grace period.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from . import protocol

HOST = "127.0.0.1"
#: Seconds a finished job stays listed (Slurm's MinJobAge).
PURGE_AGE = 300.0
#: Seconds between SIGTERM and SIGKILL when a job is cancelled or times out.
KILL_GRACE = 10.0


def _interpreter(script: Path) -> list[str]:
    """The argv a script's ``#!`` line names, as the kernel would read it."""
    with script.open("rb") as f:
        first = f.readline(256).decode(errors="replace").strip()
    if first.startswith("#!") and first[2:].strip().startswith("/"):
        return first[2:].split(maxsplit=1)
    return ["/bin/sh"]


def _write_json(path: Path, data: dict, mode: int = 0o644) -> None:
    """Write atomically so a concurrent status never reads half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as out:
        json.dump(data, out)
    os.replace(tmp, path)


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _ensure_spool(spool: Path) -> None:
    if not spool.exists():
        with contextlib.suppress(FileExistsError):
            spool.mkdir(parents=True)
            os.chmod(spool, 0o1777)  # sticky: users cannot remove each other's jobs
    mode = spool.stat().st_mode
    if not spool.is_dir() or (mode & 0o1777) != 0o1777:
        raise SystemExit(f"{protocol.SUBMIT}: error: spool {spool} must be a sticky world-writable directory")


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False  # never probe a group or every process
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


# --- submit -----------------------------------------------------------


def submit(spool: Path, script: str) -> int:
    try:
        options = protocol.parse_directives(script)
    except protocol.DirectiveError as exc:
        print(f"{protocol.SUBMIT}: error: {exc}", file=sys.stderr)
        return 1
    _ensure_spool(spool)
    _clean_own(spool)
    jobdir = _new_jobdir(spool)
    job_id = jobdir.name
    fd = os.open(jobdir / "script", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(script)
    _write_json(jobdir / "options.json", options, 0o600)
    supervisor = subprocess.Popen(
        [sys.executable, "-m", "batchhub_fake.local", "--spool", str(spool), "_supervise", job_id],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        close_fds=True,
        start_new_session=True,  # its own process group: cancel kills it whole; outlives this command
    )
    record = {
        "id": job_id,
        "owner": _username(),
        "name": options.get("name", "job"),
        "pid": supervisor.pid,
        "submit_time": time.time(),
    }
    _write_json(jobdir / "record.json", record)
    print(f"Submitted fake job {job_id}")
    return 0


def _username() -> str:
    import pwd

    return pwd.getpwuid(os.getuid()).pw_name


def _new_jobdir(spool: Path) -> Path:
    """The next free job id, taken atomically with mkdir."""
    while True:
        ids = [int(p.name) for p in spool.iterdir() if p.name.isdigit()]
        candidate = spool / str(max(ids, default=0) + 1)
        try:
            candidate.mkdir(mode=0o755)
            return candidate
        except FileExistsError:
            continue  # another submit took it


def _clean_own(spool: Path) -> None:
    """Remove this user's jobs that ended long ago (past the purge age)."""
    uid = os.getuid()
    for jobdir in spool.iterdir():
        ended = _read_json(jobdir / "exit.json")
        if ended and jobdir.stat().st_uid == uid and time.time() - ended.get("end_time", 0) > PURGE_AGE * 2:
            for child in jobdir.iterdir():
                child.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                jobdir.rmdir()


# --- the supervisor ---------------------------------------------------


def supervise(spool: Path, job_id: str) -> int:
    """Run one job script to its end and record how it ended.

    The script runs in a process group of its own, so the supervisor can
    forward a cancel to everything the script started and still live to
    record the exit code.
    """
    jobdir = spool / job_id
    options = _read_json(jobdir / "options.json") or {}
    script: list[subprocess.Popen] = []
    stopping = threading.Event()

    def stop_script(marker: str | None = None) -> None:
        if marker:
            (jobdir / marker).touch()
        if stopping.is_set():
            return
        stopping.set()
        if script:
            _signal_group(script[0].pid, signal.SIGTERM)
            kill = threading.Timer(KILL_GRACE, _signal_group, (script[0].pid, signal.SIGKILL))
            kill.daemon = True
            kill.start()

    # a handler, not SIG_IGN: ignored signals would be inherited by the script
    signal.signal(signal.SIGTERM, lambda signum, frame: stop_script())
    home = os.path.expanduser("~")
    workdir = options.get("chdir") if os.path.isdir(options.get("chdir", "")) else home
    with (
        _open_log(options.get("output"), jobdir / "job.out") as out,
        _open_log(options.get("error"), jobdir / "job.err") as err,
    ):
        script.append(
            subprocess.Popen(
                [*_interpreter(jobdir / "script"), str(jobdir / "script")],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                cwd=workdir,
                start_new_session=True,
            )
        )
    if stopping.is_set():  # cancelled while starting
        stopping.clear()
        stop_script()
    if "time" in options:
        limit = threading.Timer(float(options["time"]), stop_script, ("timeout",))
        limit.daemon = True
        limit.start()
    code = script[0].wait()
    if code < 0:
        code = 128 - code  # killed by a signal: report it as a shell would
    _write_json(jobdir / "exit.json", {"exit_code": code, "end_time": time.time()})
    return 0


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _open_log(path: str | None, fallback: Path):
    """The job's output file, or one in its job directory where the asked
    one cannot be opened (a missing directory must not kill the job)."""
    if path:
        try:
            return open(path, "ab")
        except OSError:
            pass
    return open(fallback, "ab")


# --- status -----------------------------------------------------------


def status(spool: Path, job_ids: list[str]) -> int:
    lines = [protocol.STATUS_HEADER]
    for job_id in job_ids:
        if not job_id.isdigit():
            continue
        jobdir = spool / job_id
        record = _read_json(jobdir / "record.json")
        if record is None:
            continue  # unknown (or still being written): absent, as a scheduler would say
        ended = _read_json(jobdir / "exit.json")
        if ended is not None:
            if time.time() - ended.get("end_time", 0) > PURGE_AGE:
                continue
            code = int(ended.get("exit_code", 1))
            if (jobdir / "cancelled").exists():
                native, reason = "CA", "cancelled by its owner"
            elif (jobdir / "timeout").exists():
                native, reason = "TO", ""
            else:
                native, reason = (
                    ("CD", "") if code == 0 else ("F", f"the job script exited with status {code}")
                )
            lines.append(protocol.status_line(job_id, native, HOST, code, reason))
        elif _alive(int(record.get("pid") or 0)):
            native = "CG" if (jobdir / "cancelled").exists() else "R"
            lines.append(protocol.status_line(job_id, native, HOST, None, ""))
        else:
            lines.append(protocol.status_line(job_id, "F", HOST, None, "the job's supervisor died"))
    print("\n".join(lines))
    return 0


def listing(spool: Path) -> int:
    """Every live job of every user, with its owner and name."""
    lines = [protocol.LIST_HEADER]
    for jobdir in sorted(spool.iterdir(), key=lambda p: int(p.name) if p.name.isdigit() else -1):
        record = _read_json(jobdir / "record.json") if jobdir.name.isdigit() else None
        if record is None or (jobdir / "exit.json").exists() or not _alive(int(record.get("pid") or 0)):
            continue
        native = "CG" if (jobdir / "cancelled").exists() else "R"
        lines.append(protocol.list_line(jobdir.name, native, record.get("owner", ""), record.get("name", "")))
    print("\n".join(lines))
    return 0


# --- cancel -----------------------------------------------------------


def cancel(spool: Path, job_ids: list[str]) -> int:
    for job_id in job_ids:
        jobdir = spool / job_id
        record = _read_json(jobdir / "record.json") if job_id.isdigit() else None
        if record is None:
            word = "not-found"
        elif (jobdir / "exit.json").exists():
            word = "finished"
        else:
            try:
                (jobdir / "cancelled").touch()
                os.killpg(int(record["pid"]), signal.SIGTERM)
                word = "cancelled"
            except PermissionError:
                word = "denied"
            except ProcessLookupError:
                word = "finished"
        print(f"{job_id} {word}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="batchhub_fake.local", description=__doc__.splitlines()[0])
    parser.add_argument("--spool", required=True, type=Path, help="directory holding the job records")
    parser.add_argument("verb", choices=[*protocol.VERBS, "_supervise"])
    parser.add_argument("ids", nargs="?", default="")
    args = parser.parse_args(argv)
    if args.verb == protocol.SUBMIT:
        return submit(args.spool, sys.stdin.read())
    if args.verb == protocol.STATUS:
        return status(args.spool, protocol.split_ids(args.ids))
    if args.verb == protocol.CANCEL:
        return cancel(args.spool, protocol.split_ids(args.ids))
    if args.verb == protocol.LIST:
        return listing(args.spool)
    return supervise(args.spool, args.ids)


if __name__ == "__main__":
    sys.exit(main())
