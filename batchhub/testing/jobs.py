"""What the real schedulers say, for end-to-end tests: which jobs are
live, whether a scheduler answers, and where a job's server process is.

These ask the scheduler directly (not through batchhub), so a test can
check what batchhub did rather than what batchhub believes.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..site_settings import list_jobs, make_backend, run_command, site_settings
from ..site_settings import scheduler_problem as scheduler_problem


def live_job_ids(
    backend: str,
    state_dir: Path | None = None,
    prefix: str = "",
    config: Mapping[str, Mapping[str, Any]] = (),
) -> set[str]:
    """Ids of every job the scheduler still runs or queues (any user),
    only those whose name starts with ``prefix`` when one is given (other
    people's jobs share a real scheduler).

    Works for any installed backend with a ``list_command``: the backend is
    configured as the demo's hub configures it (its plugin's
    ``batchhub_site_settings`` for ``state_dir``, then ``config``, by class
    then trait), and its listing runs as the current user. A listing that
    fails raises ``QueryError``; an unknown backend or one that cannot list
    raises ``ConfigError`` saying so."""
    job_backend, _ = make_backend(backend, state_dir, config)
    return {job.job_id for job in list_jobs(job_backend) if job.name.startswith(prefix)}


def job_details(backend: str, job_id: str) -> str:
    """Everything the scheduler shows any user about one job (what the
    backend's plugin names in ``SiteSettings.job_details``; empty if none)."""
    settings = site_settings(backend)
    if settings.job_details is None:
        return ""
    return "".join(run_command(argv, settings.env).stdout for argv in settings.job_details(job_id))


def scheduler_spool_dirs(backend: str) -> list[Path]:
    """Where the scheduler keeps job scripts and environments here
    (``SiteSettings.spool_dirs``), those that exist."""
    return [path for path in site_settings(backend).spool_dirs if path.exists()]


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


@contextlib.contextmanager
def private_workdir(user: str, prefix: str = "batchhub-test-") -> Iterator[str]:
    """A directory that only ``user`` may enter, as the spawner makes one per
    server, for a job submitted as that user; removed afterwards. Run as root."""
    path = tempfile.mkdtemp(prefix=prefix)
    try:
        shutil.chown(path, user, user)
        os.chmod(path, 0o700)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
