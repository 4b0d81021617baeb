"""The spawn page's resource form: HTML in JupyterHub's own look.

``render_form`` returns the markup JupyterHub puts inside its spawn form
(``Spawner.options_form``). It shows each enabled field with its limits
next to it ("1-16 cores", with an en dash), the admin's profiles as choices, and an
"Advanced" choice that shows the fields. Browser-side hints (min, max) only
help the user; ``options.parse_options`` is what decides.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources as importlib_resources
from typing import Any

import jinja2

from .options import OptionsError, describe_request, resolve_values
from .resources import ADVANCED, FIELDS, NUMERIC_FIELDS, Range, ResourceForm
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
        field: {"min": r.low, "max": r.high, "text": r.describe(), "default": _shown(field, r.default)}
        for field, r in ranges.items()
    }


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


def render_form(form: ResourceForm, prefill: Mapping[str, Any] | None = None) -> str:
    """The form's HTML. ``prefill`` is the user's previous ``user_options``
    (JupyterHub keeps them), so the form opens with their last choice."""
    values = _prefill_values(prefill)
    profiles = form.profile_list()
    names = [p.name for p in profiles]
    selected = values.get("profile", "")
    if selected not in names and selected != ADVANCED:
        given = any(f in values for f in FIELDS)
        selected = ADVANCED if (given and form.allow_advanced) or not profiles else names[0]
    if selected == ADVANCED and profiles and not form.allow_advanced:
        selected = names[0]

    queue = values.get("queue") or form.default_name("queue")
    if form.choices("queue") and queue not in form.choices("queue"):
        queue = form.default_name("queue")
    try:
        ranges = form.limits(queue)
    except Exception:  # an unknown queue typed earlier: show the base limits
        ranges = form.limits(None)
    queues = {q: _limits_view(form.limits(q)) for q in form.choices("queue")}

    fields = []
    for name in (f for f in FIELDS if f in form.fields):
        field: dict[str, Any] = {"name": name, "label": form.label(name), "value": values.get(name, "")}
        if name in NUMERIC_FIELDS:
            r = ranges[name]
            field.update(kind="number" if name in ("cores", "gpus") else "text", limits=r.describe())
            field.update(min=r.low, max=r.high)
            if not field["value"]:
                field["value"] = _shown(name, r.default)
            field["placeholder"] = "scheduler default" if r.default is None else ""
        else:
            choices = form.choices(name)
            field.update(kind="select" if choices else "text", choices=choices, placeholder="")
            field["value"] = field["value"] or (form.default_name(name) or "")
            field["limits"] = "" if choices else "letters, digits, _ . @ + -"
        fields.append(field)

    profile_views = []
    for p in profiles:
        try:
            summary = describe_request(resolve_values(form, p.values, from_user=False))
        except OptionsError:  # profile_list() already checked; keep the page up regardless
            summary = ""
        profile_views.append(
            {"name": p.name, "display_name": p.display_name, "description": p.description, "summary": summary}
        )

    template = _env.get_template(FORM_TEMPLATE)
    return template.render(
        profiles=profile_views,
        advanced=ADVANCED,
        allow_advanced=form.allow_advanced,
        selected=selected,
        fields=fields,
        queue_limits=queues,
    )
