"""The spawn form in headless Chromium on a hub over real Grid Engine: a
refused value comes back with every other value kept and the field
marked; the line of what is free follows the chosen queue, and the
core-hours line the user's cores, GPUs and run time."""

from __future__ import annotations

import pwd
import re
import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from batchhub.testing import missing
from batchhub.testing.hub import RealHub, hub_prerequisites, shared_state_dir
from batchhub.testing.jobs import scheduler_problem

pytestmark = pytest.mark.browser


# This machine's Grid Engine has one queue, all.q, whose free slots and GPUs
# come from the real qstat. A second queue, gpu.q, is added to the answer
# inside the hub so that there is another queue to switch to; its numbers
# are made up (and no job is submitted to it).
FORM_CONFIG = """
c.ResourceForm.fields = ['queue', 'cores', 'memory', 'gpus', 'runtime']
c.ResourceForm.queue_choices = ['all.q', 'gpu.q']
c.ResourceForm.queue_limits = {'gpu.q': {'cores_max': 8}}
from batchhub.free import Free
from batchhub_sge.backend import SGEBackend
_read_free = SGEBackend.parse_free
SGEBackend.parse_free = lambda self, result: {
    **_read_free(self, result), 'gpu.q': Free(cores=32, total_cores=64, gpus=3, total_gpus=8)
}
"""


@pytest.fixture(scope="module")
def browser_hub() -> Iterator[RealHub]:
    """Overrides the conftest's: a hub on real Grid Engine with a queue choice."""
    problem = hub_prerequisites() or scheduler_problem("sge")
    if problem:
        missing(problem)
    state = shared_state_dir()
    workdirs = Path(pwd.getpwnam("alice").pw_dir, ".batchhub", f"browser-{secrets.token_hex(3)}")
    extra = f"c.BatchSpawner.workdir_template = {f'{workdirs}/{{server}}'!r}\n" + FORM_CONFIG
    hub = RealHub(state, backend="sge", extra_config=extra)
    hub.start()
    try:
        yield hub
    finally:
        hub.stop()
        shutil.rmtree(state, ignore_errors=True)
        shutil.rmtree(workdirs, ignore_errors=True)


def log_in(page: Any, hub: RealHub) -> None:
    page.goto(f"{hub.url}/hub/login")
    page.fill("#username_input", "alice")
    page.fill("#password_input", hub.password)
    page.click("#login_submit")
    page.wait_for_url(re.compile(r".*/hub/spawn.*"))


def shot(page: Any, shots: Path, name: str, for_docs: Callable[[Path, str], None]) -> None:
    """A screenshot in test-output/, and its copy for the docs when asked."""
    path = shots / name
    page.locator("#spawn_form").screenshot(path=str(path))
    for_docs(path, name)


def test_a_refused_value_keeps_the_others_and_marks_its_field(
    browser_hub: RealHub, page: Any, shots: Path, docs_screenshot: Callable[[Path, str], None]
) -> None:
    before = browser_hub.live_jobs()
    log_in(page, browser_hub)
    page.select_option("#batchhub-queue", "gpu.q")
    page.fill("#batchhub-cores", "2")
    page.fill("#batchhub-memory", "999G")
    page.fill("#batchhub-runtime", "3h")
    page.click("#spawn_form button[type=submit]")
    page.locator(".spawn-error-msg").wait_for()
    assert "memory" in page.inner_text(".spawn-error-msg")

    # every value as sent, not the defaults (cores 1, memory 1G, run time 1h)
    assert page.input_value("#batchhub-queue") == "gpu.q"
    assert page.input_value("#batchhub-cores") == "2"
    assert page.input_value("#batchhub-runtime") == "3h"
    assert page.input_value("#batchhub-memory") == "999G"
    # the refused field, and only it, is marked, with its message beside it
    assert "is-invalid" in (page.get_attribute("#batchhub-memory", "class") or "")
    assert page.locator(".is-invalid").count() == 1
    assert page.locator("#batchhub-memory-error").is_visible()
    assert page.inner_text("#batchhub-memory-error").startswith("memory: '999G'")
    shot(page, shots, "form-refused.png", docs_screenshot)
    assert browser_hub.live_jobs() == before

    # shown again later, the form no longer says so
    page.goto(f"{browser_hub.url}/hub/spawn")
    assert page.locator(".is-invalid").count() == 0


def test_the_free_and_core_hours_lines_follow_the_users_choices(
    browser_hub: RealHub, page: Any, shots: Path, docs_screenshot: Callable[[Path, str], None]
) -> None:
    log_in(page, browser_hub)
    page.select_option("#batchhub-queue", "all.q")
    free = page.locator("#batchhub-free")
    cost = page.locator("#batchhub-cost")
    # all.q's line comes from the real qstat (others' jobs may hold some slots)
    line = free.inner_text()
    assert re.fullmatch(r"all\.q: \d+ of 8 cores( and \d GPUs?)? free now", line), line
    assert cost.inner_text() == "This asks for 1 core-hour."

    page.fill("#batchhub-cores", "4")
    assert cost.inner_text() == "This asks for 4 core-hours."
    page.fill("#batchhub-gpus", "2")
    page.fill("#batchhub-runtime", "2h")
    assert cost.inner_text() == "This asks for 8 core-hours and 4 GPU-hours."
    page.fill("#batchhub-runtime", "1:30:00")
    assert cost.inner_text() == "This asks for 6 core-hours and 3 GPU-hours."
    page.fill("#batchhub-runtime", "soon")  # not a run time: no line rather than a wrong one
    assert cost.inner_text() == ""
    page.fill("#batchhub-runtime", "2h")

    page.select_option("#batchhub-queue", "gpu.q")
    assert free.inner_text() == "gpu.q: 32 of 64 cores and 3 of 8 GPUs free now"
    assert page.inner_text("#batchhub-cores-limits") == "1\u20138 cores"
    shot(page, shots, "form-free.png", docs_screenshot)
    page.select_option("#batchhub-queue", "all.q")
    assert free.inner_text().startswith("all.q: ")
