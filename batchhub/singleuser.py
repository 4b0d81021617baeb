"""``batchhub-singleuser``: the launcher a batch job runs on its node.

In the job::

    batchhub-singleuser --token-file DIR/token -- jupyterhub-singleuser [args...]

1. reads the server's API token from ``DIR/token``, refusing a file that is
   not a regular file owned by this user with mode 0600 in a directory
   owned by this user with mode 0700 on a path nobody else can change (see
   ``check_token_path``), then deletes it;
2. execs the server command with ``--port=0`` (and ``--ip=0.0.0.0`` unless
   one was given), the token in the server's own environment only, and this
   module enabled as a Jupyter server extension;
3. inside the server process, the extension binds the server's listening
   socket itself on port 0, so the kernel picks a port nobody holds and it
   is the server's from that instant, and has the server serve on it (for
   a wildcard address one dual-stack socket, IPv4 and IPv6: a server on
   0.0.0.0 alone would leave the same number on :: to anyone);
4. once the server runs, the extension checks that this process listens
   on that port and only then reports it to the hub (``POST
   $JUPYTERHUB_API_URL/batchhub/port`` with the token; retried with backoff
   while the hub is unreachable or not ready).

The job's wall time: the job script exports its start
(``BATCHHUB_JOB_START``) and run-time limit (``BATCHHUB_WALLTIME``); the
launcher computes the end, writes it to the job's output file (a line the
hub's jobs page reads) and gives it to the server as ``BATCHHUB_JOB_END``.
The extension puts it in JupyterLab's page options, and the small prebuilt
JupyterLab extension in ``batchhub/jupyter/labextensions`` (plain
JavaScript, no build step; the launcher puts that directory first on
``JUPYTER_PATH``) shows the time left and warns 10 minutes before the end.

Why: the hub must only ever be told a port that the user's own server
already holds. The launcher used to bind port 0, close it, report the
number and exec the server, which bound the port seconds later; meanwhile
the number stood on the server's command line (readable in /proc) and the
port was free, so another user on the node who bound it first received
this user's traffic from the hub. Now the port is never free between its
choice and its use, and Linux lets no other user bind a port on which a
socket listens (not even with SO_REUSEPORT, which needs the same user); and
the report, sent by the process that listens, comes last.

The alternatives were worse. A Jupyter server cannot take a listening
socket from outside, so handing it the launcher's socket across the exec
needs a wrapper that patches the server before it starts; a launcher that
stays the parent and reports does not hold the port it reports; holding
the port until the server binds it is impossible, as the server's bind
fails while anyone listens there. The extension instead uses the server's
own extension hooks: it replaces two port methods of the running
``ServerApp`` instance (``_find_http_port``, ``_bind_http_server_tcp``).
With a jupyter_server that lacks them, it leaves the binding to the server
(port 0 still, the kernel's choice), which binds a moment after choosing:
another user could then make the server fail to start, but never receive
its traffic, as the report still waits until this process listens.

The extension is enabled through a private directory put first on
``JUPYTER_CONFIG_PATH`` (a ``jupyter_server_config.d`` file) and removed
as soon as the extension loads: ``--ServerApp.jpserver_extensions`` on the
command line would replace the extensions the user's own config sets. As
the server imports this module, batchhub and the server must be installed
in one environment. A server command that is not a Jupyter server must
report its own port the same way, after binding:
``report_listening_port(port)``.

Any failure is written to stderr (the job's error file) with the reason,
and the launcher (before the exec) or the server (after it) exits non-zero,
so the spawn fails fast instead of timing out.

Where the site delivers the token in the job's environment instead (an
option on Slurm, never on Grid Engine, whose job environments other users
can read), ``--token-env`` replaces ``--token-file``.

On the hub, before submitting, the spawner runs (as the user, token on
stdin, never on a command line)::

    batchhub-singleuser --write-token-file DIR/token

which creates ``DIR`` (0700) and the token file (0600) as the user.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import re
import socket
import stat
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

#: What a token may look like: JupyterHub's are URL-safe and at most 64 long.
TOKEN_MAX = 256
REPORT_PATH = "/batchhub/port"
DEFAULT_COMMAND = ("jupyterhub-singleuser",)
#: This module's name as a Jupyter server extension.
EXTENSION = "batchhub.singleuser"
#: Set by the launcher for the server process: seconds to keep trying the hub.
REPORT_ENV = "BATCHHUB_REPORT_TIMEOUT"
#: Set by the launcher: the private config directory that enables the extension.
CONFIG_DIR_ENV = "BATCHHUB_JUPYTER_CONFIG"
CONFIG_FILE = os.path.join("jupyter_server_config.d", "batchhub-port-report.json")
#: Set by the job script: the job's start (seconds since the epoch) and its
#: wall-time limit in seconds (absent where the scheduler's default applies).
START_ENV = "BATCHHUB_JOB_START"
WALLTIME_ENV = "BATCHHUB_WALLTIME"
#: Set by the job script: where the launcher writes the start and the end
#: for the hub's jobs page (``job.times`` in the server's private directory).
TIMES_FILE_ENV = "BATCHHUB_TIMES_FILE"
#: Set by the job script: every node of the job, comma-separated.
NODES_ENV = "BATCHHUB_NODES"
#: Node names the launcher's line carries: host names only, and no more than
#: the hub reads back (``tail -c`` of the times file).
NODE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,252}")
NODES_MAX_CHARS = 2000
#: Set by the launcher for the server and everything it runs: when the
#: scheduler ends the job (seconds since the epoch).
END_ENV = "BATCHHUB_JOB_END"
#: The JupyterLab page option (``page_config``) that carries it to the browser.
PAGE_OPTION = "batchhubJobEnd"
#: A Jupyter data directory put first on the server's JUPYTER_PATH: its
#: ``labextensions`` hold the prebuilt JupyterLab extension that shows the
#: time left and warns before the end (plain JavaScript, no build step).
JUPYTER_DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "jupyter")


class LaunchError(Exception):
    """Why the launcher cannot start the server; printed to stderr."""


# --- the token file ----------------------------------------------------------
def _check_token_text(token: str) -> str:
    token = token.strip()
    if not token or len(token) > TOKEN_MAX or not token.isascii() or not token.isprintable() or " " in token:
        raise LaunchError("the token is empty or malformed")
    return token


def _check_private(st: os.stat_result, what: str, path: str, mode: int) -> None:
    if st.st_uid != os.getuid():
        raise LaunchError(f"{what} {path} is owned by uid {st.st_uid}, not by this user (uid {os.getuid()})")
    if stat.S_IMODE(st.st_mode) != mode:
        raise LaunchError(
            f"{what} {path} has mode {stat.S_IMODE(st.st_mode):04o}; it must be {mode:04o} (user-only)"
        )


def _path_from_root(path: str) -> Iterator[str]:
    """``/``, then each longer prefix of the absolute ``path``, down to it."""
    current = os.path.sep
    yield current
    for part in os.path.abspath(path).split(os.path.sep):
        if part:
            current = os.path.join(current, part)
            yield current


def check_token_path(directory: str) -> None:
    """Refuse a token directory that someone other than this user or root
    could swap, fill or empty through any directory on its path.

    From ``/`` down: the shared part above the user's first own directory
    (``/``, ``/scratch``) may hold only root's symbolic links and no
    directory that everyone may write unless it is sticky (like /tmp); from
    the user's first own directory down (``/scratch/alice/server``), every
    directory must be a real directory (no symbolic link) owned by the user
    or root, and not writable by group or others unless sticky."""
    uid = os.getuid()
    own = False
    for current in _path_from_root(directory):
        try:
            st = os.lstat(current)
            if stat.S_ISLNK(st.st_mode):
                # the user's own tree must have none; above it, root's (/home -> /export/home) are fine
                if own or st.st_uid != 0:
                    raise LaunchError(
                        f"{current} on the token's path is a symbolic link (owned by uid {st.st_uid}); "
                        "a symbolic link is not accepted"
                    )
                st = os.stat(current)
        except OSError as exc:
            raise LaunchError(f"cannot reach {current} on the token's path: {exc.strerror}") from None
        if not stat.S_ISDIR(st.st_mode):
            raise LaunchError(f"{current} on the token's path is not a directory")
        own = own or st.st_uid == uid
        sticky = bool(st.st_mode & stat.S_ISVTX)
        mode = stat.S_IMODE(st.st_mode)
        if own:
            if st.st_uid not in (uid, 0):
                raise LaunchError(
                    f"{current} on the token's path is owned by uid {st.st_uid}, neither this user "
                    f"(uid {uid}) nor root"
                )
            if mode & 0o022 and not sticky:
                raise LaunchError(
                    f"{current} on the token's path has mode {mode:04o}: writable by group or others, "
                    "who could replace what lies below"
                )
        elif mode & 0o002 and not sticky:
            raise LaunchError(
                f"{current} on the token's path has mode {mode:04o}: writable by everyone and not sticky"
            )


def read_token_file(path: str, *, delete: bool = True) -> str:
    """The token from ``path`` after checking that only this user could
    have written or read it; the file is removed once read."""
    directory = os.path.dirname(os.path.abspath(path))
    check_token_path(directory)
    try:
        dir_st = os.lstat(directory)
    except OSError as exc:
        raise LaunchError(f"cannot reach the token directory {directory}: {exc.strerror}") from None
    if not stat.S_ISDIR(dir_st.st_mode):
        raise LaunchError(f"{directory} is not a directory (a symbolic link is not accepted)")
    _check_private(dir_st, "the token directory", directory, 0o700)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise LaunchError(f"cannot open the token file {path}: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise LaunchError(f"the token file {path} is not a regular file")
        _check_private(st, "the token file", path, 0o600)
        data = os.read(fd, TOKEN_MAX + 2)
    finally:
        os.close(fd)
    if delete:
        try:
            os.unlink(path)
        except OSError as exc:
            raise LaunchError(f"cannot delete the token file {path} after reading: {exc.strerror}") from None
    try:
        return _check_token_text(data.decode("ascii"))
    except UnicodeDecodeError:
        raise LaunchError("the token is empty or malformed") from None


def write_token_file(path: str, token: str) -> None:
    """Create ``path``'s directory (0700, parents too) and write ``token``
    to ``path`` (0600) atomically. Refuses a directory owned by someone else,
    a symbolic link or a loose directory on its path (``check_token_path``).
    Leaves no temporary file behind, whatever fails."""
    token = _check_token_text(token)
    directory = os.path.dirname(os.path.abspath(path))
    old_umask = os.umask(0o077)
    tmp: str | None = None
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        st = os.lstat(directory)
        if not stat.S_ISDIR(st.st_mode):
            raise LaunchError(f"{directory} is not a directory (a symbolic link is not accepted)")
        if st.st_uid != os.getuid():
            raise LaunchError(f"{directory} is owned by uid {st.st_uid}, not by this user")
        os.chmod(directory, 0o700)
        check_token_path(directory)
        fd, tmp = tempfile.mkstemp(prefix=f".token.{os.getpid()}.", dir=directory)  # 0600, O_EXCL
        try:
            os.write(fd, token.encode("ascii") + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        tmp = None
        _remove_other_tokens(directory, os.path.basename(path))
    except OSError as exc:
        raise LaunchError(f"cannot write the token file {path}: {exc.strerror}") from None
    finally:
        if tmp is not None:  # a failed write must not leave a copy of the token lying around
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        os.umask(old_umask)


def _remove_other_tokens(directory: str, keep: str) -> None:
    """Delete earlier submissions' token files beside the new one: a job of
    an earlier submission (one whose answer was lost) then finds no token
    and cannot start a server."""
    for name in os.listdir(directory):
        if name != keep and (name == "token" or name.startswith("token.")):
            path = os.path.join(directory, name)
            if stat.S_ISREG(os.lstat(path).st_mode):
                os.unlink(path)


# --- the port report -----------------------------------------------------------
def listening_ports() -> set[int]:
    """The TCP ports on which this process holds a listening socket, asked
    of the kernel through the process's own file descriptors."""
    fd_dir = "/proc/self/fd" if os.path.isdir("/proc/self/fd") else "/dev/fd"
    ports: set[int] = set()
    for name in os.listdir(fd_dir):
        try:
            fd = int(name)
            if not stat.S_ISSOCK(os.fstat(fd).st_mode):
                continue
            dup = os.dup(fd)  # closing our duplicate leaves the server's socket open
        except (OSError, ValueError):
            continue  # closed meanwhile, or the directory's own descriptor
        try:
            sock = socket.socket(fileno=dup)
        except OSError:
            os.close(dup)
            continue
        with sock:
            try:
                if (
                    sock.family in (socket.AF_INET, socket.AF_INET6)
                    and sock.type == socket.SOCK_STREAM
                    and sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
                ):
                    ports.add(int(sock.getsockname()[1]))
            except OSError:
                continue
    return ports


