"""``batchhub demo``: a real JupyterHub with BatchSpawner on this machine.

It writes a ``jupyterhub_config.py`` into a private state directory and
runs ``jupyterhub`` with the real configurable-http-proxy on 127.0.0.1.
By default it uses the installed backend whose plugin says it runs jobs
locally with no scheduler (the fake scheduler: each server is a local
process started as a batch job would be, with script, launcher, private
token file and port report); ``--backend NAME`` picks another installed
backend, e.g. ``--backend sge`` for a job on the local Grid Engine. What a
backend needs on this machine (program paths, environment) comes from its
plugin's ``batchhub_site_settings`` hook; ``--config FILE`` and ``--set
Class.trait=value`` add the site's own. The same config builder serves the
project's hub tests.

Jobs must run as an ordinary user who can execute the launcher and
JupyterLab: as root the demo runs them as a test user (``alice``) through
``runuser`` from the node environment ``/opt/batchhub/venv``
(``BATCHHUB_NODE_ENV``; ``scripts/node-env`` in a checkout makes it); as
anyone else, as that user from the running Python's environment.

The demo prints its URL once the hub answers there; a state directory it
made itself (it holds the password) is removed when it stops.
"""

from __future__ import annotations

import ast
import getpass
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .jobs import ConfigError
from .site_settings import (
    config_lines,
    default_local_backend,
    hub_config,
    scheduler_problem,
    site_settings,
)

#: Where scripts/node-env installs what jobs run (readable by every user).
NODE_ENV = Path(os.environ.get("BATCHHUB_NODE_ENV", "/opt/batchhub/venv"))

#: How to get the proxy, said where it is missing.
PROXY_INSTALL = "install it with `npm install -g configurable-http-proxy`"

#: How long the demo waits for the hub to answer at its URL.
HUB_START_TIMEOUT = 120.0


def repo_root() -> Path | None:
    """The source checkout this package runs from, if any."""
    root = Path(__file__).resolve().parents[1]
    return root if (root / "pyproject.toml").is_file() else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def find_proxy() -> str | None:
    """configurable-http-proxy: the checkout's node_modules (installed by
    scripts/install-web-deps), else one on PATH."""
    root = repo_root()
    if root is not None:
        local = root / "node_modules" / ".bin" / "configurable-http-proxy"
        if local.is_file() and os.access(local, os.X_OK):
            return str(local)
    return shutil.which("configurable-http-proxy")


def job_bin_dir(as_root: bool) -> Path:
    """Where jobs find python, batchhub-singleuser and jupyterhub-singleuser."""
    return NODE_ENV / "bin" if as_root else Path(sys.executable).parent


@dataclass
class HubSettings:
    """What differs between one generated hub and the next."""

    backend: str
    state_dir: Path
    port: int = 8000
    hub_port: int = field(default_factory=free_port)
    api_port: int = field(default_factory=free_port)
    password: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    admin_token: str = ""  # a service token with the admin role, for tests
    allowed_users: tuple[str, ...] = ()  # empty: anyone with the password
    as_root: bool = field(default_factory=lambda: os.geteuid() == 0)
    bin_dir: Path | None = None
    #: configurable-http-proxy; ``None``: ``find_proxy()``.
    proxy: str | None = None
    #: The hub runs as an unprivileged account and reaches users through
    #: sudo (CommandRunner's default ``as_user_prefix``), not runuser.
    via_sudo: bool = False
    monitor_fast_interval: float = 0.5
    #: Stop every server when the hub stops (the demo); False keeps jobs
    #: running across a hub restart, to be re-adopted (production, tests).
    cleanup_servers: bool = False
    #: Config by class then trait (``{"PBSBackend": {"programs": {...}}}``),
    #: set after the backend plugin's own settings and the config files.
    backend_config: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Python config files merged into the hub's config (``load_subconfig``),
    #: after the plugin's settings and before ``backend_config``.
    config_files: tuple[Path, ...] = ()
    extra_config: str = ""


