"""The command runner: the only place in batchhub that starts processes.

Every scheduler command goes through ``CommandRunner.run``: an argv list
(never a shell), an explicit environment (nothing of the hub's own
environment leaks in unless the admin passes it on), an optional switch to
the job's owner through a configurable prefix, a timeout that kills the
whole process group, a cap on concurrent commands and on output size.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import os
import re
import signal
import time
from asyncio.subprocess import DEVNULL, PIPE

from traitlets import Dict, Float, Int, List, Unicode
from traitlets.config import LoggingConfigurable

from .jobs import Command, CommandResult, ConfigError

#: POSIX-portable user names: what ``useradd`` accepts by default.
DEFAULT_USERNAME_PATTERN = r"^[a-z_][a-z0-9_.-]{0,31}$"


class CommandRunner(LoggingConfigurable):
    """Runs ``Command`` values as subprocesses."""

    as_user_prefix = List(
        Unicode(),
        default_value=["sudo", "-n", "-u", "{username}", "--"],
        help="argv put before a command that must run as a user; ``{username}`` "
        "is replaced by the (validated) user name. The hub usually runs as an "
        "unprivileged account with a sudoers rule for the scheduler commands; "
        'a hub running as root may use ["runuser", "-u", "{username}", "--"]. '
        "No prefix is used when the command's user is the hub's own user.",
    ).tag(config=True)

    username_pattern = Unicode(
        DEFAULT_USERNAME_PATTERN,
        help="Regular expression a user name must match before it is put on a "
        "command line (it is never given to a shell, but sudo and the "
        "schedulers still deserve a plain name).",
    ).tag(config=True)

    path = Unicode(
        "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin",
        help="PATH given to every command. The hub's own PATH is not passed on.",
    ).tag(config=True)

    env = Dict(
        value_trait=Unicode(),
        help="Extra variables for every command (e.g. SGE_ROOT, SGE_CELL, "
        "SLURM_CONF). Nothing else of the hub's environment is passed on.",
    ).tag(config=True)

    default_timeout = Float(30.0, help="Seconds a command may run when it sets no timeout of its own.").tag(
        config=True
    )

    max_concurrent = Int(
        16,
        help="Most commands running at once; more wait their turn, so a "
        "thousand users starting together cannot flood the scheduler.",
    ).tag(config=True)

    max_output_bytes = Int(
        8 * 1024 * 1024,
        help="Most bytes kept of a command's stdout (and of its stderr); the "
        "rest is read and dropped so the command never blocks on a full pipe.",
    ).tag(config=True)

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self._slots = asyncio.Semaphore(self.max_concurrent)
        self._me = getpass.getuser()

    def argv_for(self, command: Command) -> list[str]:
        """The full argv, with the as-user prefix where one is needed."""
        user = command.as_user
        if user is None or user == self._me:
            return list(command.argv)
        if not re.fullmatch(self.username_pattern, user):
            raise ConfigError(
                f"refusing to run a command as {user!r}: not a plain user name "
                f"(c.CommandRunner.username_pattern is {self.username_pattern!r})"
            )
        return [part.replace("{username}", user) for part in self.as_user_prefix] + list(command.argv)

    def env_for(self, command: Command) -> dict[str, str]:
        return {"PATH": self.path, "LANG": "C.UTF-8", **self.env, **command.env}

    async def run(self, command: Command) -> CommandResult:
        """Run one command to completion. Never raises for the program's
        failure: a missing program, a non-zero exit or a timeout all come
        back as a ``CommandResult`` the caller can judge."""
        argv = self.argv_for(command)
        timeout = command.timeout or self.default_timeout
        async with self._slots:
            started = time.monotonic()
            try:
                proc = await asyncio.create_subprocess_exec(
                    *argv,
                    stdin=PIPE if command.stdin is not None else DEVNULL,
                    stdout=PIPE,
                    stderr=PIPE,
                    env=self.env_for(command),
                    start_new_session=True,  # its own process group, killed whole on timeout
                )
            except OSError as exc:
                return CommandResult(command, 127, "", f"cannot run {argv[0]}: {exc}", 0.0)
            out, err, timed_out = await self._communicate(proc, command.stdin, timeout)
            duration = time.monotonic() - started
        returncode = proc.returncode if proc.returncode is not None else -signal.SIGKILL
        result = CommandResult(command, returncode, out, err, duration, timed_out)
        self.log.debug("ran %s: rc=%s in %.2fs", command, returncode, duration)
        return result

    async def _communicate(
        self, proc: asyncio.subprocess.Process, stdin: str | None, timeout: float
    ) -> tuple[str, str, bool]:
        async def feed() -> None:
            if proc.stdin is None:
                return
            try:
                if stdin:
                    proc.stdin.write(stdin.encode())
                    await proc.stdin.drain()
            except (BrokenPipeError, ConnectionResetError):
                pass  # the program did not read its input: its exit status tells why
            finally:
                proc.stdin.close()

        async def collect(stream: asyncio.StreamReader | None) -> bytes:
            kept = bytearray()
            if stream is None:
                return b""
            while chunk := await stream.read(65536):
                room = self.max_output_bytes - len(kept)
                if room > 0:
                    kept += chunk[:room]
            return bytes(kept)

        work = asyncio.gather(feed(), collect(proc.stdout), collect(proc.stderr), proc.wait())
        try:
            _, out, err, _ = await asyncio.wait_for(work, timeout)
            timed_out = False
        except asyncio.TimeoutError:
            self._kill_group(proc)
            await proc.wait()
            out, err, timed_out = b"", b"", True
        except asyncio.CancelledError:
            self._kill_group(proc)
            raise
        return out.decode(errors="replace"), err.decode(errors="replace"), timed_out

    @staticmethod
    def _kill_group(proc: asyncio.subprocess.Process) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