def report_port(
    api_url: str, token: str, port: int, *, deadline: float = 30.0, first_delay: float = 0.25
) -> None:
    """POST the port to the hub. Retries with backoff while the hub cannot
    be reached or answers 5xx; a 4xx is final. Only ``report_listening_port``
    should call this: it first makes sure the port is held."""
    url = api_url.rstrip("/") + REPORT_PATH
    body = json.dumps({"port": port}).encode()
    give_up = time.monotonic() + deadline
    delay = first_delay
    while True:
        request = urllib.request.Request(
            url,
            data=body,
            method="POST",
            headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                response.read()
                return
        except urllib.error.HTTPError as exc:
            detail = _error_detail(exc)
            if exc.code < 500:
                raise LaunchError(f"the hub refused the port report ({exc.code}): {detail}") from None
            problem = f"the hub answered {exc.code}: {detail}"
        except (urllib.error.URLError, OSError) as exc:
            problem = f"cannot reach the hub at {url}: {getattr(exc, 'reason', exc)}"
        if time.monotonic() + delay > give_up:
            raise LaunchError(f"{problem} (gave up after {deadline:g} s)")
        time.sleep(delay)
        delay = min(delay * 2, 5.0)


def _error_detail(exc: urllib.error.HTTPError) -> str:
    try:
        data = json.loads(exc.read().decode("utf-8", "replace"))
        return str(data.get("message") or exc.reason)[:300]
    except (ValueError, AttributeError, OSError):
        return str(exc.reason)[:300]


def report_listening_port(port: int, *, wait: float = 10.0, deadline: float | None = None) -> None:
    """Report ``port`` to the hub from the server process, once this process
    listens on it (waiting up to ``wait`` seconds for that); never a port it
    does not hold. The hub's URL, the token and (unless given) the deadline
    come from the environment the launcher gave the server."""
    _forget_config_dir()  # a server that is no Jupyter server never loaded the extension that does it
    api_url = os.environ.get("JUPYTERHUB_API_URL", "")
    if not api_url:
        raise LaunchError("JUPYTERHUB_API_URL is not set in the server's environment")
    token = _check_token_text(os.environ.get("JUPYTERHUB_API_TOKEN", ""))
    if deadline is None:
        deadline = _deadline(os.environ.get(REPORT_ENV))
    give_up = time.monotonic() + wait
    while port <= 0 or port not in listening_ports():
        if port <= 0 or time.monotonic() >= give_up:
            raise LaunchError(f"this server does not listen on port {port}, so it is not reported to the hub")
        time.sleep(0.05)
    report_port(api_url, token, port, deadline=deadline)


def _deadline(value: str | None) -> float:
    try:
        return float(value or 30.0)
    except ValueError:
        return 30.0


# --- the job's wall time ----------------------------------------------------------
def _epoch(value: str | None) -> int | None:
    """A positive whole number of seconds, or ``None``."""
    try:
        number = int(str(value).strip())
    except ValueError:
        return None
    return number if number > 0 else None


def job_times(environ: Mapping[str, str], now: float) -> tuple[int, int | None]:
    """The job's start and the end of its wall time (``None``: unknown),
    from what the job script exported; the start defaults to ``now``."""
    start = _epoch(environ.get(START_ENV)) or int(now)
    walltime = _epoch(environ.get(WALLTIME_ENV))
    return start, (start + walltime if walltime else None)


def _utc(epoch: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch))


