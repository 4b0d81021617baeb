"""The form's own script in a real headless Chromium: the fields follow the
profile choice and the limits follow the queue."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from batchhub.form import render_form
from batchhub.resources import ResourceForm
from batchhub.testing import missing

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("BATCHHUB_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("playwright (pip install -e '.[test]')")
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        missing("chromium (scripts/install-web-deps)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield browser
        browser.close()


def form_page(browser, html: str):
    page = browser.new_page()
    page.set_content(f"<!doctype html><html><body><form id='spawn_form'>{html}</form></body></html>")
    return page


def test_advanced_shows_the_fields_and_queue_updates_limits(browser, tmp_path: Path):
    form = ResourceForm(
        fields=["queue", "cores", "gpus"],
        gpus_max=1,
        queue_choices=["short", "gpu"],
        queue_limits={"gpu": {"gpus_max": 4, "cores_max": 32}},
        profiles=[{"name": "small", "display_name": "Small", "cores": 1}],
    )
    page = form_page(browser, render_form(form))
    assert not page.is_visible("#batchhub-cores")
    page.check("#batchhub-profile-advanced")
    assert page.is_visible("#batchhub-cores")
    assert page.inner_text("#batchhub-gpus-limits") == "0\u20131 GPU"
    page.select_option("#batchhub-queue", "gpu")
    assert page.inner_text("#batchhub-gpus-limits") == "0\u20134 GPUs"
    assert page.inner_text("#batchhub-cores-limits") == "1\u201332 cores"
    assert page.get_attribute("#batchhub-gpus", "max") == "4"
    page.screenshot(path=str(tmp_path / "form-advanced-gpu.png"))
    # what the browser would submit: only the checked profile while a profile is chosen
    page.check("#batchhub-profile-small")
    submitted = page.evaluate("() => [...new FormData(document.getElementById('spawn_form')).keys()]")
    assert submitted == ["profile"]
    page.close()
