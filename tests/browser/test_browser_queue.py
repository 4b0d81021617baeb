"""A spawn that stays queued past the hub's timeout, in headless Chromium on
a real hub and real Slurm: the page says how long it waited, why, and that
the job was cancelled (never a blank "Spawn failed:"), and no job is left."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from batchhub.testing.hub import RealHub, running_hub

pytestmark = [pytest.mark.browser, pytest.mark.slurm]

START_TIMEOUT = 40


@pytest.fixture(scope="module")
def browser_hub() -> Iterator[RealHub]:
    """Slurm, every job held back an hour (--begin), and a short start_timeout."""
    yield from running_hub(
        "slurm",
        f"c.BatchSpawner.start_timeout = {START_TIMEOUT}\n"
        "c.SlurmBackend.extra_directives = ['--begin=now+1hour']\n",
        private_workdirs=True,
    )


def test_a_spawn_queued_past_the_timeout_says_why_and_that_the_job_was_cancelled(
    browser_hub: RealHub, page: Any, shots: Path, docs_screenshot: Callable[[Path, str], None]
) -> None:
    hub = browser_hub
    before = hub.live_jobs()
    page.goto(f"{hub.url}/hub/login")
    page.fill("#username_input", "alice")
    page.fill("#password_input", hub.password)
    page.click("#login_submit")
    page.wait_for_url(re.compile(r".*/hub/spawn.*"))
    page.click("#spawn_form button[type=submit]")
    page.wait_for_url(re.compile(r".*/hub/spawn-pending/alice.*"))
    page.click("#progress-details summary")

    # while it waits: time in queue and the reason in plain words
    queued = page.locator(
        "#progress-log .progress-log-event",
        has_text=re.compile(r"queued for \d+ s: Waiting for its requested start time"),
    )
    queued.first.wait_for(timeout=30_000)
    job_id = hub.spawner_state("alice")["job_id"]
    assert job_id in hub.live_jobs()
    page.screenshot(path=str(shots / "queue-1-waiting.png"), full_page=True)

    # the end: batchhub's word, not JupyterHub's blank timeout
    failed = page.locator("#progress-message", has_text="Spawn failed")
    failed.wait_for(timeout=(START_TIMEOUT + 30) * 1000)
    message = failed.inner_text()
    assert re.search(
        r"Still queued after \d+ s: Waiting for its requested start time; the job was cancelled", message
    ), message
    page.screenshot(path=str(shots / "queue-2-timed-out.png"), full_page=True)
    docs_screenshot(shots / "queue-2-timed-out.png", "spawn-queued-timeout.png")

    hub.wait_jobs_gone({job_id}, timeout=30)  # cancelled: no orphan
    assert hub.live_jobs() <= before
    assert "the scheduler said: BeginTime" in hub.log_text()  # the raw reason is in the hub's log
