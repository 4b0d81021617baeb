"""What a user may ask for, and the checks every request passes.

``ResourceForm`` holds the admin's choices (which fields the form shows,
defaults, limits, queue and project choices, per-queue limits, named
profiles) as traitlets, so a site configures it in ``jupyterhub_config.py``
as ``c.ResourceForm.cores_max = 32``. ``parse_options`` turns whatever the
user sent (the spawn form, ``opt-`` query parameters, or REST
``user_options``) into a validated ``ResourceRequest`` or raises
``OptionsError`` naming the field, the bad value and what is allowed.

Every value that can end up in a scheduler directive is checked against a
strict pattern here, so the backend never sees free text.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from traitlets import Bool, Dict, Int, List, Unicode, validate
from traitlets.config import LoggingConfigurable

from .jobs import BatchhubError, ConfigError, ResourceRequest

#: Every field the form knows, in the order the form shows them.
FIELDS: tuple[str, ...] = ("queue", "project", "cores", "memory", "gpus", "runtime")
NUMERIC_FIELDS: tuple[str, ...] = ("cores", "memory", "gpus", "runtime")
#: The profile choice that shows the individual fields.
ADVANCED = "advanced"
#: Keys JupyterHub itself may leave in form data; never options.
IGNORED_KEYS = frozenset({"_xsrf"})

#: Queue, partition, project and account names: a letter or digit first (so
#: a name can never look like a command-line option), then a small safe set.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@+-]{0,63}")
PROFILE_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_INT = re.compile(r"\d+")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_MEMORY = re.compile(r"(\d+(?:\.\d+)?)(?:([MGT])(?:I?B)?)?", re.IGNORECASE)
_MEMORY_UNIT_MB = {None: 1024, "M": 1, "G": 1024, "T": 1024 * 1024}
_CLOCK = re.compile(r"(?:(\d{1,3})-)?(\d{1,4}):(\d{2})(?::(\d{2}))?")
_DAY_HOURS = re.compile(r"(\d{1,3})-(\d{1,2})")
_UNITS = re.compile(r"(?:(\d{1,3})d)?(?:(\d{1,4})h)?(?:(\d{1,6})m(?:in)?)?(?:(\d{1,7})s)?", re.IGNORECASE)

#: Far beyond any site's limits: a number above one of these is refused as
#: too large before any arithmetic on it (which could overflow).
MAX_COUNT = 999_999
MAX_MEMORY_MB = 1024**4  # an exbibyte
MAX_RUNTIME_S = 999 * 86400

#: Between the ends of a range, as in "1\u201316 cores".
DASH = "\u2013"
FIELD_UNITS = {"cores": ("core", "cores"), "gpus": ("GPU", "GPUs")}


class TooLarge(ValueError):
    """A number beyond anything a job could have."""


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


# --- units ---------------------------------------------------------------
def parse_memory(value: str | int | float) -> int:
    """Megabytes from ``4G``, ``4GB``, ``4GiB``, ``512M``, ``1.5T`` or a
    plain number of gigabytes (``4``, ``1.5``). Units are binary (1G =
    1024M), as schedulers count them; a fraction of a megabyte rounds up."""
    if isinstance(value, bool):
        raise ValueError("not a size")
    if isinstance(value, (int, float)):
        number, unit_mb = value, 1024
    else:
        match = _MEMORY.fullmatch(value.strip())
        if not match:
            raise ValueError("not a size")
        number, unit = float(match.group(1)), match.group(2)
        unit_mb = _MEMORY_UNIT_MB[unit.upper() if unit else None]
    if number != number or number <= 0:  # NaN, zero or negative
        raise ValueError("not a positive size")
    # compared before multiplying: 10**400 or 1e306 must not reach float arithmetic
    if number > MAX_MEMORY_MB / unit_mb:
        raise TooLarge(f"larger than {format_memory(MAX_MEMORY_MB)}")
    return math.ceil(number * unit_mb)


def format_memory(mb: int) -> str:
    """The shortest exact way to write ``mb`` megabytes: ``4G``, ``1536M``."""
    for unit, size in (("T", 1024 * 1024), ("G", 1024)):
        if mb % size == 0:
            return f"{mb // size}{unit}"
    return f"{mb}M"


def parse_runtime(value: str | int | float) -> int:
    """Seconds from ``1:30:00`` (h:mm:ss), ``1:30`` (h:mm), ``1-00:00:00``
    or ``1-12`` (days-hours), ``90m``, ``2h``, ``1h30m``, ``1d``, ``45s``,
    or a plain number of hours (``2``, ``1.5``)."""
    if isinstance(value, bool):
        raise ValueError("not a duration")
    if isinstance(value, (int, float)):
        if value != value or value <= 0:  # NaN, zero or negative
            raise ValueError("not a positive duration")
        if value > MAX_RUNTIME_S / 3600:  # before multiplying: 10**400 must not reach a float
            raise TooLarge(f"longer than {format_runtime(MAX_RUNTIME_S)}")
        return math.ceil(value * 3600)
    text = value.strip()
    seconds: int | None = None
    if _NUMBER.fullmatch(text):
        return parse_runtime(float(text))  # a string of many digits is inf here: too large
    if match := _CLOCK.fullmatch(text):
        days, hours, minutes, secs = match.groups()
        if int(minutes) >= 60 or (secs is not None and int(secs) >= 60):
            raise ValueError("minutes and seconds go up to 59")
        seconds = int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60 + int(secs or 0)
    elif match := _DAY_HOURS.fullmatch(text):
        seconds = int(match.group(1)) * 86400 + int(match.group(2)) * 3600
    elif text and (match := _UNITS.fullmatch(text.replace(" ", ""))):
        days, hours, minutes, secs = (int(g or 0) for g in match.groups())
        seconds = days * 86400 + hours * 3600 + minutes * 60 + secs
    if not seconds or seconds <= 0:
        raise ValueError("not a duration")
    if seconds > MAX_RUNTIME_S:
        raise TooLarge(f"longer than {format_runtime(MAX_RUNTIME_S)}")
    return seconds


def format_runtime(seconds: int) -> str:
    """A short human duration: ``1h``, ``1h30m``, ``2d``, ``90s``."""
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts) or "0s"


def parse_count(value: str | int | float) -> int:
    """A whole number from ``"4"`` or ``4`` (not ``4.5``, not ``True``)."""
    if isinstance(value, bool):
        raise ValueError("not a whole number")
    if isinstance(value, float) and not value.is_integer():  # NaN and infinities too
        raise ValueError("not a whole number")
    if isinstance(value, str):
        text = value.strip()
        if not _INT.fullmatch(text):
            raise ValueError("not a whole number")
        if len(text.lstrip("0")) > len(str(MAX_COUNT)):  # before int(): no 5000-digit ints
            raise TooLarge(f"more than {MAX_COUNT}")
        value = int(text)
    if value > MAX_COUNT:
        raise TooLarge(f"more than {MAX_COUNT}")
    return int(value)


_PARSERS = {"cores": parse_count, "gpus": parse_count, "memory": parse_memory, "runtime": parse_runtime}
_FORMATS = {"cores": str, "gpus": str, "memory": format_memory, "runtime": format_runtime}
_HINTS = {
    "cores": "a whole number",
    "gpus": "a whole number",
    "memory": "a size such as 4G or 512M (a plain number means GB)",
    "runtime": "a time such as 2h, 90m, 1:30:00 or 1-00:00:00 (a plain number means hours)",
}


# --- limits ----------------------------------------------------------------
@dataclass(frozen=True)
class Range:
    """Allowed values of one numeric field, in its base unit (count, MB or
    seconds). ``default`` ``None`` leaves the value to the scheduler."""

    field: str
    low: int
    high: int
    default: int | None

    def describe(self) -> str:
        """The range as the form shows it: ``1\u201316 cores``, ``256M\u201364G``."""
        fmt = _FORMATS[self.field]
        if self.field in FIELD_UNITS:
            word = FIELD_UNITS[self.field][self.high != 1]
            if self.low == self.high:
                return f"{self.low} {word}"
            return f"{self.low}{DASH}{self.high} {word}"
        if self.low == self.high:
            return fmt(self.low)
        return f"{fmt(self.low)}{DASH}{fmt(self.high)}"

    def most(self) -> str:
        """The upper end as a message says it: ``16 cores``, ``1 GPU``, ``64G``."""
        if self.field in FIELD_UNITS:
            return f"{self.high} {FIELD_UNITS[self.field][self.high != 1]}"
        return _FORMATS[self.field](self.high)

    def check(self, value: int, shown: object) -> int:
        if not self.low <= value <= self.high:
            raise OptionsError(self.field, shown, f"choose {self.describe()}")
        return value


@dataclass(frozen=True)
class Profile:
    """A named preset: ``values`` are raw field values as an admin writes
    them (``{"cores": 4, "memory": "16G", "gpus": 1, "runtime": "4h"}``)."""

    name: str
    display_name: str
    description: str
    values: Mapping[str, Any]


_LIMIT_KEYS = frozenset(f"{f}_{k}" for f in NUMERIC_FIELDS for k in ("min", "max", "default"))


class ResourceForm(LoggingConfigurable):
    """The resource options form: fields, defaults, limits and profiles.

    The spawner owns one (``ResourceForm(parent=spawner)``); sites set these
    options on ``c.ResourceForm``. Numbers of cores and GPUs are counts;
    memory and run time are written as a user would type them (``"4G"``,
    ``"2h"``).
    """

    fields = List(
        Unicode(),
        default_value=["cores", "memory", "runtime"],
        help="Fields the form shows, from: queue, project, cores, memory, gpus, runtime. "
        "A field not listed cannot be set by the user; its default below is used "
        "(or a profile's value).",
    ).tag(config=True)

    labels = Dict(
        value_trait=Unicode(),
        default_value={},
        help='Labels for the fields, e.g. {"queue": "Partition", "project": "Account"} on Slurm.',
    ).tag(config=True)

    cores_default = Int(1, help="Cores a job gets when the user does not say.").tag(config=True)
    cores_min = Int(1, help="Fewest cores a user may ask for.").tag(config=True)
    cores_max = Int(16, help="Most cores a user may ask for.").tag(config=True)

    memory_default = Unicode(
        "2G",
        help='Memory a job gets when the user does not say ("4G", "512M"); "" leaves it to the scheduler.',
    ).tag(config=True)
    memory_min = Unicode("256M", help="Least memory a user may ask for.").tag(config=True)
    memory_max = Unicode("64G", help="Most memory a user may ask for (for the whole job).").tag(config=True)

    gpus_default = Int(0, help="GPUs a job gets when the user does not say.").tag(config=True)
    gpus_min = Int(0, help="Fewest GPUs a user may ask for.").tag(config=True)
    gpus_max = Int(
        0, help="Most GPUs a user may ask for; set it (and list gpus in fields) to offer GPUs."
    ).tag(config=True)

    runtime_default = Unicode(
        "1h",
        help='Wall-clock limit when the user does not say ("8h", "1:30:00"); "" leaves it to the scheduler.',
    ).tag(config=True)
    runtime_min = Unicode("5m", help="Shortest run time a user may ask for.").tag(config=True)
    runtime_max = Unicode("12h", help="Longest run time a user may ask for.").tag(config=True)

    queue_choices = List(
        Unicode(),
        default_value=[],
        help="Queues (SGE) or partitions (Slurm) a user may choose from. Empty with "
        "queue in fields: any name matching the safe name pattern is accepted.",
    ).tag(config=True)
    queue_default = Unicode(
        "",
        help='Queue used when none is chosen; "" means the first choice, else the scheduler default.',
    ).tag(config=True)

    project_choices = List(
        Unicode(),
        default_value=[],
        help="Projects (SGE) or accounts (Slurm) a user may choose from. Empty with "
        "project in fields: any name matching the safe name pattern is accepted.",
    ).tag(config=True)
    project_default = Unicode(
        "", help='Project used when the user does not choose; "" means the first choice, or none.'
    ).tag(config=True)

    queue_limits = Dict(
        default_value={},
        help="Per-queue overrides of the limits and defaults above, by queue name, e.g. "
        '{"gpu": {"gpus_max": 4, "cores_max": 32, "runtime_max": "48h"}}. Keys: '
        "<field>_min, <field>_max, <field>_default for cores, memory, gpus, runtime.",
    ).tag(config=True)

    profiles = List(
        Dict(),
        default_value=[],
        help="Named presets shown as choices above the fields, in order; the first is the "
        'default. Each is a dict: {"name": "gpu", "display_name": "GPU", "description": '
        '"for deep learning", "cores": 4, "memory": "16G", "gpus": 1, "runtime": "4h", '
        '"queue": "gpu"}. Values are checked against the limits (of the profile\'s queue) '
        "when the form is first used. Empty: the form shows the fields only.",
    ).tag(config=True)

    allow_advanced = Bool(
        True,
        help='With profiles: also offer an "Advanced" choice that shows the individual '
        "fields, within the limits. False: users can only pick a profile.",
    ).tag(config=True)

    @validate("fields")
    def _check_fields(self, proposal: dict[str, Any]) -> list[str]:
        unknown = [f for f in proposal["value"] if f not in FIELDS]
        if unknown:
            raise ConfigError(f"ResourceForm.fields: unknown {unknown}; known fields: {', '.join(FIELDS)}")
        return list(proposal["value"])

    # --- derived views ------------------------------------------------------
    def label(self, field: str) -> str:
        default = {"gpus": "GPUs", "runtime": "Run time"}.get(field, field.capitalize())
        return self.labels.get(field, default)

    def choices(self, field: str) -> list[str]:
        return list(self.queue_choices if field == "queue" else self.project_choices)

    def default_name(self, field: str) -> str | None:
        """The queue or project used when the user names none."""
        default = self.queue_default if field == "queue" else self.project_default
        choices = self.choices(field)
        if default:
            return default
        return choices[0] if choices else None

    def limits(self, queue: str | None = None) -> dict[str, Range]:
        """The ranges that apply on ``queue`` (base limits plus its overrides)."""
        raw: dict[str, Any] = {key: getattr(self, key) for key in _LIMIT_KEYS}
        override = self.queue_limits.get(queue, {}) if queue else {}
        if not isinstance(override, Mapping):
            raise ConfigError(f"ResourceForm.queue_limits[{queue!r}] must be a dict")
        unknown = set(override) - _LIMIT_KEYS
        if unknown:
            raise ConfigError(
                f"ResourceForm.queue_limits[{queue!r}]: unknown keys {sorted(unknown)}; "
                f"allowed: {', '.join(sorted(_LIMIT_KEYS))}"
            )
        raw.update(override)
        ranges = {}
        for field in NUMERIC_FIELDS:
            parse = _PARSERS[field]
            try:
                low, high = parse(raw[f"{field}_min"]), parse(raw[f"{field}_max"])
                default_raw = raw[f"{field}_default"]
                default = None if default_raw in ("", None) else parse(default_raw)
            except ValueError as e:
                where = f"queue_limits[{queue!r}]" if queue in self.queue_limits else "ResourceForm"
                raise ConfigError(f"{where}: bad {field} limit ({e})") from None
            if low > high or (default is not None and not low <= default <= high):
                raise ConfigError(
                    f"ResourceForm: {field} needs min <= default <= max"
                    + (f" on queue {queue!r}" if queue else "")
                    + f", got {raw[f'{field}_min']!r}, {raw[f'{field}_default']!r}, {raw[f'{field}_max']!r}"
                )
            ranges[field] = Range(field, low, high, default)
        return ranges

    def profile_list(self) -> list[Profile]:
        """The configured profiles, checked: a bad profile is a ConfigError
        naming it, found the first time the form is shown or used."""
        result = []
        seen: set[str] = set()
        for number, item in enumerate(self.profiles, 1):
            name = str(item.get("name", ""))
            if not PROFILE_NAME_PATTERN.fullmatch(name) or name == ADVANCED or name in seen:
                raise ConfigError(
                    f"ResourceForm.profiles[{number}]: needs a unique name of letters, digits, "
                    f"'_', '.', '-' (not {ADVANCED!r}), got {name!r}"
                )
            seen.add(name)
            values = {k: v for k, v in item.items() if k in FIELDS}
            unknown = set(item) - set(FIELDS) - {"name", "display_name", "description"}
            if unknown:
                raise ConfigError(f"ResourceForm.profiles[{name!r}]: unknown keys {sorted(unknown)}")
            display, description = str(item.get("display_name") or name), str(item.get("description", ""))
            profile = Profile(name, display, description, values)
            try:
                resolve_values(self, values, from_user=False)
            except OptionsError as e:
                raise ConfigError(f"ResourceForm.profiles[{name!r}]: {e}") from None
            result.append(profile)
        return result


# --- parsing ---------------------------------------------------------------
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
    return result


def _name(form: ResourceForm, field: str, value: object, from_user: bool) -> str | None:
    choices = form.choices(field)
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
    limits = form.limits(queue)
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
            parsed = _PARSERS[field](value)
        except TooLarge:
            raise OptionsError(
                field,
                value,
                f"choose {allowed.describe()}",
                f"{field}: {shown(value)} is too large; the most is {allowed.most()}",
            ) from None
        except ValueError:
            raise OptionsError(field, value, f"give {_HINTS[field]}, in {allowed.describe()}") from None
        numbers[field] = allowed.check(parsed, value)
    return ResourceRequest(
        cores=int(numbers["cores"] or 0),
        memory_mb=numbers["memory"],
        gpus=int(numbers["gpus"] or 0),
        runtime_s=numbers["runtime"],
        queue=queue,
        project=project,
    )


def choose_profile(form: ResourceForm, values: Mapping[str, Any]) -> Profile | None:
    """The profile a request selects, or ``None`` for the individual fields."""
    profiles = form.profile_list()
    name = values.get("profile")
    if not profiles:
        if name is not None and name != ADVANCED:
            raise OptionsError("profile", name, "this site offers no profiles; set the fields instead")
        return None
    if name is None:
        given = [f for f in FIELDS if f in values]
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
            given = [f for f in FIELDS if f in values]
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
        return resolve_values(form, profile.values, from_user=False)
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
