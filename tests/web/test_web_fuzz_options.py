"""Hostile option values, tried as every field through both ways a hub takes them.

A user controls every value of a resource request: REST ``user_options``
(any JSON) and the spawn form (or ``opt-`` query parameters: lists of
strings). This fuzz draws hostile values (line breaks and other control
characters, the directive prefixes, shell metacharacters, quotes,
``$(...)``, backticks, huge and odd numbers, Unicode digits, units, very
long strings, lists, objects, ``null`` and booleans, extra keys) and tries
EACH value as EACH field of the options, through the REST path and the
form path, on EACH backend (Grid Engine, Slurm, the fake), running the
spawner's own code in the order JupyterHub runs it:

- REST: the body through JSON as the hub decodes it, ``user_options`` set
  from it, JupyterHub's ``_run_apply_user_options`` (which calls
  ``apply_user_options``, i.e. ``resource_request()``), the pre-spawn hook,
  then ``start()``, which validates again, builds the spec and renders the
  script, up to its first command (the test runner refuses it, so nothing
  runs and the script is taken from ``render_script``);
- form: ``run_options_from_form(formdata)`` with the value in the field,
  ``user_options`` set from its answer, then the same.

Every attempt must end in one of two ways:

- a clean refusal: a ``SpawnException`` with status 400 whose message is
  one line, names a field (or the unknown key) of the request and holds no
  traceback; nothing else (JupyterHub would turn any other exception into
  "Invalid user options", and log a traceback);
- a script whose directive block holds only lines of the exact shapes the
  backend emits, with values within the form's limits for the chosen
  queue and equal to the validated request, and in which no other line
  (at any kind of line break, after any whitespace) starts with any
  directive prefix.

A form value the form refuses raises ``OptionsError`` naming the field:
JupyterHub shows the form again with the message. What this fuzz found
(names a backend cannot take reaching ``start()``; the fake blaming the
admins for a user's name) is fixed, and kept below as the smallest cases.
See docs/security.md.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import math
import pwd
import re
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jupyterhub.objects import Hub
from tornado.web import HTTPError
from traitlets.config import Config

from batchhub.jobs import Command, CommandResult, ResourceRequest
from batchhub.options import OptionsError, shown
from batchhub.resources import NAME_PATTERN, Range, ResourceForm
from batchhub.spawner import BatchSpawner, SpawnException
from batchhub.testing import missing
from batchhub.testing.polling import shared_runner, stop_monitors

#: Values drawn; each is tried as every field, through both paths, on every backend.
EXAMPLES = 5000
BACKENDS = ("sge", "slurm", "fake")
PATHS = ("rest", "form")
#: The fields of the options: the form's six and the profile choice.
FIELDS = ("queue", "project", "cores", "memory", "gpus", "runtime", "profile")
USER = "alice"  # a real test user: the spawner looks up her home directory
REFUSED = "Your resource request was refused: "
PREFIXES = ("#$", "#SBATCH", "#FAKE")

PROFILES = [
    {"name": "small", "display_name": "Small", "cores": 1, "memory": "2G", "runtime": "1h"},
    {
        "name": "gpu",
        "display_name": "GPU",
        "cores": 4,
        "memory": "16G",
        "gpus": 1,
        "runtime": "4h",
        "queue": "gpu",
    },
]


#: A site that lets users set every field: free queue and project names (the
#: hardest case: no list of choices), a queue with wider limits, profiles
#: with "Advanced". ``c.ResourceForm.<key> = <value>``.
SITE: dict[str, Any] = {
    "fields": ["queue", "project", "cores", "memory", "gpus", "runtime"],
    "cores_min": 1,
    "cores_default": 1,
    "cores_max": 16,
    "memory_min": "256M",
    "memory_default": "2G",
    "memory_max": "64G",
    "gpus_min": 0,
    "gpus_default": 0,
    "gpus_max": 2,
    "runtime_min": "5m",
    "runtime_default": "1h",
    "runtime_max": "12h",
    "queue_limits": {"gpu": {"gpus_max": 4, "cores_max": 32, "memory_max": "256G", "runtime_max": "2d"}},
    "profiles": PROFILES,
    "allow_advanced": True,
}


def site_config(backend: str) -> Config:
    c = Config()
    c.BatchSpawner.backend = backend
    for key, value in SITE.items():
        setattr(c.ResourceForm, key, value)
    return c


# --- the spawners ------------------------------------------------------------------
@dataclass
class StandInUser:
    """What of JupyterHub's ``User`` a spawner reads before it submits."""

    name: str

    @property
    def url(self) -> str:
        return f"/user/{self.name}/"

    @property
    def escaped_name(self) -> str:
        return self.name


