"""What the real schedulers say, for end-to-end tests: which jobs are
live, whether a scheduler answers, and where a job's server process is.

These ask the scheduler directly (not through batchhub), so a test can
check what batchhub did rather than what batchhub believes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

from ..plugins import get_registry

SGE_ENV = {"SGE_ROOT": "/var/lib/gridengine", "SGE_CELL": "default"}


def _run(argv: list[str], timeout: float = 20) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "LANG": "C.UTF-8", **SGE_ENV}
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, check=False)


def scheduler_problem(backend: str) -> str | None:
    """Why ``backend`` cannot be used here, or ``None``."""
    registry = get_registry()
    if backend not in registry.backends:
        broken = registry.broken.get(backend, "not installed")
        return f"the {backend!r} backend plugin ({broken})"
    if backend == "sge":
        if shutil.which("qstat") is None:
            return "Son of Grid Engine (scripts/sge-up)"
        if _run(["qstat", "-u", "*"]).returncode != 0:
            return "a running Son of Grid Engine qmaster (scripts/sge-up)"
    if backend == "slurm":
        if shutil.which("squeue") is None:
            return "Slurm (scripts/slurm-up)"
        if _run(["squeue", "-h"]).returncode != 0:
            return "a running Slurm controller (scripts/slurm-up)"
    return None


def live_job_ids(backend: str, state_dir: Path | None = None, prefix: str = "") -> set[str]:
    """Ids of every job the scheduler still runs or queues (any user),
    only those whose name starts with ``prefix`` when one is given (other
    people's jobs share a real scheduler)."""
    if backend == "sge":
        root = ElementTree.fromstring(_run(["qstat", "-u", "*", "-xml"]).stdout or "<x/>")
        return {
            (job.findtext("JB_job_number") or "").strip()
            for job in root.iter("job_list")
            if (job.findtext("JB_name") or "").startswith(prefix)
        }
    if backend == "slurm":
        out = _run(["squeue", "-h", "-o", "%i|%j"]).stdout
        pairs = [line.strip().split("|", 1) for line in out.splitlines() if "|" in line]
        return {job_id for job_id, name in pairs if name.startswith(prefix)}
    if backend == "fake":
        assert state_dir is not None
        spool = state_dir / "fake-spool"
        return {
            d.name
            for d in spool.iterdir()
            if d.name.isdigit() and (d / "record.json").exists() and not (d / "exit.json").exists()
        }
    raise ValueError(backend)


def job_details(backend: str, job_id: str) -> str:
    """Everything the scheduler shows any user about one job."""
    if backend == "sge":
        return _run(["qstat", "-j", job_id]).stdout + _run(["qstat", "-j", job_id, "-xml"]).stdout
    if backend == "slurm":
        return _run(["scontrol", "show", "job", "-d", job_id]).stdout
    return ""


@dataclass(frozen=True)
class ServerProcess:
    pid: int
    uid: int
    argv: list[str]
    env: dict[str, str]


def listening_sockets(port: int) -> list[str]:
    """Inodes of the sockets listening on TCP ``port`` (IPv4 and IPv6)."""
    inodes = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.append(fields[9])
    return inodes


def socket_holders(inodes: list[str]) -> list[int]:
    """Pids of the processes holding any of the sockets ``inodes``."""
    targets = {f"socket:[{inode}]" for inode in inodes}
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if any(os.readlink(fd) in targets for fd in (entry / "fd").iterdir()):
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


def server_process(port: int) -> ServerProcess | None:
    """The single-user server listening on ``port``: the jupyterhub-singleuser
    process holding the listening socket (found through /proc; needs root
    to read another user's environment). The port is on no command line:
    the server binds it itself."""
    for pid in socket_holders(listening_sockets(port)):
        entry = Path("/proc") / str(pid)
        try:
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
            if not any("jupyterhub-singleuser" in a for a in argv):
                continue
            raw = (entry / "environ").read_bytes().decode(errors="replace")
            uid = entry.stat().st_uid
        except OSError:
            continue
        env = dict(item.split("=", 1) for item in raw.split("\0") if "=" in item)
        return ServerProcess(pid, uid, [a for a in argv if a], env)
    return None


def all_command_lines() -> str:
    """Every process's command line, as ``ps`` shows them to any user."""
    lines = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                lines.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
            except OSError:
                continue
    return "\n".join(lines)


def files_containing(root: Path, needle: str) -> list[str]:
    """Files under ``root`` whose bytes contain ``needle``."""
    found = []
    data = needle.encode()
    for dirpath, _, names in os.walk(root):
        for name in names:
            path = os.path.join(dirpath, name)
            try:
                with open(path, "rb") as f:
                    if data in f.read(4 * 1024 * 1024):
                        found.append(path)
            except OSError:
                continue
    return found


def sge_spool_dirs() -> list[Path]:
    """Grid Engine's execd spool (job scripts and environments live there)."""
    return [p for p in [Path("/var/spool/gridengine/execd")] if p.exists()]