def job_nodes(environ: Mapping[str, str]) -> list[str]:
    """The job's nodes as the job script found them, or none when one of
    them is not a plain host name (Slurm's compressed ``cn[3-4]``, where
    ``scontrol`` was missing): a part of the list is never shown as all of
    it. A list too long for the times line ends with ``+N`` (the nodes left out)."""
    names = [name for name in environ.get(NODES_ENV, "").split(",") if name]
    if not all(NODE_NAME.fullmatch(name) for name in names):
        return []
    kept: list[str] = []
    for name in names:
        if sum(len(n) + 1 for n in kept) + len(name) > NODES_MAX_CHARS:
            return [*kept, f"+{len(names) - len(kept)}"]
        kept.append(name)
    return kept


def times_line(start: int, end: int | None, nodes: Sequence[str] = ()) -> str:
    """The line the launcher writes to the job's output file and to its
    times file, which the hub's jobs page reads (the bracketed part, see
    ``batchhub.jobs_page.TIMES``)."""
    ends = f"its wall time ends {_utc(end)}" if end else "no wall-time limit is known"
    if len(nodes) > 4:
        total = len(nodes) - 1 + int(nodes[-1][1:]) if nodes[-1].startswith("+") else len(nodes)
        on = f" on {nodes[0]} and {total - 1} other nodes"
    else:
        on = f" on {', '.join(nodes)}" if nodes else ""
    listed = f" nodes={','.join(nodes)}" if nodes else ""
    tag = f"[batchhub-times start={start} end={end or '-'}{listed}]"
    return f"batchhub-singleuser: job started {_utc(start)}{on}; {ends} {tag}"


