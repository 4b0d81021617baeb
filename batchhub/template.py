"""Job scripts: jinja2 templates that turn a ``JobSpec`` into a script.

The environment is strict: an undefined name is an error (a typo in an
admin's template must fail the spawn loudly, not submit a broken job), and
every value in the default template goes through the ``shquote`` filter.
Autoescape is off because this is shell, not HTML.

Directive lines come from ``backend.directives(spec)``: built by the backend
from validated values, never from raw user text. Schedulers read their
directives wherever a line starts with the prefix (Grid Engine reads ``#$``
on ANY line, even inside shell quotes), so after rendering the whole script
is checked: the only lines that start with the backend's directive prefix
are the backend's own directive lines, once each, before the first command.
``shquote`` keeps every value on one line (``$'...'`` quoting for values
with line breaks or other control characters), so no value can start one.
"""

from __future__ import annotations

import contextvars
import os
import re
import shlex
from collections.abc import Sequence
from importlib import resources as importlib_resources

import jinja2

from .backend import JOB_NAME_RE, Backend
from .jobs import EMAIL_RE, ConfigError, JobSpec, SubmitError

#: Environment variable names a template may export.
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

#: Characters a value must never bring into a script raw: every control
#: character (C0, DEL, C1) and the Unicode line and paragraph separators,
#: i.e. everything ``str.splitlines`` (or a scheduler) might take for a line
#: break. A value holding one is written with ``$'...'`` quoting.
UNSAFE_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")

#: Interpreters that read ``$'...'`` (ANSI-C quoting). POSIX sh (dash) does not.
ANSI_C_SHELLS = frozenset({"bash", "zsh", "ksh93"})

# The values one render had to write with $'...' (None outside a render):
# the script's interpreter must then be one of ANSI_C_SHELLS.
_ansi_c_values: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
    "batchhub_ansi_c_values", default=None
)


def ansi_c_quote(text: str) -> str:
    """``text`` as one bash ``$'...'`` word on one line: printable characters
    as they are, everything else as ``\\xHH`` escapes of its UTF-8 bytes
    (exact whatever the job's locale)."""
    out = []
    for char in text:
        if char in "\\'":
            out.append("\\" + char)
        elif char.isprintable() and not UNSAFE_CHARS.match(char):
            out.append(char)
        else:
            out.extend(f"\\x{byte:02x}" for byte in char.encode("utf-8", "surrogatepass"))
    return "$'" + "".join(out) + "'"


def shquote(value: object) -> str:
    """``value`` as one shell word on one line. Only strings and numbers:
    ``None`` or a list in a script is a template bug, not something to print.

    Plain values get ``shlex.quote``. A value with a line break or another
    control character (a JupyterHub 5 server name may hold newlines) would
    put text at the start of a line, where Grid Engine reads ``#$`` even
    inside quotes: it is written with ``$'...'`` and ``\\n``-style escapes
    instead, which needs bash (checked after rendering).
    """
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ConfigError(f"job template: shquote needs a string or number, got {value!r}")
    text = str(value)
    if not UNSAFE_CHARS.search(text):
        return shlex.quote(text)
    if "\x00" in text:
        raise SubmitError(
            f"The value {_sample(text)} holds a NUL character, which no shell can pass to a program. "
            "Choose a server name (or value) without control characters."
        )
    used = _ansi_c_values.get()
    if used is not None:
        used.append(text)
    return ansi_c_quote(text)


def envname(value: object) -> str:
    """An environment variable name, checked (names cannot be quoted)."""
    if not isinstance(value, str) or not ENV_NAME.fullmatch(value):
        raise ConfigError(f"job template: {value!r} is not a valid environment variable name")
    return value


def _sample(text: str) -> str:
    return repr(text if len(text) <= 60 else text[:57] + "...")


def _core_template(name: str) -> str | None:
    path = importlib_resources.files("batchhub").joinpath("templates", name)
    return path.read_text("utf-8") if path.is_file() else None


def make_environment() -> jinja2.Environment:
    """The jinja2 environment for job scripts. Admin templates can
    ``{% extends "default.sh.j2" %}`` and override its blocks."""
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(_core_template),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # shell, not HTML: quoting is shquote's job
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["shquote"] = shquote
    env.filters["envname"] = envname
    return env


_ENV = make_environment()


def _directive_prefix(backend: Backend) -> str:
    prefix = backend.directive_prefix
    # "#" alone would make every comment (and the #! line) a directive: the
    # script could not be checked for injected ones.
    if not isinstance(prefix, str) or len(prefix) < 2 or not prefix.startswith("#") or prefix[1].isspace():
        raise ConfigError(
            f"backend {backend.name!r} declares the directive prefix {prefix!r}: it must be the "
            "scheduler's own, like '#$' or '#SBATCH', so directives can be told from comments"
        )
    return prefix