#: JupyterHub logs every refused request with its traceback: thousands here.
QUIET = logging.getLogger("batchhub.tests.fuzz")
QUIET.disabled = True


class NoCommands:
    """The hub's command runner for this test: refuses every command, so
    ``start()`` stops at its first one (writing the token file), after the
    script is rendered. Records what it was asked to run."""

    def __init__(self) -> None:
        self.asked: Counter[str] = Counter()

    async def run(self, command: Command) -> CommandResult:
        self.asked[command.argv[0]] += 1
        return CommandResult(command, 1, stderr="no commands in this test")


def make_spawner(backend: str) -> BatchSpawner:
    spawner = BatchSpawner(user=StandInUser(USER), hub=Hub(), config=site_config(backend), log=QUIET)
    spawner.api_token = "token-never-in-a-script"
    rendered: list[str] = []
    original = spawner.render_script

    def spy(spec):  # the real renderer, keeping what it returned
        rendered.append(original(spec))
        return rendered[-1]

    spawner.render_script = spy  # type: ignore[method-assign]
    spawner.rendered = rendered  # type: ignore[attr-defined]
    return spawner


# --- hostile values --------------------------------------------------------------------
BREAKS = [
    "\n",
    "\r",
    "\r\n",
    "\x0b",
    "\x0c",
    "\x1c",
    "\x1d",
    "\x1e",
    "\x85",
    "\u2028",
    "\u2029",
    "\x00",
    "\t",
]
CONTROLS = [
    "\x07",
    "\x1b[31m",
    "\x7f",
    "\x9b",
    "\u200b",
    "\u202e",
    "\ufeff",
    "\xa0",
    "\u3000",
    "\ud800",
    "\udfff",
]
SHELL = [*";&|$`'\"\\<>(){}[]*?~!#=,@+-:%/ ", "&&", "||", "..", "--", "-", "*.q", "%j", "%x", "\\n"]
SUBST = ["$(touch pwned)", "`touch pwned`", "${IFS}", "$HOME", "$'\\n'", "$((1<<62))", "<(id)", "'$(id)'"]
DIRECTIVES = [
    "-l h_rt=99:00:00,h_vmem=999G",
    "-q any.q",
    "-pe smp 64",
    "-t 1-1000",
    "-u root",
    "-V",
    "--time=99:00:00",
    "--cores=64",
    "--mem=999G",
    "--export=ALL",
    "--array=1-1000",
    "--partition=any",
]


@dataclass(frozen=True)
class Huge:
    """10**(digits-1), negated or not: made only when tried, since neither
    hypothesis nor pytest can print an integer of more than 4300 digits."""

    digits: int
    negative: bool = False

    def number(self) -> int:
        return (-1 if self.negative else 1) * 10 ** (self.digits - 1)


def materialize(value: Any) -> Any:
    if isinstance(value, Huge):
        return value.number()
    if isinstance(value, list):
        return [materialize(v) for v in value]
    if isinstance(value, dict):
        return {k: materialize(v) for k, v in value.items()}
    return value