def render_config(s: HubSettings) -> str:
    """A complete jupyterhub_config.py for BatchSpawner."""
    proxy = s.proxy or find_proxy()
    if proxy is None:
        raise ConfigError(f"configurable-http-proxy is not installed: {PROXY_INSTALL}")
    bindir = s.bin_dir or job_bin_dir(s.as_root)
    state = s.state_dir
    lines = [
        "# Generated by `batchhub demo`: a local hub with BatchSpawner.",
        "c = get_config()  # noqa: F821",
        f"c.JupyterHub.bind_url = 'http://127.0.0.1:{s.port}'",
        f"c.JupyterHub.hub_bind_url = 'http://127.0.0.1:{s.hub_port}'",
        f"c.ConfigurableHTTPProxy.api_url = 'http://127.0.0.1:{s.api_port}'",
        f"c.ConfigurableHTTPProxy.command = [{proxy!r}]",
        f"c.ConfigurableHTTPProxy.pid_file = {str(state / 'proxy.pid')!r}",
        f"c.JupyterHub.db_url = 'sqlite:///' + {str(state / 'jupyterhub.sqlite')!r}",
        f"c.JupyterHub.cookie_secret_file = {str(state / 'cookie_secret')!r}",
        f"c.JupyterHub.pid_file = {str(state / 'jupyterhub.pid')!r}",
        "# Servers are batch jobs: unless cleaned up, they outlive a hub restart and are re-adopted.",
        f"c.JupyterHub.cleanup_servers = {s.cleanup_servers!r}",
        "# REST spawns answer at once (202); the progress stream tells the rest.",
        "c.JupyterHub.tornado_settings = {'slow_spawn_timeout': 0}",
        "c.JupyterHub.authenticator_class = 'shared-password'",
        f"c.SharedPasswordAuthenticator.user_password = {s.password!r}",
    ]
    if s.allowed_users:
        lines.append(f"c.Authenticator.allowed_users = {set(s.allowed_users)!r}")
    else:
        lines.append("c.Authenticator.allow_all = True")
    if s.admin_token:
        lines += [
            f"c.JupyterHub.services = [{{'name': 'batchhub-admin', 'api_token': {s.admin_token!r}}}]",
            "c.JupyterHub.load_roles = [{'name': 'admin', 'services': ['batchhub-admin']}]",
        ]
    lines += [
        "c.JupyterHub.spawner_class = 'batchhub'",
        "# The jobs page (/hub/batchhub/jobs), linked from the home and spawn pages.",
        "from batchhub import jobs_page",
        "jobs_page.enable(c)",
        f"c.BatchSpawner.backend = {s.backend!r}",
        f"c.BatchSpawner.launcher = {str(bindir / 'batchhub-singleuser')!r}",
        f"c.Spawner.cmd = [{str(bindir / 'jupyterhub-singleuser')!r}]",
        "c.Spawner.default_url = '/lab'",
        "c.Spawner.start_timeout = 120",
        "c.Spawner.http_timeout = 60",
        f"c.JobMonitor.fast_interval = {s.monitor_fast_interval!r}",
        "c.JobMonitor.interval = 5",
        "c.BatchSpawner.stop_timeout = 30",
        "c.ResourceForm.fields = ['cores', 'memory', 'gpus', 'runtime']",
        "c.ResourceForm.cores_max = 4",
        "c.ResourceForm.memory_max = '4G'",
        "c.ResourceForm.memory_default = '1G'",
        "c.ResourceForm.gpus_max = 2",
        "c.ResourceForm.runtime_max = '4h'",
        "# What the backend's plugin knows about this machine (batchhub_site_settings).",
        *config_lines(hub_config(s.backend, site_settings(s.backend, state, bindir))),
    ]
    for path in s.config_files:
        path = Path(path).resolve()
        lines.append(f"load_subconfig({path.name!r}, {str(path.parent)!r})  # noqa: F821")
    if s.backend_config:
        lines += ["# The backend options given to the demo or the harness.", *config_lines(s.backend_config)]
    if s.via_sudo:
        lines.append("# Commands run as a user through the default prefix: sudo -n -u {username} --")
    elif s.as_root:
        lines.append("c.CommandRunner.as_user_prefix = ['runuser', '-u', '{username}', '--']")
    else:  # a personal hub: jobs run as you, the hub's own account
        lines.append("c.CommandRunner.as_user_prefix = []")
    return "\n".join(lines) + "\n" + s.extra_config


