"""Least privilege: run as root, the tests' hub runs as the unprivileged
service account, never as root, and reaches users only through sudo under
the sudoers rule of docs/spawner.md: a command outside it is refused."""

from __future__ import annotations

import pwd
import subprocess
from pathlib import Path

import pytest

from batchhub.runner import CommandRunner
from batchhub.testing.hub import HUB_ACCOUNT, RealHub, hub_account

pytestmark = pytest.mark.hub


def uids(pid: int) -> list[int]:
    """The real, effective, saved and file-system uids of a process."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return [int(field) for field in line.split()[1:]]
    raise AssertionError(f"no Uid line for pid {pid}")


def as_hub_account(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["runuser", "-u", HUB_ACCOUNT, "--", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"},
        check=False,
    )


def test_the_hub_runs_as_the_service_account_and_sudo_holds_it_to_the_rule(fake_hub: RealHub) -> None:
    hub = fake_hub
    if hub_account() is None:
        pytest.skip("not root: the hub runs as the current user")
    account = pwd.getpwnam(HUB_ACCOUNT).pw_uid
    assert account != 0
    assert hub.proc is not None and hub.proc.poll() is None
    assert uids(hub.proc.pid) == [account] * 4
    proxy_pid = int((hub.state_dir / "proxy.pid").read_text())
    assert uids(proxy_pid) == [account] * 4, "the proxy the hub started runs as the account too"
    assert "c.CommandRunner.as_user_prefix" not in hub.config_file.read_text()

    # the hub's own prefix for alice: sudo -n -u alice --
    prefix = [part.replace("{username}", "alice") for part in CommandRunner().as_user_prefix]
    assert prefix == ["sudo", "-n", "-u", "alice", "--"]

    # a command of the rule is allowed (what the hub runs to show a failed job's errors) ...
    allowed = as_hub_account([*prefix, "/usr/bin/tail", "-c", "64", "/etc/hostname"])
    assert allowed.returncode == 0, allowed.stderr
    # ... one outside it is refused by sudo, before anything runs as alice
    refused = as_hub_account([*prefix, "/usr/bin/id"])
    assert refused.returncode != 0, refused.stdout
    assert "alice" not in refused.stdout and "uid=" not in refused.stdout
    assert "password is required" in refused.stderr or "not allowed" in refused.stderr, refused.stderr
    # and nothing at all as root, not even a command of the rule
    as_root = as_hub_account(["sudo", "-n", "-u", "root", "--", "/usr/bin/tail", "-c", "64", "/etc/hostname"])
    assert as_root.returncode != 0, as_root.stdout