NUMBERS: list[Any] = [
    1e306,
    -1e306,
    1.7e308,
    Huge(401),
    Huge(401, negative=True),
    Huge(4300),  # the most digits JSON still decodes
    Huge(5001),  # more than JSON decodes: the hub itself answers 400
    Huge(5001, negative=True),
    2**63,
    2**64 + 1,
    -1,
    0,
    -0.0,
    0.5,
    1.5,
    5e-324,
    1e-300,
    float("nan"),
    float("inf"),
    float("-inf"),
    16,
    17,
    32,
    33,
    2,
    4,
    64,
]
TEXT_NUMBERS = [
    "1e306",
    "1e400",
    "-1",
    "+4",
    "NaN",
    "nan",
    "inf",
    "Infinity",
    "-inf",
    "0",
    "00",
    "04",
    "4.",
    ".5",
    "4.0",
    "1_000",
    "0x10",
    "0o10",
    "0b10",
    "1e3",
    "1E3",
    "9" * 30,
    "1" * 4301,
    "9" * 5000,
    "4" * 100 + "G",
    "\u22121",  # minus sign
]
UNICODE_DIGITS = [
    "\uff14",  # fullwidth 4
    "\u0663",  # Arabic-Indic 3
    "\u06f4",
    "\u096a",  # Devanagari 4
    "\u09ea",
    "\u0e54",
    "\U0001d7d2",  # mathematical bold 4
    "\u00b2",  # superscript 2: a digit to isdigit(), not to int()
    "\u00bd",
    "\u2163",  # roman numeral four
    "\u2460",
    "\u0664G",
    "\uff14G",
    "\uff11:\uff13\uff10",
    "\u0662h",
    "\u0661-\u0660",
]
UNITS = [
    "4G",
    "4 G",
    "4GB",
    "4gb",
    "4GiB",
    "4 GiB",
    "4g ",
    " 4",
    "4K",
    "4P",
    "4T",
    "4X",
    "256M",
    "255M",
    "64G",
    "65G",
    "256G",
    "257G",
    "0.25G",
    "1.5T",
    "4h",
    "4 h",
    "4:00",
    "4:00:00",
    "12:00:00",
    "12:00:01",
    "12h",
    "13h",
    "5m",
    "4m59s",
    "2d",
    "3d",
    "1-00:00:00",
    "99-23:59:59",
    "999d",
    "1w",
    "90min",
    "1h 30m",
    "1:60",
]
NAMES = [
    "gpu",
    "short",
    "all.q",
    "all.q@node1",
    "a+b",
    "a@b",
    "chem",
    "gpu ",
    " gpu",
    "GPU",
    "-V",
    "-q",
    "--partition=x",
    "*",
    "all.q,other.q",
    "a" * 64,
    "a" * 65,
    "x" * 10000,
    "",
    " ",
    "advanced",
    "small",
    "Small",
    "small\n",
    "é",
    "\u65e5\u672c",
    "null",
    "None",
    "true",
    "[]",
    "{}",
]
COMPOUND: list[Any] = [
    None,
    True,
    False,
    [],
    [None],
    [""],
    ["4"],
    [4],
    ["1", "2"],
    [[4]],
    [{"cores": 4}],
    {},
    {"cores": 4},
    {"$ne": None},
    {"__proto__": {"admin": True}},
    [Huge(401)],
    [Huge(5001), 1],
    {"a": Huge(5001)},
    ["4G", "#$ -q x"],
]

PIECES = (
    BREAKS + CONTROLS + SHELL + SUBST + list(PREFIXES) + [f"{p} {d}" for p in PREFIXES for d in DIRECTIVES]
)
CURATED: list[Any] = [
    *NUMBERS,
    *TEXT_NUMBERS,
    *UNICODE_DIGITS,
    *UNITS,
    *NAMES,
    *COMPOUND,
    *(f"x{b}{p} {d}" for b in ("\n", "\r", "\u2028") for p in PREFIXES for d in DIRECTIVES[:3]),
    *(
        f"{v}{b}{p} {d}"
        for v in ("4", "4G", "2h", "gpu")
        for b in BREAKS
        for p in PREFIXES
        for d in DIRECTIVES[::4]
    ),
    *(f"{v}{s}" for v in ("4", "4G", "2h", "gpu") for s in SUBST),
    *(f"{v}{s}" for v in ("4", "4G", "2h", "gpu") for s in SHELL),
]
#: Keys beside the field: near-misses of field names, JupyterHub's own words, tricks.
EXTRA_KEYS = [
    "Cores",
    "cores ",
    " cores",
    "CORES",
    "core",
    "cpus",
    "mem",
    "user_options",
    "__proto__",
    "constructor",
    "cores_file",
    "opt-cores",
    "_xsrf",
    "",
    "name",
    "display_name",
    "cores\n",
    "#$ -q x",
    "--time",
    "profile",
    "memory",
    "gpus",
    "queue",
]

