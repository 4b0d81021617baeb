"""What a user sent, turned into a validated ``ResourceRequest``.

``parse_options`` takes whatever the user sent (the spawn form, ``opt-``
query parameters, or REST ``user_options``) and checks it against the
admin's ``ResourceForm``: the result is a ``ResourceRequest``, or an
``OptionsError`` naming the field, the bad value and what is allowed.

Every value that can end up in a scheduler directive is checked against a
strict pattern here, so the backend never sees free text.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from .jobs import EMAIL_RE, BatchhubError, ConfigError, ResourceRequest
from .resources import (
    ADVANCED,
    FIELD_UNITS,
    FIELDS,
    FORMATS,
    NAME_PATTERN,
    NUMERIC_FIELDS,
    PARSERS,
    PERSONAL_FIELDS,
    Profile,
    Range,
    ResourceForm,
)
from .units import TooLarge, format_memory, format_runtime

#: Keys JupyterHub itself may leave in form data; never options.
IGNORED_KEYS = frozenset({"_xsrf"})

_HINTS = {
    "cores": "a whole number",
    "gpus": "a whole number",
    "memory": "a size such as 4G or 512M (a plain number means GB)",
    "runtime": "a time such as 2h, 90m, 1:30:00 or 1-00:00:00 (a plain number means hours)",
    "nodes": "a whole number",
    "tasks_per_node": "a whole number",
}


class OptionsError(BatchhubError):
    """A user's resource request was refused.

    The message names the field, the value and what is allowed; it is shown
    on the spawn page as it is (JupyterHub escapes it).
    """

    def __init__(self, field: str, value: object, allowed: str, message: str | None = None) -> None:
        self.field = field
        self.value = value
        self.allowed = allowed
        super().__init__(message or f"{field}: {shown(value)} is not allowed; {allowed}")


def shown(value: object) -> str:
    """A user's value as an error message may quote it: short, one line."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 10**40:
        # str() of an int of more than 4300 digits raises: say how long it is instead
        return f"a number of about {int(math.log10(abs(value))) + 1} digits"
    text = "" if value is None else str(value)
    if len(text) > 40:
        text = text[:40] + "..."
    return repr(text) if text.isprintable() else ascii(text)


def _scalar(key: str, value: object) -> str | int | float | None:
    """One value from form data (a list of strings), a query or REST."""
    if isinstance(value, (list, tuple)):
        if len(value) > 1:
            raise OptionsError(key, ", ".join(map(str, value)), "give one value")
        value = value[0] if value else None
    if value is None or (isinstance(value, str) and value.strip() == ""):
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise OptionsError(key, value, "give a single number or text")
    if isinstance(value, str) and not value.isprintable():
        raise OptionsError(key, value, "remove newlines, tabs and other control characters")
    return value


