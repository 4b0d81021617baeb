"""``batchhub-singleuser``: the launcher a batch job runs on its node.

In the job::

    batchhub-singleuser --token-file DIR/token -- jupyterhub-singleuser [args...]

1. reads the server's API token from ``DIR/token``, refusing a file that is
   not a regular file owned by this user with mode 0600 in a directory
   owned by this user with mode 0700, then deletes it;
2. chooses a free port on the node (binds port 0, notes it, closes);
3. reports it to the hub (``POST $JUPYTERHUB_API_URL/batchhub/port`` with
   the token; retried with backoff while the hub is unreachable);
4. puts the token into its own environment only and execs the server
   command with ``--port=N`` (and ``--ip=0.0.0.0`` unless one was given).

Any failure is written to stderr (the job's error file) with the reason and
the launcher exits non-zero, so the spawn fails fast instead of timing out.

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
import json
import os
import socket
import stat
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence

#: What a token may look like: JupyterHub's are URL-safe and at most 64 long.
TOKEN_MAX = 256
REPORT_PATH = "/batchhub/port"
DEFAULT_COMMAND = ("jupyterhub-singleuser",)


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


def read_token_file(path: str, *, delete: bool = True) -> str:
    """The token from ``path`` after checking that only this user could
    have written or read it; the file is removed once read."""
    directory = os.path.dirname(os.path.abspath(path))
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
    to ``path`` (0600) atomically. Refuses a directory owned by someone else
    or a symbolic link in its place."""
    token = _check_token_text(token)
    directory = os.path.dirname(os.path.abspath(path))
    old_umask = os.umask(0o077)
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        st = os.lstat(directory)
        if not stat.S_ISDIR(st.st_mode):
            raise LaunchError(f"{directory} is not a directory (a symbolic link is not accepted)")
        if st.st_uid != os.getuid():
            raise LaunchError(f"{directory} is owned by uid {st.st_uid}, not by this user")
        os.chmod(directory, 0o700)
        tmp = os.path.join(directory, f".token.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            os.write(fd, token.encode("ascii") + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as exc:
        raise LaunchError(f"cannot write the token file {path}: {exc.strerror}") from None
    finally:
        os.umask(old_umask)


# --- port --------------------------------------------------------------------
def choose_port(host: str = "0.0.0.0") -> int:
    """A port free on all interfaces right now. The server binds it a
    moment later; a race with another process is possible but rare."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            return int(sock.getsockname()[1])
    except OSError as exc:
        raise LaunchError(f"cannot find a free port on this node: {exc.strerror}") from None


def report_port(
    api_url: str, token: str, port: int, *, deadline: float = 30.0, first_delay: float = 0.25
) -> None:
    """Tell the hub which port the server will use. Retries with backoff
    while the hub cannot be reached or answers 5xx; a 4xx is final."""
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


# --- launch ------------------------------------------------------------------
def server_argv(command: Sequence[str], port: int) -> list[str]:
    """The server command with our port, and listening on all interfaces
    unless the admin's arguments chose an address."""
    argv = list(command) or list(DEFAULT_COMMAND)
    has_ip = any(
        a.startswith(("--ip=", "--ServerApp.ip=", "--SingleUserNotebookApp.ip=")) or a == "--ip" for a in argv
    )
    return [*argv, *([] if has_ip else ["--ip=0.0.0.0"]), f"--port={port}"]


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
    port = choose_port()
    report_port(api_url, token, port, deadline=report_deadline)
    argv = server_argv(command, port)
    env = dict(os.environ, JUPYTERHUB_API_TOKEN=token)  # this process only, not the job's
    try:
        os.execvpe(argv[0], argv, env)
    except OSError as exc:
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
        help="seconds to keep trying to reach the hub (default 30)",
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
