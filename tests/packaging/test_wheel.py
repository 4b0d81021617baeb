"""The wheel works on its own: built from the sdist as ``python -m build``
builds it, installed with its dependencies from the package index into a
clean venv outside the repository, and run from a directory that is not
the checkout, with no PYTHONPATH: the ``batchhub`` command lists the three
backends, renders the example of ``batchhub render --help`` on a default
config, and runs ``batchhub demo`` with the proxy from npm until its login
page answers; ``from batchhub import BatchSpawner`` imports.

As root the installed commands run as the test user alice, as an admin
trying the demo would: the demo as root runs jobs from the node
environment, not from the wheel under test.
"""

from __future__ import annotations

import os
import pwd
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from batchhub.demo import free_port
from batchhub.testing import missing
from batchhub.testing.demo import DemoProcess
from batchhub.testing.hub import HUB_PROXY, login

pytestmark = [pytest.mark.hub, pytest.mark.wheel]
REPO = Path(__file__).resolve().parents[2]
#: The unprivileged account the installed commands run as when the tests run as root.
USER = "alice"


@dataclass
class Installed:
    """A clean venv with the wheel installed, and how to run its commands."""

    root: Path  # outside the repository: the venv, the wheel, the working directory
    venv: Path
    proxy_dir: Path

    @property
    def as_user(self) -> pwd.struct_passwd | None:
        return pwd.getpwnam(USER) if os.geteuid() == 0 else None

    def env(self) -> dict[str, str]:
        path = os.pathsep.join([str(self.venv / "bin"), str(self.proxy_dir), "/usr/local/bin:/usr/bin:/bin"])
        env = {"PATH": path, "LANG": "C.UTF-8", "TMPDIR": "/tmp"}
        account = self.as_user or pwd.getpwuid(os.geteuid())
        env.update(HOME=account.pw_dir, USER=account.pw_name, LOGNAME=account.pw_name)
        return env

    def popen_args(self) -> dict[str, object]:
        args: dict[str, object] = {"cwd": self.root / "work", "env": self.env()}
        account = self.as_user
        if account is not None:
            groups = os.getgrouplist(account.pw_name, account.pw_gid)
            args.update(user=account.pw_uid, group=account.pw_gid, extra_groups=groups)
        return args

    def run(self, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.venv / "bin" / argv[0]), *argv[1:]],
            capture_output=True,
            text=True,
            timeout=timeout,
            **self.popen_args(),  # type: ignore[call-overload]
        )


def find_proxy() -> Path | None:
    """configurable-http-proxy as npm installs it: on PATH, in the
    checkout's node_modules (scripts/install-web-deps), or where the hub
    tests' account runs it (first as root: the test user runs it)."""
    found = shutil.which("configurable-http-proxy")
    candidates = [found, REPO / "node_modules" / ".bin" / "configurable-http-proxy", HUB_PROXY]
    if os.geteuid() == 0:  # the demo runs as the test user, who may not enter the checkout (say, under /root)
        candidates.insert(0, HUB_PROXY)
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return Path(candidate)
    return None


def base_python() -> str:
    """The interpreter the clean venv is made from: not this venv's, so
    nothing of the checkout's environment comes along; as root the
    system's, which the test user can execute (a developer's own Python
    may live under a private home)."""
    if os.geteuid() == 0:
        if not os.access("/usr/bin/python3", os.X_OK):
            missing("/usr/bin/python3, a Python the test user can run")
        return "/usr/bin/python3"
    return getattr(sys, "_base_executable", sys.executable)


def step(argv: list[str], what: str, **kwargs: object) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, **kwargs)  # type: ignore[call-overload]
    if done.returncode != 0:
        output = (done.stdout + done.stderr)[-3000:]
        if "Could not find a version" in output or "Failed to establish a new connection" in output:
            missing(f"the package index ({what} failed: {output.strip().splitlines()[-1]})")
        raise AssertionError(f"{what} failed ({done.returncode}):\n{output}")


