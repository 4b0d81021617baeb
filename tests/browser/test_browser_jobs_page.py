"""The jobs page and the time left, in headless Chromium on a real hub
(the local fake scheduler): a running job's node, resources and time left
on /hub/batchhub/jobs, JupyterLab's warning before the wall time ends, and
after a failed spawn the hub's failure page linking to the tail of the
job's error file. The screenshots are copied to docs/img for docs/users.md."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from batchhub.testing.hub import RealHub, running_hub

pytestmark = pytest.mark.browser

#: bob's jobs fail before the server starts, saying why on stderr.
BOB_FAILS = (
    "c.BatchSpawner.job_prologue = "
    '\'if [ "$JUPYTERHUB_USER" = bob ]; then echo "bob: no licence for the gpu queue" >&2; exit 3; fi\'\n'
)


@pytest.fixture(scope="module")
def browser_hub() -> Iterator[RealHub]:
    """The fake scheduler, with bob's jobs failing (this module's own hub)."""
    yield from running_hub("fake", BOB_FAILS, private_workdirs=True)


def log_in(page: Any, hub: RealHub, user: str) -> None:
    page.goto(f"{hub.url}/hub/logout")
    page.goto(f"{hub.url}/hub/login")
    page.fill("#username_input", user)
    page.fill("#password_input", hub.password)
    page.click("#login_submit")
    page.wait_for_url(re.compile(r".*/hub/spawn.*"))


def save(page: Any, shots: Path, name: str, for_docs: Callable[[Path, str], None]) -> None:
    page.screenshot(path=str(shots / name), full_page=True)
    for_docs(shots / name, name)


def test_running_job_on_the_jobs_page_and_the_time_left_in_jupyterlab(
    browser_hub: RealHub, page: Any, shots: Path, docs_screenshot: Callable[[Path, str], None]
) -> None:
    hub = browser_hub
    log_in(page, hub, "alice")
    page.fill("#batchhub-cores", "2")
    page.fill("#batchhub-memory", "1G")
    page.fill("#batchhub-runtime", "8m")  # under 10 minutes: JupyterLab warns at once
    page.click("#spawn_form button[type=submit]")
    page.wait_for_url(re.compile(r".*/hub/spawn-pending/alice.*"))
    assert page.locator("#batchhub-jobs-link").is_visible(), "the spawn page links to the jobs page"
    page.wait_for_url(re.compile(r".*/user/alice/lab.*"), timeout=120_000)
    state = hub.server("alice")["state"]["batchhub"]

    # JupyterLab: batchhub's extension warns that the wall time ends soon
    toast = page.locator(".Toastify__toast", has_text="batch job ends in")
    toast.first.wait_for(timeout=60_000)
    assert re.search(r"ends in [78] min", toast.first.inner_text()), toast.first.inner_text()
    save(page, shots, "jobs-lab-warning.png", docs_screenshot)

    # the hub's home page links to the jobs page, which shows the job
    page.goto(f"{hub.url}/hub/home")
    page.click("#batchhub-jobs-link")
    page.wait_for_url(re.compile(r".*/hub/batchhub/jobs$"))
    server = page.locator("#server-alice--default")
    assert server.locator(".batchhub-state").inner_text() == "running"
    assert server.locator(".batchhub-job-id").inner_text().startswith(state["job_id"])
    assert server.locator(".batchhub-nodes").inner_text() == state["host"]
    resources = server.locator(".batchhub-resources").inner_text()
    assert resources == "2 cores, 1G memory, 0 GPUs, wall time 8m", resources
    assert re.fullmatch(r"[78] min", server.locator(".batchhub-left").inner_text()), "time left"
    assert "UTC" in server.locator(".batchhub-ends").inner_text()
    assert server.locator(".batchhub-warn").is_visible(), "the page warns too: under 10 minutes left"
    save(page, shots, "jobs-running.png", docs_screenshot)

    # Stop, from the page: JupyterHub's API with the page's XSRF token
    page.goto(f"{hub.url}/hub/batchhub/jobs", wait_until="networkidle")
    page.click("#server-alice--default .batchhub-stop")
    page.wait_for_function("() => !document.querySelector('#server-alice--default .batchhub-stop')")
    hub.wait_stopped("alice")


def test_a_failed_spawn_links_to_the_error_tail(
    browser_hub: RealHub, page: Any, shots: Path, docs_screenshot: Callable[[Path, str], None]
) -> None:
    hub = browser_hub
    log_in(page, hub, "bob")
    page.click("#spawn_form button[type=submit]")
    page.locator("#progress-message", has_text="Spawn failed").wait_for(timeout=120_000)

    # the hub's failure page links to the error file's tail on the jobs page
    page.goto(f"{hub.url}/hub/user/bob/")
    page.click("#batchhub-error-link")
    page.wait_for_url(re.compile(r".*/hub/batchhub/jobs#error-server-bob--default$"))
    server = page.locator("#server-bob--default")
    assert server.locator(".batchhub-state").inner_text() == "failed"
    tail = server.locator("#error-server-bob--default pre")
    assert "bob: no licence for the gpu queue" in tail.inner_text()
    assert "bob: no licence" in server.locator(".batchhub-failure").inner_text()
    save(page, shots, "jobs-failed.png", docs_screenshot)
