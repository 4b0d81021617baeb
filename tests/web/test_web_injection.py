"""No value can smuggle a scheduler directive into a job script.

Grid Engine reads ``#$`` at the start of ANY line of the script, even inside
shell quotes, and JupyterHub 5 accepts server names with newlines: a name
like ``x\\n#$ -l h_rt=99:00:00`` once reached the script inside
``export JUPYTERHUB_SERVER_NAME='...'`` and beat every form limit. These
tests run for every installed backend (Grid Engine, Slurm, the fake), with
hostile server names, environment values and arguments, and check the
rendered script line by line, more strictly than any scheduler reads it.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from batchhub.backend import Backend
from batchhub.jobs import ConfigError, JobSpec, ResourceRequest, SubmitError
from batchhub.plugins import get_registry
from batchhub.template import render_job_script, shquote

BACKENDS = sorted(get_registry().backends.items())
BACKEND_IDS = [name for name, _ in BACKENDS]
#: Control characters and Unicode line separators: none may be left raw.
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def hostile(prefix: str) -> list[str]:
    """Values that would put ``prefix`` at the start of a line if written raw."""
    return [
        f"x\n{prefix} -l h_rt=99:00:00,h_vmem=999G\n{prefix} -q any.q",
        f"x\n{prefix} --time=99:00:00\n",
        f"\n{prefix} --cores=64",
        f"{prefix} --cores=64",
        f"x\r{prefix} --time=99:00:00",
        f"x\r\n{prefix} --mem=999G",
        f"x\n   {prefix} --x",
        f"x\n\t{prefix} --x",
        f"x\n \t {prefix} --x",
        f"x\x0b{prefix} --x",
        f"x\x0c{prefix} --x",
        f"x\x1c{prefix} --x",
        f"x\x85{prefix} --x",
        f"x\u2028{prefix} --x",
        f"x\u2029{prefix} --x",
        "tab\there, bell\x07, escape\x1b[31m, delete\x7f",
        f"quote' \"$(touch pwned)\" `touch pwned` \\n \\\n{prefix} \\x41 $'x'",
        f"é\n日本\n{prefix}\n",
    ]


def make_spec(workdir: str, backend: Backend, name: str, values: Sequence[str]) -> JobSpec:
    return JobSpec(
        username="alice",
        server_name=name,
        job_name=backend.job_name("alice", name),
        resources=ResourceRequest(cores=1, memory_mb=1024, runtime_s=3600),
        workdir=workdir,
        command=(
            sys.executable,
            "-c",
            "import json, os, sys; print(json.dumps([os.environ['JUPYTERHUB_SERVER_NAME'], "
            "os.environ['NOTE'], sys.argv[1:]]))",
            *values,
        ),
        env={"JUPYTERHUB_SERVER_NAME": name, "NOTE": values[0], "JUPYTERHUB_USER": "alice"},
    )


def prefixed_lines(script: str, prefix: str) -> list[str]:
    """Every line any reader might take for a directive: split at every line
    break Python knows, prefix after any whitespace."""
    return [line for line in script.splitlines() if line.lstrip().startswith(prefix)]


@pytest.mark.parametrize(("name", "backend_class"), BACKENDS, ids=BACKEND_IDS)
def test_hostile_names_and_values_never_start_a_directive_line(tmp_path, name, backend_class) -> None:
    backend = backend_class()
    prefix = backend.directive_prefix
    values = hostile(prefix)
    plain = render_job_script(backend, make_spec(str(tmp_path), backend, "lab", ["a", "b"]))
    for value in values:
        spec = make_spec(str(tmp_path), backend, value, [value, *values])
        script = render_job_script(backend, spec)
        assert prefixed_lines(script, prefix) == backend.directives(spec), script
        assert len(script.splitlines()) == len(plain.splitlines()), "a value added a line"
        # ...and every value still reaches the program exactly as it was
        result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout) == [value, value, [value, *values]]
    assert not list(tmp_path.rglob("pwned"))


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")))
def test_shquote_keeps_any_text_on_one_line_and_exact(text: str) -> None:
    quoted = shquote(text)
    assert not CONTROL.search(quoted) and len(quoted.splitlines()) == 1
    result = subprocess.run(["bash", "-c", f"printf %s {quoted}"], capture_output=True, timeout=30)
    assert result.stdout == text.encode("utf-8")


def test_plain_values_keep_posix_quoting() -> None:
    assert shquote("it's") == "'it'\"'\"'s'" and shquote("é 日本") == "'é 日本'"
    assert shquote("a\nb") == "$'a\\x0ab'"
    with pytest.raises(SubmitError, match="NUL"):
        shquote("a\x00b")


ADMIN_LINES = [
    ("prologue", "{p} -l h_vmem=64G"),
    ("prologue", "module load x\n  {p} -q other.q"),
    ("prologue", "cat > notes <<EOF\n{p} not an option, but the scheduler reads it\nEOF"),
    ("epilogue", "\t{p} --time=99:00:00"),
]


@pytest.mark.parametrize(("name", "backend_class"), BACKENDS, ids=BACKEND_IDS)
@pytest.mark.parametrize(("where", "text"), ADMIN_LINES)
def test_an_admin_line_with_the_prefix_is_a_config_error(tmp_path, name, backend_class, where, text) -> None:
    backend = backend_class()
    spec = make_spec(str(tmp_path), backend, "", ["a"])
    spec = JobSpec(**{**spec.__dict__, where: text.format(p=backend.directive_prefix)})
    with pytest.raises(ConfigError, match=r"line \d+ .*outside the backend's directives") as caught:
        render_job_script(backend, spec)
    hint = f"c.{backend_class.__name__}.extra_directives" if hasattr(backend, "extra_directives") else name
    assert hint in str(caught.value)


@pytest.mark.parametrize(("name", "backend_class"), BACKENDS, ids=BACKEND_IDS)
def test_admin_templates_are_checked_too(tmp_path, name, backend_class) -> None:
    backend = backend_class()
    prefix = backend.directive_prefix
    spec = make_spec(str(tmp_path), backend, "", ["a"])
    top = "#!/bin/bash\n{% for line in directives %}{{ line }}\n{% endfor %}"
    bad = {
        "outside the backend's directives": top + f"# site options\n{prefix} --site\ntrue\n",
        "after the command": "#!/bin/bash\ntrue\n{{ directives | join('\\n') }}\n",
        "is missing": "#!/bin/bash\n{{ directives[:-1] | join('\\n') }}\ntrue\n",
        "out of place": "#!/bin/bash\n{{ directives[1:] | join('\\n') }}\ntrue\n",
        "once, unchanged and in order": "#!/bin/bash\n{{ directives | join('\\n') }}\n{{ directives[0] }}\n",
        "outside": "#!/bin/bash\n{% for line in directives %}  {{ line }}\n{% endfor %}true\n",
    }
    for why, text in bad.items():
        with pytest.raises(ConfigError, match=why):
            render_job_script(backend, spec, text)
    assert render_job_script(backend, spec, top + "# a comment\n\ntrue\n").endswith("true\n")


@pytest.mark.parametrize(("name", "backend_class"), BACKENDS, ids=BACKEND_IDS)
def test_a_user_value_an_admin_template_writes_unquoted_is_refused(tmp_path, name, backend_class) -> None:
    backend = backend_class()
    server = f"x\n{backend.directive_prefix} --cores=64"
    spec = make_spec(str(tmp_path), backend, server, ["a"])
    text = '{% extends "default.sh.j2" %}{% block prologue %}echo {{ spec.server_name }}\n{% endblock %}'
    with pytest.raises(SubmitError, match="server name without line breaks"):
        render_job_script(backend, spec, text)


@pytest.mark.parametrize(
    ("shebang", "ok"),
    [
        ("#!/bin/bash", True),
        ("#!/usr/bin/env bash", True),
        ("#!/bin/zsh", True),
        ("#!/bin/sh", False),
        ("", False),
    ],
)
def test_values_with_line_breaks_need_a_shell_that_reads_them(tmp_path, shebang, ok) -> None:
    backend = get_registry().backend_class("slurm")()
    text = shebang + "\n{{ directives | join('\\n') }}\nexport X={{ spec.server_name | shquote }}\n"
    for name in ("plain", "a\nb"):
        spec = make_spec(str(tmp_path), backend, name, ["a"])
        if ok or name == "plain":
            assert render_job_script(backend, spec, text)
        else:
            with pytest.raises(SubmitError, match="without them"):
                render_job_script(backend, spec, text)


def test_grid_engine_runs_the_script_with_its_own_shell(tmp_path) -> None:
    backend = get_registry().backend_class("sge")(shell="/bin/sh")  # -S wins over the #! line
    render_job_script(backend, make_spec(str(tmp_path), backend, "plain", ["a"]))
    with pytest.raises(SubmitError, match=r"job shell \(/bin/sh\)"):
        render_job_script(backend, make_spec(str(tmp_path), backend, "a\nb", ["a"]))


class HashBackend(Backend):
    name = "hash"
    directive_prefix = "#"

    def directives(self, spec: JobSpec) -> list[str]:
        return ["# --cores=1"]


def test_a_prefix_that_cannot_be_told_from_a_comment_is_refused(tmp_path) -> None:
    backend = HashBackend()
    with pytest.raises(ConfigError, match="directive prefix '#'"):
        render_job_script(backend, make_spec(str(tmp_path), backend, "", ["a"]))