def prepare_state_dir(state_dir: Path, shared_dirs: Sequence[Path] = ()) -> None:
    """The state directory: traversable by the job's user (a local
    scheduler's spool may be in it), its secrets kept private by their own
    modes; and ``shared_dirs`` (``SiteSettings.shared_dirs``) sticky and
    writable by all, like /tmp: each job in its own sub-directory, owned
    by its user."""
    state_dir.mkdir(parents=True, exist_ok=True)
    state_dir.chmod(0o755)
    for shared in shared_dirs:
        shared.mkdir(parents=True, exist_ok=True)
        shared.chmod(0o1777)


def write_config(settings: HubSettings) -> Path:
    bindir = settings.bin_dir or job_bin_dir(settings.as_root)
    site = site_settings(settings.backend, settings.state_dir, bindir)
    prepare_state_dir(settings.state_dir, site.shared_dirs)
    path = settings.state_dir / "jupyterhub_config.py"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # holds the password
    with os.fdopen(fd, "w") as f:
        f.write(render_config(settings))
    return path


def hub_env() -> dict[str, str]:
    """The hub's environment: the proxy and this Python's scripts on PATH."""
    env = dict(os.environ)
    extra = [str(Path(sys.executable).parent)]
    proxy = find_proxy()
    if proxy:
        extra.insert(0, str(Path(proxy).parent))
    env["PATH"] = os.pathsep.join([*extra, env.get("PATH", "")])
    return env


def start_hub(config: Path, log_path: Path | None = None) -> subprocess.Popen[bytes]:
    """Start ``jupyterhub -f config`` in its state directory."""
    out = open(log_path, "ab") if log_path else None  # noqa: SIM115 (the child keeps it)
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", str(config)],
            cwd=config.parent,
            stdout=out,
            stderr=subprocess.STDOUT if out else None,
            stdin=subprocess.DEVNULL,
            env=hub_env(),
            start_new_session=True,
        )
    finally:
        if out:
            out.close()


def demo_user(as_root: bool) -> str:
    return "alice" if as_root else getpass.getuser()


def check_demo(backend: str, as_root: bool, user: str) -> list[str]:
    """Problems that would stop the demo, each with what to do."""
    problems = []
    if find_proxy() is None:
        problems.append(f"configurable-http-proxy is missing: {PROXY_INSTALL}")
    bindir = job_bin_dir(as_root)
    for name in ("python", "batchhub-singleuser", "jupyterhub-singleuser"):
        if not os.access(bindir / name, os.X_OK):
            hint = (
                f"as root the demo runs jobs from {NODE_ENV}, which every user can run: make it with "
                f"`python3 -m venv {NODE_ENV} && {NODE_ENV}/bin/pip install batchhub jupyterlab`, "
                "or run the demo as an ordinary user"
                if as_root
                else f"install JupyterLab here: {sys.executable} -m pip install jupyterlab"
            )
            problems.append(f"{bindir / name} is missing: {hint}")
    try:
        import pwd

        pwd.getpwnam(user)
    except KeyError:
        problems.append(
            f"as root the demo runs jobs as the test user {user!r}, who does not exist: "
            f"create it (useradd -m {user}), or run the demo as an ordinary user"
        )
    if user == "root":
        problems.append("jobs cannot run as root: run the demo as an ordinary user, or as root")
    try:
        scheduler = scheduler_problem(backend)
    except ConfigError as exc:
        scheduler = str(exc)
    if scheduler:
        problems.append(f"the {backend} backend cannot run jobs here: it needs {scheduler}")
    return problems


