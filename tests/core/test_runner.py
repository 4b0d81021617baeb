"""CommandRunner against real subprocesses: what an admin relies on."""

from __future__ import annotations

import asyncio
import os
import pwd
import signal
import subprocess
import time
from pathlib import Path

import pytest

from batchhub.jobs import Command, CommandResult, ConfigError
from batchhub.runner import CommandRunner
from batchhub.testing import missing


def alive(pid: int) -> bool:
    """Whether ``pid`` is a running process (a zombie awaiting reaping by
    a container's init counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


async def wait_gone(pid: int, within: float = 3.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        await asyncio.sleep(0.02)
    return not alive(pid)


async def test_argv_is_never_given_to_a_shell(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    victim = tmp_path / "keep"
    victim.mkdir()
    value = f"$(touch {marker}); rm -rf {victim}; `touch {marker}` | & > {marker}"
    result = await CommandRunner().run(Command(("printf", "%s", value)))
    assert result.ok
    assert result.stdout == value
    assert not marker.exists()
    assert victim.is_dir()


async def test_stdin_reaches_the_program() -> None:
    script = "#!/bin/sh\necho 'hello from the job script'\n" + "x" * 200_000 + "\n"
    result = await CommandRunner().run(Command(("cat",), stdin=script))
    assert result.ok
    assert result.stdout == script


async def test_a_program_that_ignores_its_stdin_does_not_break_the_runner() -> None:
    result = await CommandRunner().run(Command(("true",), stdin="y" * 1_000_000))
    assert result.returncode == 0


async def test_no_stdin_means_end_of_file_not_a_hang() -> None:
    result = await CommandRunner().run(Command(("cat",), timeout=5))
    assert result.ok and result.stdout == ""


async def test_hub_environment_does_not_leak_but_configured_env_does(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BATCHHUB_TEST_HUB_SECRET", "hub-only-value")
    monkeypatch.setenv("PATH", "/hub/private/bin:" + os.environ["PATH"])
    runner = CommandRunner(env={"SGE_ROOT": "/opt/sge", "SGE_CELL": "default"})
    result = await runner.run(Command(("env",), env={"JOB_VAR": "from-command", "SGE_CELL": "override"}))
    seen = dict(line.split("=", 1) for line in result.stdout.splitlines())
    assert "BATCHHUB_TEST_HUB_SECRET" not in seen
    assert "hub-only-value" not in result.stdout
    assert seen["PATH"] == runner.path
    assert seen["SGE_ROOT"] == "/opt/sge"
    assert seen["JOB_VAR"] == "from-command"
    assert seen["SGE_CELL"] == "override"  # the command's own value wins


async def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild.pid"
    # the child (sh) starts a grandchild and waits for it
    script = 'sleep 30 & echo $! > "$1"; echo "$$" >> "$1"; wait'
    started = time.monotonic()
    result = await CommandRunner().run(Command(("sh", "-c", script, "sh", str(pidfile)), timeout=0.5))
    elapsed = time.monotonic() - started
    assert result.timed_out
    assert not result.ok
    assert "did not answer within 0.5 s" in result.describe()
    assert elapsed < 10  # did not wait for the grandchild's 30 s
    grandchild, child = (int(line) for line in pidfile.read_text().split())
    assert await wait_gone(grandchild), f"grandchild {grandchild} survived the timeout"
    assert await wait_gone(child)


async def test_cancelling_a_run_kills_its_process_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    script = 'sleep 30 & echo $! > "$1"; wait'
    task = asyncio.ensure_future(CommandRunner().run(Command(("sh", "-c", script, "sh", str(pidfile)))))
    for _ in range(200):
        if pidfile.exists() and pidfile.read_text().strip():
            break
        await asyncio.sleep(0.01)
    pid = int(pidfile.read_text())
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await wait_gone(pid)


@pytest.mark.parametrize("turns", range(6))
async def test_a_hub_shutdown_mid_command_ends_every_task(turns: int) -> None:
    """JupyterHub's shutdown cancels every task of the loop at once, those
    asyncio made for a command's own pipes included, then waits for them
    all. A command at any point of its start must let that wait end."""
    task = asyncio.ensure_future(CommandRunner().run(Command(("sleep", "0.3"))))
    for _ in range(turns):
        await asyncio.sleep(0)  # the command part-way through its start
    others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for other in others:
        other.cancel()
    _, pending = await asyncio.wait(others, timeout=5)
    assert not pending, f"tasks still running 5 s after a cancel: {pending}"
    assert task.cancelled()


async def test_a_cancel_while_a_timed_out_command_is_ended_still_kills_it(tmp_path: Path) -> None:
    """A command that ignores SIGTERM, past its timeout, as a hub's shutdown
    cancels the run in the grace before SIGKILL: it is killed all the same."""
    pidfile = tmp_path / "pid"
    script = 'trap "" TERM; echo $$ > "$1"; while :; do sleep 0.1; done'
    command = Command(("sh", "-c", script, "sh", str(pidfile)), timeout=0.3)
    task = asyncio.ensure_future(CommandRunner().run(command))
    await asyncio.sleep(1.0)  # past the timeout: SIGTERM sent, SIGKILL 2 s later
    assert not task.done()
    pid = int(pidfile.read_text())
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await wait_gone(pid, within=1.5), "the command outlived the cancel"


async def test_an_exit_status_someone_else_collected_is_never_a_success() -> None:
    """With SIGCHLD ignored the kernel reaps children itself: the exit
    status is lost, and a lost status must not read as 0."""
    previous = signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    try:
        result = await CommandRunner().run(Command(("sh", "-c", "exit 3")))
    finally:
        signal.signal(signal.SIGCHLD, previous)
    assert result.returncode == 255 and not result.ok


async def test_a_missing_program_is_a_result_not_an_exception() -> None:
    runner = CommandRunner()
    for argv in (("batchhub-no-such-program", "x"), ("/nonexistent/bin/qstat",)):
        result = await runner.run(Command(argv))
        assert result.returncode == 127
        assert not result.ok
        assert f"cannot run {argv[0]}" in result.stderr
        assert argv[0] in result.describe()


async def test_output_is_bounded_without_deadlock() -> None:
    runner = CommandRunner(max_output_bytes=1000)
    # 20 MB on each stream: far more than any pipe buffer
    script = "head -c 20000000 /dev/zero; head -c 20000000 /dev/zero >&2; echo done >&2"
    result = await runner.run(Command(("sh", "-c", script), timeout=20))
    assert result.returncode == 0 and not result.timed_out
    assert len(result.stdout) == 1000
    assert len(result.stderr) == 1000


async def test_concurrency_cap_holds(tmp_path: Path) -> None:
    running, seen = tmp_path / "running", tmp_path / "seen"
    running.mkdir()
    seen.mkdir()
    # each command marks itself running, records how many run now, lingers, unmarks
    script = 'mkdir "$1/$$"; ls "$1" | wc -l > "$2/$$"; sleep 0.3; rmdir "$1/$$"'

    async def peak(max_concurrent: int) -> int:
        runner = CommandRunner(max_concurrent=max_concurrent)
        command = Command(("sh", "-c", script, "sh", str(running), str(seen)))
        results = await asyncio.gather(*(runner.run(command) for _ in range(6)))
        assert all(r.ok for r in results)
        counts = [int(p.read_text()) for p in seen.iterdir()]
        for p in seen.iterdir():
            p.unlink()
        assert len(counts) == 6
        return max(counts)

    assert await peak(2) <= 2
    # the measurement can see more: without a tight cap the commands overlap
    assert await peak(6) > 2


def account(name: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        missing(f"the test user {name} (scripts/create-test-users)")
        raise


def test_as_user_prefix_is_put_before_the_command_for_another_user() -> None:
    account("alice")
    runner = CommandRunner(as_user_prefix=["sudo", "-n", "-u", "{username}", "--"])
    argv = runner.argv_for(Command(("qsub", "{username}"), as_user="alice"))
    # only the prefix is templated; the command's own arguments stay literal
    assert argv == ["sudo", "-n", "-u", "alice", "--", "qsub", "{username}"]


async def test_command_runs_as_the_user_through_runuser() -> None:
    try:
        pwd.getpwnam("alice")
    except KeyError:
        missing("the test user alice (scripts/create-test-users)")
    if os.geteuid() != 0:
        missing("root (runuser needs it)")
    runner = CommandRunner(as_user_prefix=["runuser", "-u", "{username}", "--"])
    result = await runner.run(Command(("id", "-un"), as_user="alice"))
    assert result.ok, result.describe()
    assert result.stdout.strip() == "alice"


BAD_NAMES = ["alice;rm", "../x", "Alice Smith", "--help", "alice\n", "", "a" * 40, "$(id)"]


@pytest.mark.parametrize("name", BAD_NAMES)
async def test_a_bad_user_name_is_refused_before_anything_runs(tmp_path: Path, name: str) -> None:
    marker = tmp_path / "ran"
    runner = CommandRunner(as_user_prefix=[])
    with pytest.raises(ConfigError, match="not a plain user name"):
        await runner.run(Command(("touch", str(marker)), as_user=name))
    assert not marker.exists()


async def test_a_user_named_like_the_hubs_account_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hub running as alice: a hub user called alice must not have her
    commands run as the hub, unprefixed, just because of her name."""
    alice = account("alice")
    marker = tmp_path / "ran"
    with monkeypatch.context() as m:  # the hub's identity, as the runner learns it
        m.setenv("LOGNAME", "alice")
        m.setenv("USER", "alice")
        m.setattr(os, "geteuid", lambda: alice.pw_uid)
        runner = CommandRunner(as_user_prefix=["/nonexistent/sudo", "-u", "{username}", "--"])
    with pytest.raises(ConfigError, match="the hub's own account") as info:
        await runner.run(Command(("touch", str(marker)), as_user="alice"))
    assert not marker.exists()
    assert "alice" in info.value.user_message and "ask the admins" in info.value.user_message


