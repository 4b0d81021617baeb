"""A user's whole visit in headless Chromium: log in, see the form with
its limits, be refused a bad value, start a server with valid options,
watch the progress, run a cell in JupyterLab, stop the server."""

from __future__ import annotations

import re
import secrets
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from batchhub.testing.hub import RealHub

pytestmark = pytest.mark.browser

EMPTY_NOTEBOOK = {
    "type": "notebook",
    "format": "json",
    "content": {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "cells": [
            {
                "cell_type": "code",
                "id": "c1",
                "source": "",
                "metadata": {},
                "outputs": [],
                "execution_count": None,
            }
        ],
    },
}


def test_user_visit(browser_hub: RealHub, page: Any, shots: Path) -> None:
    hub = browser_hub
    before = hub.live_jobs()

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
    page.click("#progress-details summary")
    page.locator("#progress-log .progress-log-event").nth(2).wait_for()
    page.screenshot(path=str(shots / "3-progress.png"), full_page=True)
    seen = " ".join(page.locator("#progress-log .progress-log-event").all_text_contents())
    assert "Submitting a job for 2 cores, 1G, 1 GPU" in seen, seen
    page.wait_for_url(re.compile(r".*/user/alice/lab.*"), timeout=120_000)
    state = hub.server("alice")["state"]["batchhub"]
    assert state["job_id"] in hub.live_jobs()

    # run a cell in a fresh notebook: created through the server's contents
    # API with a kernel named, so JupyterLab asks nothing; ?reset drops tabs
    # an earlier visit left open in alice's workspace
    notebook = f"batchhub-browser-{secrets.token_hex(4)}.ipynb"
    contents = f"{hub.url}/user/alice/api/contents/{notebook}"
    token = {"Authorization": f"token {hub.user_token('alice')}"}
    requests.put(contents, headers=token, json=EMPTY_NOTEBOOK, timeout=30).raise_for_status()
    page.goto(f"{hub.url}/user/alice/lab/tree/{notebook}?reset")
    panel = page.locator(".jp-NotebookPanel")
    # the toolbar says "idle" even before a kernel is attached: wait for
    # the status bar to name the kernel and call it idle
    page.locator(".jp-StatusBar-Widget").get_by_text("Python 3 (ipykernel) | Idle").wait_for()
    panel.locator(".jp-Cell .cm-content").first.click()
    page.keyboard.type("print(6*7)")
    page.keyboard.press("Shift+Enter")
    output = panel.locator(".jp-OutputArea-output").first
    output.wait_for()
    assert output.inner_text().strip() == "42"
    page.screenshot(path=str(shots / "4-lab.png"), full_page=True)
    requests.delete(contents, headers=token, timeout=30).raise_for_status()

    # stop the server from the hub's home page (networkidle: its buttons
    # work once require.js has loaded home.js); the page then offers a
    # start, the hub has no server, and the scheduler no job
    page.goto(f"{hub.url}/hub/home", wait_until="networkidle")
    page.click("#stop")
    page.locator("#stop").wait_for(state="hidden", timeout=60_000)
    assert page.inner_text("#start").strip() == "Start My Server"
    page.screenshot(path=str(shots / "5-stopped.png"), full_page=True)
    assert hub.server("alice") is None
    deadline = time.monotonic() + 30
    while state["job_id"] in hub.live_jobs() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert hub.live_jobs() == before
