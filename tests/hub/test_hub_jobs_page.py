"""The jobs page, /hub/batchhub/jobs, on a real JupyterHub with the real
proxy: the local fake scheduler, then real Slurm. A logged-in user sees
their running job's node, resources and time left, and after a failed
spawn the tail of the job's error file; another user's jobs are refused;
an admin sees every user's jobs and the orphan report; without a login
there is no page."""

from __future__ import annotations

import html
import re
import secrets
import time
from collections.abc import Iterator

import pytest
import requests
from test_hub_strays import cancel_as_root, submit_behind_the_hubs_back

from batchhub.testing.hub import RealHub, login, running_hub

pytestmark = pytest.mark.hub

ADMIN = "carol"  # a hub admin who only looks: no job, no account needed
ADMIN_PASSWORD = secrets.token_urlsafe(32)  # admins log in with their own shared password
OPTIONS = {"cores": "1", "memory": "512M", "runtime": "20m"}


#: bob's jobs fail before the server starts, saying why on stderr.
BOB_FAILS = (
    "c.BatchSpawner.job_prologue = "
    '\'if [ "$JUPYTERHUB_USER" = bob ]; then echo "bob has no licence for this queue" >&2; exit 3; fi\'\n'
)


@pytest.fixture(scope="module", params=["fake", "slurm"])
def hub(request: pytest.FixtureRequest) -> Iterator[RealHub]:
    extra = BOB_FAILS + f"c.Authenticator.admin_users = {{{ADMIN!r}}}\n"
    extra += f"c.SharedPasswordAuthenticator.admin_password = {ADMIN_PASSWORD!r}\n"
    extra += "c.BatchSpawner.orphan_check_interval = 1\n"
    yield from running_hub(request.param, extra, private_workdirs=True)


def page(session: requests.Session, hub: RealHub, path: str = "") -> requests.Response:
    return session.get(f"{hub.url}/hub/batchhub/jobs{path}", timeout=60)


def text_of(response: requests.Response) -> str:
    """The page's text, tags removed and entities decoded, spaces collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", response.text)).split())


def spawn(hub: RealHub, user: str) -> None:
    hub.api("POST", "users", json={"usernames": [user]})
    r = hub.api("POST", f"users/{user}/server", json={"user_options": OPTIONS})
    assert r.status_code in (201, 202), r.text


def test_no_login_no_page(hub: RealHub) -> None:
    for path in ("", "/alice"):
        r = requests.get(f"{hub.url}/hub/batchhub/jobs{path}", allow_redirects=False, timeout=30)
        assert r.status_code == 302, r.text
        assert "/hub/login" in r.headers["Location"]


def test_a_running_job_its_node_resources_and_time_left(hub: RealHub) -> None:
    spawn(hub, "alice")
    state = hub.wait_ready("alice")["state"]["batchhub"]
    alice = login(hub.url, "alice", hub.password)
    # the launcher's times file is written as the server starts: it is there once the server is ready
    r = page(alice, hub)
    assert r.status_code == 200, r.text
    shown = text_of(r)
    assert f"Job {state['job_id']} ({hub.backend}" in shown, shown
    assert f"Node {state['host']}" in shown, shown
    assert "Resources 1 cores, 512M memory, 0 GPUs, wall time 20m" in shown, shown
    assert re.search(r"Time left (19|20) min", shown), shown
    assert re.search(r"Wall time ends \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", shown), shown
    assert "running" in shown and "Stop" in shown
    assert "batchhub-singleuser: job started" in shown, "the output file's tail, read as alice"
    # the home page and the jobs page link to each other
    home = alice.get(f"{hub.url}/hub/home", timeout=30)
    assert 'id="batchhub-jobs-link"' in home.text and "batchhub/jobs" in home.text


def test_a_failed_spawn_shows_the_error_tail(hub: RealHub) -> None:
    spawn(hub, "bob")  # bob's job prologue writes to stderr and exits 3
    hub.wait_stopped("bob", timeout=120)
    bob = login(hub.url, "bob", hub.password)
    shown = text_of(page(bob, hub))
    assert "failed" in shown
    assert "bob has no licence for this queue" in shown, shown
    assert "Last lines of the error file" in shown
    # the hub's own failure page links to it
    failure = bob.get(f"{hub.url}/hub/user/bob/", timeout=30)
    assert 'id="batchhub-error-link"' in failure.text, failure.text
    assert "batchhub/jobs#error-server-bob--default" in failure.text


def test_a_failed_job_is_still_shown_after_a_hub_restart(hub: RealHub) -> None:
    """The failed job of the test before outlives the hub process that saw
    it fail: the server's saved state remembers it."""
    bob = login(hub.url, "bob", hub.password)
    before = text_of(page(bob, hub))
    job = re.search(r"Job (\S+) \(", before)
    assert job is not None and "failed" in before, before
    hub.restart()
    bob = login(hub.url, "bob", hub.password)
    shown = text_of(page(bob, hub))
    assert f"Job {job.group(1)} (" in shown and "failed" in shown, shown
    assert "bob has no licence for this queue" in shown, "the error file's tail, read after the restart"
    assert re.search(r"Ended \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", shown), shown
    assert hub.wait_ready("alice", timeout=60), "alice's server survived the restart"