@pytest.fixture(scope="module")
def installed() -> Iterator[Installed]:
    try:
        import build  # noqa: F401
    except ImportError:
        missing("the build package (the project's test extra: scripts/bootstrap)")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(USER)
        except KeyError:
            missing(f"the test user {USER} (scripts/create-test-users)")
    proxy = find_proxy()
    if proxy is None:
        missing("configurable-http-proxy (npm install -g configurable-http-proxy)")
    assert proxy is not None
    root = Path(tempfile.mkdtemp(prefix="batchhub-wheel-", dir="/tmp"))
    try:
        root.chmod(0o755)  # the test user runs the venv's programs
        (root / "work").mkdir(mode=0o777)
        (root / "work").chmod(0o1777)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        # the sdist, then the wheel from the sdist: what the wheel holds came through the sdist too
        step(
            [sys.executable, "-m", "build", "--outdir", str(root / "dist"), str(REPO)],
            "python -m build",
            env=env,
        )
        wheels = list((root / "dist").glob("batchhub-*.whl"))
        assert len(wheels) == 1, wheels
        venv = root / "venv"
        step([base_python(), "-m", "venv", str(venv)], "python -m venv", cwd=root, env=env)
        step(
            [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(wheels[0])],
            "pip install of the wheel",  # from the package index, through pip's own cache
            cwd=root,
            env=env,
            timeout=900,
        )
        yield Installed(root, venv, proxy.parent)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_the_installed_package_is_the_wheel(installed: Installed) -> None:
    done = installed.run("python", "-c", "import batchhub, batchhub_fake; print(batchhub.__file__)")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith(str(installed.venv / "lib")), done.stdout
    files = installed.run("python", "-c", "import importlib.metadata as m; print(*m.files('batchhub'))")
    names = set(files.stdout.split())
    for needed in ("templates/default.sh.j2", "templates/form.html.j2", "py.typed"):
        assert f"batchhub/{needed}" in names, f"batchhub/{needed} is not in the wheel"
    licence = [name for name in names if name.endswith(".dist-info/licenses/LICENSE")]
    assert licence, "the licence is not in the wheel"
    # every file of the packages in the checkout, templates and data too, is in the wheel
    packages = [path.name for path in REPO.glob("batchhub*") if (path / "__init__.py").is_file()]
    tracked = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", *packages], capture_output=True, text=True, check=False
    )
    if tracked.returncode == 0:
        left_out = {name for name in tracked.stdout.split() if (REPO / name).is_file()} - names
        assert not left_out, f"files of the packages missing from the wheel: {sorted(left_out)}"


def test_backends_lists_the_three_backends(installed: Installed) -> None:
    done = installed.run("batchhub", "backends")
    assert done.returncode == 0, done.stderr
    names = {line.split()[0] for line in done.stdout.splitlines()[1:] if line.strip()}
    assert names == {"fake", "sge", "slurm"}, done.stdout


def test_the_render_help_example_renders_on_a_default_config(installed: Installed) -> None:
    help_text = installed.run("batchhub", "render", "--help").stdout
    examples = [
        line.strip() for line in help_text.splitlines() if line.strip().startswith("batchhub render ")
    ]
    assert examples, f"`batchhub render --help` shows no example:\n{help_text}"
    for example in examples:
        done = installed.run(*shlex.split(example))
        assert done.returncode == 0, f"{example}: {done.stderr}"
        assert done.stdout.startswith("#!"), done.stdout


def test_from_batchhub_import_batchspawner(installed: Installed) -> None:
    done = installed.run("python", "-c", "from batchhub import BatchSpawner; print(BatchSpawner.__name__)")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "BatchSpawner"


def test_the_demo_answers_at_the_url_it_prints(installed: Installed) -> None:
    port = free_port()
    argv = [str(installed.venv / "bin" / "batchhub"), "demo", "--port", str(port)]
    demo = DemoProcess(argv, **installed.popen_args())
    try:
        found = demo.wait_for(r"log in as user '([^']+)' with password '([^']+)'", timeout=120)
        url = f"http://127.0.0.1:{port}"
        assert f"{url}/" in demo.output
        page = requests.get(f"{url}/hub/login", timeout=10)  # answers once printed, no retry
        assert page.status_code == 200 and 'name="password"' in page.text, page.text[:500]
        login(url, *found.groups())
        state = demo.wait_for(r"state, config and logs in (\S+)", timeout=1)
    finally:
        demo.stop()
    assert not Path(state.group(1)).exists(), "the demo left its state directory (it holds the password)"
