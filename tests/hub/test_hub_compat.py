"""BatchSpawner inside JupyterHub's own features, with a real hub and proxy:
named servers, stop from any state (the admin panel's way, a service's
way, twice), the idle culler's way, and the JupyterHub version in use.

The tests marked ``jhcompat`` are also run by scripts/test under
JupyterHub 5 (in ``.venv-jh5``, with ``BATCHHUB_JUPYTERHUB_MAJOR=5``).
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import jupyterhub
import pytest
import requests
from jupyterhub.spawner import Spawner

from batchhub.spawner import server_dir_name
from batchhub.testing import missing
from batchhub.testing.hub import RealHub, hub_prerequisites, login, server_path, shared_state_dir
from batchhub.testing.jobs import scheduler_problem, server_process

pytestmark = pytest.mark.hub

HUB_MAJOR = int(jupyterhub.__version__.split(".")[0])
#: JupyterHub 6 takes only lowercase slugs as new server names; 5 took more.
ODD_NAME = "gpu-run.1" if HUB_MAJOR < 6 else "gpu-run-1"
#: JupyterHub >= 5.3 validates user_options before the spawn starts.
HAS_APPLY_USER_OPTIONS = "apply_user_options" in Spawner.class_trait_names()
CULLER_TOKEN = secrets.token_hex(24)
ADMIN_PASSWORD = secrets.token_urlsafe(32)  # the hub wants at least 32 characters

try:
    from jupyterhub.authenticators.shared import SharedPasswordAuthenticator  # noqa: F401

    ADMIN_AUTH = f"c.SharedPasswordAuthenticator.admin_password = {ADMIN_PASSWORD!r}"
except ImportError:  # JupyterHub < 5.3: the dummy authenticator, one password for everyone
    ADMIN_AUTH = (
        f"c.JupyterHub.authenticator_class = 'dummy'\nc.DummyAuthenticator.password = {ADMIN_PASSWORD!r}"
    )

#: Named servers; bob is an admin who uses the admin panel; a service with
#: exactly the scopes jupyterhub-idle-culler's documentation gives it.
COMPAT_CONFIG = f"""
c.JupyterHub.allow_named_servers = True
c.Authenticator.admin_users = {{'bob'}}
{ADMIN_AUTH}
c.JupyterHub.services.append({{'name': 'idle-culler', 'api_token': {CULLER_TOKEN!r}}})
c.JupyterHub.load_roles.append({{
    'name': 'idle-culler',
    'scopes': ['list:users', 'read:users:activity', 'read:servers', 'delete:servers'],
    'services': ['idle-culler'],
}})
"""

#: Jobs that stay queued (held) until cancelled; on the local fake, which
#: starts every job at once, a job whose server is slow to come up.
PENDING_CONFIG = {
    "fake": "c.BatchSpawner.job_prologue = 'sleep 120'\n",
    "sge": "c.SGEBackend.extra_directives = ['-h']\n",
    "slurm": "c.SlurmBackend.extra_directives = ['--hold']\n",
}


def compat_hub(backend: str, extra_config: str = "") -> Iterator[RealHub]:
    problem = hub_prerequisites() or scheduler_problem(backend)
    if problem:
        missing(problem)
    state = shared_state_dir()
    # private workdirs: other hubs may run alice's servers at the same time
    hub = RealHub(state, backend=backend, extra_config=COMPAT_CONFIG + extra_config, private_workdirs=True)
    try:
        hub.start()
        hub.api("POST", "users", json={"usernames": ["alice", "bob"]})
        yield hub
    finally:
        try:
            if hub.proc is not None and hub.proc.poll() is None:
                stop_all(hub, "alice")
        finally:
            hub.stop()
            shutil.rmtree(state, ignore_errors=True)
            shutil.rmtree(hub.workdir_base("alice"), ignore_errors=True)


def stop_all(hub: RealHub, user: str) -> None:
    """Stop every server of ``user`` (named ones too) and wait for their jobs to go."""
    jobs = set()
    for name in hub.user_model(user).get("servers", {}):
        jobs.add(hub.spawner_state(user, name).get("job_id"))
        hub.api("DELETE", server_path(user, name))
    hub.wait_for(f"{user}'s servers to stop", lambda: not hub.user_model(user).get("servers"), 90)
    hub.wait_jobs_gone({j for j in jobs if j})


@pytest.fixture(scope="module")
def fake_compat_hub() -> Iterator[RealHub]:
    """The local fake: quick, always there; the subset run under each JupyterHub version."""
    yield from compat_hub("fake")


@pytest.fixture(scope="module")
def sge_compat_hub() -> Iterator[RealHub]:
    yield from compat_hub("sge")


@pytest.fixture(params=["fake", "sge"])
def named_hub(request: pytest.FixtureRequest) -> RealHub:
    """The same hub on the local fake and on real Grid Engine."""
    return request.getfixturevalue(f"{request.param}_compat_hub")


@pytest.fixture(scope="module", params=["fake", "sge", "slurm"])
def pending_hub(request: pytest.FixtureRequest) -> Iterator[RealHub]:
    """A hub whose spawns never finish by themselves: held jobs on SGE and
    Slurm, a job whose server is slow to start on the fake."""
    yield from compat_hub(request.param, PENDING_CONFIG[request.param])


@pytest.fixture
def clean(request: pytest.FixtureRequest) -> Iterator[None]:
    """After each test: none of alice's servers or jobs left for the next."""
    yield
    for name in request.fixturenames:
        if name in ("named_hub", "fake_compat_hub", "sge_compat_hub", "pending_hub"):
            stop_all(request.getfixturevalue(name), "alice")