def _checked_directives(backend: Backend, spec: JobSpec) -> list[str]:
    lines = list(backend.directives(spec))
    prefix = _directive_prefix(backend)
    for line in lines:
        if not isinstance(line, str) or UNSAFE_CHARS.search(line) or not line.startswith(prefix):
            raise ConfigError(
                f"backend {backend.name!r} produced a bad directive line {line!r}: each must be one "
                f"line starting with {prefix!r}"
            )
    return lines


def _options_hint(backend: Backend) -> str:
    if hasattr(backend, "extra_directives"):
        return f"c.{type(backend).__name__}.extra_directives"
    return f"the {backend.name} backend's options"


def _stray_line(backend: Backend, spec: JobSpec, number: int, line: str, prefix: str) -> Exception:
    stripped = line.strip()
    # A value with a line break written without shquote: the user chose it.
    values = (spec.server_name, spec.workdir, *spec.env.values(), *spec.command)
    if any(UNSAFE_CHARS.search(v) and stripped in v for v in values):
        return SubmitError(
            f"A value of your server (its name or environment) holds a line the scheduler would read "
            f"as an option of its own ({_sample(stripped)}). Choose a server name without line breaks. "
            "(The site's job template writes that value without `| shquote`: tell the administrators.)"
        )
    return ConfigError(
        f"job template: line {number} ({_sample(line)}) starts with the scheduler's directive prefix "
        f"{prefix!r} outside the backend's directives, so the scheduler would read it as an option. "
        f"Put scheduler options in {_options_hint(backend)}, not in the template, "
        "c.BatchSpawner.job_prologue or job_epilogue, and reword text or comments that start "
        f"with {prefix!r}."
    )


def check_script(backend: Backend, spec: JobSpec, directives: Sequence[str], script: str) -> None:
    """Refuse a rendered script in which any line other than the backend's
    ``directives`` starts with the directive prefix (after any whitespace:
    Slurm reads ``#SBATCH`` only at column 0, Grid Engine ``#$`` on any
    line; be stricter than both), and one whose directives do not all come,
    once each and in order, before the first command (Slurm stops reading
    them there)."""
    prefix = _directive_prefix(backend)
    pending = list(directives)
    first_command: int | None = None
    # splitlines() breaks at \r, \v, \f, \x1c-\x1e, \x85, \u2028 and \u2029 as
    # well as \n: every line any reader might see.
    for number, line in enumerate(script.splitlines(), 1):
        stripped = line.lstrip()
        if stripped.startswith(prefix):
            if line in directives and (not pending or line != pending[0]):
                raise ConfigError(
                    f"job template: the directive on line {number} ({_sample(line)}) is out of place: "
                    "write every line of `directives` once, unchanged and in order "
                    f"(expected {_sample(pending[0]) if pending else 'no more'} there)."
                )
            if not pending or line != pending[0]:
                raise _stray_line(backend, spec, number, line, prefix)
            if first_command is not None:
                raise ConfigError(
                    f"job template: the directive on line {number} ({_sample(line)}) comes after the "
                    f"command on line {first_command}; schedulers stop reading directives at the "
                    "first command. Write the directives right after the #! line."
                )
            pending.pop(0)
        elif stripped and not stripped.startswith("#") and first_command is None:
            first_command = number
    if pending:
        raise ConfigError(
            f"job template: the backend's directive {pending[0]!r} is missing from the script. "
            "Write every line of `directives` (the default template's directives block) "
            "right after the #! line, each on its own line and unchanged."
        )


def script_interpreter(backend: Backend, script: str) -> str | None:
    """The program that will run ``script``: the backend's ``script_shell``
    where its scheduler chooses the shell itself (Grid Engine's ``-S``),
    else the ``#!`` line; ``None`` when neither says."""
    shell = getattr(backend, "script_shell", None)
    if isinstance(shell, str) and shell:
        return shell
    first = script.split("\n", 1)[0]
    words = first[2:].split() if first.startswith("#!") else []
    if words and os.path.basename(words[0]) == "env":
        words = [w for w in words[1:] if not w.startswith("-") and "=" not in w]
    return words[0] if words else None


def _check_interpreter(backend: Backend, script: str, quoted: list[str]) -> None:
    shell = script_interpreter(backend, script)
    if shell is not None and os.path.basename(shell) in ANSI_C_SHELLS:
        return
    raise SubmitError(
        f"The value {_sample(quoted[0])} holds a line break or another control character, which "
        f"this cluster's job shell ({shell or 'unknown: the script has no #! line'}) cannot be given "
        "safely. Choose a server name (or value) without them. (Administrators: run job scripts "
        "with bash to allow them.)"
    )


