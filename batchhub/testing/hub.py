"""A real JupyterHub in a subprocess, for end-to-end tests.

``RealHub`` writes a ``jupyterhub_config.py`` into a private state
directory, starts ``jupyterhub`` with the real configurable-http-proxy,
and talks to it over HTTP as an admin service would. It is what the
project's hub, browser and demo tests use, and what a plugin author can
use to try a backend end to end::

    with RealHub(state_dir, backend="pbs", backend_config={"PBSBackend": {...}}) as hub:
        hub.api("POST", "users/alice/server", json={"user_options": {...}})
        assert len(hub.live_jobs()) == 1

Nothing here skips or fails a test by itself: callers check
``hub_prerequisites()`` and call ``batchhub.testing.missing`` with its answer.
The config comes from ``batchhub.demo.render_config``, as the demo's does.

The backend is configured as its plugin says for this machine (the
``batchhub_site_settings`` hook: program paths, environment, a local
scheduler's spool), then by ``backend_config``, then by ``extra_config``;
the config always names its backend (``c.BatchSpawner.backend``).

Run as root (as CI does), the hub never runs as root: it runs as the
unprivileged service account ``batchhub-hub`` with the node environment's
Python and a proxy it can execute, and reaches the users only through
``sudo -n -u USER --`` (CommandRunner's default prefix) under the sudoers
rule of docs/spawner.md; status queries run as that account. All of it is
set up by ``scripts/hub-account``.

Run as anyone else (no root needed, e.g. a plugin's own CI), the hub runs
as that user from the running Python, with the proxy ``find_proxy()``
finds, and every job runs as that same user with no sudo at all
(``c.CommandRunner.as_user_prefix = []``), whichever hub user spawns it.
Check ``hub_prerequisites(users=[getpass.getuser()])`` first; its default
(the test users alice and bob) needs root.
"""

from __future__ import annotations

import contextlib
import grp
import json
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import requests

from ..demo import (
    NODE_ENV,
    HubSettings,
    check_demo,
    find_proxy,
    free_port,
    prepare_state_dir,
    repo_root,
    start_hub,
    write_config,
)
from ..plugins import get_registry
from ..site_settings import default_local_backend, make_backend, site_settings
from . import missing
from .jobs import live_job_ids, scheduler_problem

#: The service account the hub runs as when the tests run as root, and the
#: group of hub users its sudoers rule lets it act as (scripts/hub-account).
HUB_ACCOUNT = os.environ.get("BATCHHUB_HUB_ACCOUNT", "batchhub-hub")
HUB_USERS_GROUP = os.environ.get("BATCHHUB_HUB_GROUP", "jupyter-users")
#: The proxy where that account can run it (the checkout may be private).
HUB_PROXY = Path("/opt/batchhub/proxy/node_modules/.bin/configurable-http-proxy")
SUDO = "/usr/bin/sudo"
#: The Python the hub runs under as that account: the node environment's
#: (scripts/node-env), or another readable by every user, such as the
#: JupyterHub 5 one scripts/test builds for the compatibility subset.
HUB_PYTHON = Path(os.environ.get("BATCHHUB_HUB_PYTHON") or NODE_ENV / "bin" / "python")


def hub_account() -> str | None:
    """The account a RealHub runs as, when not the current user's: the
    service account whenever the tests run as root."""
    return HUB_ACCOUNT if os.geteuid() == 0 else None


def _sudo_allows(user: str, argv: list[str]) -> bool:
    """Whether sudoers lets the hub account run ``argv`` as ``user`` without a password."""
    done = subprocess.run(
        [SUDO, "-n", "-l", "-U", HUB_ACCOUNT, "-u", user, *argv],
        capture_output=True,
        timeout=30,
        check=False,
    )
    return done.returncode == 0