def workdir(hub: RealHub, user: str, server: str) -> Path:
    return hub.workdir_base(user) / server_dir_name(server)


def through_proxy(hub: RealHub, user: str, name: str, token: str) -> requests.Response:
    prefix = f"/user/{user}/{name}/" if name else f"/user/{user}/"
    return requests.get(f"{hub.url}{prefix}api", headers={"Authorization": f"token {token}"}, timeout=30)


def spawn_body(options: dict) -> dict:
    """The start request's body as each JupyterHub documents it: since 6.0
    ``{"user_options": ...}``; before, the options are the body itself."""
    return {"user_options": options} if HUB_MAJOR >= 6 else options


def start(hub: RealHub, user: str, name: str, options: dict, token: str | None = None) -> None:
    r = hub.api("POST", server_path(user, name), token=token, json=spawn_body(options))
    assert r.status_code in (201, 202), r.text


def wait_job(hub: RealHub, user: str, name: str = "") -> dict:
    """The spawn's saved state once its job id is known (and listed)."""
    return hub.wait_for(
        f"{user}'s server {name!r} to have a job",
        lambda: (s := hub.spawner_state(user, name)).get("job_id") in hub.live_jobs() and s,
        timeout=60,
    )


# --- JupyterHub version ------------------------------------------------------


@pytest.mark.jhcompat
def test_the_hub_runs_the_jupyterhub_version_under_test(fake_compat_hub: RealHub) -> None:
    """The hub process is the installed JupyterHub (5.x in .venv-jh5)."""
    version = fake_compat_hub.api("GET", "").json()["version"]
    assert version == jupyterhub.__version__
    wanted = os.environ.get("BATCHHUB_JUPYTERHUB_MAJOR")
    if wanted:
        assert version.split(".")[0] == wanted, f"expected JupyterHub {wanted}.x, running {version}"


@pytest.mark.jhcompat
def test_rest_spawn_proxy_stop_twice(fake_compat_hub: RealHub, clean: None) -> None:
    hub = fake_compat_hub
    before = hub.live_jobs()
    start(hub, "alice", "", {"cores": 2, "memory": "1G"})
    server = hub.wait_ready("alice")
    job_id = server["state"]["batchhub"]["job_id"]
    assert job_id in hub.live_jobs() - before
    assert server["user_options"] == {"cores": 2, "memory": "1G"}
    r = through_proxy(hub, "alice", "", hub.user_token("alice"))
    assert r.status_code == 200 and "version" in r.json(), r.text

    first = hub.api("DELETE", "users/alice/server")
    second = hub.api("DELETE", "users/alice/server")
    assert first.status_code in (202, 204), first.text
    assert second.status_code in (202, 204), second.text
    hub.wait_stopped("alice")
    hub.wait_jobs_gone({job_id})
    assert hub.live_jobs() - before == set()
    third = hub.api("DELETE", "users/alice/server")  # long after: still harmless
    assert third.status_code == 204, third.text


@pytest.mark.jhcompat
def test_invalid_options_refused_before_any_job(fake_compat_hub: RealHub, clean: None) -> None:
    hub = fake_compat_hub
    before = hub.live_jobs()
    r = hub.api("POST", "users/alice/server", json=spawn_body({"cores": 999}))
    if r.status_code == 202 and not HAS_APPLY_USER_OPTIONS:
        # JupyterHub < 5.3 has no check before start(); start() refuses at
        # once, before any job, and the spawn page shows why
        events = hub.progress_events("alice").join(30)
        assert events[-1].get("failed"), events
        message = events[-1]["message"]
    else:
        assert 400 <= r.status_code < 500, r.text
        message = r.json()["message"]
    assert "cores" in message and "999" in message and "unknown option" not in message, message
    assert "Traceback" not in r.text
    time.sleep(1)
    assert hub.server("alice") is None
    assert hub.live_jobs() - before == set()


