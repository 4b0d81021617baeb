"""The spawn page's resource form: HTML in JupyterHub's own look.

``render_form`` returns the markup JupyterHub puts inside its spawn form
(``Spawner.options_form``). It shows each enabled field with its limits
next to it ("1-16 cores", with an en dash), the admin's profiles as choices, and an
"Advanced" choice that shows the fields. Browser-side hints (min, max) only
help the user; ``options.parse_options`` is what decides.

A refused request comes back as the form with every value the user sent
and the refused field marked (``checked_options`` remembers them per user
until the form is shown again). A line above Start says how many core-hours
and GPU-hours the request asks for, and the queue's row what is free there
now (``batchhub.free``); both follow the user's choices in the browser.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources as importlib_resources
from typing import Any

import jinja2

from .jobs import BatchhubError, ResourceRequest
from .options import OptionsError, describe_request, options_from_form, parse_options, resolve_values
from .resources import (
    ADVANCED,
    FIELD_UNITS,
    FIELDS,
    NUMERIC_FIELDS,
    OTHER_PROJECTS,
    PERSONAL_FIELDS,
    Range,
    ResourceForm,
)
from .units import format_memory, format_runtime

FORM_TEMPLATE = "form.html.j2"

_env = jinja2.Environment(
    loader=jinja2.FunctionLoader(
        lambda name: importlib_resources.files("batchhub").joinpath("templates", name).read_text("utf-8")
    ),
    autoescape=True,  # HTML: every value (prefill included) is escaped
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _shown(field: str, value: int | None) -> str:
    """A default as the user would type it into the field."""
    if value is None:
        return ""
    if field == "memory":
        return format_memory(value)
    if field == "runtime":
        return format_runtime(value)
    return str(value)


def _limits_view(ranges: Mapping[str, Range]) -> dict[str, dict[str, Any]]:
    return {
        field: {
            "min": r.low,
            "max": r.high,
            "text": r.describe(),
            "default": _shown(field, r.default),
            "value": r.default,  # in the base unit, for the core-hours line
        }
        for field, r in ranges.items()
    }


# --- a refused request, kept for the form that shows the refusal ----------------
#: How long a refusal waits for its form (JupyterHub shows it at once).
REFUSAL_KEPT_S = 600.0


@dataclass(frozen=True)
class Refusal:
    """What a user sent in a refused form submission, and why."""

    values: dict[str, str]
    field: str
    message: str
    at: float = field(default_factory=time.monotonic)


_refusals: dict[str, Refusal] = {}


def checked_options(
    form: ResourceForm,
    formdata: Mapping[str, Any],
    username: str,
    *,
    check: Callable[[ResourceRequest], OptionsError | None] | None = None,
) -> dict[str, Any]:
    """``options_from_form`` for ``username``, then ``check`` (the backend's
    own objection to the request, if any); a refusal is remembered (one per
    user), so the form JupyterHub shows with its message keeps every value
    the user sent and marks the refused field."""
    try:
        values = options_from_form(form, formdata)
        objection = check(parse_options(form, values)) if check is not None else None
        if objection is not None:
            raise objection
        return values
    except OptionsError as exc:
        _refusals[username] = Refusal(_prefill_values(formdata), exc.field, str(exc))
        raise


def take_refusal(username: str) -> Refusal | None:
    """The user's last refusal, once; ``None`` when there is none (or it
    is older than ``REFUSAL_KEPT_S``)."""
    refusal = _refusals.pop(username, None)
    if refusal is None or time.monotonic() - refusal.at > REFUSAL_KEPT_S:
        return None
    return refusal


def _prefill_values(prefill: Mapping[str, Any] | None) -> dict[str, str]:
    """Earlier user options as strings for the inputs; anything odd is
    dropped (it was validated when it was used, and is escaped anyway)."""
    values: dict[str, str] = {}
    for key, value in (prefill or {}).items():
        if isinstance(value, (list, tuple)):
            value = value[0] if len(value) == 1 else None
        if (
            isinstance(value, (str, int, float))
            and not isinstance(value, bool)
            and key in (*FIELDS, "profile")
        ):
            values[key] = str(value)[:64]
    return values


def render_form(
    form: ResourceForm,
    prefill: Mapping[str, Any] | None = None,
    *,
    refusal: Refusal | None = None,
    free: Mapping[str, str] | None = None,
) -> str:
    """The form's HTML. ``prefill`` is the user's previous ``user_options``
    (JupyterHub keeps them), so the form opens with their last choice; a
    ``refusal`` wins over it (the values just sent, the refused field
    marked). ``free``: what is free now, as a line per queue name."""
    values = refusal.values if refusal is not None else _prefill_values(prefill)
    profiles = form.profile_list()
    names = [p.name for p in profiles]
    selected = values.get("profile", "")
    if selected not in names and selected != ADVANCED:
        given = any(f in values for f in FIELDS if f not in PERSONAL_FIELDS)
        selected = ADVANCED if (given and form.allow_advanced) or not profiles else names[0]
    if selected == ADVANCED and profiles and not form.allow_advanced:
        selected = names[0]

    queue, project = _chosen(form, "queue", values), _chosen(form, "project", values)
    try:
        ranges = form.limits(queue, project)
    except BatchhubError:  # a queue or project typed earlier that the limits cannot take
        ranges = form.limits(None)

    fields = []
    for name in (f for f in FIELDS if f in form.fields):
        field: dict[str, Any] = {"name": name, "label": form.label(name), "value": values.get(name, "")}
        refused = refusal is not None and refusal.field == name
        field.update(invalid=refused, message=refusal.message if refusal is not None and refused else "")
        if name in NUMERIC_FIELDS:
            r = ranges[name]
            field.update(kind="number" if name in FIELD_UNITS else "text", limits=r.describe())
            field.update(min=r.low, max=r.high)
            if not field["value"] and not refused:
                field["value"] = _shown(name, r.default)
            field["placeholder"] = "scheduler default" if r.default is None else ""
        else:
            choices = form.choices(name)
            field.update(kind="select" if choices else "text", choices=choices, placeholder="")
            field["value"] = field["value"] or (form.default_name(name) or "")
            if name == "email":
                field.update(limits=EMAIL_HINT, placeholder="name@example.org")
            else:
                field["limits"] = "" if choices else "letters, digits, _ . @ + -"
        fields.append(field)

    profile_views = []
    for p in profiles:
        try:
            request = resolve_values(form, p.values, from_user=False)
            summary = describe_request(request)
        except OptionsError:  # profile_list() already checked; keep the page up regardless
            summary = ""
            request = None
        profile_views.append(
            {
                "name": p.name,
                "display_name": p.display_name,
                "description": p.description,
                "summary": summary,
                "cost": _cost_view(request),
            }
        )

    template = _env.get_template(FORM_TEMPLATE)
    return template.render(
        profiles=profile_views,
        advanced=ADVANCED,
        allow_advanced=form.allow_advanced,
        selected=selected,
        # the user's own fields (an address) stay shown and sent whichever profile is chosen
        fields=[f for f in fields if f["name"] not in PERSONAL_FIELDS],
        personal=[f for f in fields if f["name"] in PERSONAL_FIELDS],
        limits=_limits_table(form),
        # the free line goes in the queue's row, unless that row can be hidden (profiles)
        queue_field=not profiles and any(f["name"] == "queue" for f in fields),
        default_queue=form.default_name("queue") or "",
        default_project=form.default_name("project") or "",
        free=dict(free or {}),
        cost=cost_line(_selected_request(form, values, selected, profiles)),
    )


#: The hint beside the address field.
EMAIL_HINT = "an address like name@example.org; mail is sent when the job ends or fails"


def _chosen(form: ResourceForm, field: str, values: Mapping[str, str]) -> str | None:
    """The queue or project the values name, else the default (as the hub takes them)."""
    name = str(values.get(field) or "").strip() or form.default_name(field)
    if form.choices(field) and name not in form.choices(field):
        name = form.default_name(field)
    return name or None


def _limits_table(form: ResourceForm) -> dict[str, dict[str, dict[str, dict[str, Any]]]]:
    """The limits for the page's script: queue, then project, then field.
    ``"*"`` stands for any other queue (the base limits) and any other
    project (``project_limits["*"]``), as ``ResourceForm.limits`` reads them."""
    queues = [*form.choices("queue"), *form.queue_limits, form.default_name("queue")]
    projects = [*form.choices("project"), *form.project_limits, form.default_name("project")]
    projects = [p for p in projects if p != OTHER_PROJECTS]
    return {
        queue or OTHER_PROJECTS: {
            project or OTHER_PROJECTS: _limits_view(form.limits(queue, project))
            for project in dict.fromkeys([None, *filter(None, projects)])
        }
        for queue in dict.fromkeys([None, *filter(None, queues)])
    }


def _selected_request(
    form: ResourceForm, values: Mapping[str, str], selected: str, profiles: list[Any]
) -> ResourceRequest | None:
    """The request the form first shows (the chosen profile, or the
    fields' values), or ``None`` when the hub would refuse it."""
    raw: dict[str, Any] = {k: v for k, v in values.items() if k not in (*PERSONAL_FIELDS, "profile")}
    if selected != ADVANCED:
        raw = {"profile": selected}
    elif profiles:
        raw["profile"] = ADVANCED
    try:
        return parse_options(form, raw)
    except BatchhubError:
        return None


def cost_line(request: ResourceRequest | None) -> str:
    """What the line above Start says for ``request``: "This asks for 8
    core-hours and 4 GPU-hours." (all the job's cores: ``total_cores``), or
    "" without a run time. The page's script writes the same as the user
    types, with the same arithmetic and rounding."""
    if request is None or not request.runtime_s or request.total_cores <= 0:
        return ""
    text = "This asks for " + _hours(request.total_cores * request.runtime_s / 3600, "core")
    if request.gpus > 0:
        text += " and " + _hours(request.gpus * request.runtime_s / 3600, "GPU")
    return text + "."


def _hours(amount: float, word: str) -> str:
    """``8 core-hours``, ``1.5 GPU-hours``: whole above 10, else to a tenth
    (halves rounded up, as the browser's ``Math.round``)."""
    if amount >= 10:
        text = str(math.floor(amount + 0.5))
    else:
        tenths = math.floor(amount * 10 + 0.5)
        text = str(tenths // 10) if tenths % 10 == 0 else str(tenths / 10)
    return f"{text} {word}-hour{'' if text == '1' else 's'}"


def _cost_view(request: Any) -> dict[str, Any]:
    """What a profile asks for, for the core-hours and free lines: total
    cores, GPUs, run time in seconds (``None``: the scheduler's default)
    and queue."""
    if request is None:
        return {"cores": None, "gpus": None, "runtime": None, "queue": None}
    total = getattr(request, "total_cores", None)  # cores on each of several nodes and tasks
    cores = total if isinstance(total, int) else request.cores
    return {"cores": cores, "gpus": request.gpus, "runtime": request.runtime_s, "queue": request.queue}
