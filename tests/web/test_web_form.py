"""The spawn form's HTML: fields, limits beside them, profiles, escaping."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import pytest

from batchhub.form import render_form
from batchhub.jobs import ConfigError
from batchhub.options import parse_options
from batchhub.resources import ResourceForm

VOID = {"input", "br", "meta", "img", "hr", "link"}


class Page(HTMLParser):
    """The parts of the form a browser would see and submit."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.elements: dict[str, dict] = {}
        self.text: dict[str, str] = {}
        self.inputs: list[dict] = []
        self.options: dict[str, list[dict]] = {}
        self._open: list[tuple[str, str | None]] = []
        self._select: str | None = None
        self._fieldset_disabled = False
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "fieldset" and "disabled" in a:
            self._fieldset_disabled = True
        if "id" in a:
            self.elements[a["id"]] = {"tag": tag, **a}
            self.text[a["id"]] = ""
        if tag not in VOID:
            self._open.append((tag, a.get("id")))
        if tag in ("input", "select"):
            self.inputs.append({"tag": tag, "in_disabled": self._fieldset_disabled, **a})
        if tag == "select":
            self._select = a["name"]
        if tag == "option" and self._select:
            self.options.setdefault(self._select, []).append(a)

    def handle_endtag(self, tag):
        while self._open and self._open.pop()[0] != tag:
            pass
        if tag == "fieldset":
            self._fieldset_disabled = False
        if tag == "select":
            self._select = None

    def handle_data(self, data):
        for _, element in self._open:
            if element:
                self.text[element] += data

    def submitted(self) -> dict[str, list[str]]:
        """What the browser posts: enabled inputs, checked radios, selected options."""
        data: dict[str, list[str]] = {}
        for i in self.inputs:
            if i["in_disabled"]:
                continue
            if i["tag"] == "select":
                chosen = [o for o in self.options[i["name"]] if "selected" in o] or self.options[i["name"]][
                    :1
                ]
                data[i["name"]] = [chosen[0]["value"]]
            elif i.get("type") != "radio" or "checked" in i:
                data[i["name"]] = [i.get("value", "")]
        return data


def site(**overrides) -> ResourceForm:
    settings = dict(
        fields=["queue", "cores", "memory", "gpus", "runtime"],
        gpus_max=1,
        queue_choices=["short", "gpu"],
        queue_limits={"gpu": {"gpus_max": 4, "runtime_max": "2d"}},
    )
    settings.update(overrides)
    return ResourceForm(**settings)


PROFILES = [
    {"name": "small", "display_name": "Small: 1 core 2G 1h", "cores": 1, "memory": "2G", "runtime": "1h"},
    {
        "name": "gpu",
        "display_name": "GPU",
        "description": "for training",
        "cores": 4,
        "memory": "16G",
        "gpus": 1,
        "runtime": "4h",
        "queue": "gpu",
    },
]


def test_limits_shown_beside_each_field():
    page = Page(render_form(site()))
    assert page.text["batchhub-cores-limits"].strip() == "1\u201316 cores"
    assert page.text["batchhub-memory-limits"].strip() == "256M\u201364G"
    assert page.text["batchhub-gpus-limits"].strip() == "0\u20131 GPU"
    assert page.text["batchhub-runtime-limits"].strip() == "5m\u201312h"
    cores = page.elements["batchhub-cores"]
    assert (cores["type"], cores["min"], cores["max"], cores["value"]) == ("number", "1", "16", "1")
    assert page.elements["batchhub-memory"]["value"] == "2G"


def test_only_enabled_fields_are_shown():
    page = Page(render_form(site(fields=["cores"])))
    assert {i["name"] for i in page.inputs} == {"cores"}


def test_labels_follow_the_site():
    html = render_form(site(labels={"queue": "Partition"}))
    assert ">Partition</label>" in html


def test_queue_choices_and_per_queue_limits_for_the_page_script():
    page = Page(render_form(site()))
    assert [o["value"] for o in page.options["queue"]] == ["short", "gpu"]
    limits = json.loads(page.elements["batchhub-form"]["data-limits"])  # queue, then project ("*": any)
    assert limits["gpu"]["*"]["gpus"]["text"] == "0\u20134 GPUs"
    assert limits["short"]["*"]["gpus"]["max"] == 1


def test_default_submission_is_accepted():
    form = site()
    page = Page(render_form(form))
    assert parse_options(form, page.submitted()) == parse_options(form, {})


def test_profiles_with_advanced_choice():
    form = site(profiles=PROFILES)
    page = Page(render_form(form))
    radios = [i["value"] for i in page.inputs if i.get("type") == "radio"]
    assert radios == ["small", "gpu", "advanced"]
    assert "checked" in page.elements["batchhub-profile-small"]
    assert "4 cores, 16G, 1 GPU, 4h on gpu" in page.text["batchhub-profiles"]
    assert "for training" in page.text["batchhub-profiles"]
    # the fields wait behind "Advanced": disabled, so not submitted
    assert "disabled" in page.elements["batchhub-fields"]
    assert page.submitted() == {"profile": ["small"]}
    assert parse_options(form, page.submitted()).memory_mb == 2048


def test_prefill_reopens_the_last_choice():
    form = site(profiles=PROFILES)
    page = Page(render_form(form, {"profile": "advanced", "cores": "8", "queue": "gpu"}))
    assert "checked" in page.elements["batchhub-profile-advanced"]
    assert "disabled" not in page.elements["batchhub-fields"]
    assert page.elements["batchhub-cores"]["value"] == "8"
    assert page.submitted()["queue"] == ["gpu"]
    assert "checked" in Page(render_form(form, {"profile": ["gpu"]})).elements["batchhub-profile-gpu"]


def test_without_advanced_only_profiles():
    page = Page(render_form(site(profiles=PROFILES, allow_advanced=False)))
    assert [i["value"] for i in page.inputs if i.get("type") == "radio"] == ["small", "gpu"]
    assert "batchhub-fields" not in page.elements


def test_prefill_is_escaped():
    html = render_form(site(), {"memory": '"><script>alert(1)</script>', "queue": "<b>"})
    assert "<script>alert" not in html
    assert "&lt;script&gt;" in html
    assert html.count("<script>") == 1  # the form's own


def test_bad_profile_is_reported_to_the_admin():
    with pytest.raises(ConfigError, match="big"):
        render_form(site(profiles=[{"name": "big", "cores": 999}]))
