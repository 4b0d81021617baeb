"""The form after a refusal keeps what the user sent and marks the field;
it carries what is free per queue and what each profile asks for."""

from __future__ import annotations

import json
import re
from html import unescape

import pytest

from batchhub.form import Refusal, checked_options, render_form, take_refusal
from batchhub.options import OptionsError
from batchhub.resources import ResourceForm


def form(**kw: object) -> ResourceForm:
    base = {"fields": ["queue", "cores", "memory", "gpus", "runtime"], "queue_choices": ["short", "gpu"]}
    return ResourceForm(**{**base, "gpus_max": 2, **kw})


def value(html: str, name: str) -> str:
    found = re.search(rf'id="batchhub-{name}" value="([^"]*)"', html)
    assert found, name
    return unescape(found.group(1))


def data(html: str, name: str) -> object:
    found = re.search(rf'data-{name}="([^"]*)"', html)
    assert found, name
    return json.loads(unescape(found.group(1)))


def test_a_refused_submission_comes_back_with_its_values_and_the_field_marked() -> None:
    sent = {"queue": ["gpu"], "cores": ["2"], "memory": ["999G"], "runtime": ["3h"], "_xsrf": ["x"]}
    with pytest.raises(OptionsError):
        checked_options(form(), sent, "alice")
    refusal = take_refusal("alice")
    assert refusal is not None and refusal.field == "memory"
    assert take_refusal("alice") is None  # once: the form shown later is plain again
    html = render_form(form(), {"cores": 1}, refusal=refusal)
    assert value(html, "cores") == "2" and value(html, "memory") == "999G" and value(html, "runtime") == "3h"
    assert '<option value="gpu" selected>' in html
    assert (
        html.count("is-invalid") == 1 and 'class="form-control is-invalid" type="text" name="memory"' in html
    )
    assert (
        '<div class="invalid-feedback" id="batchhub-memory-error">memory: &#39;999G&#39; is not allowed'
        in html
    )


def test_a_refused_value_is_escaped_and_an_empty_one_shows_what_it_means() -> None:
    refusal = Refusal({"cores": "<b>9</b>", "memory": ""}, "cores", "cores: '<b>9</b>' is not allowed")
    html = render_form(form(), refusal=refusal)
    assert value(html, "memory") == "2G"  # an empty field asks for the default
    assert "<b>" not in html and "&lt;b&gt;9&lt;/b&gt;" in html


def test_an_accepted_submission_leaves_no_refusal() -> None:
    checked_options(form(), {"cores": ["2"]}, "bob")
    assert take_refusal("bob") is None


def test_the_free_line_has_a_place_beside_the_queue_and_its_data() -> None:
    html = render_form(form(), free={"short": "3 of 8 cores free now"})
    assert data(html, "free") == {"short": "3 of 8 cores free now"}
    queue_row = html[html.index('id="batchhub-queue"') : html.index('id="batchhub-queue-limits"')]
    assert 'id="batchhub-free"' in queue_row
    assert 'id="batchhub-cost"' in html  # above Start, filled in the browser
    without_queue = render_form(form(fields=["cores"]), free={"short": "3 cores free now"})
    assert without_queue.count('id="batchhub-free"') == 1 and 'data-default-queue="short"' in without_queue


def test_profiles_carry_what_they_ask_for_the_core_hours_line() -> None:
    profiles = [{"name": "big", "cores": 4, "gpus": 1, "runtime": "2h", "queue": "gpu"}]
    html = render_form(form(profiles=profiles))
    cost = re.search(r'data-cost="([^"]*)"', html)
    assert cost and json.loads(unescape(cost.group(1))) == {
        "cores": 4,
        "gpus": 1,
        "runtime": 7200,
        "queue": "gpu",
    }