async def test_root_is_refused_whatever_the_hub_runs_as(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    for prefix in ([], ["runuser", "-u", "{username}", "--"], ["sudo", "-n", "-u", "{username}", "--"]):
        runner = CommandRunner(as_user_prefix=prefix, min_uid=0)
        with pytest.raises(ConfigError, match="system account"):
            await runner.run(Command(("touch", str(marker)), as_user="root"))
        assert not marker.exists()


SYSTEM_ACCOUNTS = ["daemon", "bin", "nobody", "sgeadmin", "slurm", "munge", "postgres"]


@pytest.mark.parametrize("name", SYSTEM_ACCOUNTS)
async def test_system_accounts_are_refused_by_their_uid(tmp_path: Path, name: str) -> None:
    try:
        uid = pwd.getpwnam(name).pw_uid
    except KeyError:
        pytest.skip(f"no account {name} here")
    marker = tmp_path / "ran"
    runner = CommandRunner(as_user_prefix=[])
    with pytest.raises(ConfigError, match=f"{name} is a system account \\(uid {uid}\\)"):
        await runner.run(Command(("touch", str(marker)), as_user=name))
    assert not marker.exists()


def test_min_uid_and_reserved_uids_are_configurable() -> None:
    alice, bob = account("alice"), account("bob")
    runner = CommandRunner(min_uid=bob.pw_uid, as_user_prefix=["sudo", "-u", "{username}", "--"])
    with pytest.raises(ConfigError, match=f"c.CommandRunner.min_uid = {bob.pw_uid}"):
        runner.argv_for(Command(("id",), as_user="alice"))
    assert runner.argv_for(Command(("id",), as_user="bob")) == ["sudo", "-u", "bob", "--", "id"]
    runner = CommandRunner(reserved_uid_ranges=[[alice.pw_uid, alice.pw_uid]])
    with pytest.raises(ConfigError, match="reserved_uid_ranges"):
        runner.argv_for(Command(("id",), as_user="alice"))
    assert runner.argv_for(Command(("id",), as_user="bob"))[-1] == "id"


async def test_a_user_without_an_account_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    runner = CommandRunner(as_user_prefix=[])
    with pytest.raises(ConfigError, match="there is no account named bh-no-such-user") as info:
        await runner.run(Command(("touch", str(marker)), as_user="bh-no-such-user"))
    assert not marker.exists()
    assert info.value.user_message == (
        "there is no account named bh-no-such-user on the cluster; ask the admins to create one"
    )


def test_reprs_hide_stdin_and_env_values() -> None:
    secret, env_secret = "tok-" + "s" * 40, "tok-" + "e" * 40
    command = Command(
        ("batchhub-singleuser", "--write-token-file", "/home/alice/.batchhub/default/token"),
        stdin=secret,
        as_user="alice",
        env={"JUPYTERHUB_API_TOKEN": env_secret, "SGE_CELL": "default"},
        timeout=30,
    )
    result = CommandResult(command, 1, "out", "err", 0.5)
    for text in (repr(command), repr(result), str(result), repr([command]), f"{result!r}"):
        assert secret not in text and env_secret not in text, text
        assert "/home/alice/.batchhub/default/token" in text  # the rest still helps
        assert "JUPYTERHUB_API_TOKEN" in text  # names are no secret
    assert "stdin=<44 characters>" in repr(command)
    assert str(command) == (
        "batchhub-singleuser --write-token-file /home/alice/.batchhub/default/token (as alice)"
    )
    assert "returncode=1" in repr(result) and "stderr='err'" in repr(result)


async def test_exit_status_and_stderr_are_reported() -> None:
    result = await CommandRunner().run(Command(("sh", "-c", "echo 'qstat: job 7 unknown' >&2; exit 3")))
    assert result.returncode == 3
    assert not result.ok
    assert result.stderr.strip() == "qstat: job 7 unknown"
    assert "exited 3: qstat: job 7 unknown" in result.describe()


#: A hub as sites run it: an unprivileged account reaching users through sudo.
UNPRIVILEGED_TIMEOUT = """
import asyncio, time
from batchhub.jobs import Command
from batchhub.runner import CommandRunner
async def main():
    started = time.monotonic()
    command = Command(("tail", "-c", "1", "-f", "/dev/null"), as_user="alice", timeout=2)
    result = await asyncio.wait_for(CommandRunner().run(command), 30)
    print(result.timed_out, round(time.monotonic() - started))
asyncio.run(main())
"""


def test_an_unprivileged_hubs_timeout_ends_the_users_command_through_sudo() -> None:
    """The hub cannot signal alice's process, only sudo: the timeout must
    still end the command, and promptly (before, it ran on and run() hung)."""
    from batchhub.testing.hub import HUB_ACCOUNT, hub_prerequisites

    problem = "not root" if os.geteuid() != 0 else hub_prerequisites()
    if problem:
        missing(f"the hub's service account and its sudo rule (scripts/hub-account): {problem}")
    python = "/opt/batchhub/venv/bin/python"
    done = subprocess.run(
        ["runuser", "-u", HUB_ACCOUNT, "--", python, "-c", UNPRIVILEGED_TIMEOUT],
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
    )
    assert done.returncode == 0, done.stderr
    timed_out, seconds = done.stdout.split()
    assert timed_out == "True" and int(seconds) <= 8, done.stdout
    left = subprocess.run(["pgrep", "-u", "alice", "-f", "tail -c 1 -f /dev/null"], capture_output=True)
    assert left.returncode == 1, f"alice's command outlived the timeout: {left.stdout!r}"