hostile_text = st.lists(
    st.one_of(
        st.sampled_from(PIECES),
        st.sampled_from(["4", "4G", "2h", "gpu", "16", "1:30:00", "small"]),
        st.text(max_size=6),
        st.characters(),
    ),
    min_size=1,
    max_size=8,
).map("".join)
#: Values near the limits, so that many requests are taken and their scripts checked.
plausible = st.one_of(
    st.integers(min_value=-1, max_value=70000),
    st.builds(
        lambda n, unit: f"{n}{unit}",
        st.integers(min_value=0, max_value=70000),
        st.sampled_from(["", "M", "G", "T", "GB", "gib", "h", "m", "min", "s", "d", ":00", ":30:00", "-12"]),
    ),
    st.from_regex(NAME_PATTERN, fullmatch=True),
    st.sampled_from(["gpu", "short", "small", "advanced", "chem", "all.q"]),
)
hostile_scalars = st.one_of(
    plausible,
    st.sampled_from(CURATED),
    hostile_text,
    st.integers(),
    st.integers(min_value=-3, max_value=40),
    st.floats(),
    st.builds(Huge, st.integers(1, 5001), st.booleans()),
    st.text(min_size=200, max_size=2000),
    st.booleans(),
    st.none(),
)
hostile_values = st.recursive(
    hostile_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(EXTRA_KEYS), inner, max_size=3)
    ),
    max_leaves=5,
)
#: Valid values around the hostile one, within every queue's limits.
BASES: list[dict[str, Any]] = [
    {},
    {"queue": "gpu"},
    {"cores": 2, "memory": "4G"},
    {"queue": "short", "runtime": "2h", "gpus": 1, "project": "chem"},
]


@dataclass(frozen=True)
class Case:
    value: Any
    base: Mapping[str, Any]
    extra: Mapping[str, Any]


cases = st.builds(
    Case,
    value=hostile_values,
    base=st.sampled_from(BASES),
    extra=st.one_of(st.just({}), st.dictionaries(st.sampled_from(EXTRA_KEYS), hostile_scalars, max_size=2)),
)


# --- the two paths -----------------------------------------------------------------------
def through_json(options: dict[str, Any]) -> str | None:
    """The REST body as the client sends it, if JSON can carry it (the
    hub's ``json.loads`` refuses an integer of more than 4300 digits: it
    answers 400 "Invalid JSON" itself, before any spawner code)."""
    try:
        body = json.dumps({"user_options": options})  # Python's encoder refuses such an integer too
        json.loads(body)
    except ValueError:
        return None
    return body


def form_text(value: Any) -> str:
    """One value as a browser posts it: text, UTF-8 (a lone surrogate
    cannot be encoded; it is sent as '?')."""
    if isinstance(value, str):
        text = value
    elif isinstance(value, bool):
        text = "on" if value else ""
    elif isinstance(value, int):
        text = str(value) if abs(value) < 10**4000 else ("-" if value < 0 else "") + "9" * 5000
    elif isinstance(value, float):
        text = repr(value)
    elif value is None:
        text = ""
    elif isinstance(value, list):
        text = ",".join(form_text(v) for v in value)
    else:
        text = "{" + ",".join(f"{k}:{form_text(v)}" for k, v in value.items()) + "}"
    return text.encode("utf-8", "replace").decode("utf-8")


def form_values(value: Any) -> list[str]:
    """The values of one form field: a list gives the field once per item."""
    if isinstance(value, list):
        return [form_text(v) for v in value]
    return [form_text(value)]


def request_for(case: Case, field: str) -> dict[str, Any]:
    options = {k: v for k, v in case.base.items() if field != "profile"}
    options.update({k: materialize(v) for k, v in case.extra.items() if k != field})
    options[field] = materialize(case.value)
    return options


def formdata_for(case: Case, field: str) -> dict[str, list[str]]:
    """What the spawn page posts: the fields behind "Advanced" (unless the
    profile itself is the field tried) and the hub's _xsrf."""
    data = {"_xsrf": ["2|a|b|c"]}
    if field != "profile":
        data["profile"] = ["advanced"]
        data.update({k: form_values(v) for k, v in case.base.items()})
    data.update({k: form_values(materialize(v)) for k, v in case.extra.items() if k != field})
    data[field] = form_values(materialize(case.value))
    return {k: v for k, v in data.items() if v}


