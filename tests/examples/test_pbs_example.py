"""The worked example plugin (docs/examples/batchhub-pbs) as a third party
would ship it: installed from its folder (scripts/bootstrap for .venv,
scripts/node-env for the node environment), listed by ``batchhub
backends``, its own tests passing, and a server spawned and stopped on it
through a real hub with no root for the plugin part: run as root, the
end-to-end check runs as the test user alice from the node environment."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from batchhub.demo import NODE_ENV
from batchhub.plugins import get_registry
from batchhub.testing import missing

pytestmark = pytest.mark.hub

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "batchhub-pbs"
PROXY_DIRS = [Path("/opt/batchhub/proxy/node_modules/.bin"), EXAMPLE.parents[2] / "node_modules" / ".bin"]
MISSING = 77  # hub_check.py's exit code when something it needs is missing


def installed() -> None:
    if "pbs" not in get_registry().backends:
        missing("the example plugin batchhub-pbs in this environment (scripts/bootstrap)")


def test_batchhub_backends_lists_pbs() -> None:
    installed()
    done = subprocess.run(
        [str(Path(sys.executable).parent / "batchhub"), "backends"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert any(
        line.split()[:2] == ["pbs", "batchhub_pbs.backend.PBSBackend"] for line in done.stdout.splitlines()
    )


def test_the_plugins_own_tests_pass() -> None:
    installed()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(EXAMPLE / "tests"),
            "-q",
            "-p",
            "no:cacheprovider",
            "-m",
            "not hub",
        ],
        capture_output=True,
        text=True,
        cwd=EXAMPLE,
        env={**os.environ, "BATCHHUB_CONFORMANCE_EXAMPLES": "50"},
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]


def test_spawn_list_and_stop_through_a_real_hub() -> None:
    installed()
    check = EXAMPLE / "tests" / "hub_check.py"
    env = {key: value for key, value in os.environ.items() if key.startswith(("LANG", "LC_", "BATCHHUB_"))}
    path = [str(p) for p in PROXY_DIRS if p.is_dir()] + ["/usr/local/bin", "/usr/bin", "/bin"]
    with tempfile.TemporaryDirectory() as scratch:
        if os.geteuid() == 0:
            # no root for the plugin: the hub and its jobs run as alice, from the node environment
            python = NODE_ENV / "bin" / "python"
            if not (NODE_ENV / "bin" / "fakepbs-qsub").exists():
                missing(f"batchhub-pbs in {NODE_ENV} (scripts/node-env)")
            os.chmod(scratch, 0o755)
            check = Path(shutil.copy(check, scratch))  # the checkout may be private
            argv = [
                shutil.which("runuser") or "/usr/sbin/runuser",
                "-u",
                "alice",
                "--",
                "env",
                "HOME=/home/alice",
                "USER=alice",
                str(python),
                str(check),
            ]
        else:
            argv = [sys.executable, str(check)]
        env["PATH"] = os.pathsep.join(path)
        done = subprocess.run(
            argv, capture_output=True, text=True, cwd=scratch, env=env, timeout=600, check=False
        )
    if done.returncode == MISSING:
        missing(done.stdout.strip().removeprefix("missing: "))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
