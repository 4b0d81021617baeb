"""The server's private directory and the token's way into the job.

Each server gets a directory of its own (0700, made by the user before each
submission) that holds the token file and the job's output and error
files. These pure builders name that directory, build the commands that
prepare it and tell the launcher where the token is; the spawner runs the
commands. The token itself never appears in a command line, a job script
or the job's environment (unless the site chose ``token_delivery = "env"``
on a scheduler that keeps job environments private).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping

from .jobs import Command, JobSpec

#: Variables from JupyterHub's get_env() that are secrets: they reach the
#: job only through the private token file, never its environment or script.
SECRET_ENV = frozenset({"JUPYTERHUB_API_TOKEN", "JPY_API_TOKEN"})

#: Characters a server's directory name may hold as they are.
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_.-]+")
#: Longest file name most file systems take (bytes; the names here are ASCII).
NAME_MAX = 255

#: Seconds each command preparing the directory may take (a slow home file system).
PREPARE_TIMEOUT = 30


def server_dir_name(name: str) -> str:
    """The ``{server}`` of ``workdir_template``: ``default`` for the default
    server, a named server's own name where it is a plain file name, else
    the name escaped plus a digest of it.

    Injective: two different server names never share a directory. A plain
    name (letters, digits, ``_ . -``; not ``default``, not starting with a
    dot) is its own directory. Any other name becomes its UTF-8 bytes with
    each byte outside that set (and a leading dot) written ``+hh``, then
    ``-+`` and 8 hex digits of its SHA-256: a plain name never holds ``+``
    and the escaping can be undone, so no two names meet ("a b" is
    ``a+20b-+c8687a08``, the default-named one ``default-+37a8eec1``), and
    no name reaches outside (".." or "a/b", which JupyterHub 5 allows)."""
    if not name:
        return "default"
    if _PLAIN_NAME.fullmatch(name) and name != "default" and not name.startswith("."):
        return name
    raw = name.encode("utf-8", "surrogatepass")
    kept = [bool(_PLAIN_NAME.fullmatch(chr(byte))) for byte in raw]
    kept[0] = kept[0] and raw[:1] != b"."  # never a hidden directory, never ".."
    body = "".join(chr(byte) if keep else f"+{byte:02x}" for byte, keep in zip(raw, kept, strict=True))
    return f"{body}-+{hashlib.sha256(raw).hexdigest()[:8]}"


def token_path(workdir: str, submission: str) -> str:
    """One submission's own token file: a job of an earlier submission (one
    whose answer was lost, say) can never read this one's token."""
    return f"{workdir}/token.{submission}"


def launcher_argv(launcher: str, token_file: str | None, report_timeout: float) -> list[str]:
    """How the job script starts the launcher (the server command follows
    the ``--``). ``token_file`` ``None``: the token is in the job's
    environment. The server keeps trying to report its port for
    ``report_timeout`` seconds: the hub holds reports (503) while the
    scheduler cannot confirm the job runs."""
    token = ["--token-env"] if token_file is None else ["--token-file", token_file]
    return [launcher, *token, "--report-timeout", f"{report_timeout:g}", "--"]


def prepare_command(spec: JobSpec, launcher: str, token_file: str | None, token: str) -> Command:
    """The command, run as the user, that makes the private directory and
    (with a ``token_file``) writes the token into it from stdin: never on a
    command line, where other users could read it."""
    if token_file is None:
        argv: tuple[str, ...] = ("mkdir", "-p", "-m", "0700", spec.workdir)
        return Command(argv, as_user=spec.username, timeout=PREPARE_TIMEOUT)
    argv = (launcher, "--write-token-file", token_file)
    return Command(argv, stdin=token, as_user=spec.username, timeout=PREPARE_TIMEOUT)


def clean_command(spec: JobSpec) -> Command:
    """Removes the last job's output and error files, so a failure shows
    this job's errors only (earlier token files go as the launcher writes a
    new one)."""
    argv = ("rm", "-f", spec.output_path, spec.error_path)
    return Command(argv, as_user=spec.username, timeout=PREPARE_TIMEOUT)


def job_env(env: Mapping[str, str]) -> dict[str, str]:
    """The job's environment from the hub's: secrets removed (they travel in
    the token file), and no PATH (the node's own PATH, not the hub's)."""
    return {key: value for key, value in env.items() if key not in SECRET_ENV and key != "PATH"}