# --- what a refusal and a script must look like ------------------------------------------
def names_a_key(message: str, keys: list[str]) -> bool:
    """The message names one of the request's fields, or its unknown key."""
    return any(
        message.startswith(f"{key}: ") or message.startswith(f"unknown option {shown(key)};") for key in keys
    )


def check_refusal(exc: BaseException, keys: list[str]) -> None:
    assert type(exc) is SpawnException, f"not a clean refusal: {type(exc).__name__}: {exc}"
    assert exc.status_code == 400, exc.status_code
    message = exc.jupyterhub_message
    assert message.startswith(REFUSED), message
    assert "\n" not in message and "\r" not in message and message.isprintable(), ascii(message)
    assert "Traceback" not in message and len(message) < 600, message
    assert names_a_key(message[len(REFUSED) :], keys), f"names no field of {keys}: {message}"


NUMBER = "([0-9]{1,9})"
#: The admin's names: queue and project names pass NAME_PATTERN; a backend may be stricter.
NAME = "([A-Za-z0-9][A-Za-z0-9_.@+-]{0,63})"


def shapes(backend: str, workdir: str, job_prefix: str = "batchhub") -> dict[str, re.Pattern[str]]:
    """Every directive a backend writes for this site, as a pattern of its
    whole option (after the prefix and one space), by what it sets."""
    return {what: re.compile(pattern) for what, pattern in _shapes(backend, workdir, job_prefix).items()}


def _shapes(backend: str, workdir: str, job_prefix: str) -> dict[str, str]:
    # the job's name: the hub's tag and user, maybe a digest of the server and the submission's id
    job = rf"{re.escape(job_prefix)}-{USER}(?:\.[0-9a-f]{{1,16}}){{0,2}}"
    w = re.escape(workdir)
    if backend == "sge":
        return {
            "clear": r"-clear",
            "name": rf"-N {job}",
            "shell": r"-S /bin/bash",
            "wd": rf"-wd {w}",
            "out": rf"-o {w}/job\.out",
            "err": rf"-e {w}/job\.err",
            "cores": rf"-pe smp {NUMBER}",
            "memory": rf"-l rmem={NUMBER}M",
            "gpus": rf"-l gpu={NUMBER}",
            "runtime": r"-l h_rt=([0-9]{2,3}):([0-5][0-9]):([0-5][0-9])",
            "queue": r"-q ([A-Za-z0-9][A-Za-z0-9_.@-]{0,63})",
            "project": r"-P ([A-Za-z0-9][A-Za-z0-9_.-]{0,63})",
        }
    if backend == "slurm":
        return {
            "name": rf"--job-name={job}",
            "out": rf"--output={w}/job\.out",
            "err": rf"--error={w}/job\.err",
            "nodes": r"--nodes=1",
            "ntasks": r"--ntasks=1",
            "cores": rf"--cpus-per-task={NUMBER}",
            "memory": rf"--mem={NUMBER}M",
            "gpus": rf"--gres=gpu:{NUMBER}",
            "runtime": r"--time=([0-9]{1,3})-([01][0-9]|2[0-3]):([0-5][0-9]):([0-5][0-9])",
            "queue": rf"--partition={NAME}",
            "project": rf"--account={NAME}",
            "export": r"--export=NONE",
        }
    return {
        "name": rf"--name={job}",
        "cores": rf"--cores={NUMBER}",
        "memory": rf"--mem={NUMBER}",
        "gpus": rf"--gpus={NUMBER}",
        "runtime": rf"--time={NUMBER}",
        "queue": r"--queue=([A-Za-z0-9][A-Za-z0-9_.-]{0,63})",
        "project": r"--project=([A-Za-z0-9][A-Za-z0-9_.-]{0,63})",
        "out": rf"--output={w}/job\.out",
        "err": rf"--error={w}/job\.err",
        "chdir": rf"--chdir={w}",
    }


try:
    WORKDIR = f"{pwd.getpwnam(USER).pw_dir}/.batchhub/default"
except KeyError:  # no test users here: the tests say so (scripts/create-test-users)
    WORKDIR = f"/nonexistent/{USER}/.batchhub/default"
