"""A user's whole visit in headless Chromium: log in, see the form with
its limits, be refused a bad value, start a server with valid options,
watch the progress, run a cell in JupyterLab, stop the server."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from batchhub.testing.hub import RealHub

pytestmark = pytest.mark.browser


def test_user_visit(browser_hub: RealHub, browser, shots: Path) -> None:
    hub = browser_hub
    before = hub.live_jobs()
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(60_000)

    # log in
    page.goto(f"{hub.url}/hub/login")
    page.fill("#username_input", "alice")
    page.fill("#password_input", hub.password)
    page.click("#login_submit")
    page.wait_for_url(re.compile(r".*/hub/spawn.*"))

    # the form, with each field's limits beside it
    assert page.inner_text("#batchhub-cores-limits") == "1\u20134 cores"
    assert page.inner_text("#batchhub-memory-limits") == "256M\u20134G"
    assert page.inner_text("#batchhub-gpus-limits") == "0\u20132 GPUs"
    page.screenshot(path=str(shots / "1-form.png"), full_page=True)

    # a bad value is refused on the page, and no job is submitted
    page.fill("#batchhub-memory", "4G; rm -rf /")
    page.click("#spawn_form button[type=submit]")
    error = page.locator(".spawn-error-msg")
    error.wait_for()
    assert "memory" in error.inner_text() and "4G; rm -rf /" in error.inner_text()
    page.screenshot(path=str(shots / "2-refused.png"), full_page=True)
    assert hub.live_jobs() == before

    # valid options: the progress page, then JupyterLab
    page.fill("#batchhub-cores", "2")
    page.fill("#batchhub-memory", "1G")
    page.fill("#batchhub-gpus", "1")
    page.click("#spawn_form button[type=submit]")
    page.wait_for_url(re.compile(r".*/hub/spawn-pending/alice.*"))
    page.locator("#progress-log .progress-log-event").nth(2).wait_for(state="attached")
    page.screenshot(path=str(shots / "3-progress.png"), full_page=True)
    seen = " ".join(page.locator("#progress-log .progress-log-event").all_text_contents())
    assert "Submitting a job for 2 cores, 1G, 1 GPU" in seen, seen
    page.wait_for_url(re.compile(r".*/user/alice/lab.*"), timeout=120_000)
    state = hub.server("alice")["state"]["batchhub"]
    assert state["job_id"] in hub.live_jobs()

    # run a cell in a new notebook
    page.locator('.jp-LauncherCard[data-category="Notebook"]').first.click()
    editor = page.locator(".jp-NotebookPanel .jp-Cell .cm-content").first
    editor.wait_for()
    page.wait_for_selector(".jp-NotebookPanel .jp-Notebook-ExecutionIndicator[data-status='idle']")
    editor.click()
    page.keyboard.type("print(6*7)")
    page.keyboard.press("Shift+Enter")
    output = page.locator(".jp-NotebookPanel .jp-OutputArea-output").first
    output.wait_for()
    assert output.inner_text().strip() == "42"
    page.screenshot(path=str(shots / "4-lab.png"), full_page=True)

    # stop the server from the hub's home page: its job goes
    page.goto(f"{hub.url}/hub/home")
    page.click("#stop")
    page.locator("#start").wait_for(state="visible", timeout=60_000)
    page.screenshot(path=str(shots / "5-stopped.png"), full_page=True)
    deadline = time.monotonic() + 30
    while state["job_id"] in hub.live_jobs() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert hub.live_jobs() == before
    context.close()
