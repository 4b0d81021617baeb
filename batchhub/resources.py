"""What a user may ask for: the admin's resource form.

``ResourceForm`` holds the admin's choices (which fields the form shows,
defaults, limits, queue and project choices, per-queue limits, named
profiles) as traitlets, so a site configures it in ``jupyterhub_config.py``
as ``c.ResourceForm.cores_max = 32``. ``batchhub.options`` checks each
request against it; ``batchhub.form`` shows it as HTML.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from traitlets import Bool, Callable, Dict, Int, List, Unicode, Union, validate
from traitlets.config import LoggingConfigurable

from .jobs import EMAIL_RE, ConfigError
from .units import format_memory, format_runtime, parse_count, parse_memory, parse_runtime

#: Every field the form knows, in the order the form shows them.
FIELDS: tuple[str, ...] = (
    "queue",
    "project",
    "pe",
    "nodes",
    "tasks_per_node",
    "cores",
    "memory",
    "gpus",
    "runtime",
    "email",
)
NUMERIC_FIELDS: tuple[str, ...] = ("cores", "memory", "gpus", "runtime", "nodes", "tasks_per_node")
#: Fields a user may set whichever profile is chosen: they are about the
#: user, not the resources.
PERSONAL_FIELDS: tuple[str, ...] = ("email",)
#: ``project_limits`` key for every project not listed (and for no project).
OTHER_PROJECTS = "*"
#: The profile choice that shows the individual fields.
ADVANCED = "advanced"

#: Queue, partition, project and account names: a letter or digit first (so
#: a name can never look like a command-line option), then a small safe set.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@+-]{0,63}")
PROFILE_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")

#: Between the ends of a range, as in "1\u201316 cores".
DASH = "\u2013"
FIELD_UNITS = {
    "cores": ("core", "cores"),
    "gpus": ("GPU", "GPUs"),
    "nodes": ("node", "nodes"),
    "tasks_per_node": ("task per node", "tasks per node"),
}

#: How each numeric field is read and written, in its base unit.
PARSERS = {
    "cores": parse_count,
    "gpus": parse_count,
    "memory": parse_memory,
    "runtime": parse_runtime,
    "nodes": parse_count,
    "tasks_per_node": parse_count,
}
FORMATS = {
    "cores": str,
    "gpus": str,
    "memory": format_memory,
    "runtime": format_runtime,
    "nodes": str,
    "tasks_per_node": str,
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
        fmt = FORMATS[self.field]
        if self.field in FIELD_UNITS:
            word = FIELD_UNITS[self.field][self.high != 1]
            if self.low == self.high:
                return f"{self.low} {word}"
            return f"{self.low}{DASH}{self.high} {word}"
        if self.low == self.high:
            return fmt(self.low)
        return f"{fmt(self.low)}{DASH}{fmt(self.high)}"

    def allows(self, value: int) -> bool:
        return self.low <= value <= self.high

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
        help="Fields the form shows, from: queue, project, pe, nodes, tasks_per_node, cores, "
        "memory, gpus, runtime, email. "
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

    project_limits = Dict(
        default_value={},
        help="Per-project (Slurm: per-account) overrides of the limits and defaults, by project "
        'name, e.g. {"gpu": {"gpus_max": 4}} with gpus_max = 0: GPUs only with project gpu. '
        'Same keys as queue_limits; "*" applies to every project not listed. A key set for '
        "both the queue and the project: the stricter value applies.",
    ).tag(config=True)

    pe_choices = List(
        Unicode(),
        default_value=[],
        help="Grid Engine parallel environments a user may choose from, e.g. "
        '["smp", "mpi"]; list pe in fields to offer them. The job asks for its cores '
        "with -pe <choice> <cores>. Empty: the backend's own rule (c.SGEBackend.pe).",
    ).tag(config=True)
    pe_default = Unicode(
        "", help='Parallel environment used when none is chosen; "" means the first choice, or none.'
    ).tag(config=True)

    nodes_default = Int(1, help="Slurm: nodes a job gets when the user does not say.").tag(config=True)
    nodes_min = Int(1, help="Slurm: fewest nodes a user may ask for.").tag(config=True)
    nodes_max = Int(
        1, help="Slurm: most nodes a user may ask for; set it (and list nodes in fields) to offer several."
    ).tag(config=True)
    tasks_per_node_default = Int(1, help="Slurm: tasks on each node when the user does not say.").tag(
        config=True
    )
    tasks_per_node_min = Int(1, help="Slurm: fewest tasks per node a user may ask for.").tag(config=True)
    tasks_per_node_max = Int(
        1,
        help="Slurm: most tasks per node a user may ask for; cores is then the cores of each task.",
    ).tag(config=True)

    email_default = Unicode(
        "",
        help="Address the scheduler mails when a job ends or fails, for users who give none: "
        'an address or a pattern such as "{username}@example.org". "" (the default): no mail '
        "unless the user gives an address (list email in fields) or email_from_auth finds one.",
    ).tag(config=True)
    email_from_auth = Union(
        [Unicode(), Callable()],
        default_value="",
        help="Where the user's own address comes from, before email_default: a key of the "
        'authenticator\'s auth_state ("email", or a dotted path such as "oauth_user.email"), '
        "or a callable (username, auth_state) -> address or None (it may be async). An "
        "address that fails the check is ignored (and logged). It fills the form's email field.",
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
        default = {
            "gpus": "GPUs",
            "runtime": "Run time",
            "pe": "Parallel environment",
            "tasks_per_node": "Tasks per node",
        }.get(field, field.capitalize())
        return self.labels.get(field, default)

    def choices(self, field: str) -> list[str]:
        by_field = {"queue": self.queue_choices, "project": self.project_choices, "pe": self.pe_choices}
        return list(by_field.get(field, []))

    def default_name(self, field: str) -> str | None:
        """The queue, project or parallel environment used when the user
        names none; for ``email``, the user's default address."""
        if field == "email":
            return self.default_email()
        default = {"queue": self.queue_default, "pe": self.pe_default}.get(field, self.project_default)
        choices = self.choices(field)
        if default:
            return default
        return choices[0] if choices else None

    def _override(self, option: str, name: str | None) -> Mapping[str, Any]:
        """The overrides ``queue_limits`` or ``project_limits`` holds for ``name``."""
        table = getattr(self, option)
        if option == "project_limits" and name not in table:
            name = OTHER_PROJECTS
        override = table.get(name, {}) if name else {}
        if not isinstance(override, Mapping):
            raise ConfigError(f"ResourceForm.{option}[{name!r}] must be a dict")
        unknown = set(override) - _LIMIT_KEYS
        if unknown:
            raise ConfigError(
                f"ResourceForm.{option}[{name!r}]: unknown keys {sorted(unknown)}; "
                f"allowed: {', '.join(sorted(_LIMIT_KEYS))}"
            )
        return override

    def _ranges(self, override: Mapping[str, Any], where: str) -> dict[str, Range]:
        """The base limits with ``override`` applied, checked."""
        raw: dict[str, Any] = {key: getattr(self, key) for key in _LIMIT_KEYS}
        raw.update(override)
        ranges = {}
        for field in NUMERIC_FIELDS:
            parse = PARSERS[field]
            try:
                low, high = parse(raw[f"{field}_min"]), parse(raw[f"{field}_max"])
                default_raw = raw[f"{field}_default"]
                default = None if default_raw in ("", None) else parse(default_raw)
            except ValueError as e:
                raise ConfigError(f"{where or 'ResourceForm'}: bad {field} limit ({e})") from None
            if low > high or (default is not None and not low <= default <= high):
                raise ConfigError(
                    f"ResourceForm: {field} needs min <= default <= max"
                    + (f" in {where}" if where else "")
                    + f", got {raw[f'{field}_min']!r}, {raw[f'{field}_default']!r}, {raw[f'{field}_max']!r}"
                )
            ranges[field] = Range(field, low, high, default)
        return ranges

    def limits(self, queue: str | None = None, project: str | None = None) -> dict[str, Range]:
        """The ranges that apply on ``queue`` for ``project``: the base
        limits, the queue's overrides and the project's. A limit both set:
        the stricter; a default both set: the project's, kept in range."""
        by_queue = self._override("queue_limits", queue)
        queue_ranges = self._ranges(by_queue, f"queue_limits[{queue!r}]" if by_queue else "")
        if project is None and OTHER_PROJECTS not in self.project_limits:
            return queue_ranges
        by_project = self._override("project_limits", project)
        if not by_project:
            return queue_ranges
        key = project if project in self.project_limits else OTHER_PROJECTS
        project_ranges = self._ranges(by_project, f"project_limits[{key!r}]")
        ranges = {}
        for field, r in queue_ranges.items():
            p = project_ranges[field]
            low, high, default = r.low, r.high, r.default
            if f"{field}_min" in by_project:
                low = max(low, p.low) if f"{field}_min" in by_queue else p.low
            if f"{field}_max" in by_project:
                high = min(high, p.high) if f"{field}_max" in by_queue else p.high
            if f"{field}_default" in by_project:
                default = p.default
            if default is not None and low <= high:
                default = min(max(default, low), high)
            ranges[field] = Range(field, low, high, default)
        return ranges

    def granting_projects(self, field: str, value: int, queue: str | None) -> list[str]:
        """The projects (of the choices, else of ``project_limits``) whose
        limits on ``queue`` allow ``value`` for ``field``."""
        names = self.project_choices or [p for p in self.project_limits if p != OTHER_PROJECTS]
        return [p for p in names if self.limits(queue, p)[field].allows(value)]

    # --- the user's mail address ---------------------------------------------
    #: The address ``email_from_auth`` found for this form's user, once
    #: ``learn_user`` ran (the spawner calls it with the auth_state).
    user_email: str | None = None
    username: str = ""

    async def learn_user(self, username: str, auth_state: Mapping[str, Any] | None) -> None:
        """Find the user's address from the authenticator's ``auth_state``
        (``email_from_auth``): kept as this form's email default."""
        self.username = username
        source = self.email_from_auth
        found: Any = None
        if callable(source):
            found = source(username, auth_state)
            if inspect.isawaitable(found):
                found = await found
        elif source:
            found = auth_state or {}
            for part in source.split("."):
                found = found.get(part) if isinstance(found, Mapping) else None
        if found in (None, ""):
            self.user_email = None
        elif isinstance(found, str) and EMAIL_RE.fullmatch(found.strip()):
            self.user_email = found.strip()
        else:
            self.log.warning("batchhub: email_from_auth gave %s the unusable %r: ignored", username, found)
            self.user_email = None

    def _username(self) -> str:
        user = getattr(self.parent, "user", None)
        return self.username or str(getattr(user, "name", "") or "")

    def default_email(self) -> str | None:
        """The address a job mails when the user gives none, or ``None``."""
        if self.user_email:
            return self.user_email
        if not self.email_default:
            return None
        try:
            address = self.email_default.format(username=self._username())
        except (KeyError, IndexError, ValueError) as e:
            raise ConfigError(
                f"ResourceForm.email_default {self.email_default!r}: only {{username}} may be used ({e})"
            ) from None
        if EMAIL_RE.fullmatch(address):
            return address
        if not self._username() and "{username}" in self.email_default:
            return None  # no user yet (the form checked before a spawn)
        raise ConfigError(
            f"ResourceForm.email_default {self.email_default!r} gives {address!r}, which is not a "
            "plain mail address (one @, no spaces, quotes or commas)"
        )

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
