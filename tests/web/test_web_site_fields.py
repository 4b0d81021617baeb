"""The fields sites enable when they want them: a parallel environment,
nodes and tasks per node, a mail address, and limits per project."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from test_web_form import Page
from traitlets.config import Config

from batchhub.form import checked_options, render_form, take_refusal
from batchhub.jobs import ConfigError
from batchhub.options import OptionsError, describe_request, options_from_form, parse_options
from batchhub.resources import ResourceForm


def form(**settings: Any) -> ResourceForm:
    config = Config()
    for key, value in settings.items():
        setattr(config.ResourceForm, key, value)
    return ResourceForm(config=config)


def refused(f: ResourceForm, raw: dict[str, Any]) -> str:
    with pytest.raises(OptionsError) as info:
        parse_options(f, raw)
    return str(info.value)


# --- off unless enabled ----------------------------------------------------
def test_a_default_form_asks_for_none_of_them() -> None:
    request = parse_options(form(), {})
    assert (request.pe, request.nodes, request.tasks_per_node, request.email) == (None, 1, 1, None)
    assert request.total_cores == 1


@pytest.mark.parametrize(
    ("raw", "field"),
    [({"pe": "mpi"}, "pe"), ({"nodes": 2}, "nodes"), ({"tasks_per_node": 2}, "tasks_per_node")],
)
def test_fields_not_enabled_cannot_be_sent(raw: dict[str, Any], field: str) -> None:
    f = form(pe_choices=["smp", "mpi"], nodes_max=4, tasks_per_node_max=4)
    assert refused(f, raw).startswith(f"{field}: ")


def test_email_not_enabled_cannot_be_sent() -> None:
    assert (
        refused(form(), {"email": "a@b.org"})
        == "email: 'a@b.org' is not allowed; an email address cannot be given here"
    )


# --- parallel environment ----------------------------------------------------
def test_pe_is_a_choice_among_the_admins() -> None:
    f = form(fields=["pe", "cores"], pe_choices=["smp", "mpi"], cores_max=32)
    assert parse_options(f, {}).pe == "smp"  # the first choice
    assert parse_options(f, {"pe": "mpi", "cores": 16}).pe == "mpi"
    assert refused(f, {"pe": "openmpi"}) == "pe: 'openmpi' is not allowed; choose one of: smp, mpi"
    assert describe_request(parse_options(f, {"pe": "mpi", "cores": 16})) == "16 cores (mpi), 2G, 1h"


def test_pe_offered_without_choices_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="pe_choices"):
        parse_options(form(fields=["pe"]), {"pe": "smp"})


# --- nodes and tasks per node ----------------------------------------------
def test_nodes_and_tasks_per_node_within_limits() -> None:
    f = form(fields=["nodes", "tasks_per_node", "cores"], nodes_max=4, tasks_per_node_max=8)
    request = parse_options(f, {"nodes": "2", "tasks_per_node": 4, "cores": 2})
    assert (request.nodes, request.tasks_per_node, request.cores, request.total_cores) == (2, 4, 2, 16)
    assert describe_request(request).startswith("2 nodes x 4 tasks x 2 cores")
    assert refused(f, {"nodes": 5}) == "nodes: '5' is not allowed; choose 1\u20134 nodes"
    assert refused(f, {"tasks_per_node": "many"}).startswith(
        "tasks_per_node: 'many' is not allowed; give a whole"
    )


def test_nodes_limits_per_queue() -> None:
    f = form(
        fields=["queue", "nodes"], queue_choices=["short", "mpi"], queue_limits={"mpi": {"nodes_max": 8}}
    )
    assert parse_options(f, {"queue": "mpi", "nodes": 8}).nodes == 8
    assert refused(f, {"queue": "short", "nodes": 2}) == "nodes: '2' is not allowed; choose 1 node"


# --- email -------------------------------------------------------------------
@pytest.mark.parametrize(
    "address",
    [
        "a b@example.org",
        "a@b@example.org",
        "a,b@example.org",
        '"a"@example.org',
        "a'b@example.org",
        "-m@example.org",
        "alice",
        "alice@",
        "alice@-x.org",
        "alice@x.org -M root@x.org",
        "x" * 70 + "@example.org",
    ],
)
def test_bad_addresses_are_refused_naming_the_field(address: str) -> None:
    message = refused(form(fields=["email"]), {"email": address})
    assert message.startswith("email: ") and "name@example.org" in message, message


def test_a_newline_in_an_address_is_refused() -> None:
    assert refused(form(fields=["email"]), {"email": "a@b.org\n-M x@y"}).startswith("email: ")


def test_a_plain_address_is_taken() -> None:
    f = form(fields=["email"])
    assert parse_options(f, {"email": " alice.smith+jobs@cluster.example.org "}).email == (
        "alice.smith+jobs@cluster.example.org"
    )


def test_default_address_from_a_pattern_and_a_cleared_field() -> None:
    f = form(fields=["email"], email_default="{username}@example.org")
    f.username = "alice"
    assert parse_options(f, {}).email == "alice@example.org"
    # the form sends an empty field: the user wants no mail
    stored = options_from_form(f, {"email": [""]})
    assert stored == {"email": ""}
    assert parse_options(f, stored).email is None


def test_bad_default_pattern_is_a_config_error() -> None:
    f = form(email_default="{user}@example.org")
    with pytest.raises(ConfigError, match="email_default"):
        parse_options(f, {})


def test_default_address_from_auth_state_key() -> None:
    f = form(fields=["email"], email_default="{username}@example.org", email_from_auth="oauth_user.email")
    asyncio.run(f.learn_user("alice", {"oauth_user": {"email": "alice@uni.example"}}))
    assert f.default_name("email") == "alice@uni.example"
    assert parse_options(f, {}).email == "alice@uni.example"
    # an address the authenticator gives that fails the check is ignored
    asyncio.run(f.learn_user("alice", {"oauth_user": {"email": "alice@uni.example, root@x"}}))
    assert parse_options(f, {}).email == "alice@example.org"


def test_default_address_from_an_async_callable() -> None:
    async def lookup(username: str, auth_state: Any) -> str:
        return f"{username}@dept.example"

    f = form(email_from_auth=lookup)
    asyncio.run(f.learn_user("bob", None))
    assert parse_options(f, {}).email == "bob@dept.example"


def test_email_goes_with_a_profile() -> None:
    f = form(
        fields=["cores", "email"],
        profiles=[{"name": "small", "cores": 1}, {"name": "big", "cores": 8}],
    )
    request = parse_options(f, {"profile": "big", "email": "a@example.org"})
    assert (request.cores, request.email) == (8, "a@example.org")


# --- limits per project ------------------------------------------------------
def gpu_site(**more: Any) -> ResourceForm:
    return form(
        fields=["queue", "project", "gpus"],
        queue_choices=["short", "gpu"],
        project_choices=["physics", "gpu"],
        gpus_max=4,
        project_limits={"gpu": {"gpus_max": 4}, "*": {"gpus_max": 0}},
        **more,
    )


def test_gpus_only_with_the_project_that_grants_them() -> None:
    f = gpu_site()
    assert parse_options(f, {"project": "gpu", "gpus": 2}).gpus == 2
    assert parse_options(f, {"project": "physics"}).gpus == 0
    assert refused(f, {"project": "physics", "gpus": 1}) == (
        "gpus: GPUs need the project gpu ('physics' allows 0 GPUs); choose it in the form"
    )


def test_the_message_uses_the_sites_word_and_says_ask_when_the_user_cannot_choose() -> None:
    f = form(
        fields=["gpus"],
        labels={"project": "Account"},
        project_default="physics",
        gpus_max=0,
        project_limits={"gpu": {"gpus_max": 2}},
    )
    assert refused(f, {"gpus": 1}) == (
        "gpus: GPUs need the account gpu ('physics' allows 0 GPUs); ask your administrator"
    )


def test_a_bigger_request_names_every_project_that_allows_it() -> None:
    f = form(
        fields=["project", "cores", "runtime"],
        project_limits={"big": {"cores_max": 64}, "huge": {"cores_max": 128, "runtime_max": "2d"}},
    )
    assert refused(f, {"cores": 32}) == "cores: 32 cores need the project big or huge; choose it in the form"
    assert refused(f, {"project": "big", "runtime": "1d"}).startswith(
        "runtime: Run time of 1d needs the project huge ('big' allows 5m\u201312h)"
    )
    # beyond every project: the plain range
    assert (
        refused(f, {"project": "huge", "cores": 999})
        == "cores: '999' is not allowed; choose 1\u2013128 cores"
    )


def test_queue_and_project_limits_both_set_the_stricter_applies() -> None:
    f = gpu_site(queue_limits={"short": {"gpus_max": 0}, "gpu": {"gpus_max": 4, "gpus_default": 1}})
    assert parse_options(f, {"queue": "gpu", "project": "gpu"}).gpus == 1
    assert parse_options(f, {"queue": "gpu", "project": "physics"}).gpus == 0  # default kept in range
    assert refused(f, {"queue": "short", "project": "gpu", "gpus": 1}).startswith("gpus: '1' is not allowed")
    assert f.limits("gpu", "gpu")["gpus"].high == 4 and f.limits("short", "gpu")["gpus"].high == 0


def test_profiles_are_checked_against_their_project() -> None:
    f = gpu_site(profiles=[{"name": "dl", "gpus": 1, "project": "physics"}])
    with pytest.raises(ConfigError, match=r"profiles\['dl'\].*GPUs need the project gpu"):
        f.profile_list()


def test_bad_project_limits_are_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"project_limits\['gpu'\]: unknown keys \['gpu_max'\]"):
        parse_options(form(fields=["project"], project_limits={"gpu": {"gpu_max": 1}}), {"project": "gpu"})
    with pytest.raises(ConfigError, match=r"project_limits\['gpu'\]"):
        parse_options(form(fields=["project"], project_limits={"gpu": {"gpus_min": 2}}), {"project": "gpu"})


def test_the_form_shows_the_address_as_text_and_the_pe_as_a_choice() -> None:
    f = form(fields=["pe", "email"], pe_choices=["smp", "mpi"], project_choices=["a", "b"])
    f.username = "alice"
    f.email_default = "{username}@example.org"
    html = render_form(f, {})
    assert 'name="email"' in html and 'value="alice@example.org"' in html
    assert '<option value="mpi"' in html and '<option value="a"' not in html


# --- how the form shows them -----------------------------------------------------
def test_the_address_stays_shown_and_sent_with_a_profile() -> None:
    f = form(
        fields=["cores", "email"],
        email_default="{username}@example.org",
        profiles=[{"name": "small", "cores": 1}, {"name": "big", "cores": 8}],
    )
    f.username = "alice"
    page = Page(render_form(f, {"profile": "big"}))
    email = next(i for i in page.inputs if i["name"] == "email")
    assert not email["in_disabled"] and "hidden" not in page.elements.get("batchhub-personal", {})
    assert page.submitted() == {"profile": ["big"], "email": ["alice@example.org"]}
    # only profiles: the address is still the user's to give
    f.allow_advanced = False
    page = Page(render_form(f, {"profile": "big"}))
    assert page.submitted() == {"profile": ["big"], "email": ["alice@example.org"]}


def test_a_refused_address_with_a_profile_comes_back_marked() -> None:
    f = form(fields=["cores", "email"], profiles=[{"name": "small", "cores": 1}, {"name": "big", "cores": 8}])
    with pytest.raises(OptionsError):
        checked_options(f, {"profile": ["big"], "email": ["not an address"]}, "carol")
    html = render_form(f, refusal=take_refusal("carol"))
    assert 'value="big" data-cost' in html and 'id="batchhub-profile-big"' in html
    assert 'class="form-control is-invalid" type="text" name="email"' in html
    assert 'id="batchhub-email-error">email: ' in html


def test_nodes_and_tasks_per_node_are_number_inputs_with_their_limits() -> None:
    f = form(fields=["nodes", "tasks_per_node", "cores"], nodes_max=4, tasks_per_node_max=8)
    page = Page(render_form(f))
    for name, high in (("nodes", "4"), ("tasks_per_node", "8")):
        e = page.elements[f"batchhub-{name}"]
        assert (e["type"], e["min"], e["max"], e["value"]) == ("number", "1", high, "1")
    assert page.text["batchhub-tasks_per_node-limits"].strip() == "1\u20138 tasks per node"


def test_the_address_has_a_hint_about_addresses() -> None:
    page = Page(render_form(form(fields=["queue", "email"])))
    hint = page.text["batchhub-email-limits"].strip()
    assert "name@example.org" in hint and "ends or fails" in hint
    assert page.text["batchhub-queue-limits"].strip() == "letters, digits, _ . @ + -"


def test_the_page_script_gets_the_limits_of_each_queue_and_project() -> None:
    f = gpu_site(queue_limits={"short": {"gpus_max": 0}, "gpu": {"gpus_max": 4}})
    page = Page(render_form(f, {"queue": "gpu", "project": "gpu"}))
    limits = json.loads(page.elements["batchhub-form"]["data-limits"])
    assert limits["gpu"]["gpu"]["gpus"]["max"] == 4
    assert limits["gpu"]["physics"]["gpus"]["max"] == 0  # the project's limit
    assert limits["short"]["gpu"]["gpus"]["max"] == 0  # the queue's
    assert limits["*"]["*"]["gpus"]["max"] == 0  # any other project ("*")
    # the limits shown first are those of the chosen queue and project
    assert page.elements["batchhub-gpus"]["max"] == "4"
    page = Page(render_form(f, {"queue": "gpu", "project": "physics"}))
    assert page.elements["batchhub-gpus"]["max"] == "0"
    assert page.text["batchhub-gpus-limits"].strip() == "0 GPUs"
