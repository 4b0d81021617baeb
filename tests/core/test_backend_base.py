"""The mechanics every backend inherits from ``Backend``: commands with the
timeout and environment applied, program paths, judging answers, the
validated ``extra_directives`` and templates shipped in a plugin's package."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from batchhub.backend import Backend, deprecated_program
from batchhub.jobs import Command, CommandResult, ConfigError, JobSpec, QueryError, ResourceRequest
from batchhub.template import render_job_script


class DemoBackend(Backend):
    name = "demo"
    program_names = ("dsub", "dstat")
    directive_prefix = "#DEMO"
    answer_exit_codes = frozenset({0, 153})
    refused_directives = {"--export-all": "it would hand the hub's environment to the job"}
    dsub = deprecated_program("dsub")

    def directives(self, spec: JobSpec) -> list[str]:
        return self.option_lines([f"--name={spec.job_name}"])

    def status_command(self, job_ids: Sequence[str], owners: Sequence[str] = ()) -> Command:
        return self.command("dstat", *job_ids)


def spec(job_name: str = "batchhub-alice.abc123") -> JobSpec:
    return JobSpec(
        username="alice",
        server_name="",
        job_name=job_name,
        resources=ResourceRequest(),
        workdir="/home/alice/.batchhub/default",
        command=("batchhub-singleuser",),
    )


def test_command_applies_the_timeout_environment_and_program_path() -> None:
    backend = DemoBackend(
        command_timeout=7, command_env={"DEMO_ROOT": "/opt/demo"}, programs={"dstat": "/x/dstat"}
    )
    command = backend.status_command(["1", "2"])
    assert command.argv == ("/x/dstat", "1", "2")
    assert command.timeout == 7
    assert dict(command.env) == {"DEMO_ROOT": "/opt/demo"}
    assert command.as_user is None


def test_a_program_not_in_programs_runs_by_its_name() -> None:
    assert DemoBackend().command("dsub", stdin="x", as_user="alice").argv == ("dsub",)


def test_programs_refuses_a_program_the_backend_never_runs() -> None:
    with pytest.raises(ConfigError, match=r"'qsub'.*it runs dsub, dstat"):
        DemoBackend(programs={"qsub": "/usr/bin/qsub"})


def test_a_deprecated_option_still_works_and_says_what_to_write(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        backend = DemoBackend(dsub="/old/dsub")
    assert backend.program("dsub") == "/old/dsub"
    assert (
        "c.DemoBackend.dsub is deprecated: write c.DemoBackend.programs = {'dsub': '/old/dsub'}"
        in caplog.text
    )
    assert DemoBackend(dsub="/old/dsub", programs={"dsub": "/new/dsub"}).program("dsub") == "/new/dsub"


def result(returncode: int, timed_out: bool = False) -> CommandResult:
    return CommandResult(Command(("dstat",)), returncode, "out", "err", 0.1, timed_out)


def test_declared_exit_codes_are_answers_and_others_failed_queries() -> None:
    backend = DemoBackend()
    backend.require_answer(result(0))
    backend.require_answer(result(153))  # e.g. PBS: one id unknown, the others described
    for failed in (result(1), result(255), result(0, timed_out=True)):
        with pytest.raises(QueryError):
            backend.require_answer(failed)


def test_extra_directives_become_lines_after_the_backends_own() -> None:
    backend = DemoBackend(extra_directives=["  --constraint=avx2 ", "--reservation=jupyter"])
    assert backend.directives(spec()) == [
        "#DEMO --name=batchhub-alice.abc123",
        "#DEMO --constraint=avx2",
        "#DEMO --reservation=jupyter",
    ]


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("constraint=avx2", "is not one scheduler option starting with '-'"),
        ("--a\n--b", "is not one scheduler option"),
        ("--export-all", "--export-all is refused: it would hand the hub's environment to the job"),
    ],
)
def test_extra_directives_refuses_what_is_not_one_allowed_option(item: str, message: str) -> None:
    with pytest.raises(ConfigError, match=f"c.DemoBackend.extra_directives: .*{message}"):
        DemoBackend(extra_directives=[item])


@pytest.fixture
def plugin_package(tmp_path: Path) -> Iterator[str]:
    package = tmp_path / "demo_plugin_pkg"
    (package / "templates").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "templates" / "job.sh.j2").write_text(
        '#!/bin/bash\n{% for line in directives %}{{ line }}\n{% endfor %}echo "from the plugin"\n'
    )
    sys.path.insert(0, str(tmp_path))
    yield package.name
    sys.path.remove(str(tmp_path))
    sys.modules.pop(package.name, None)


def test_a_backend_renders_the_template_its_own_package_ships(plugin_package: str) -> None:
    class Shipped(DemoBackend):
        template = (plugin_package, "templates/job.sh.j2")

    script = render_job_script(Shipped(), spec())
    assert script.splitlines()[1:] == ["#DEMO --name=batchhub-alice.abc123", 'echo "from the plugin"']


def test_a_missing_plugin_template_is_a_config_error_saying_what_to_do(plugin_package: str) -> None:
    class Missing(DemoBackend):
        template = (plugin_package, "templates/nope.sh.j2")

    with pytest.raises(
        ConfigError, match=r"'templates/nope\.sh\.j2' is missing from the package .*reinstall"
    ):
        render_job_script(Missing(), spec())


def test_a_job_name_a_hook_broke_is_refused_before_any_directive() -> None:
    with pytest.raises(ConfigError, match="may hold only letters, digits"):
        render_job_script(DemoBackend(), spec("two words"))