def write_times_file(path: str, line: str) -> None:
    """Write ``line`` to ``path`` (user-only), replacing an earlier job's;
    a failure is reported and never stops the server."""
    if not path:
        return
    tmp = f"{path}.{os.getpid()}"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(line + "\n")
        os.replace(tmp, path)
    except OSError as exc:
        print(f"batchhub-singleuser: cannot write {path}: {exc.strerror}", file=sys.stderr, flush=True)
        with contextlib.suppress(OSError):
            os.unlink(tmp)


# --- the Jupyter server extension ----------------------------------------------
WILDCARDS = ("", "0.0.0.0", "::")


def bind_server_sockets(ip: str) -> list[socket.socket]:
    """Non-blocking listening sockets on a port the kernel picks, on ``ip``.
    A wildcard address takes IPv4 and IPv6 in one dual-stack socket: a
    server on 0.0.0.0 alone would leave the same port number on :: to
    anyone, and the hub may reach the node by IPv6."""
    sockets: list[socket.socket] = []
    if ip in WILDCARDS:
        if socket.has_dualstack_ipv6():
            with contextlib.suppress(OSError):  # IPv6 switched off: IPv4 only
                sockets = [socket.create_server(("::", 0), family=socket.AF_INET6, dualstack_ipv6=True)]
        if not sockets:
            sockets = [socket.create_server(("0.0.0.0", 0))]
    else:
        from tornado.netutil import bind_sockets

        sockets = bind_sockets(0, ip)  # what the server itself would bind for this address
    for sock in sockets:
        sock.setblocking(False)  # tornado accepts until the socket would block
    return sockets


