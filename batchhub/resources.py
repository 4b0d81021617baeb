"""What a user may ask for: the admin's resource form.

``ResourceForm`` holds the admin's choices (which fields the form shows,
defaults, limits, queue and project choices, per-queue limits, named
profiles) as traitlets, so a site configures it in ``jupyterhub_config.py``
as ``c.ResourceForm.cores_max = 32``. ``batchhub.options`` checks each
request against it; ``batchhub.form`` shows it as HTML.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from traitlets import Bool, Dict, Int, List, Unicode, validate
from traitlets.config import LoggingConfigurable

from .jobs import ConfigError
from .units import format_memory, format_runtime, parse_count, parse_memory, parse_runtime

#: Every field the form knows, in the order the form shows them.
FIELDS: tuple[str, ...] = ("queue", "project", "cores", "memory", "gpus", "runtime")
NUMERIC_FIELDS: tuple[str, ...] = ("cores", "memory", "gpus", "runtime")
#: The profile choice that shows the individual fields.
ADVANCED = "advanced"

#: Queue, partition, project and account names: a letter or digit first (so
#: a name can never look like a command-line option), then a small safe set.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@+-]{0,63}")
PROFILE_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")

#: Between the ends of a range, as in "1\u201316 cores".
DASH = "\u2013"
FIELD_UNITS = {"cores": ("core", "cores"), "gpus": ("GPU", "GPUs")}

#: How each numeric field is read and written, in its base unit.
PARSERS = {"cores": parse_count, "gpus": parse_count, "memory": parse_memory, "runtime": parse_runtime}
FORMATS = {"cores": str, "gpus": str, "memory": format_memory, "runtime": format_runtime}


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
        fmt = FORMATS[self.field]
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
        return FORMATS[self.field](self.high)


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
            parse = PARSERS[field]
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
        # the parsing builds on this module, so it is imported here, not at the top
        from .options import OptionsError, resolve_values

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


#: Names that moved to ``batchhub.options`` and ``batchhub.units``, still
#: importable from here (``from batchhub.resources import parse_options``).
_MOVED = {
    "options": (
        "IGNORED_KEYS",
        "OptionsError",
        "choose_profile",
        "describe_request",
        "normalize",
        "options_from_form",
        "parse_options",
        "resolve_values",
        "shown",
    ),
    "units": ("MAX_COUNT", "MAX_MEMORY_MB", "MAX_RUNTIME_S", "TooLarge"),
}


def __getattr__(name: str) -> Any:
    # on demand: batchhub.options imports this module, so this one cannot import it first
    for module, names in _MOVED.items():
        if name in names:
            import importlib

            return getattr(importlib.import_module(f"{__package__}.{module}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
