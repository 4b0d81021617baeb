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
import logging
import math
import os
import pwd
import re
import signal
import subprocess
import time
from subprocess import DEVNULL, PIPE
from typing import Any

from traitlets import Dict, Float, Int, List, TraitError, Unicode, validate
from traitlets.config import LoggingConfigurable

from . import metrics
from .jobs import Command, CommandResult, ConfigError

#: POSIX-portable user names: what ``useradd`` accepts by default.
DEFAULT_USERNAME_PATTERN = r"^[a-z_][a-z0-9_.-]{0,31}$"


class AccountRefused(ConfigError):
    """No command may run as this user. The message is for the admin's log;
    ``user_message`` says it to the user without the rule's details."""

    def __init__(self, message: str, user_message: str) -> None:
        super().__init__(message)
        self.user_message = user_message


def _hub_account() -> tuple[str, int]:
    """The hub's own account, from its effective uid (not ``$USER``,
    which the environment can say anything about)."""
    uid = os.geteuid()
    try:
        return pwd.getpwuid(uid).pw_name, uid
    except KeyError:
        return str(uid), uid


class CommandRunner(LoggingConfigurable):
    """Runs ``Command`` values as subprocesses."""

    as_user_prefix = List(
        Unicode(),
        default_value=["sudo", "-n", "-u", "{username}", "--"],
        help="argv put before a command that must run as a user; ``{username}`` "
        "is replaced by the (validated) user name. The hub usually runs as an "
        "unprivileged account with a sudoers rule for the scheduler commands; "
        'a hub running as root may use ["runuser", "-u", "{username}", "--"]. '
        "An empty list runs every command as the hub itself (a personal hub, such as "
        "the demo run by an ordinary user); only then may a hub user be the hub's own "
        "account. Whatever the prefix, no command runs for root, a system account (see "
        "min_uid and reserved_uid_ranges) or a name without an account.",
    ).tag(config=True)

    min_uid = Int(
        1000,
        help="Lowest uid of an account commands may run as. Accounts below it are system "
        "accounts (daemon, the scheduler's own such as sgeadmin) and are refused, so a hub "
        "user named like one never gets a server. root (uid 0) is refused whatever this says.",
    ).tag(config=True)

    reserved_uid_ranges = List(
        List(Int(), minlen=2, maxlen=2),
        default_value=[[60000, 65535], [4294967294, 4294967295]],
        help="uid ranges [low, high] (inclusive) above min_uid that also belong to system "
        "accounts, refused like those below it: by default Debian's package accounts "
        "(60000-64999, e.g. slurm as 64030), systemd's dynamic users, nobody (65534) and "
        "4294967294-4294967295. Directory services (LDAP, AD) usually give uids outside "
        "these; remove a range that holds your users' uids.",
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

    @validate("reserved_uid_ranges")
    def _valid_ranges(self, proposal: dict[str, Any]) -> list[list[int]]:
        for low, high in proposal["value"]:
            if low > high:
                raise TraitError(f"c.CommandRunner.reserved_uid_ranges: [{low}, {high}] needs low <= high")
        return proposal["value"]

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self._slots = asyncio.Semaphore(self.max_concurrent)
        self._me, self._my_uid = _hub_account()

    def check_user(self, user: str) -> pwd.struct_passwd:
        """The account of ``user`` once it passed every rule, else
        ``AccountRefused`` saying which rule and what to do."""
        if not re.fullmatch(self.username_pattern, user):
            raise AccountRefused(
                f"refusing to run a command as {user!r}: not a plain user name "
                f"(c.CommandRunner.username_pattern is {self.username_pattern!r})",
                f"the user name {user!r} cannot be used for batch jobs; ask the admins",
            )
        try:
            account = pwd.getpwnam(user)
        except KeyError:
            message = f"there is no account named {user} on the cluster; ask the admins to create one"
            raise AccountRefused(f"refusing to run a command as {user}: {message}", message) from None
        uid = account.pw_uid
        refused = f"the account {user} cannot run servers here; ask the admins"
        if uid == 0 or uid < self.min_uid:
            raise AccountRefused(
                f"refusing to run a command as {user}: {user} is a system account (uid {uid}); "
                f"commands run only as ordinary accounts (c.CommandRunner.min_uid = {self.min_uid})",
                refused,
            )
        for low, high in self.reserved_uid_ranges:
            if low <= uid <= high:
                raise AccountRefused(
                    f"refusing to run a command as {user}: {user} is a system account (uid {uid}): "
                    f"its uid is in c.CommandRunner.reserved_uid_ranges ([{low}, {high}])",
                    refused,
                )
        if self.as_user_prefix and (user == self._me or uid == self._my_uid):
            # never act as the hub for a user who merely has its name (or its uid)
            raise AccountRefused(
                f"refusing to run a command as {user}: that is the hub's own account "
                f"({self._me}, uid {self._my_uid}), and a hub user must not act as the hub",
                refused,
            )
        return account

    def argv_for(self, command: Command) -> list[str]:
        """The full argv, with the as-user prefix for a command run as a
        user. Raises ``AccountRefused`` for a user no command may run as."""
        user = command.as_user
        if user is None:  # the hub's own command, such as a status query
            return list(command.argv)
        self.check_user(user)
        return [part.replace("{username}", user) for part in self.as_user_prefix] + list(command.argv)

    def env_for(self, command: Command) -> dict[str, str]:
        return {"PATH": self.path, "LANG": "C.UTF-8", **self.env, **command.env}

    async def run(self, command: Command) -> CommandResult:
        """Run one command to completion. Never raises for the program's
        failure: a missing program, a non-zero exit or a timeout all come
        back as a ``CommandResult`` the caller can judge."""
        result = await self._run(command)
        metrics.command_ran(result)
        return result

    async def _run(self, command: Command) -> CommandResult:
        argv = self.argv_for(command)
        timeout = command.timeout or self.default_timeout
        async with self._slots:
            started = time.monotonic()
            try:
                # Popen, not asyncio's subprocess: that one starts a task of
                # its own to connect the pipes, and when a hub's shutdown
                # cancels both at once, its clean-up waits forever (3.11)
                proc = subprocess.Popen(
                    argv,
                    stdin=PIPE if command.stdin is not None else DEVNULL,
                    stdout=PIPE,
                    stderr=PIPE,
                    env=self.env_for(command),
                    start_new_session=True,  # its own process group, killed whole on timeout
                )
            except OSError as exc:
                return CommandResult(command, 127, "", f"cannot run {argv[0]}: {exc}", 0.0)
            try:
                out, err, timed_out = await self._communicate(proc, command.stdin, timeout)
            finally:
                self._release(proc)
            duration = time.monotonic() - started
        returncode = proc.returncode if proc.returncode is not None else -signal.SIGKILL
        result = CommandResult(command, returncode, out, err, duration, timed_out)
        self.log.debug("ran %s: rc=%s in %.2fs", command, returncode, duration)
        return result

    async def _communicate(
        self, proc: subprocess.Popen[bytes], stdin: str | None, timeout: float
    ) -> tuple[str, str, bool]:
        """The command's output and whether it timed out. The pipes are
        served by loop callbacks, not tasks, so a cancellation at any point
        leaves nothing behind to wait for."""
        loop = asyncio.get_running_loop()
        output_ended = loop.create_future()
        kept: dict[int, bytearray] = {
            pipe.fileno(): bytearray() for pipe in (proc.stdout, proc.stderr) if pipe
        }

        def readable(fd: int) -> None:
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                return
            except OSError:
                chunk = b""
            if chunk:
                kept[fd] += chunk[: max(0, self.max_output_bytes - len(kept[fd]))]
                return
            loop.remove_reader(fd)
            open_fds.discard(fd)
            if not open_fds and not output_ended.done():
                output_ended.set_result(None)

        open_fds = set(kept)
        for fd in kept:
            os.set_blocking(fd, False)
            loop.add_reader(fd, readable, fd)
        if proc.stdin is not None:
            self._feed(loop, proc.stdin, (stdin or "").encode())

        async def ended() -> None:
            await output_ended
            await self._exited(proc)  # its output has ended, so this is short

        work = asyncio.ensure_future(ended())
        try:
            # asyncio.wait, not wait_for: before 3.12 wait_for can swallow a
            # cancellation that arrives as the command ends
            await asyncio.wait({work}, timeout=timeout)
            if work.cancelled():  # a shutdown's cancel-all reached it first
                raise asyncio.CancelledError
            if not work.done():
                work.cancel()
                await self._end(proc)
                return "", "", True
        except asyncio.CancelledError:
            work.cancel()
            self._signal_group(proc, signal.SIGTERM)
            self._signal_group(proc, signal.SIGKILL)
            self._reap_soon(loop, proc)
            raise
        out, err = (bytes(kept[pipe.fileno()]) if pipe else b"" for pipe in (proc.stdout, proc.stderr))
        return out.decode(errors="replace"), err.decode(errors="replace"), False

    @staticmethod
    def _feed(loop: asyncio.AbstractEventLoop, pipe: Any, data: bytes) -> None:
        """Write ``data`` to the program's stdin as it reads, then close it."""
        fd = pipe.fileno()
        os.set_blocking(fd, False)
        rest = memoryview(data)

        def writable() -> None:
            nonlocal rest
            try:
                rest = rest[os.write(fd, rest[:65536]) :] if rest else rest
            except BlockingIOError:
                return
            except OSError:
                rest = rest[:0]  # it stopped reading: its exit status tells why
            if not rest:
                loop.remove_writer(fd)
                pipe.close()

        loop.add_writer(fd, writable)

    @staticmethod
    def _exit_status(proc: subprocess.Popen[bytes]) -> int | None:
        """The command's exit status once it has exited, else ``None``.

        Not ``Popen.poll``: that takes a child someone else reaped for a
        success (0). Here that is 255, as asyncio's child watcher says."""
        if proc.returncode is None:
            try:
                pid, status = os.waitpid(proc.pid, os.WNOHANG)
            except ChildProcessError:
                logging.getLogger(__name__).warning(
                    "the exit status of pid %s was lost; taking 255", proc.pid
                )
                proc.returncode = 255
            else:
                if pid != 0:
                    proc.returncode = os.waitstatus_to_exitcode(status)
        return proc.returncode

    @classmethod
    async def _exited(cls, proc: subprocess.Popen[bytes], within: float = math.inf) -> bool:
        """Wait for the command to exit, at most ``within`` seconds; whether it did."""
        deadline = time.monotonic() + within
        pause = 0.001
        while cls._exit_status(proc) is None:
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(pause)
            pause = min(2 * pause, 0.05)
        return True

    @classmethod
    def _reap_soon(
        cls, loop: asyncio.AbstractEventLoop, proc: subprocess.Popen[bytes], tries: int = 200
    ) -> None:
        """Collect a killed command's exit status once it comes, by loop
        callbacks that a shutdown need not wait for."""
        if cls._exit_status(proc) is None and tries > 0:
            loop.call_later(0.05, cls._reap_soon, loop, proc, tries - 1)

    @staticmethod
    def _release(proc: subprocess.Popen[bytes]) -> None:
        """Take the command's pipes off the loop and close them."""
        loop = asyncio.get_running_loop()
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            if pipe is not None and not pipe.closed:
                loop.remove_reader(pipe.fileno())
                loop.remove_writer(pipe.fileno())
                pipe.close()

    async def _end(self, proc: subprocess.Popen[bytes], grace: float = 2.0) -> None:
        """End a command that overran its timeout, and return within about
        twice ``grace`` whatever it does.

        SIGTERM first: an unprivileged hub cannot signal the user's own
        process, but sudo passes SIGTERM on to it (SIGKILL would end only
        sudo and leave the command running with the pipes open). Then
        SIGKILL for whatever is left of the group that the hub may signal."""
        self._signal_group(proc, signal.SIGTERM)
        for sig in (signal.SIGKILL, None):
            if await self._exited(proc, within=grace):
                return
            if sig is not None:
                self._signal_group(proc, sig)
        self.log.warning("command pid %s outlived its timeout and a kill; leaving it", proc.pid)

    @staticmethod
    def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