class _Extension:
    """What the extension keeps for its server between its two hooks."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.sockets: list[socket.socket] = []
        self.port = 0
        self.served = False


_extension: _Extension | None = None
#: The ServerApp methods that choose and bind its port (jupyter_server 2).
_PORT_METHODS = ("_find_http_port", "_bind_http_server_tcp")


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": EXTENSION}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    """Runs before the server makes its HTTP server: bind its port now."""
    global _extension
    _forget_config_dir()
    end = _epoch(os.environ.get(END_ENV))
    if end is not None:  # JupyterLab's page reads it: time left, and a warning before the end
        serverapp.web_app.settings.setdefault("page_config_data", {})[PAGE_OPTION] = end
    deadline = os.environ.pop(REPORT_ENV, None)  # kernels and terminals inherit the environment
    if deadline is None or serverapp.sock:
        return  # not started by the launcher, or serving a unix socket: no port to report
    _extension = ext = _Extension(_deadline(deadline))
    if not all(callable(getattr(serverapp, name, None)) for name in _PORT_METHODS):
        serverapp.log.warning("batchhub: this jupyter_server binds its own port; the report waits for it")
        return
    ext.sockets = bind_server_sockets(serverapp.ip)  # no one else can take the port from here on
    ext.port = int(ext.sockets[0].getsockname()[1])

    def find_http_port() -> None:
        serverapp.port = ext.port

    def bind_http_server_tcp() -> bool:
        serverapp.http_server.add_sockets(ext.sockets)
        ext.served = True
        return True

    serverapp.port = ext.port
    serverapp._find_http_port = find_http_port
    serverapp._bind_http_server_tcp = bind_http_server_tcp


async def _start_jupyter_server_extension(serverapp: Any) -> None:
    """Runs once the server's event loop runs, after its sockets are bound:
    report the port, or end the server with the reason."""
    ext = _extension
    if ext is None:
        return
    port = int(serverapp.port)
    try:
        if ext.sockets and not (ext.served and ext.port == port):
            raise LaunchError(f"the server does not serve on the port {ext.port} bound for it")
        report = functools.partial(report_listening_port, port, deadline=ext.deadline)
        await asyncio.get_running_loop().run_in_executor(None, report)
    except LaunchError as exc:
        print(f"batchhub-singleuser: {exc}", file=sys.stderr, flush=True)
        serverapp.exit(1)  # raises SystemExit, which ends the event loop and the process
    serverapp.log.info("batchhub: reported port %d to the hub", port)


def _forget_config_dir() -> None:
    """The private directory that enabled the extension has done its job:
    remove it and its entry on JUPYTER_CONFIG_PATH, which kernels and
    terminals would otherwise inherit."""
    directory = os.environ.pop(CONFIG_DIR_ENV, "")
    if not directory:
        return
    paths = [p for p in os.environ.get("JUPYTER_CONFIG_PATH", "").split(os.pathsep) if p and p != directory]
    if paths:
        os.environ["JUPYTER_CONFIG_PATH"] = os.pathsep.join(paths)
    else:
        os.environ.pop("JUPYTER_CONFIG_PATH", None)
    _remove_config_dir(directory)


def _remove_config_dir(directory: str) -> None:
    # only what the launcher made: a directory named in the environment is never removed wholesale
    for path, remove in (
        (os.path.join(directory, CONFIG_FILE), os.unlink),
        (os.path.join(directory, os.path.dirname(CONFIG_FILE)), os.rmdir),
        (directory, os.rmdir),
    ):
        try:
            remove(path)
        except OSError:
            return


def _make_config_dir() -> str:
    """A private directory (0700, under $TMPDIR) whose
    ``jupyter_server_config.d`` enables this module as a server extension."""
    try:
        directory = tempfile.mkdtemp(prefix="batchhub-jupyter-")
    except OSError as exc:
        where = tempfile.gettempdir()
        raise LaunchError(f"cannot create a private directory in {where}: {exc.strerror}") from None
    try:
        os.mkdir(os.path.join(directory, os.path.dirname(CONFIG_FILE)), 0o700)
        with open(os.path.join(directory, CONFIG_FILE), "x", encoding="utf-8") as f:
            json.dump({"ServerApp": {"jpserver_extensions": {EXTENSION: True}}}, f)
    except OSError as exc:
        _remove_config_dir(directory)
        raise LaunchError(f"cannot write the server's configuration in {directory}: {exc.strerror}") from None
    return directory


# --- launch ------------------------------------------------------------------
def server_argv(command: Sequence[str]) -> list[str]:
    """The server command with port 0 (the server binds a port the kernel
    picks, nothing on its command line names it), listening on all
    interfaces unless the admin's arguments chose an address."""
    argv = list(command) or list(DEFAULT_COMMAND)
    has_ip = any(
        a.startswith(("--ip=", "--ServerApp.ip=", "--SingleUserNotebookApp.ip=")) or a == "--ip" for a in argv
    )
    return [*argv, *([] if has_ip else ["--ip=0.0.0.0"]), "--port=0"]