def normalize(raw: Mapping[str, Any] | None) -> dict[str, str | int | float]:
    """The user's values, one scalar per known key, empty ones dropped.

    Unknown keys are refused (a typo must not silently fall back to a
    default)."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise OptionsError("options", type(raw).__name__, "send an object of field names and values")
    result: dict[str, str | int | float] = {}
    for key, value in raw.items():
        if key in IGNORED_KEYS:
            continue
        if key not in FIELDS and key != "profile":
            known = ", ".join(("profile", *FIELDS))
            raise OptionsError("options", key, known, f"unknown option {shown(key)}; known options: {known}")
        scalar = _scalar(key, value)
        if scalar is not None:
            result[key] = scalar
        elif key in PERSONAL_FIELDS:
            result[key] = ""  # cleared on purpose: none, not the default
    return result


def _name(form: ResourceForm, field: str, value: object, from_user: bool) -> str | None:
    choices = form.choices(field)
    if field == "pe" and "pe" in form.fields and not choices:
        raise ConfigError(
            "ResourceForm.fields lists pe but pe_choices is empty: list the parallel "
            'environments users may choose, e.g. c.ResourceForm.pe_choices = ["smp", "mpi"]'
        )
    if value is None:
        return form.default_name(field)
    if from_user and field not in form.fields:
        raise OptionsError(field, value, f"{form.label(field).lower()} cannot be chosen here")
    text = str(value).strip()
    if choices and text not in choices:
        raise OptionsError(field, value, f"choose one of: {', '.join(choices)}")
    if not NAME_PATTERN.fullmatch(text):
        raise OptionsError(
            field,
            value,
            "use up to 64 letters, digits, '_', '.', '@', '+' or '-', starting with a letter or digit",
        )
    return text


def resolve_values(form: ResourceForm, values: Mapping[str, Any], *, from_user: bool) -> ResourceRequest:
    """A request from field values; ``from_user`` enforces the enabled
    fields (profiles written by the admin may set any field)."""
    queue = _name(form, "queue", values.get("queue"), from_user)
    project = _name(form, "project", values.get("project"), from_user)
    pe = _name(form, "pe", values.get("pe"), from_user)
    limits = form.limits(queue, project)
    numbers: dict[str, int | None] = {}
    for field in NUMERIC_FIELDS:
        allowed = limits[field]
        value = values.get(field)
        if value is None:
            numbers[field] = allowed.default
            continue
        if from_user and field not in form.fields:
            raise OptionsError(field, value, f"{form.label(field).lower()} cannot be chosen here")
        try:
            parsed = PARSERS[field](value)
        except TooLarge:
            raise OptionsError(
                field,
                value,
                f"choose {allowed.describe()}",
                f"{field}: {shown(value)} is too large; the most is {allowed.most()}",
            ) from None
        except ValueError:
            raise OptionsError(field, value, f"give {_HINTS[field]}, in {allowed.describe()}") from None
        if not allowed.low <= parsed <= allowed.high:
            _refuse_outside(form, allowed, value, parsed, queue, project)
        numbers[field] = parsed
    return ResourceRequest(
        cores=int(numbers["cores"] or 0),
        memory_mb=numbers["memory"],
        gpus=int(numbers["gpus"] or 0),
        runtime_s=numbers["runtime"],
        queue=queue,
        project=project,
        pe=pe,
        nodes=int(numbers["nodes"] or 1),
        tasks_per_node=int(numbers["tasks_per_node"] or 1),
        email=_email(form, values.get("email"), from_user),
    )


def _refuse_outside(
    form: ResourceForm, allowed: Range, value: object, parsed: int, queue: str | None, project: str | None
) -> None:
    """Refuse a value outside ``allowed``, naming the project that grants
    it where the chosen project is what stands in the way."""
    field = allowed.field
    granting = form.granting_projects(field, parsed, queue) if form.project_limits else []
    if not granting:
        raise OptionsError(field, value, f"choose {allowed.describe()}")
    word = form.label("project").lower()
    names = " or ".join(granting)
    if field in FIELD_UNITS:
        unit = FIELD_UNITS[field][parsed != 1]
        many = f"{parsed} {unit} need{'s' * (parsed == 1)}"
        what = f"{form.label(field)} need" if allowed.high == 0 else many
    else:
        what = f"{form.label(field)} of {FORMATS[field](parsed)} needs"
    todo = "choose it in the form" if "project" in form.fields else "ask your administrator"
    here = f" ({project!r} allows {allowed.describe()})" if project else ""
    raise OptionsError(
        field, value, f"{what} the {word} {names}", f"{field}: {what} the {word} {names}{here}; {todo}"
    )


def _email(form: ResourceForm, value: object, from_user: bool) -> str | None:
    """The address the job mails, checked; the default when none is given,
    ``None`` when the user cleared it."""
    if value is None:
        return form.default_email()
    if from_user and "email" not in form.fields:
        raise OptionsError("email", value, "an email address cannot be given here")
    text = str(value).strip()
    if text == "":
        return None
    if not EMAIL_RE.fullmatch(text):
        raise OptionsError(
            "email",
            value,
            "give one plain address such as name@example.org (no spaces, quotes or commas), "
            "or leave it empty for no mail",
        )
    return text


def choose_profile(form: ResourceForm, values: Mapping[str, Any]) -> Profile | None:
    """The profile a request selects, or ``None`` for the individual fields."""
    profiles = form.profile_list()
    name = values.get("profile")
    if not profiles:
        if name is not None and name != ADVANCED:
            raise OptionsError("profile", name, "this site offers no profiles; set the fields instead")
        return None
    if name is None:
        given = [f for f in FIELDS if f in values and f not in PERSONAL_FIELDS]
        if given and form.allow_advanced:
            return None  # REST callers may send fields alone
        if given:
            raise OptionsError(given[0], values[given[0]], "choose a profile; this site has no custom values")
        return profiles[0]
    if name == ADVANCED:
        if not form.allow_advanced:
            raise OptionsError("profile", name, f"choose one of: {', '.join(p.name for p in profiles)}")
        return None
    for profile in profiles:
        if profile.name == name:
            given = [f for f in FIELDS if f in values and f not in PERSONAL_FIELDS]
            if given:
                raise OptionsError(
                    given[0],
                    values[given[0]],
                    f"profile {profile.display_name!r} sets the resources; "
                    f"choose {ADVANCED!r} to set them yourself",
                )
            return profile
    allowed = [p.name for p in profiles] + ([ADVANCED] if form.allow_advanced else [])
    raise OptionsError("profile", name, f"choose one of: {', '.join(allowed)}")


def parse_options(form: ResourceForm, raw: Mapping[str, Any] | None) -> ResourceRequest:
    """Validate what a user sent and return the request to submit.

    ``raw`` may be the spawn form's data (lists of strings), ``opt-`` query
    parameters (the same, with the prefix already removed by JupyterHub) or
    REST ``user_options`` (plain numbers and strings). Raises
    ``OptionsError`` for anything not allowed and ``ConfigError`` when the
    site's own settings are inconsistent.
    """
    values = normalize(raw)
    profile = choose_profile(form, values)
    if profile is not None:
        personal = {f: values[f] for f in PERSONAL_FIELDS if f in values}
        for field, value in personal.items():
            if field not in form.fields:
                raise OptionsError(field, value, f"{form.label(field).lower()} cannot be chosen here")
        return resolve_values(form, {**profile.values, **personal}, from_user=False)
    return resolve_values(form, values, from_user=True)


def options_from_form(form: ResourceForm, formdata: Mapping[str, Any]) -> dict[str, str | int | float]:
    """What the spawner stores as ``user_options`` for a form submission:
    validated now (so errors show on the form), kept as plain scalars."""
    values = normalize(formdata)
    parse_options(form, values)
    return values


def describe_request(request: ResourceRequest) -> str:
    """A one-line summary for progress messages: ``2 cores, 4G, 1 GPU, 2h on gpu``."""
    parts = [f"{request.cores} core{'s' if request.cores != 1 else ''}"]
    if request.nodes != 1 or request.tasks_per_node != 1:
        tasks = request.tasks_per_node
        parts[0] = (
            f"{request.nodes} node{'s' * (request.nodes != 1)} x {tasks} task{'s' * (tasks != 1)} "
            f"x {parts[0]}"
        )
    if request.pe:
        parts[0] += f" ({request.pe})"
    if request.memory_mb:
        parts.append(format_memory(request.memory_mb))
    if request.gpus:
        parts.append(f"{request.gpus} GPU{'s' if request.gpus != 1 else ''}")
    if request.runtime_s:
        parts.append(format_runtime(request.runtime_s))
    text = ", ".join(parts)
    if request.queue:
        text += f" on {request.queue}"
    if request.project:
        text += f" for {request.project}"
    return text