SHAPES = {backend: shapes(backend, WORKDIR) for backend in BACKENDS}


def need_test_user() -> None:
    try:
        pwd.getpwnam(USER)
    except KeyError:
        missing(f"the test user {USER} (scripts/create-test-users)")


PREFIX = {"sge": "#$", "slurm": "#SBATCH", "fake": "#FAKE"}
ALWAYS = {
    "sge": {"clear", "name", "shell", "wd", "out", "err", "memory", "runtime"},
    "slurm": {"name", "out", "err", "nodes", "ntasks", "cores", "memory", "runtime", "export"},
    "fake": {"name", "cores", "memory", "runtime", "out", "err", "chdir"},
}


def directive_block(script: str, prefix: str) -> tuple[list[str], str]:
    """The lines right after ``#!`` that start with ``prefix``, and the rest."""
    lines = script.split("\n")
    assert lines[0] == "#!/bin/bash", lines[0]
    end = 1
    while end < len(lines) and lines[end].startswith(prefix):
        end += 1
    return lines[1:end], "\n".join(lines[end:])


def within(value: int, allowed: Range) -> bool:
    return allowed.low <= value <= allowed.high


def check_script(
    backend: str,
    script: str,
    form: ResourceForm,
    request: ResourceRequest,
    patterns: Mapping[str, re.Pattern[str]] | None = None,
) -> None:
    """Every directive line is of an allowed shape with values within the
    limits and equal to the validated request; no other line starts with a
    directive prefix."""
    prefix = PREFIX[backend]
    block, rest = directive_block(script, prefix)
    patterns = SHAPES[backend] if patterns is None else patterns
    seen: dict[str, re.Match[str]] = {}
    for line in block:
        assert len(line.splitlines()) == 1 and line.isprintable(), ascii(line)
        assert line.startswith(prefix + " "), line
        option = line[len(prefix) + 1 :]
        found = [(what, m) for what, p in patterns.items() if (m := p.fullmatch(option))]
        assert len(found) == 1, f"directive not on the allow-list: {line!r}"
        what, match = found[0]
        assert what not in seen, f"directive twice: {line!r}"
        seen[what] = match
    assert ALWAYS[backend] <= set(seen), f"missing directives {ALWAYS[backend] - set(seen)}"
    if backend == "sge":
        assert block[0] == "#$ -clear", block[0]
    # nothing outside the block may be read as a directive, at any line break, after any whitespace
    for line in rest.splitlines():
        assert not line.lstrip().startswith(PREFIXES), f"a directive outside the block: {line!r}"
    for line in script.splitlines():
        if line.lstrip().startswith(PREFIXES):
            assert line in block, f"a directive line not in the block: {line!r}"

    # the values: the validated request's, within the limits of its queue
    queue = seen["queue"].group(1) if "queue" in seen else None
    project = seen["project"].group(1) if "project" in seen else None
    limits = form.limits(queue)
    cores = int(seen["cores"].group(1)) if "cores" in seen else 1
    gpus = int(seen["gpus"].group(1)) if "gpus" in seen else 0
    per = int(seen["memory"].group(1))
    if backend == "sge":
        assert "cores" not in seen or cores > 1, "-pe smp 1 is not written for one core"
        low, high = math.ceil(limits["memory"].low / cores), math.ceil(limits["memory"].high / cores)
        assert low <= per <= high, (per, cores, limits["memory"])
        assert per == math.ceil(request.memory_mb / cores)
        h, m, s = (int(g) for g in seen["runtime"].groups())
        runtime = h * 3600 + m * 60 + s
    elif backend == "slurm":
        assert within(per, limits["memory"]) and per == request.memory_mb, per
        d, h, m, s = (int(g) for g in seen["runtime"].groups())
        runtime = d * 86400 + h * 3600 + m * 60 + s
    else:
        assert within(per, limits["memory"]) and per == request.memory_mb, per
        runtime = int(seen["runtime"].group(1))
    assert within(cores, limits["cores"]) and cores == request.cores, (cores, limits["cores"])
    assert within(gpus, limits["gpus"]) and gpus == request.gpus, (gpus, limits["gpus"])
    assert within(runtime, limits["runtime"]) and runtime == request.runtime_s, (runtime, limits["runtime"])
    assert (queue, project) == (request.queue, request.project)
    for name in (queue, project):
        assert name is None or NAME_PATTERN.fullmatch(name), name
    assert "token-never-in-a-script" not in script