@pytest.mark.jhcompat
def test_a_jupyterhub_6_body_on_jupyterhub_5_gets_a_hint(fake_compat_hub: RealHub, clean: None) -> None:
    if HUB_MAJOR >= 6:
        pytest.skip('JupyterHub 6 takes {"user_options": ...} itself')
    hub = fake_compat_hub
    before = hub.live_jobs()
    r = hub.api("POST", "users/alice/server", json={"user_options": {"cores": 2}})
    if r.status_code == 202 and not HAS_APPLY_USER_OPTIONS:
        message = hub.progress_events("alice").join(30)[-1]["message"]
    else:
        assert r.status_code == 400, r.text
        message = r.json()["message"]
    assert "request body itself" in message, message
    time.sleep(1)
    assert hub.live_jobs() - before == set()


# --- named servers -------------------------------------------------------------


@pytest.mark.jhcompat
def test_named_servers_each_have_their_own_job(fake_compat_hub: RealHub, clean: None) -> None:
    check_named_servers(fake_compat_hub)


def test_named_servers_on_grid_engine(sge_compat_hub: RealHub, clean: None) -> None:
    check_named_servers(sge_compat_hub)


def check_named_servers(hub: RealHub) -> None:
    """alice runs her default server and two named ones (one called
    "default", one with an odd name) at once: three jobs, three private
    directories, three URLs; stopping one leaves the others running."""
    before = hub.live_jobs()
    servers = {"": {"cores": 1, "memory": "1G"}, ODD_NAME: {"cores": 2, "memory": "1G"}, "default": {}}
    for name, options in servers.items():
        start(hub, "alice", name, options)
    models = {name: hub.wait_ready("alice", name=name) for name in servers}

    jobs = {name: model["state"]["batchhub"]["job_id"] for name, model in models.items()}
    assert len(set(jobs.values())) == 3, jobs
    assert set(jobs.values()) <= hub.live_jobs() - before
    for name, options in servers.items():
        assert models[name]["user_options"] == options

    token = hub.user_token("alice")
    alice = pwd.getpwnam("alice").pw_uid
    dirs = set()
    for name, model in models.items():
        r = through_proxy(hub, "alice", name, token)
        assert r.status_code == 200 and "version" in r.json(), (name, r.text)
        assert model["url"] == (f"/user/alice/{name}/" if name else "/user/alice/")
        proc = server_process(model["state"]["batchhub"]["port"])
        assert proc is not None, f"no server process for {name!r}"
        assert proc.uid == alice
        assert proc.env.get("JUPYTERHUB_SERVER_NAME", "") == name
        cwd = Path(os.readlink(f"/proc/{proc.pid}/cwd"))
        assert cwd == workdir(hub, "alice", name), (name, cwd)
        assert stat.S_IMODE(cwd.stat().st_mode) == 0o700 and cwd.stat().st_uid == alice
        dirs.add(cwd)
    assert len(dirs) == 3, "two servers share a private directory"
    assert workdir(hub, "alice", "").name == "default"
    assert workdir(hub, "alice", "default").name.startswith("default-")

    # stop one named server: its job goes, the other two keep running
    r = hub.api("DELETE", server_path("alice", ODD_NAME))
    assert r.status_code in (202, 204), r.text
    hub.wait_stopped("alice", name=ODD_NAME)
    hub.wait_jobs_gone({jobs[ODD_NAME]})
    for name in ("", "default"):
        assert hub.server("alice", name)["ready"], name
        assert jobs[name] in hub.live_jobs()
        assert through_proxy(hub, "alice", name, token).status_code == 200


def test_server_names_jupyterhub_refuses_start_no_job(named_hub: RealHub, clean: None) -> None:
    """JupyterHub 6 takes only lowercase slugs as new names: anything else
    is its 400, before the spawner runs, and no job."""
    if HUB_MAJOR < 6:
        pytest.skip("JupyterHub 5 accepts such names (the odd-name run above)")
    hub = named_hub
    before = hub.live_jobs()
    for name in ("gpu-run.1", "GPU", "a_b"):
        r = hub.api("POST", server_path("alice", name), json=spawn_body({}))
        assert r.status_code == 400, (name, r.text)
    time.sleep(1)
    assert hub.live_jobs() - before == set()


# --- stop from any state ---------------------------------------------------------


