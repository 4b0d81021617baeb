"""A real hub and Debian's headless Chromium, driven by playwright."""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from batchhub.testing import missing
from batchhub.testing.hub import RealHub, hub_prerequisites, shared_state_dir
from batchhub.testing.jobs import scheduler_problem

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
OUTPUT = Path(__file__).resolve().parents[2] / "test-output" / "browser"


@pytest.fixture(scope="module", params=["sge", "fake"])
def browser_hub(request: pytest.FixtureRequest) -> Iterator[RealHub]:
    """A hub on real Grid Engine, and one on the local fake scheduler."""
    problem = hub_prerequisites() or scheduler_problem(request.param)
    if problem:
        missing(problem)
    state = shared_state_dir()
    # alice's server files in a directory of this hub's own: another hub
    # spawning alice's default server at the same time (other tests on a
    # shared scheduler) would otherwise overwrite or consume our token file
    workdirs = Path(pwd.getpwnam("alice").pw_dir, ".batchhub", f"browser-{secrets.token_hex(3)}")
    template = f"{workdirs}/{{server}}"
    hub = RealHub(
        state, backend=request.param, extra_config=f"c.BatchSpawner.workdir_template = {template!r}\n"
    )
    hub.start()
    try:
        yield hub
    finally:
        try:
            if hub.server("alice") is not None:
                hub.api("DELETE", "users/alice/server")
                hub.wait_stopped("alice")
        finally:
            hub.stop()
            shutil.rmtree(state, ignore_errors=True)
            shutil.rmtree(workdirs, ignore_errors=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not os.access(CHROMIUM, os.X_OK):
        missing("Debian's chromium (scripts/install-web-deps)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("the playwright Python package")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def shots(browser_hub: RealHub) -> Path:
    """Where this test's screenshots go (test-output/, not committed)."""
    path = OUTPUT / browser_hub.backend
    path.mkdir(parents=True, exist_ok=True)
    for old in path.glob("*.png"):
        old.unlink()
    return path


#: The screenshots the docs show; tests refresh them only when asked
#: (BATCHHUB_DOCS_SCREENSHOTS=1), so a test run leaves the checkout as it was.
DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img"


def for_docs(screenshot: Path, name: str) -> None:
    """Copy a test's screenshot over the docs' ``name`` when asked to."""
    if os.environ.get("BATCHHUB_DOCS_SCREENSHOTS") == "1":
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        shutil.copy(screenshot, DOCS_IMG / name)


@pytest.fixture
def docs_screenshot() -> Callable[[Path, str], None]:
    """``for_docs``, for the tests whose screenshots the docs show."""
    return for_docs


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report = yield
    if report.when == "call":
        item.stash[CALL_REPORT] = report
    return report


CALL_REPORT = pytest.StashKey[pytest.TestReport]()


@pytest.fixture
def page(browser: Any, browser_hub: RealHub, shots: Path, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh browser tab; when the test fails, a screenshot of where it
    stood and the hub's log say why (a timeout alone does not)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(60_000)
    yield tab
    report = request.node.stash.get(CALL_REPORT, None)
    if report is not None and report.failed:
        tab.screenshot(path=str(shots / "failed.png"), full_page=True)
        print(f"\n--- failed at {tab.url}; hub log ---\n{browser_hub.log_tail(80)}")
    context.close()
