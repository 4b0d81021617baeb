"""The conformance kit: the backend contract as tests every backend passes.

Plugin authors subclass ``BackendConformance`` in their tests, name their
backend, give job ids in their scheduler's format and recorded samples of
its output; pytest then runs every ``test_`` method here against their
backend::

    from batchhub.jobs import CancelOutcome, JobState
    from batchhub.testing.conformance import BackendConformance
    from batchhub.testing.samples import CancelSample, StatusSample, SubmitSample
    from batchhub_pbs.backend import PBSBackend

    class TestPBSConformance(BackendConformance):
        backend_class = PBSBackend
        job_ids = ("101.pbs", "102.pbs", "103.pbs")
        status_samples = (StatusSample("qstat-153", job_ids=("101.pbs", "999.pbs"),
                                       returncode=153, stdout=..., expect={"101.pbs": JobState.RUNNING}),)
        cancel_samples = (CancelSample("qdel-gone", job_ids=("101.pbs",), returncode=35,
                                       stderr=..., expect={"101.pbs": CancelOutcome.ALREADY_GONE}),)
        submit_samples = (SubmitSample("qsub-ok", stdout="101.pbs\\n", expect="101.pbs"),)

The tests check the contract, never a scheduler: commands are the
backend's own programs, run as the right user and never wrapped; one
status command carries every id; only an answer (an exit code in
``answer_exit_codes``) is read, and no output, however broken, reports a
job it does not describe; a cancel that failed or timed out never passes
for done. ``tests/property/mutate_backends.py`` plants each of those bugs
in real backends and shows which test catches it (docs/plugins.md).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import Any, ClassVar

import pytest

from batchhub.backend import Backend
from batchhub.jobs import (
    CancelOutcome,
    Command,
    CommandResult,
    ConfigError,
    JobSpec,
    QueryError,
    ResourceRequest,
    SubmitError,
)
from batchhub.plugins import PluginRegistry
from batchhub.template import check_spec
from batchhub.testing.samples import CancelSample, StatusSample, SubmitSample

__all__ = ["WRAPPERS", "BackendConformance", "mentions", "result"]

#: Programs that run another program as someone else, elsewhere or through a
#: shell. The runner alone decides who runs a command (``as_user``); a
#: backend's argv never holds one of these.
WRAPPERS = frozenset(
    {
        "sudo",
        "su",
        "runuser",
        "doas",
        "pkexec",
        "setpriv",
        "env",
        "sh",
        "bash",
        "dash",
        "zsh",
        "ksh",
        "csh",
        "tcsh",
        "fish",
        "chroot",
        "nsenter",
        "ssh",
        "xargs",
        "nohup",
        "setsid",
    }
)

#: Exit codes a failed command ends with: usage errors, not found, killed.
FAILURE_CODES = (1, 2, 3, 124, 126, 127, 137, 143, 255, -9, -15)

#: Exit codes no scheduler answers with: not executable, not found, killed.
NEVER_ANSWERS = (126, 127, 137, 143, -9, -15)

#: Texts of a failed command that name no job.
FAILURE_TEXTS = (
    "",
    "error: something went wrong\n",
    "error: connection refused\n",
    "Connection refused\n",
    "error: Unable to contact the scheduler (connect failure)\n",
    "cannot connect to server: Connection timed out\n",
    "error: commlib error: got select error (Connection refused)\n",
    "Permission denied\n",
    "sudo: a password is required\n",
    "Traceback (most recent call last):\n  File ...\nOSError: [Errno 24] Too many open files\n",
)

#: Answers that are not answers: a proxy's error page, a crash, noise.
GARBLED_TEXTS = (
    "\x00\x17<html>502 Bad Gateway</html>\n",
    "Segmentation fault (core dumped)\n",
    "Killed\n",
    "COMPLETED\n",
    "FAILED\nCANCELLED\nTIMEOUT\n",
    "Job has finished\n",
    "{",
    "<?xml version='1.0'?>\n<job_info><queue_info>",
    "||||||\n",
    "\ufeff\u202e\n",
)


def result(
    command: Command, returncode: int = 0, stdout: str = "", stderr: str = "", timed_out: bool = False
) -> CommandResult:
    """A ``CommandResult`` of ``command`` as the runner would return it."""
    return CommandResult(command, returncode, stdout, stderr, 0.01, timed_out)


def mentions(text: str, job_id: str) -> bool:
    """Whether ``text`` names the job ``job_id`` (as a word: ``101`` is not
    in ``1012``, but is in ``101.server`` and ``<id>101</id>``)."""
    return re.search(rf"(?<![A-Za-z0-9]){re.escape(job_id)}(?![A-Za-z0-9])", text) is not None


def _words(argv: Sequence[str]) -> set[str]:
    """Every argument of ``argv`` and its parts split at spaces, commas and ``=``."""
    words = set(argv)
    for arg in argv:
        words.update(part for part in re.split(r"[\s,=]+", arg) if part)
    return words


def _examples(default: int) -> int:
    return int(os.environ.get("BATCHHUB_CONFORMANCE_EXAMPLES", default))


class BackendConformance:
    """Mix into a test class; set ``backend_class`` and, for a kit that
    bites, ``job_ids`` and the recorded samples."""

    #: The backend under test.
    backend_class: ClassVar[type[Backend]]
    #: Trait values the backend is built with (``{"programs": {...}}``).
    backend_config: ClassVar[dict[str, Any]] = {}
    #: Job ids exactly as your scheduler prints them (at least three); more
    #: are made from the first by changing its number.
    job_ids: ClassVar[Sequence[str]] = ("101", "102", "103")
    #: Users the jobs belong to: the first submits and cancels.
    users: ClassVar[Sequence[str]] = ("alice", "bob")
    #: Recorded status outputs, with the state each must parse to.
    status_samples: ClassVar[Sequence[StatusSample]] = ()
    #: Recorded cancel outputs, with each job's outcome: include a job that
    #: no longer exists (``ALREADY_GONE``).
    cancel_samples: ClassVar[Sequence[CancelSample]] = ()
    #: Recorded submit outputs, with the job id or the error each gives.
    submit_samples: ClassVar[Sequence[SubmitSample]] = ()
    #: Examples per property test (``BATCHHUB_CONFORMANCE_EXAMPLES`` overrides).
    max_examples: ClassVar[int] = 100

    # --- helpers for the tests (and the author's own) ----------------------
    def make_backend(self) -> Backend:
        return self.backend_class(**self.backend_config)

    @property
    def owner(self) -> str:
        return self.users[0]

    def ids(self, count: int, offset: int = 0) -> list[str]:
        """``count`` distinct job ids in the author's format: ``job_ids``
        first, then the first one with other numbers (``101.pbs`` ->
        ``700001.pbs``). ``offset`` > 0 skips the author's ids."""
        made: list[str] = [] if offset else list(dict.fromkeys(self.job_ids))[:count]
        first = self.job_ids[0]
        number = re.search(r"\d+", first)
        n = 700_000 + offset
        while len(made) < count:
            n += 1
            made.append(f"{first[: number.start()]}{n}{first[number.end() :]}" if number else f"{first}{n}")
        return made

    def owners_of(self, job_ids: Sequence[str]) -> list[str]:
        """The owners of ``job_ids``, jobs dealt out among ``users`` in turn."""
        return list(dict.fromkeys(self.users[i % len(self.users)] for i in range(len(job_ids))))

    def make_spec(self, username: str | None = None, **resources: Any) -> JobSpec:
        username = username or self.owner
        return JobSpec(
            username=username,
            server_name="",
            job_name=self.make_backend().job_name(username, "", "s1"),
            resources=ResourceRequest(**resources),
            workdir=f"/home/{username}/.batchhub/default",
            command=("batchhub-singleuser", "--token-file", f"/home/{username}/.batchhub/default/token"),
        )

    def status_result(self, job_ids: Sequence[str], returncode: int = 0, stdout: str = "", **kw: Any):
        backend = self.make_backend()
        command = backend.status_command(job_ids, self.owners_of(job_ids))
        return backend, result(command, returncode, stdout, **kw)

    def vocabulary(self, samples: Iterable[StatusSample | CancelSample | SubmitSample]) -> list[str]:
        return [text for sample in samples for text in (sample.stdout, sample.stderr) if text]

    def given(self, *strategies: Any) -> Callable[[Callable[..., None]], Callable[[], None]]:
        """Hypothesis's ``given`` with this class's example count, for a
        property checked inside a test method."""
        from hypothesis import HealthCheck, given, settings

        def wrap(check: Callable[..., None]) -> Callable[[], None]:
            return settings(
                max_examples=_examples(self.max_examples),
                deadline=None,
                database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
            )(given(*strategies)(check))

        return wrap

    def check_program(self, backend: Backend, command: Command, what: str) -> None:
        programs = {backend.program(name) for name in backend.program_names}
        assert command.argv[0] in programs, (
            f"the {what} command runs {command.argv[0]!r}, not one of the backend's programs "
            f"{sorted(programs)} (declare it in `program_names`, build it with `self.command(...)`)"
        )
        wrappers = [arg for arg in command.argv if os.path.basename(arg) in WRAPPERS]
        assert not wrappers, (
            f"the {what} command {list(command.argv)!r} holds {wrappers}: the runner alone decides "
            "who runs a command (`as_user`), and never through a shell"
        )

    # --- identity and capabilities -------------------------------------------
    def test_has_a_name_and_registers(self) -> None:
        backend_class = self.backend_class
        assert backend_class.name, "set the class attribute `name`"
        registered = PluginRegistry().backends.get(backend_class.name)
        assert registered is not None and issubclass(backend_class, registered), (
            f"{backend_class.name!r} is not registered through the 'batchhub' entry-point group"
        )

    def test_declares_its_programs(self) -> None:
        names = self.backend_class.program_names
        assert names and all(isinstance(name, str) and name for name in names), (
            "declare the programs the backend runs: `program_names = ('qsub', 'qstat', 'qdel')`"
        )

    def test_max_ids_per_query_is_none_or_large(self) -> None:
        limit = self.backend_class.max_ids_per_query
        assert limit is None or limit >= 100, (
            f"max_ids_per_query = {limit}: the monitor sends one status command per {limit} tracked "
            "jobs per tick; use None, or the scheduler's real limit (hundreds at least)"
        )

    def test_answer_exit_codes_are_success_and_specific_codes(self) -> None:
        codes = self.backend_class.answer_exit_codes
        assert 0 in codes and all(isinstance(code, int) for code in codes)
        never = sorted(codes & set(NEVER_ANSWERS))
        assert not never, (
            f"answer_exit_codes holds {never}: a program not found, not executable or killed "
            "never answers; declare only the codes your scheduler answers with (PBS qstat: 153)"
        )

    # --- recorded samples ----------------------------------------------------------
    def test_recorded_samples_are_supplied(self) -> None:
        missing = []
        if not any(isinstance(s.expect, dict) and s.expect for s in self.status_samples):
            missing.append("`status_samples`: at least one StatusSample with jobs in known states")
        for code in sorted(self.backend_class.answer_exit_codes - {0}):
            if not any(s.returncode == code for s in self.status_samples):
                missing.append(f"a StatusSample exiting {code} (declared in `answer_exit_codes`)")
        if not any(CancelOutcome.ALREADY_GONE in s.expect.values() for s in self.cancel_samples):
            missing.append("`cancel_samples`: at least one CancelSample of a job that no longer exists")
        if not any(isinstance(s.expect, str) for s in self.submit_samples):
            missing.append("`submit_samples`: at least one accepted submission with its job id")
        assert not missing, "record your scheduler's real output and add " + "; ".join(missing)

    def test_status_samples_parse_to_their_states(self) -> None:
        for sample in self.status_samples:
            backend = self.make_backend()
            command = backend.status_command(sample.job_ids, self.owners_of(sample.job_ids))
            if not isinstance(sample.expect, dict):
                with pytest.raises(QueryError):
                    backend.parse_status(sample.result(command), sample.job_ids)
                continue
            try:
                answer = backend.parse_status(sample.result(command), sample.job_ids)
            except QueryError as exc:
                pytest.fail(
                    f"status sample {sample.name!r} (exit {sample.returncode}) is an answer, but "
                    f"parse_status raised QueryError: {exc} (an exit code that still answers belongs "
                    "in `answer_exit_codes`)"
                )
            states = {job_id: obs.state for job_id, obs in answer.items()}
            assert states == dict(sample.expect), f"status sample {sample.name!r}"

    def test_cancel_samples_parse_to_their_outcomes(self) -> None:
        for sample in self.cancel_samples:
            backend = self.make_backend()
            command = backend.cancel_command(sample.job_ids, self.owner)
            outcomes = backend.read_cancel(sample.result(command), sample.job_ids)
            assert outcomes == dict(sample.expect), f"cancel sample {sample.name!r}"

    def test_submit_samples_parse_to_their_ids(self) -> None:
        for sample in self.submit_samples:
            backend = self.make_backend()
            command = backend.submit_command(self.make_spec(), "#!/bin/sh\n")
            if isinstance(sample.expect, str):
                assert backend.parse_submit(sample.result(command)) == sample.expect, sample.name
            else:
                with pytest.raises(sample.expect) as caught:
                    backend.parse_submit(sample.result(command))
                assert str(caught.value), f"submit sample {sample.name!r}: the user needs a message"

    # --- who runs what ---------------------------------------------------------------
    def test_submit_runs_a_program_as_the_user(self) -> None:
        backend = self.make_backend()
        script = "#!/bin/sh\necho conformance-script\n"
        command = backend.submit_command(self.make_spec(), script)
        self.check_program(backend, command, "submit")
        assert command.as_user == self.owner, "submit runs as the user (`as_user=spec.username`)"
        assert command.stdin == script, "the job script goes on stdin"
        assert not any("conformance-script" in arg for arg in command.argv), "the script belongs on stdin"

    def test_cancel_runs_a_program_as_the_owner(self) -> None:
        backend = self.make_backend()
        job_ids = self.ids(3)
        command = backend.cancel_command(job_ids, self.owner)
        self.check_program(backend, command, "cancel")
        assert command.as_user == self.owner, "cancel runs as the jobs' owner (`as_user=username`)"
        missing = [job_id for job_id in job_ids if job_id not in _words(command.argv)]
        assert not missing, f"the cancel command {list(command.argv)!r} leaves out {missing}"

    def test_queries_run_a_program_as_the_hub(self) -> None:
        backend = self.make_backend()
        job_ids = self.ids(3)
        commands = {
            "status": backend.status_command(job_ids, self.owners_of(job_ids)),
            "list": backend.list_command(),
            "reason": backend.reason_command(job_ids),
            "history": backend.history_command(job_ids),
        }
        for what, command in commands.items():
            if command is None:
                continue
            self.check_program(backend, command, what)
            assert command.as_user is None, f"the {what} command runs as the hub, not as {command.as_user}"

    def test_commands_carry_the_timeout_and_environment(self) -> None:
        backend = self.backend_class(
            **{**self.backend_config, "command_timeout": 7.25, "command_env": {"BATCHHUB_KIT": "1"}}
        )
        job_ids = self.ids(2)
        commands = [
            backend.submit_command(self.make_spec(), "#!/bin/sh\n"),
            backend.status_command(job_ids, self.owners_of(job_ids)),
            backend.cancel_command(job_ids, self.owner),
            backend.list_command(),
            backend.reason_command(job_ids),
            backend.history_command(job_ids),
        ]
        for command in filter(None, commands):
            assert command.timeout == 7.25, f"{command}: build commands with `self.command(...)`"
            assert command.env.get("BATCHHUB_KIT") == "1", f"{command}: `command_env` is not applied"

    # --- status ----------------------------------------------------------------------
    def test_status_command_carries_every_id(self) -> None:
        backend = self.make_backend()
        limit = backend.max_ids_per_query or 500
        for count in sorted({1, 2, 3, 50, min(limit, 500)}):
            job_ids = self.ids(count)
            owners = self.owners_of(job_ids)
            command = backend.status_command(job_ids, owners)
            assert isinstance(command, Command) and all(isinstance(arg, str) for arg in command.argv)
            words = _words(command.argv)
            if backend.status_by_owner:
                missing = [owner for owner in owners if owner not in words] if "*" not in words else []
                what = "owners"
            else:
                missing = [job_id for job_id in job_ids if job_id not in words]
                what = "ids"
            assert not missing, (
                f"ONE status command carries every one of {count} {what}; "
                f"{list(command.argv)[:8]!r}... leaves out {missing[:5]}"
            )

    def test_failed_query_raises_query_error(self) -> None:
        job_ids = self.ids(3)
        answers = ["", *(sample.stdout for sample in self.status_samples)]
        for stdout in answers:
            for stderr in ("", "error: connection refused\n"):
                backend, timed_out = self.status_result(job_ids, 0, stdout, stderr=stderr, timed_out=True)
                cases = [timed_out]
                for code in FAILURE_CODES:
                    if code not in backend.answer_exit_codes:
                        cases.append(self.status_result(job_ids, code, stdout, stderr=stderr)[1])
                for bad in cases:
                    with pytest.raises(QueryError):
                        answer = backend.parse_status(bad, job_ids)
                        pytest.fail(
                            f"a failed query (exit {bad.returncode}, timed out: {bad.timed_out}) was read "
                            f"as an answer: {answer}; only `answer_exit_codes` are answers"
                        )

    def _assert_only_mentioned(self, answer: dict, text: str, job_ids: Sequence[str], why: str) -> None:
        assert set(answer) <= set(job_ids), f"{why}: observations for jobs nobody asked about"
        for job_id, obs in answer.items():
            assert obs.job_id == job_id, f"{why}: observation of {obs.job_id} filed under {job_id}"
            assert mentions(text, job_id), (
                f"{why}: reported job {job_id} as {obs.state.name} although the output does not "
                "name it; report only jobs the scheduler describes"
            )

    def _answers(self, job_ids: Sequence[str], stdout: str, stderr: str = "") -> None:
        backend = self.make_backend()
        for code in sorted(backend.answer_exit_codes):
            backend, answered = self.status_result(job_ids, code, stdout, stderr=stderr)
            try:
                answer = backend.parse_status(answered, job_ids)
            except QueryError:
                continue
            why = f"exit {code}, output {stdout[:60]!r}"
            self._assert_only_mentioned(answer, stdout + stderr, job_ids, why)

    def test_empty_answer_reports_no_job(self) -> None:
        for stderr in ("", "warning: the configuration file is old\n"):
            for count in (1, 3):
                self._answers(self.ids(count), "", stderr)

    def test_garbled_answer_reports_no_job(self) -> None:
        for text in GARBLED_TEXTS:
            self._answers(self.ids(3), text)

    def test_answer_about_other_jobs_reports_none_of_ours(self) -> None:
        for sample in self.status_samples:
            others = [job_id for job_id in self.ids(6, offset=200_000) if not mentions(sample.stdout, job_id)]
            self._answers(others, sample.stdout, sample.stderr)

    def test_random_answer_reports_only_jobs_it_names(self) -> None:
        from hypothesis import strategies as st

        from batchhub.testing.strategies import garbage_output

        asked = list(dict.fromkeys([*self.ids(3), *(i for s in self.status_samples for i in s.job_ids)]))
        codes = sorted(self.backend_class.answer_exit_codes)

        @self.given(garbage_output(self.vocabulary(self.status_samples)), st.sampled_from(codes))
        def check(text: str, code: int) -> None:
            backend, answered = self.status_result(asked, code, text)
            try:
                answer = backend.parse_status(answered, asked)
            except QueryError:
                return
            self._assert_only_mentioned(answer, text, asked, f"exit {code}")

        check()

    def test_random_failed_query_raises_query_error(self) -> None:
        from hypothesis import strategies as st

        from batchhub.testing.strategies import garbage_output

        job_ids = self.ids(3)
        codes = [code for code in range(-15, 256) if code not in self.backend_class.answer_exit_codes]
        if not codes:
            pytest.fail("every exit code is declared an answer (`answer_exit_codes`)")

        @self.given(garbage_output(self.vocabulary(self.status_samples)), st.sampled_from(codes))
        def check(text: str, code: int) -> None:
            backend, failed = self.status_result(job_ids, code, text)
            with pytest.raises(QueryError):
                backend.parse_status(failed, job_ids)

        check()

    # --- cancel ----------------------------------------------------------------------
    def test_timed_out_cancel_fails_every_job(self) -> None:
        backend = self.make_backend()
        texts = ["", *(text for s in self.cancel_samples for text in (s.stdout, s.stderr))]
        for job_ids in (self.ids(1), self.ids(3), *(s.job_ids for s in self.cancel_samples)):
            command = backend.cancel_command(job_ids, self.owner)
            for text in texts:
                for code in (-9, 0):
                    outcomes = backend.read_cancel(result(command, code, text, "", timed_out=True), job_ids)
                    assert outcomes == dict.fromkeys(job_ids, CancelOutcome.FAILED), (
                        f"a cancel that timed out (output {text[:60]!r}) gave {outcomes}: the jobs "
                        "may still be live, so every one is FAILED"
                    )

    def test_failed_cancel_is_never_gone_or_requested(self) -> None:
        backend = self.make_backend()
        for job_ids in (self.ids(1), self.ids(3)):
            command = backend.cancel_command(job_ids, self.owner)
            for code in FAILURE_CODES:
                for text in FAILURE_TEXTS:
                    for out, err in ((text, ""), ("", text)):
                        outcomes = backend.read_cancel(result(command, code, out, err), job_ids)
                        wrong = {
                            job_id: outcome
                            for job_id, outcome in outcomes.items()
                            if outcome in (CancelOutcome.ALREADY_GONE, CancelOutcome.REQUESTED)
                        }
                        assert not wrong, (
                            f"a failed cancel (exit {code}, {text.strip()[:60]!r}, naming no job) "
                            f"gave {wrong}: the jobs may still be live"
                        )

    def test_random_cancel_output_settles_only_jobs_it_names(self) -> None:
        from hypothesis import strategies as st

        from batchhub.testing.strategies import garbage_output

        job_ids = self.ids(3)
        vocabulary = self.vocabulary(self.cancel_samples)

        @self.given(
            garbage_output(vocabulary), st.sampled_from(["out", "err"]), st.sampled_from(FAILURE_CODES)
        )
        def check(text: str, where: str, code: int) -> None:
            backend = self.make_backend()
            command = backend.cancel_command(job_ids, self.owner)
            out, err = (text, "") if where == "out" else ("", text)
            outcomes = backend.read_cancel(result(command, code, out, err), job_ids)
            assert set(outcomes) <= set(job_ids)
            for job_id, outcome in outcomes.items():
                assert isinstance(outcome, CancelOutcome)
                if outcome in (CancelOutcome.ALREADY_GONE, CancelOutcome.REQUESTED):
                    assert mentions(text, job_id), (
                        f"a cancel that exited {code} gave {job_id} {outcome.name} although its "
                        f"output {text[:80]!r} does not name it"
                    )

        check()

    # --- submit ----------------------------------------------------------------------
    def test_submit_refusal_is_a_submit_error(self) -> None:
        backend = self.make_backend()
        command = backend.submit_command(self.make_spec(), "#!/bin/sh\n")
        for bad in (result(command, 1, "", "error: rejected"), result(command, 0, "", "")):
            with pytest.raises(SubmitError) as caught:
                backend.parse_submit(bad)
            assert str(caught.value), "the user needs a message"

    def test_random_submit_output_gives_an_id_it_names(self) -> None:
        from hypothesis import strategies as st

        from batchhub.testing.strategies import garbage_output

        vocabulary = self.vocabulary(self.submit_samples)

        @self.given(garbage_output(vocabulary), st.sampled_from((0, *FAILURE_CODES)))
        def check(text: str, code: int) -> None:
            backend = self.make_backend()
            command = backend.submit_command(self.make_spec(), "#!/bin/sh\n")
            try:
                job_id = backend.parse_submit(result(command, code, text, ""))
            except SubmitError as exc:
                assert str(exc), "the user needs a message"
                return
            assert code == 0, f"a submit that exited {code} gave the job id {job_id!r}"
            assert job_id and mentions(text, job_id), f"job id {job_id!r} is not in the output {text!r}"

        check()

    # --- job script ------------------------------------------------------------------
    def test_directives_are_single_prefixed_lines(self) -> None:
        from batchhub.testing.strategies import resource_requests

        @self.given(resource_requests(hostile=True))
        def check(request: ResourceRequest) -> None:
            backend = self.make_backend()
            spec = replace(self.make_spec(), resources=request)
            try:
                check_spec(backend, spec)  # the core refuses these before any backend sees them
                lines = backend.directives(spec)
            except (SubmitError, ConfigError) as exc:
                assert str(exc), "the user needs a message"
                return
            assert lines, "a job needs at least a name and its output files"
            for line in lines:
                assert not any(c in line for c in "\n\r\x00"), f"a value broke a directive line: {line!r}"
                assert line.startswith(backend.directive_prefix + " "), line

        check()

    def test_job_name_carries_the_tag(self) -> None:
        backend = self.make_backend()
        name = backend.job_name(self.owner, "gpu work/1", "s1")
        assert backend.carries_hub_tag(name)
        assert " " not in name and "/" not in name
