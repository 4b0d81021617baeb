"""A conformance suite every backend should pass.

Plugin authors subclass ``BackendConformance`` in their own tests and set
``backend_class``; pytest then runs every ``test_`` method here against
their backend. The checks are about the contract, not any scheduler: one
command for many ids, argv lists, commands as the right user, and above
all that no output, however broken, turns into a terminal state::

    from batchhub.testing.conformance import BackendConformance
    from batchhub_pbs.backend import PBSBackend

    class TestPBSConformance(BackendConformance):
        backend_class = PBSBackend
"""

from __future__ import annotations

from typing import ClassVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batchhub.backend import Backend
from batchhub.jobs import (
    CancelOutcome,
    Command,
    CommandResult,
    JobSpec,
    QueryError,
    ResourceRequest,
    SubmitError,
)
from batchhub.plugins import PluginRegistry

IDS = [str(n) for n in range(101, 151)]
#: Every backend's test class inherits these property tests, so hypothesis
#: sees one method run by several classes: expected here, not a flaw.
MIXIN = [HealthCheck.differing_executors]


def result(
    command: Command, returncode: int = 0, stdout: str = "", stderr: str = "", timed_out: bool = False
) -> CommandResult:
    return CommandResult(command, returncode, stdout, stderr, 0.01, timed_out)


class BackendConformance:
    """Mix into a test class and set ``backend_class``."""

    backend_class: ClassVar[type[Backend]]

    def make_backend(self) -> Backend:
        return self.backend_class()

    def make_spec(self, **resources: object) -> JobSpec:
        return JobSpec(
            username="alice",
            server_name="",
            job_name=self.make_backend().job_name("alice", ""),
            resources=ResourceRequest(**resources),  # type: ignore[arg-type]
            workdir="/home/alice/.batchhub/default",
            command=("batchhub-singleuser", "--token-file", "/home/alice/.batchhub/default/token"),
        )

    # --- identity --------------------------------------------------------
    def test_has_a_name_and_registers(self) -> None:
        backend_class = self.backend_class
        assert backend_class.name, "set the class attribute `name`"
        registry = PluginRegistry()
        assert registry.backends.get(backend_class.name) is backend_class, (
            f"{backend_class.name!r} is not registered through the 'batchhub' entry-point group"
        )

    # --- job script --------------------------------------------------------
    def test_directives_are_single_prefixed_lines(self) -> None:
        backend = self.make_backend()
        spec = self.make_spec(cores=2, memory_mb=2048, gpus=1, runtime_s=3600)
        lines = backend.directives(spec)
        assert lines, "a job needs at least a name and its output files"
        for line in lines:
            assert "\n" not in line and "\r" not in line
            assert line.startswith(backend.directive_prefix)

    def test_submit_runs_as_the_user_with_the_script_on_stdin(self) -> None:
        backend = self.make_backend()
        spec = self.make_spec()
        command = backend.submit_command(spec, "#!/bin/sh\necho hi\n")
        assert command.as_user == "alice"
        assert command.stdin == "#!/bin/sh\necho hi\n"
        assert not any("echo hi" in arg for arg in command.argv), "the script belongs on stdin"

    def test_submit_failure_is_a_submit_error(self) -> None:
        backend = self.make_backend()
        command = backend.submit_command(self.make_spec(), "#!/bin/sh\n")
        refusals = (
            result(command, 1, "", "error: rejected"),
            result(command, 0, "", ""),
            result(command, 0, "", "", timed_out=True),
        )
        for bad in refusals:
            with pytest.raises(SubmitError) as caught:
                backend.parse_submit(bad)
            assert str(caught.value), "the user needs a message"

    # --- status --------------------------------------------------------------
    def test_one_status_command_for_many_ids(self) -> None:
        backend = self.make_backend()
        limit = backend.max_ids_per_query or len(IDS)
        command = backend.status_command(IDS[:limit])
        assert isinstance(command, Command)
        assert all(isinstance(arg, str) for arg in command.argv)

    def test_failed_query_is_never_terminal(self) -> None:
        backend = self.make_backend()
        command = backend.status_command(IDS[:3])
        for bad in (
            result(command, 1, "", "connection refused"),
            result(command, 0, "", "", timed_out=True),
            result(command, 255, "garbage", ""),
        ):
            try:
                answer = backend.parse_status(bad, IDS[:3])
            except QueryError:
                continue
            assert not any(obs.state.terminal for obs in answer.values()), (
                f"a failed query ({bad.returncode}) reported a terminal state"
            )

    @settings(max_examples=200, deadline=None, suppress_health_check=MIXIN)
    @given(st.text(max_size=400), st.integers(min_value=0, max_value=2))
    def test_any_output_parses_or_raises_query_error(self, text: str, returncode: int) -> None:
        backend = self.make_backend()
        command = backend.status_command(IDS[:3])
        try:
            answer = backend.parse_status(result(command, returncode, text, ""), IDS[:3])
        except QueryError:
            return
        assert set(answer) <= set(IDS[:3]), "observations for jobs nobody asked about"
        if returncode != 0:
            assert not any(obs.state.terminal for obs in answer.values())

    # --- cancel ----------------------------------------------------------------
    def test_cancel_runs_as_the_owner(self) -> None:
        backend = self.make_backend()
        command = backend.cancel_command(IDS[:2], "alice")
        assert command.as_user == "alice"
        assert all(isinstance(arg, str) for arg in command.argv)

    @settings(max_examples=100, deadline=None, suppress_health_check=MIXIN)
    @given(st.text(max_size=300), st.integers(min_value=0, max_value=2))
    def test_parse_cancel_answers_with_outcomes(self, text: str, returncode: int) -> None:
        backend = self.make_backend()
        command = backend.cancel_command(IDS[:2], "alice")
        outcomes = backend.parse_cancel(result(command, returncode, text, text), IDS[:2])
        assert set(outcomes) <= set(IDS[:2])
        assert all(isinstance(outcome, CancelOutcome) for outcome in outcomes.values())

    def test_job_name_carries_the_tag(self) -> None:
        backend = self.make_backend()
        name = backend.job_name("alice", "gpu work/1")
        assert name.startswith(backend.job_name_prefix)
        assert " " not in name and "/" not in name
