"""The form's own script in a real headless Chromium: the fields follow the
profile choice, the limits follow the queue and the project, and the
core-hours line says what the hub computes for the same values."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from batchhub.form import cost_line, render_form
from batchhub.options import parse_options
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


def test_the_address_stays_shown_and_is_sent_with_a_profile(browser):
    form = ResourceForm(
        fields=["cores", "email"],
        email_default="alice@example.org",
        profiles=[{"name": "small", "cores": 1}, {"name": "big", "cores": 8}],
    )
    page = form_page(browser, render_form(form))
    assert page.is_checked("#batchhub-profile-small") and not page.is_visible("#batchhub-cores")
    assert page.is_visible("#batchhub-email") and page.is_enabled("#batchhub-email")
    page.fill("#batchhub-email", "alice.smith@example.org")
    page.check("#batchhub-profile-big")
    submitted = page.evaluate("() => [...new FormData(document.getElementById('spawn_form')).entries()]")
    assert submitted == [["profile", "big"], ["email", "alice.smith@example.org"]]
    page.close()


def test_the_limits_follow_the_project_as_well_as_the_queue(browser):
    form = ResourceForm(
        fields=["queue", "project", "gpus"],
        queue_choices=["short", "gpu"],
        project_choices=["physics", "gpu"],
        gpus_max=4,
        queue_limits={"short": {"gpus_max": 1}},
        project_limits={"gpu": {"gpus_max": 4}, "*": {"gpus_max": 0}},
    )
    page = form_page(browser, render_form(form))

    def gpus() -> tuple[str | None, str]:
        return page.get_attribute("#batchhub-gpus", "max"), page.inner_text("#batchhub-gpus-limits")

    assert gpus() == ("0", "0 GPUs")  # short, physics: the project allows none
    page.select_option("#batchhub-project", "gpu")
    assert gpus() == ("1", "0\u20131 GPU")  # the queue's limit is the stricter
    page.select_option("#batchhub-queue", "gpu")
    assert gpus() == ("4", "0\u20134 GPUs")
    page.select_option("#batchhub-project", "physics")
    assert gpus() == ("0", "0 GPUs")
    page.close()


def test_the_limits_follow_a_project_typed_by_name(browser):
    form = ResourceForm(
        fields=["project", "gpus"], gpus_max=2, project_limits={"gpu": {"gpus_max": 2}, "*": {"gpus_max": 0}}
    )
    page = form_page(browser, render_form(form))
    assert page.get_attribute("#batchhub-gpus", "max") == "0"
    page.fill("#batchhub-project", "gpu")
    assert page.get_attribute("#batchhub-gpus", "max") == "2"
    page.fill("#batchhub-project", "gpu2")  # any other project
    assert page.get_attribute("#batchhub-gpus", "max") == "0"
    page.close()


# --- the core-hours line and the hub's own arithmetic ----------------------------
COST_SITE = dict(
    fields=["queue", "project", "nodes", "tasks_per_node", "cores", "gpus", "runtime"],
    queue_choices=["short", "gpu"],
    project_choices=["physics", "gpu", "mpi"],
    cores_default=2,
    nodes_default=2,
    nodes_max=8,
    tasks_per_node_max=4,
    gpus_max=4,
    runtime_default="2h",
    queue_limits={"gpu": {"runtime_max": "2d", "runtime_default": "3h"}},
    project_limits={"gpu": {"gpus_default": 1}, "mpi": {"nodes_default": 4, "tasks_per_node_default": 2}},
    profiles=[
        {"name": "small", "cores": 1, "runtime": "1h"},
        {"name": "wide", "nodes": 4, "tasks_per_node": 4, "cores": 2, "gpus": 4, "runtime": "90m"},
    ],
)

#: What the user types, field by field ("" clears a field: the hub then takes
#: the default of the chosen queue and project).
COST_CASES = [
    {},
    {"cores": "3", "nodes": "2", "tasks_per_node": "4", "runtime": "1:30:00"},
    {"nodes": ""},
    {"cores": "", "runtime": ""},
    {"tasks_per_node": "3", "runtime": "1-12", "queue": "gpu"},
    {"queue": "gpu", "runtime": ""},
    {"project": "gpu"},
    {"project": "gpu", "gpus": "", "runtime": "45m"},
    {"project": "mpi", "nodes": "", "tasks_per_node": ""},
    {"project": "mpi", "runtime": "1.25"},
    {"gpus": "3", "runtime": "1h30m", "cores": "1", "nodes": "1"},
    {"runtime": "7m", "cores": "1", "nodes": "1"},
]


def page_cost(page) -> str:
    return page.inner_text("#batchhub-cost")


@pytest.mark.parametrize(
    "typed", COST_CASES, ids=lambda t: ",".join(f"{k}={v}" for k, v in t.items()) or "defaults"
)
def test_the_core_hours_line_is_what_the_hub_computes(browser, typed):
    form = ResourceForm(**COST_SITE)
    page = form_page(browser, render_form(form))
    page.check("#batchhub-profile-advanced")
    for name, value in typed.items():
        if name in ("queue", "project"):
            page.select_option(f"#batchhub-{name}", value)
        else:
            page.fill(f"#batchhub-{name}", value)
    # the fields shown hold the defaults of the queue and project first shown; a cleared one is the default
    shown = {
        name: page.input_value(f"#batchhub-{name}")
        for name in ("nodes", "tasks_per_node", "cores", "gpus", "runtime")
        if name not in typed
    }
    request = parse_options(
        form,
        {"profile": "advanced", **shown, **{k: v for k, v in typed.items() if v.strip()}},
    )
    assert cost_line(request).startswith("This asks for ")
    assert page_cost(page) == cost_line(request), (typed, request)
    page.close()


@pytest.mark.parametrize("profile", ["small", "wide"])
def test_the_core_hours_line_of_a_profile_is_what_the_hub_computes(browser, profile):
    form = ResourceForm(**COST_SITE)
    page = form_page(browser, render_form(form))
    page.check("#batchhub-profile-advanced")
    page.check(f"#batchhub-profile-{profile}")
    assert page_cost(page) == cost_line(parse_options(form, {"profile": profile}))
    page.close()


def test_the_line_is_written_by_the_hub_before_the_script_runs():
    form = ResourceForm(**COST_SITE)
    html = render_form(form, {"profile": "wide"})
    assert '<p class="form-text mb-0 batchhub-cost" id="batchhub-cost" aria-live="polite">' in html
    assert "This asks for 48 core-hours and 6 GPU-hours.</p>" in html
    assert (
        cost_line(parse_options(form, {"profile": "wide"})) == "This asks for 48 core-hours and 6 GPU-hours."
    )