def parse_set(items: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``Class.trait=value`` words (``--set``) as config by class then
    trait. A value is a Python literal if it parses as one (``2``,
    ``True``, ``{'SGE_CELL': 'c2'}``), else the string as given."""
    config: dict[str, dict[str, Any]] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        cls, dot, trait = name.strip().rpartition(".")
        if not sep or not dot or not cls.isidentifier() or not trait.isidentifier():
            raise ConfigError(f"--set {item!r}: write Class.trait=value, as in Backend.command_timeout=60")
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            value = raw
        config.setdefault(cls, {})[trait] = value
    return config


def run_demo(
    backend: str | None = None,
    port: int = 8000,
    state_dir: Path | None = None,
    backend_config: dict[str, dict[str, Any]] | None = None,
    config_files: Sequence[Path] = (),
) -> int:
    """Run the demo hub in the foreground until Ctrl-C: on ``backend``
    (default: the installed one that runs jobs locally), with
    ``config_files`` and then ``backend_config`` (by class then trait)
    added to its config."""
    backend = backend or default_local_backend()
    as_root = os.geteuid() == 0
    user = demo_user(as_root)
    problems = check_demo(backend, as_root, user)
    if not port_free(port):
        problems.append(f"port {port} on 127.0.0.1 is taken: choose another with --port")
    if problems:
        for problem in problems:
            print(f"batchhub demo: {problem}", file=sys.stderr)
        return 1
    temporary = state_dir is None  # holds the password: removed on exit
    state = state_dir or Path(tempfile.mkdtemp(prefix="batchhub-demo-"))
    try:
        settings = HubSettings(
            backend=backend,
            state_dir=state,
            port=port,
            allowed_users=(user,),
            as_root=as_root,
            cleanup_servers=True,
            backend_config=dict(backend_config or {}),
            config_files=tuple(config_files),
        )
        return run_hub(write_config(settings), settings, user, temporary)
    finally:
        if temporary:
            remove_state_dir(state)


def run_hub(config: Path, settings: HubSettings, user: str, temporary: bool) -> int:
    """Start the hub, print its URL once it answers there, and wait for it
    to stop (Ctrl-C or SIGTERM stop it and every server it started)."""
    url = f"http://127.0.0.1:{settings.port}/"
    print(f"batchhub demo: starting JupyterHub (backend {settings.backend}) ...", file=sys.stderr, flush=True)
    proc = start_hub(config)
    stopping = False

    def stop(signum: int = signal.SIGTERM, frame: object = None) -> None:
        nonlocal stopping
        stopping = True
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    try:
        if not hub_answers(url, proc, HUB_START_TIMEOUT):
            if not stopping:
                why = (
                    f"exited with status {proc.returncode}"
                    if proc.poll() is not None
                    else f"did not answer within {HUB_START_TIMEOUT:g} s"
                )
                print(f"batchhub demo: the hub {why} at {url}; its log is above", file=sys.stderr)
                stop()
                proc.wait()
                return 1
            return proc.wait()
        where = "removed when the demo stops" if temporary else "kept"
        print(
            f"\nbatchhub demo: JupyterHub with BatchSpawner (backend {settings.backend}) at {url}\n"
            f"  log in as user {user!r} with password {settings.password!r}\n"
            f"  jobs run as {user}; state, config and logs in {settings.state_dir} ({where})\n"
            "  press Ctrl-C to stop the hub and every server it started\n",
            flush=True,
        )
        return proc.wait()
    except KeyboardInterrupt:
        stop()
        return proc.wait()


def hub_answers(url: str, proc: subprocess.Popen[bytes], timeout: float) -> bool:
    """Whether the hub answers at ``url`` (through the proxy) within
    ``timeout`` seconds, while ``proc`` runs."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # 127.0.0.1: no HTTP proxy
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            with opener.open(f"{url}hub/api/", timeout=5) as response:
                if response.status == 200:
                    return True
        except OSError:  # refused, the proxy's 503 before the hub's route, a slow answer
            pass
        time.sleep(0.25)
    return False


def remove_state_dir(state: Path) -> None:
    """Remove the demo's temporary state directory, or say where it is:
    its config holds the password."""
    error: OSError | None = None
    for _ in range(3):  # a server's files may still be going away
        try:
            shutil.rmtree(state)
        except OSError as exc:
            error = exc
        if not state.exists():
            return
        time.sleep(0.5)
    print(f"batchhub demo: could not remove {state} ({error}); it holds the password", file=sys.stderr)