#: Queue (partition) and project (account) names as every scheduler takes
#: them in a directive: no whitespace or quotes; ``,`` lists, ``@`` hosts
#: and ``*`` patterns are left for the scheduler itself to judge.
SCHEDULER_NAME_RE = re.compile(r"[A-Za-z0-9_.@*-]{1,128}(,[A-Za-z0-9_.@*-]{1,128})*")


def check_spec(backend: Backend, spec: JobSpec) -> None:
    """Refuse the values a directive line cannot hold, before any backend
    writes one: so backends take names and paths as they are."""
    if not JOB_NAME_RE.fullmatch(spec.job_name):
        raise ConfigError(
            f"the job name {spec.job_name!r} may hold only letters, digits, '.', '_' and '-' "
            "(a batchhub_prepare_job hook changed it?)"
        )
    res = spec.resources
    for value, what in ((res.queue, "queue"), (res.project, "project"), (res.pe, "parallel environment")):
        if value and not SCHEDULER_NAME_RE.fullmatch(value):
            raise SubmitError(
                f"The {what} {value!r} is not valid: use letters, digits and '.', '_', '-', '@' only."
            )
    if res.email is not None and not EMAIL_RE.fullmatch(res.email):
        raise SubmitError(
            f"email: {res.email!r} is not a plain mail address; give one such as name@example.org "
            "(no spaces, quotes or commas), or none."
        )
    for count, what in ((res.nodes, "nodes"), (res.tasks_per_node, "tasks per node")):
        if not isinstance(count, int) or count < 1:
            raise SubmitError(f"A job needs at least one of {what}, not {count!r}.")
    for path in (spec.workdir, spec.output_path, spec.error_path):
        bad = {c for c in path if UNSAFE_CHARS.match(c) or c in backend.unsafe_path_chars}
        if bad or not path.startswith("/"):
            why = f"holds {', '.join(map(repr, sorted(bad)))}" if bad else "is not absolute"
            raise ConfigError(
                f"the job directory {path!r} {why}, which the {backend.name} scheduler cannot take in a "
                "job's output path: choose a plainer directory (c.BatchSpawner.workdir_template)"
            )


def render_job_script(backend: Backend, spec: JobSpec, template_text: str | None = None) -> str:
    """The job script for ``spec``.

    ``template_text`` is an admin's template replacing the backend's
    default (``backend.template``, a file in the backend's own package).
    The template sees ``directives`` (lines from the backend), ``spec``,
    ``resources``, ``env`` (sorted name, value pairs), ``command``,
    ``workdir``, ``prologue``, ``epilogue`` and ``backend_name``. The
    result passes ``check_script``.
    """
    try:
        template = _ENV.from_string(backend_template(backend) if template_text is None else template_text)
    except jinja2.TemplateNotFound as exc:
        raise ConfigError(f"job template {exc.name!r} not found in batchhub/templates") from None
    except jinja2.TemplateSyntaxError as exc:
        raise ConfigError(f"job template, line {exc.lineno}: {exc.message}") from None
    check_spec(backend, spec)
    directives = _checked_directives(backend, spec)
    context = {
        "directives": directives,
        "spec": spec,
        "resources": spec.resources,
        "env": sorted(spec.env.items()),
        "command": list(spec.command),
        "workdir": spec.workdir,
        "prologue": spec.prologue.strip("\n"),
        "epilogue": spec.epilogue.strip("\n"),
        "backend_name": backend.name,
    }
    quoted: list[str] = []
    token = _ansi_c_values.set(quoted)
    try:
        script = template.render(context)
    except jinja2.UndefinedError as exc:
        raise ConfigError(f"job template: {exc.message}") from None
    except jinja2.TemplateError as exc:
        raise ConfigError(f"job template: {exc}") from None
    finally:
        _ansi_c_values.reset(token)
    check_script(backend, spec, directives, script)
    if quoted:
        _check_interpreter(backend, script, quoted)
    return script


def backend_template(backend: Backend) -> str:
    """The text of the backend's own default template (``Backend.template``)."""
    package, name = backend.template
    try:
        return importlib_resources.files(package).joinpath(name).read_text("utf-8")
    except (ModuleNotFoundError, OSError) as exc:
        raise ConfigError(
            f"the {backend.name!r} backend's job template {name!r} is missing from the package "
            f"{package!r} ({exc}); reinstall the plugin or set c.BatchSpawner.job_template"
        ) from None


def read_template(path: str) -> str:
    """An admin's template file, or a ``ConfigError`` saying why not."""
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError as exc:
        raise ConfigError(f"cannot read the job template {path!r}: {exc.strerror}") from None