def admin_panel(hub: RealHub) -> requests.Session:
    """A session of bob, an admin, logged in as the admin panel's is: the
    panel calls the REST API with its cookie and the _xsrf token."""
    session = login(hub.url, "bob", ADMIN_PASSWORD)
    session.headers["X-XSRFToken"] = session.cookies.get("_xsrf", "")
    session.headers["Referer"] = f"{hub.url}/hub/admin"
    return session


def test_stop_while_queued_cancels_the_job(pending_hub: RealHub, clean: None) -> None:
    """Stopped from the admin panel while the job waits (held in the queue,
    or on the fake still starting its server): the job is cancelled, a
    second stop is harmless, and alice can start again."""
    hub = pending_hub
    before = hub.live_jobs()
    start(hub, "alice", "", {"cores": 1, "memory": "1G"})
    state = wait_job(hub, "alice")
    job_id = state["job_id"]
    time.sleep(2)  # a few monitor ticks: still waiting, never ready
    state = hub.spawner_state("alice")
    expected = "starting" if hub.backend == "fake" else "queued"
    assert state["phase"] == expected, state
    if hub.backend != "fake":
        assert state["job_state"] == "HELD", state
    server = hub.server("alice")
    assert server is not None and server["pending"] == "spawn" and not server["ready"]

    panel = admin_panel(hub)
    r = panel.delete(f"{hub.url}/hub/api/users/alice/server", timeout=60)
    assert r.status_code in (202, 204), r.text
    again = panel.delete(f"{hub.url}/hub/api/users/alice/server", timeout=60)
    assert again.status_code in (202, 204), again.text
    hub.wait_stopped("alice")
    hub.wait_jobs_gone({job_id}, timeout=30)
    assert hub.live_jobs() - before == set(), "a job was left behind"
    assert hub.api("DELETE", "users/alice/server").status_code == 204  # and the service's way, after

    # alice can start again: a new job, not blocked by the cancelled one
    start(hub, "alice", "", {}, token=hub.user_token("alice"))
    new = wait_job(hub, "alice")
    assert new["job_id"] != job_id
    r = hub.api("DELETE", "users/alice/server")
    assert r.status_code in (202, 204), r.text
    hub.wait_stopped("alice")
    hub.wait_jobs_gone({new["job_id"]}, timeout=30)
    assert hub.live_jobs() - before == set()


def test_stop_right_after_the_start_request_leaves_no_job(pending_hub: RealHub, clean: None) -> None:
    """A stop that follows the start request at once (the job may not even
    be submitted yet): whatever job the spawn made is cancelled too."""
    hub = pending_hub
    before = hub.live_jobs()
    start(hub, "alice", "", {})
    r = hub.api("DELETE", "users/alice/server")
    assert r.status_code in (202, 204), r.text
    hub.wait_stopped("alice")
    time.sleep(2)
    hub.wait_for("no job of alice's left", lambda: not hub.live_jobs() - before, 30)


# --- the idle culler -------------------------------------------------------------


def test_idle_culler_stops_servers_and_their_jobs(named_hub: RealHub, clean: None) -> None:
    """What jupyterhub-idle-culler does, with its token and scopes: list
    ready servers with their activity, then DELETE each (a named one
    removed); no job is left, and culling again is harmless."""
    hub = named_hub
    before = hub.live_jobs()
    start(hub, "alice", "", {})
    start(hub, "alice", "idle", {})
    jobs = {hub.wait_ready("alice", name=n)["state"]["batchhub"]["job_id"] for n in ("", "idle")}
    assert jobs <= hub.live_jobs() - before

    r = hub.api("GET", "users", token=CULLER_TOKEN, params={"state": "ready"})
    assert r.status_code == 200, r.text
    [alice] = [u for u in r.json() if u["name"] == "alice"]
    assert set(alice["servers"]) == {"", "idle"}
    for name, server in alice["servers"].items():
        assert server["last_activity"], server
        body = {"remove": True} if name else None
        r = hub.api("DELETE", server_path("alice", name), token=CULLER_TOKEN, json=body)
        assert r.status_code in (202, 204), r.text
    hub.wait_for("alice's servers to stop", lambda: not hub.user_model("alice").get("servers"), 90)
    hub.wait_jobs_gone(jobs)
    assert hub.live_jobs() - before == set()

    # a second cull of the same servers (the culler retries) changes nothing
    assert hub.api("DELETE", "users/alice/server", token=CULLER_TOKEN).status_code == 204
    gone = hub.api("DELETE", server_path("alice", "idle"), token=CULLER_TOKEN, json={"remove": True})
    assert gone.status_code == 404, gone.text  # removed: nothing to stop
    assert hub.live_jobs() - before == set()
