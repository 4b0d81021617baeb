"""Job scripts: jinja2 templates that turn a ``JobSpec`` into a script.

The environment is strict: an undefined name is an error (a typo in an
admin's template must fail the spawn loudly, not submit a broken job), and
every value in the default template goes through the ``shquote`` filter
(``shlex.quote``). Autoescape is off because this is shell, not HTML.

Directive lines come from ``backend.directives(spec)``: built by the backend
from validated values, never from raw user text.
"""

from __future__ import annotations

import re
import shlex
from importlib import resources as importlib_resources

import jinja2

from .backend import Backend
from .jobs import ConfigError, JobSpec

#: Environment variable names a template may export.
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def shquote(value: object) -> str:
    """``value`` as one shell word. Only strings and numbers: ``None`` or a
    list in a script is a template bug, not something to print."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ConfigError(f"job template: shquote needs a string or number, got {value!r}")
    return shlex.quote(str(value))


def envname(value: object) -> str:
    """An environment variable name, checked (names cannot be quoted)."""
    if not isinstance(value, str) or not ENV_NAME.fullmatch(value):
        raise ConfigError(f"job template: {value!r} is not a valid environment variable name")
    return value


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


def _checked_directives(backend: Backend, spec: JobSpec) -> list[str]:
    lines = list(backend.directives(spec))
    prefix = backend.directive_prefix
    for line in lines:
        if not isinstance(line, str) or "\n" in line or "\r" in line or not line.startswith(prefix):
            raise ConfigError(
                f"backend {backend.name!r} produced a bad directive line {line!r}: each must be one "
                f"line starting with {prefix!r}"
            )
    return lines


def render_job_script(backend: Backend, spec: JobSpec, template_text: str | None = None) -> str:
    """The job script for ``spec``.

    ``template_text`` is an admin's template replacing the backend's
    default (``backend.template_name``, shipped in ``batchhub/templates``).
    The template sees ``directives`` (lines from the backend), ``spec``,
    ``resources``, ``env`` (sorted name, value pairs), ``command``,
    ``workdir``, ``prologue``, ``epilogue`` and ``backend_name``.
    """
    try:
        if template_text is None:
            template = _ENV.get_template(backend.template_name)
        else:
            template = _ENV.from_string(template_text)
    except jinja2.TemplateNotFound as exc:
        raise ConfigError(f"job template {exc.name!r} not found in batchhub/templates") from None
    except jinja2.TemplateSyntaxError as exc:
        raise ConfigError(f"job template, line {exc.lineno}: {exc.message}") from None
    context = {
        "directives": _checked_directives(backend, spec),
        "spec": spec,
        "resources": spec.resources,
        "env": sorted(spec.env.items()),
        "command": list(spec.command),
        "workdir": spec.workdir,
        "prologue": spec.prologue.strip("\n"),
        "epilogue": spec.epilogue.strip("\n"),
        "backend_name": backend.name,
    }
    try:
        return template.render(context)
    except jinja2.UndefinedError as exc:
        raise ConfigError(f"job template: {exc.message}") from None
    except jinja2.TemplateError as exc:
        raise ConfigError(f"job template: {exc}") from None


def read_template(path: str) -> str:
    """An admin's template file, or a ``ConfigError`` saying why not."""
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError as exc:
        raise ConfigError(f"cannot read the job template {path!r}: {exc.strerror}") from None