def launch(token_file: str | None, command: Sequence[str], *, report_deadline: float = 30.0) -> None:
    """Everything up to the exec; returns only by raising LaunchError.
    ``token_file`` ``None`` takes the token from the environment."""
    api_url = os.environ.get("JUPYTERHUB_API_URL", "")
    if not api_url:
        raise LaunchError("JUPYTERHUB_API_URL is not set in the job's environment")
    if token_file is None:
        token = _check_token_text(os.environ.get("JUPYTERHUB_API_TOKEN", ""))
    else:
        token = read_token_file(token_file)
    argv = server_argv(command)
    start, end = job_times(os.environ, time.time())
    if START_ENV in os.environ:  # in a job batchhub's script started: say when it ends
        line = times_line(start, end, job_nodes(os.environ))
        print(line, flush=True)  # the job's output file
        write_times_file(os.environ.get(TIMES_FILE_ENV, ""), line)
    config_dir = _make_config_dir()
    config_path = [config_dir, *(p for p in os.environ.get("JUPYTER_CONFIG_PATH", "").split(os.pathsep) if p)]
    data_path = [JUPYTER_DATA, *(p for p in os.environ.get("JUPYTER_PATH", "").split(os.pathsep) if p)]
    env = dict(os.environ)  # the token goes into this process's environment only, not the job's
    env.update(
        {
            "JUPYTERHUB_API_TOKEN": token,
            "JUPYTER_CONFIG_PATH": os.pathsep.join(config_path),
            "JUPYTER_PATH": os.pathsep.join(data_path),  # JupyterLab finds the time-left extension
            CONFIG_DIR_ENV: config_dir,
            REPORT_ENV: f"{report_deadline:g}",
        }
    )
    if end is not None:
        env[END_ENV] = str(end)  # the server, its kernels and terminals: user code can read it
    try:
        os.execvpe(argv[0], argv, env)
    except OSError as exc:
        _remove_config_dir(config_dir)
        raise LaunchError(f"cannot run {argv[0]}: {exc.strerror}") from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="batchhub-singleuser",
        description="Start a JupyterHub single-user server inside a batch job (see batchhub docs).",
    )
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--token-file", help="private file holding the server's token (read, then deleted)")
    what.add_argument(
        "--token-env",
        action="store_true",
        help="take the token from JUPYTERHUB_API_TOKEN in the environment (only where the site "
        "chose to deliver it that way; never on Grid Engine)",
    )
    what.add_argument(
        "--write-token-file",
        metavar="PATH",
        help="hub side: write the token from stdin to PATH (dir 0700, file 0600)",
    )
    parser.add_argument(
        "--report-timeout",
        type=float,
        default=30.0,
        help="seconds the server keeps trying to reach the hub with its port (default 30)",
    )
    parser.add_argument(
        "command", nargs=argparse.REMAINDER, help="server command (default jupyterhub-singleuser)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    try:
        if args.write_token_file:
            write_token_file(args.write_token_file, sys.stdin.read(TOKEN_MAX + 2))
            return 0
        launch(args.token_file, command, report_deadline=args.report_timeout)
    except LaunchError as exc:
        print(f"batchhub-singleuser: {exc}", file=sys.stderr, flush=True)
        return 1
    return 1  # not reached: launch() execs or raises


if __name__ == "__main__":
    sys.exit(main())
