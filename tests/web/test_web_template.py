"""Job scripts from the template: quoting, strictness, admin overrides."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence

import pytest

from batchhub.backend import Backend
from batchhub.jobs import ConfigError, JobSpec, ResourceRequest
from batchhub.template import read_template, render_job_script, shquote

HOSTILE = ["$(touch pwned)", "`touch pwned`", "a b", "it's", '"; touch pwned; "', "*", "~", "x\ny", ""]


class ToyBackend(Backend):
    name = "toy"
    directive_prefix = "#TOY"
    unsafe_path_chars = ""  # writes no path into a directive: the script's quoting is what is tested

    def __init__(self, lines: Sequence[str] | None = None) -> None:
        super().__init__()
        self.lines = lines

    def directives(self, spec: JobSpec) -> list[str]:
        if self.lines is not None:
            return list(self.lines)
        return [f"#TOY --cores={spec.resources.cores}", f"#TOY --name={spec.job_name}"]


def make_spec(workdir: str, command: Sequence[str] = ("true",), **kw) -> JobSpec:
    return JobSpec(
        username="alice",
        server_name="",
        job_name="batchhub-alice",
        resources=ResourceRequest(cores=2),
        workdir=workdir,
        command=tuple(command),
        **kw,
    )


def run(script: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", script], cwd=cwd, capture_output=True, text=True, timeout=30)


def test_directives_come_first(tmp_path):
    script = render_job_script(ToyBackend(), make_spec(str(tmp_path)))
    lines = script.splitlines()
    assert lines[:3] == ["#!/bin/bash", "#TOY --cores=2", "#TOY --name=batchhub-alice"]


def test_hostile_arguments_reach_the_program_intact(tmp_path):
    workdir = tmp_path / "it's a dir $(touch pwned)"
    workdir.mkdir()
    spec = make_spec(str(workdir), ["printf", "[%s]\\n", *HOSTILE], env={"NOTE": "a;b $(touch pwned) 'q'"})
    script = render_job_script(ToyBackend(), spec)
    result = run(script + "", tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "".join(f"[{arg}]\n" for arg in HOSTILE)
    assert not list(tmp_path.rglob("pwned"))


def test_env_prologue_epilogue_and_exit_status(tmp_path):
    spec = make_spec(
        str(tmp_path),
        ["bash", "-c", 'echo "run $NOTE in $PWD"; exit 3'],
        env={"NOTE": "a;b"},
        prologue="echo prologue",
        epilogue="echo epilogue",
    )
    result = run(render_job_script(ToyBackend(), spec), "/")
    assert result.stdout.splitlines() == ["prologue", f"run a;b in {tmp_path}", "epilogue"]
    assert result.returncode == 3


def test_missing_workdir_fails_the_job(tmp_path):
    result = run(render_job_script(ToyBackend(), make_spec(str(tmp_path / "gone"), ["echo", "ran"])), "/")
    assert result.returncode == 1 and "ran" not in result.stdout
    assert "cannot enter" in result.stderr


def test_undefined_names_fail_loudly(tmp_path):
    for text in ["{{ nope }}", "{{ spec.nope }}", "{% for x in missing %}{% endfor %}"]:
        with pytest.raises(ConfigError, match=r"undefined|no attribute"):
            render_job_script(ToyBackend(), make_spec(str(tmp_path)), text)


def test_template_syntax_error_names_the_line(tmp_path):
    with pytest.raises(ConfigError, match="line 2"):
        render_job_script(ToyBackend(), make_spec(str(tmp_path)), "#!/bin/sh\n{% if %}")


def test_shquote_refuses_non_values():
    assert shquote("a b") == "'a b'" and shquote(3) == "3"
    for bad in (None, True, ["a"]):
        with pytest.raises(ConfigError):
            shquote(bad)


def test_bad_env_name_refused(tmp_path):
    with pytest.raises(ConfigError, match="environment variable name"):
        render_job_script(ToyBackend(), make_spec(str(tmp_path), env={"A;touch x": "1"}))


@pytest.mark.parametrize(
    "lines",
    [["#TOY ok", "#TOY bad\nrm -rf /"], ["#TOY ok\x0b#TOY two"], ["echo not a directive"], [None]],
)
def test_backend_directives_are_checked(tmp_path, lines):
    with pytest.raises(ConfigError, match="directive"):
        render_job_script(ToyBackend(lines), make_spec(str(tmp_path)))


def test_admin_template_extends_default(tmp_path):
    text = (
        '{% extends "default.sh.j2" %}{% block prologue %}module load {{ "py 3" | shquote }}\n{% endblock %}'
    )
    script = render_job_script(ToyBackend(), make_spec(str(tmp_path)), text)
    assert "module load 'py 3'\n" in script and script.startswith("#!/bin/bash\n#TOY --cores=2")


def test_admin_template_file(tmp_path):
    path = tmp_path / "job.sh.j2"
    path.write_text("#!/bin/sh\n{{ directives | join('\\n') }}\ncd {{ workdir | shquote }}\n")
    script = render_job_script(ToyBackend(), make_spec("/w d"), read_template(str(path)))
    assert script == "#!/bin/sh\n#TOY --cores=2\n#TOY --name=batchhub-alice\ncd '/w d'\n"
    with pytest.raises(ConfigError, match="cannot read"):
        read_template(str(tmp_path / "missing.j2"))


def test_script_never_contains_the_token_variable(tmp_path):
    script = render_job_script(ToyBackend(), make_spec(str(tmp_path), env={"JUPYTERHUB_USER": "alice"}))
    assert "JUPYTERHUB_API_TOKEN" not in script