def stale_node_env(env: Path = NODE_ENV) -> list[str]:
    """The checkout's modules that the environment ``env`` (by default the
    node environment, which the hub as the service account imports) lacks
    or holds in another version."""
    root = repo_root()
    if root is None:
        return []
    installed = sorted((env / "lib").glob("python3*/site-packages"))
    if not installed:
        return ["batchhub"]
    stale = []
    # batchhub and the installed backends' packages that this checkout holds
    packages = {"batchhub", *(cls.__module__.partition(".")[0] for cls in get_registry().backends.values())}
    for package in sorted(p for p in packages if (root / p).is_dir()):
        for source in sorted((root / package).rglob("*.py")):
            if "testing" in source.relative_to(root).parts:
                continue  # the tests' own side, never imported by the hub
            copy = installed[-1] / source.relative_to(root)
            try:
                if copy.read_bytes() != source.read_bytes():
                    stale.append(str(source.relative_to(root)))
            except OSError:
                stale.append(str(source.relative_to(root)))
    return stale


def user_command_probes(backend: str, user: str) -> list[list[str]]:
    """Commands the hub's account must be allowed to run as ``user``: the
    launcher's token writer and ``backend``'s cancel (as the node
    environment's hub would build it)."""
    probes = [[str(NODE_ENV / "bin" / "batchhub-singleuser"), "--write-token-file", "/nonexistent/token"]]
    job_backend, _ = make_backend(backend, Path("/nonexistent"), bin_dir=NODE_ENV / "bin")
    probes.append(list(job_backend.cancel_command(["1"], user).argv))
    return probes


def hub_account_problem(backend: str | None = None) -> str | None:
    """What is missing for the hub to run as the service account on
    ``backend`` (default: the installed one that runs jobs locally), or
    ``None``."""
    backend = backend or default_local_backend()
    setup = "(scripts/hub-account, as root)"
    try:
        pwd.getpwnam(HUB_ACCOUNT)
    except KeyError:
        return f"the hub's service account {HUB_ACCOUNT!r} {setup}"
    if not os.access(SUDO, os.X_OK):
        return f"sudo, through which the hub reaches its users {setup}"
    if not os.access(HUB_PYTHON, os.X_OK):
        return f"{HUB_PYTHON}, the Python the hub runs under as {HUB_ACCOUNT} (scripts/node-env)"
    if not os.access(HUB_PROXY, os.X_OK):
        return f"configurable-http-proxy at {HUB_PROXY}, where {HUB_ACCOUNT} can run it {setup}"
    stale = stale_node_env()
    root = repo_root()
    if stale and root is not None and (root / "scripts" / "node-env").is_file():
        # the hub runs the checkout's code as the account: install the current one
        subprocess.run([str(root / "scripts" / "node-env")], capture_output=True, timeout=900, check=False)
        stale = stale_node_env()
    hub_env = HUB_PYTHON.parent.parent
    if not stale and hub_env != NODE_ENV:
        stale = stale_node_env(hub_env)
    if stale:
        shown = ", ".join(stale[:3]) + (", ..." if len(stale) > 3 else "")
        return (
            f"the current batchhub in {NODE_ENV} and {hub_env}, the hub's (scripts/node-env; stale: {shown})"
        )
    for user in ("alice", "bob"):
        try:
            members = grp.getgrnam(HUB_USERS_GROUP).gr_mem
        except KeyError:
            return f"the group {HUB_USERS_GROUP!r} of hub users {setup}"
        if user not in members:
            return f"{user} in the group {HUB_USERS_GROUP!r} {setup}"
        for argv in user_command_probes(backend, user):
            if not _sudo_allows(user, argv):
                return f"the sudoers rule letting {HUB_ACCOUNT} run {argv[0]} as {user} {setup}"
    return None


def hub_prerequisites(backend: str | None = None, *, users: Sequence[str] = ("alice", "bob")) -> str | None:
    """What is missing for a real hub on ``backend`` (default: the installed
    one that runs jobs locally) with jobs as ``users``, or ``None``. Jobs
    as users other than the current one need root; with the current user
    alone, the hub runs unprivileged (see the module's doc)."""
    backend = backend or default_local_backend()
    if find_proxy() is None:
        return "configurable-http-proxy (scripts/install-web-deps)"
    as_root = os.geteuid() == 0
    if not as_root and set(users) - {pwd.getpwuid(os.geteuid()).pw_name}:
        return "root (the hub tests run jobs as the test users through sudo)"
    problems = [problem for user in users for problem in check_demo(backend, as_root, user)]
    if problems:
        return "; ".join(dict.fromkeys(problems))
    return hub_account_problem(backend) if as_root else None