def test_another_users_jobs_are_refused(hub: RealHub) -> None:
    alice_job = hub.wait_ready("alice")["state"]["batchhub"]["job_id"]
    bob = login(hub.url, "bob", hub.password)
    r = page(bob, hub, "/alice")
    assert r.status_code == 403, r.text
    assert "server-alice--default" not in r.text and f"Job {alice_job} (" not in text_of(r)
    own = page(bob, hub)
    assert "server-alice--" not in own.text, "bob's own page lists only bob's servers"
    assert f"Job {alice_job} (" not in text_of(own)
    assert page(bob, hub, "/bob").status_code == 200


def test_an_admin_sees_every_users_jobs_and_the_orphans(hub: RealHub) -> None:
    alice_job = hub.wait_ready("alice")["state"]["batchhub"]["job_id"]
    orphan = None
    if hub.backend == "fake":
        # a job with the hub's tag that no server knows: reported after two orphan checks
        from batchhub_fake import FakeBackend

        name = FakeBackend(job_name_prefix=hub.job_prefix).job_name("bob", "", "0000beef")
        orphan = submit_behind_the_hubs_back(hub, "bob", name)
    try:
        admin = login(hub.url, ADMIN, ADMIN_PASSWORD)
        r = page(admin, hub)
        assert r.status_code == 200, r.text
        shown = text_of(r)
        assert "Every user's jobs" in shown and alice_job in shown, shown
        assert re.search(r"alice default " + re.escape(alice_job) + r" \S+ running", shown), shown
        assert "bob default" in shown, "bob's failed job too"
        assert "Orphans" in shown
        if orphan is not None:
            deadline = time.monotonic() + 30
            while orphan not in shown and time.monotonic() < deadline:
                time.sleep(1)
                shown = text_of(page(admin, hub))
            assert orphan in shown, shown
        # and each user's page, with the tails read as that user
        alice_page = text_of(page(admin, hub, "/alice"))
        assert "Jobs of alice" in alice_page and "batchhub-singleuser: job started" in alice_page
        assert page(admin, hub, "/nobody-here").status_code == 404
    finally:
        if orphan is not None:
            cancel_as_root(hub, [orphan])


def test_stop_from_the_page_uses_the_hubs_api(hub: RealHub) -> None:
    """The page's Stop button calls JupyterHub's REST API with the page's
    XSRF token and cookie, as JupyterHub's own pages do."""
    job_id = hub.wait_ready("alice")["state"]["batchhub"]["job_id"]
    alice = login(hub.url, "alice", hub.password)
    r = page(alice, hub)
    assert 'class="btn btn-sm btn-danger batchhub-stop"' in r.text
    xsrf = alice.cookies.get("_xsrf")
    r = alice.delete(
        f"{hub.url}/hub/api/users/alice/server",
        headers={"X-XSRFToken": xsrf, "Referer": f"{hub.url}/hub/batchhub/jobs"},
        timeout=30,
    )
    assert r.status_code in (202, 204), r.text
    hub.wait_stopped("alice")
    hub.wait_jobs_gone({job_id})
    r = page(alice, hub)
    assert "ended" in text_of(r)
    assert 'class="btn btn-sm btn-danger batchhub-stop"' not in r.text, "nothing left to stop"


@pytest.fixture(scope="module")
def two_node_hub() -> Iterator[RealHub]:
    """Real Slurm, whose partition ``multi`` has both nodes of
    scripts/slurm-up (vm and vm2); users may ask for two nodes there."""
    extra = (
        "c.ResourceForm.fields = ['queue', 'nodes', 'cores', 'memory', 'runtime']\n"
        "c.ResourceForm.queue_choices = ['debug', 'multi']\n"
        "c.ResourceForm.nodes_max = 2\n"
    )
    yield from running_hub("slurm", extra, private_workdirs=True)


def test_a_two_node_job_shows_both_nodes(two_node_hub: RealHub) -> None:
    hub = two_node_hub
    hub.api("POST", "users", json={"usernames": ["alice"]})
    options = {**OPTIONS, "queue": "multi", "nodes": "2"}
    r = hub.api("POST", "users/alice/server", json={"user_options": options})
    assert r.status_code in (201, 202), r.text
    state = hub.wait_ready("alice")["state"]["batchhub"]
    shown = text_of(page(login(hub.url, "alice", hub.password), hub))
    assert f"Job {state['job_id']} (slurm" in shown, shown
    assert "Nodes vm, vm2" in shown, shown
    assert "job started" in shown and "on vm, vm2;" in shown, "the launcher's line names both"
    hub.api("DELETE", "users/alice/server")
    hub.wait_stopped("alice")