# --- names a backend takes fewer of than the form: refused before the spawn (400) -----------
def sge_narrower_names(backend: str, request: ResourceRequest | None) -> bool:
    """Grid Engine's backend takes fewer characters than the form lets
    through (no '@' or '+' in a project, no '+' in a queue)."""
    if backend != "sge" or request is None:
        return False
    return "+" in (request.queue or "") or bool(set("@+") & set(request.project or ""))


def fake_narrower_names(backend: str, request: ResourceRequest | None) -> bool:
    """The fake scheduler takes no '@' or '+' in a queue or project name."""
    names = (request.queue or "") + (request.project or "") if request is not None else ""
    return backend == "fake" and bool(set("@+") & set(names))


# --- one attempt ----------------------------------------------------------------------------
async def attempt(
    spawner: BatchSpawner,
    backend: str,
    path: str,
    sent: str | dict[str, list[str]] | None,
    stats: Counter[str],
) -> None:
    """One request (a REST body, or form data) to one spawner, as the hub runs it."""
    spawner.rendered.clear()  # type: ignore[attr-defined]
    if path == "rest":
        if sent is None:
            stats["refused by the hub's JSON decoder"] += 1
            return
        assert isinstance(sent, str)
        options = json.loads(sent)["user_options"]  # the hub's decoding, fresh for each spawner
    else:
        assert isinstance(sent, dict)
        formdata = {k: list(v) for k, v in sent.items()}
        try:
            options = spawner.run_options_from_form(formdata)
        except OptionsError as exc:  # the hub shows the form again with this message
            assert exc.field in formdata or exc.field == "options", exc.field
            check_refusal(
                SpawnException(REFUSED + str(exc), reason="bad_options", status_code=400), list(formdata)
            )
            stats["refused: form, shown again"] += 1
            return
        except Exception as exc:
            check_refusal(exc, list(formdata))
            stats["refused: form"] += 1
            return
    keys = list(options)
    spawner.user_options = options
    try:
        await spawner._run_apply_user_options(spawner.user_options)  # JupyterHub's own step
    except HTTPError as exc:
        check_refusal(exc, keys)
        stats[f"refused: {path}"] += 1
        return
    hooked = spawner.run_pre_spawn_hook()  # the account check, as the hub runs it next
    if inspect.isawaitable(hooked):
        await hooked
    request = spawner.resource_request()
    try:
        await spawner.start()
    except SpawnException as exc:
        if exc.reason == "workdir" and spawner.rendered:  # type: ignore[attr-defined]
            script = spawner.rendered[-1]  # type: ignore[attr-defined]
        else:
            raise AssertionError(
                f"{backend}, {path} {options!r}: start() failed: {exc.reason}: {exc}"
            ) from None
    else:
        raise AssertionError("start() ran a command the test runner refused")
    assert not sge_narrower_names(backend, request) and not fake_narrower_names(backend, request)
    check_script(backend, script, spawner.resource_form, request)
    stats[f"rendered: {backend}"] += 1


def test_hostile_option_values_are_refused_or_render_only_allowed_directives(capsys, record_property) -> None:
    need_test_user()
    loop = asyncio.new_event_loop()
    stats: Counter[str] = Counter()
    runner = NoCommands()
    started = time.monotonic()
    with shared_runner(runner):
        spawners = {backend: make_spawner(backend) for backend in BACKENDS}

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(case=cases)
        def fuzz(case: Case) -> None:
            stats["values"] += 1

            async def every_way() -> None:
                for field in FIELDS:
                    sent = {"rest": through_json(request_for(case, field)), "form": formdata_for(case, field)}
                    for backend, spawner in spawners.items():
                        for path in PATHS:
                            stats["attempts"] += 1
                            await attempt(spawner, backend, path, sent[path], stats)

            loop.run_until_complete(every_way())

        try:
            fuzz()
        finally:
            loop.run_until_complete(stop_monitors())
            loop.close()
    seconds = time.monotonic() - started
    summary = ", ".join(f"{k}: {v}" for k, v in sorted(stats.items()))
    record_property("fuzz_values", stats["values"])
    record_property("fuzz_attempts", stats["attempts"])
    with capsys.disabled():
        print(f"\nfuzz of option values: {summary} ({seconds:.1f} s)")
    assert stats["values"] >= EXAMPLES, summary
    assert stats["attempts"] == stats["values"] * len(BACKENDS) * len(PATHS) * len(FIELDS)
    # every kind of outcome happened: the fuzz reaches both ends
    assert all(stats[f"rendered: {b}"] > 0 for b in BACKENDS), summary
    assert stats["refused: rest"] > 0 and stats["refused: form, shown again"] + stats["refused: form"] > 0
    # nothing ran: no token file, no submission
    assert set(runner.asked) <= {"batchhub-singleuser"}, runner.asked