def shared_state_dir(prefix: str = "batchhub-hub-") -> Path:
    """A state directory the test users can traverse (pytest's tmp_path is
    private to root): a local scheduler's spool lives in it."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    prepare_state_dir(path)
    return path


class HubError(RuntimeError):
    pass


def server_path(user: str, name: str = "") -> str:
    """The REST path of a user's server: the default one, or a named one."""
    return f"users/{user}/servers/{name}" if name else f"users/{user}/server"


class RealHub:
    """A jupyterhub process with its proxy; start/stop/restart it.

    ``backend``: an installed backend's name (default: the installed one
    that runs jobs locally). ``backend_config``: config by class then
    trait, e.g. ``{"PBSBackend": {"programs": {"qsub": "/opt/pbs/bin/qsub"},
    "command_env": {"PBS_EXEC": "/opt/pbs"}}}``, set after what the
    backend's plugin gives (``batchhub_site_settings``) and used by
    ``live_jobs()`` too. ``extra_config``: config file lines, last.
    ``python``: the Python the hub runs under as the service account
    (default ``HUB_PYTHON``), e.g. another spawner's environment.
    """

    def __init__(
        self,
        state_dir: Path,
        *,
        backend: str | None = None,
        backend_config: Mapping[str, Mapping[str, Any]] | None = None,
        extra_config: str = "",
        private_workdirs: bool = False,
        python: Path | None = None,
    ) -> None:
        backend = backend or default_local_backend()
        self.python = Path(python) if python else HUB_PYTHON
        self.backend_config = {cls: dict(traits) for cls, traits in (backend_config or {}).items()}
        # a job-name tag of this hub's own: the scheduler may be shared with others' jobs
        self.job_prefix = f"bh{secrets.token_hex(3)}"
        extra_config = f"c.Backend.job_name_prefix = {self.job_prefix!r}\n" + extra_config
        #: With ``private_workdirs``, servers keep their files under
        #: ~/.batchhub/<job_prefix>/ rather than ~/.batchhub/: hubs that run
        #: at once for the same users never share a token or error file.
        self.workdir_subdir = self.job_prefix if private_workdirs else ""
        if private_workdirs:
            template = f"{{home}}/.batchhub/{self.job_prefix}/{{server}}"
            extra_config = f"c.BatchSpawner.workdir_template = {template!r}\n" + extra_config
        #: The account the hub process runs as (``None``: the current user's).
        self.account = hub_account()
        self.settings = HubSettings(
            backend=backend,
            state_dir=Path(state_dir),
            port=free_port(),
            admin_token=secrets.token_hex(24),
            backend_config=self.backend_config,
            extra_config=extra_config,
            proxy=str(HUB_PROXY) if self.account else None,
            via_sudo=self.account is not None,
        )
        self.state_dir = self.settings.state_dir
        self.port = self.settings.port
        self.admin_token = self.settings.admin_token
        self.password = self.settings.password
        self.backend = backend
        self.config_file = write_config(self.settings)
        self.log_file = self.state_dir / "jupyterhub.log"
        self.proc: subprocess.Popen[bytes] | None = None
        if self.account:
            self._hand_over_state_dir()

    def _hand_over_state_dir(self) -> None:
        """The state directory and its files (config, log, database) to the
        hub's account; a local scheduler's spool (``SiteSettings.shared_dirs``)
        stays a shared /tmp-like directory. The tests, as root, still read
        everything in it."""
        assert self.account is not None
        account = pwd.getpwnam(self.account)
        self.log_file.touch(mode=0o644)
        shared = set(site_settings(self.backend, self.state_dir).shared_dirs)
        for path in [self.state_dir, *self.state_dir.iterdir()]:
            if path not in shared:
                os.chown(path, account.pw_uid, account.pw_gid, follow_symlinks=False)

    def _start_as_account(self) -> subprocess.Popen[bytes]:
        """jupyterhub as the service account: the process itself (no su in
        between) with the account's uid, gid and groups, the node
        environment's Python, and none of root's environment but the basics."""
        assert self.account is not None
        account = pwd.getpwnam(self.account)
        self._hand_over_state_dir()
        env = {
            key: value
            for key, value in os.environ.items()
            if key.startswith(("LANG", "LC_", "TZ", "BATCHHUB_"))
        }
        env.update(
            PATH=os.pathsep.join(
                [str(HUB_PROXY.parent), str(self.python.parent), "/usr/local/bin", "/usr/bin", "/bin"]
            ),
            HOME=str(self.state_dir),
            USER=self.account,
            LOGNAME=self.account,
        )
        with open(self.log_file, "ab") as out:
            return subprocess.Popen(
                [str(self.python), "-m", "jupyterhub", "-f", str(self.config_file)],
                cwd=self.state_dir,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
                user=account.pw_uid,
                group=account.pw_gid,
                extra_groups=os.getgrouplist(self.account, account.pw_gid),
            )

    def workdir_base(self, user: str) -> Path:
        """The directory that holds ``user``'s per-server directories."""
        return Path(pwd.getpwnam(user).pw_dir) / ".batchhub" / self.workdir_subdir

    def live_jobs(self) -> set[str]:
        """This hub's jobs that the scheduler still lists as queued or running:
        the backend's own ``list_command``, run as the current user, keeping
        the names with this hub's tag. Any backend with a listing works."""
        return live_job_ids(self.backend, self.state_dir, self.job_prefix, self.backend_config)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --- process ---------------------------------------------------------
    def start(self, timeout: float = 60.0) -> None:
        if self.account:
            self.proc = self._start_as_account()
        else:
            self.proc = start_hub(self.config_file, self.log_file)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise HubError(f"jupyterhub exited {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if requests.get(f"{self.url}/hub/api/", timeout=2).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise HubError(f"jupyterhub did not answer within {timeout:g}s:\n{self.log_tail()}")

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the hub (and its proxy), not the servers: they are jobs."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def log_text(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def __enter__(self) -> RealHub:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- HTTP --------------------------------------------------------------
    def api(self, method: str, path: str, *, token: str | None = None, **kw: Any) -> requests.Response:
        headers = {"Authorization": f"token {token or self.admin_token}", **kw.pop("headers", {})}
        return requests.request(
            method, f"{self.url}/hub/api/{path.lstrip('/')}", headers=headers, timeout=30, **kw
        )

    def user_model(self, user: str) -> dict[str, Any]:
        r = self.api("GET", f"users/{user}")
        r.raise_for_status()
        return r.json()

    def server(self, user: str, name: str = "") -> dict[str, Any] | None:
        """The user's running (or starting) server ``name`` ("" is the default one)."""
        return self.user_model(user).get("servers", {}).get(name)

    def spawner_state(self, user: str, name: str = "") -> dict[str, Any]:
        """A server's persisted batchhub state (admin view), also once stopped."""
        r = self.api("GET", f"users/{user}", params={"include_stopped_servers": "1"})
        r.raise_for_status()
        servers = r.json().get("servers", {})
        return (servers.get(name, {}).get("state") or {}).get("batchhub") or {}

    def wait_jobs_gone(self, job_ids: set[str], timeout: float = 60.0) -> None:
        """Wait until the scheduler lists none of ``job_ids`` (Grid Engine
        shows a deleted running job as ``dr`` until its node reports the end)."""
        self.wait_for(
            f"jobs {sorted(job_ids)} to leave the scheduler", lambda: not job_ids & self.live_jobs(), timeout
        )

    def wait_for(self, what: str, check: Callable[[], Any], timeout: float = 120.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = check()
            if value:
                return value
            time.sleep(0.3)
        raise HubError(f"timed out waiting for {what}:\n{self.log_tail()}")

    def wait_ready(self, user: str, timeout: float = 120.0, *, name: str = "") -> dict[str, Any]:
        def ready() -> dict[str, Any] | None:
            server = self.server(user, name)
            if server is None:
                raise HubError(f"{user}'s server {name!r} is gone (spawn failed?):\n{self.log_tail()}")
            return server if server.get("ready") else None

        return self.wait_for(f"{user}'s server {name!r} to be ready", ready, timeout)

    def wait_stopped(self, user: str, timeout: float = 60.0, *, name: str = "") -> None:
        self.wait_for(f"{user}'s server {name!r} to stop", lambda: self.server(user, name) is None, timeout)

    def user_token(self, user: str) -> str:
        r = self.api("POST", f"users/{user}/tokens", json={"note": "test", "expires_in": 3600})
        r.raise_for_status()
        return r.json()["token"]

    def progress_events(self, user: str, timeout: float = 120.0, *, name: str = "") -> ProgressReader:
        return ProgressReader(self, user, timeout, name)


class ProgressReader:
    """Reads the server-sent progress stream in a thread (it blocks until
    the spawn ends), collecting events."""

    def __init__(self, hub: RealHub, user: str, timeout: float, name: str = "") -> None:
        self.events: list[dict[str, Any]] = []
        self.error: BaseException | None = None
        path = f"{server_path(user, name)}/progress"
        self._thread = threading.Thread(target=self._read, args=(hub, path, timeout), daemon=True)
        self._thread.start()

    def _read(self, hub: RealHub, path: str, timeout: float) -> None:
        try:
            with hub.api("GET", path, stream=True) as r:
                r.raise_for_status()
                for line in r.iter_lines(decode_unicode=True):
                    if line and line.startswith("data:"):
                        event = json.loads(line[5:])
                        self.events.append(event)
                        if event.get("ready") or event.get("failed"):
                            return
        except BaseException as exc:  # reported to the test by join()
            self.error = exc

    def join(self, timeout: float = 120.0) -> list[dict[str, Any]]:
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise HubError(f"the progress stream did not end; events so far: {self.events}")
        if self.error is not None:
            raise self.error
        return self.events


def login(url: str, username: str, password: str) -> requests.Session:
    """A browser-like session logged in through the hub's login form."""
    session = requests.Session()
    r = session.get(f"{url}/hub/login", timeout=30)
    r.raise_for_status()
    xsrf = session.cookies.get("_xsrf", "")
    r = session.post(
        f"{url}/hub/login",
        data={"username": username, "password": password, "_xsrf": xsrf},
        allow_redirects=False,
        timeout=30,
    )
    if r.status_code != 302:
        raise HubError(f"login as {username} failed: {r.status_code} {r.text[:300]}")
    return session


def running_hub(
    backend: str, extra_config: str = "", users: Sequence[str] = ("alice", "bob"), **options: Any
) -> Iterator[RealHub]:
    """A started ``RealHub`` on ``backend`` (``options`` go to ``RealHub``)
    for a pytest fixture to yield from (``yield from running_hub("slurm")``):
    the test is skipped (or failed where real parts are required) when the
    hub or the scheduler cannot run here; afterwards every user's server is
    stopped, so no job is left behind, and the hub's state (and its private
    work directories) removed."""
    problem = hub_prerequisites(backend) or scheduler_problem(backend)
    if problem:
        missing(problem)
    state = shared_state_dir()
    try:
        hub = RealHub(state, backend=backend, extra_config=extra_config, **options)
        hub.start()
        try:
            yield hub
        finally:
            for user in users:
                with contextlib.suppress(Exception):
                    if hub.proc and hub.proc.poll() is None and hub.server(user) is not None:
                        hub.api("DELETE", f"users/{user}/server")
                        hub.wait_stopped(user)
            hub.stop()
            if options.get("private_workdirs"):
                for user in users:
                    shutil.rmtree(hub.workdir_base(user), ignore_errors=True)
    finally:
        shutil.rmtree(state, ignore_errors=True)