# --- what the fuzz found, each as its smallest case ----------------------------------------------
@pytest.fixture
def spawners() -> Iterator[dict[str, BatchSpawner]]:
    need_test_user()
    loop = asyncio.new_event_loop()
    with shared_runner(NoCommands()):
        made = {backend: make_spawner(backend) for backend in BACKENDS}
        made["loop"] = loop  # type: ignore[assignment]
        yield made
        loop.run_until_complete(stop_monitors())
    loop.close()


def test_a_refused_form_names_the_field_for_the_form_shown_again(spawners) -> None:
    # JupyterHub shows the form again with this message (HTTP 200), the user's values kept
    with pytest.raises(OptionsError) as refused:
        spawners["fake"].run_options_from_form({"profile": ["advanced"], "cores": ["99"]})
    assert refused.value.field == "cores" and "cores" in str(refused.value)


@pytest.mark.parametrize(
    ("backend", "sent", "field"),
    [
        ("sge", {"project": ["a+b"]}, "project"),
        ("sge", {"queue": ["a+b"]}, "queue"),
        ("fake", {"queue": ["a@b"]}, "queue"),
    ],
)
def test_a_name_the_backend_refuses_comes_back_on_the_form_marked(spawners, backend, sent, field) -> None:
    # refused when the form is sent, as the form's own refusals are: JupyterHub
    # shows the form again (HTTP 200) with every value kept and the field marked
    spawner = spawners[backend]
    formdata = {"profile": ["advanced"], "cores": ["3"], "memory": ["5G"], **sent}

    async def send() -> None:  # in the hub's event loop, as JupyterHub's POST handler runs it
        spawner.run_options_from_form(formdata)

    with pytest.raises(OptionsError) as refused:
        spawners["loop"].run_until_complete(send())
    assert refused.value.field == field and str(refused.value).startswith(f"{field}: ")
    html = spawners["loop"].run_until_complete(spawner._render_options_form(spawner))
    assert (
        f'class="form-control is-invalid" type="text" name="{field}"' in html
        and html.count("is-invalid") == 1
    )
    assert f'id="batchhub-{field}-error">{field}: ' in html
    assert 'id="batchhub-cores" value="3"' in html and 'id="batchhub-memory" value="5G"' in html


async def _apply_and_start(spawner: BatchSpawner, options: dict[str, Any]) -> SpawnException:
    spawner.user_options = options
    try:
        await spawner._run_apply_user_options(options)  # refused here, before the spawn: 400
    except SpawnException as exc:
        return exc
    try:
        await spawner.start()
    except SpawnException as exc:
        return exc
    raise AssertionError("no refusal")


@pytest.mark.parametrize("options", [{"project": "a+b"}, {"project": "a@b"}, {"queue": "a+b"}])
def test_names_the_sge_backend_refuses_are_refused_before_the_spawn(spawners, options) -> None:
    refused = spawners["loop"].run_until_complete(_apply_and_start(spawners["sge"], options))
    assert refused.reason == "bad_options" and refused.status_code == 400, (refused.reason, str(refused))


@pytest.mark.parametrize("options", [{"project": "a+b"}, {"queue": "a@b"}])
def test_names_the_fake_backend_refuses_are_refused_before_the_spawn(spawners, options) -> None:
    refused = spawners["loop"].run_until_complete(_apply_and_start(spawners["fake"], options))
    assert refused.reason == "bad_options" and refused.status_code == 400, (refused.reason, str(refused))
