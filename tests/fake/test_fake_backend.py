"""The fake backend's builders and parsers, on text as the fake prints it."""

from __future__ import annotations

import pytest

from batchhub.jobs import (
    CancelOutcome,
    Command,
    CommandResult,
    JobSpec,
    JobState,
    QueryError,
    ResourceRequest,
    SubmitError,
)
from batchhub_fake import FakeBackend
from batchhub_fake.protocol import STATUS_HEADER, parse_directives


def result(stdout: str = "", rc: int = 0, stderr: str = "", timed_out: bool = False) -> CommandResult:
    return CommandResult(Command(("fake-status", "1")), rc, stdout, stderr, 0.0, timed_out)


def spec(**resources: object) -> JobSpec:
    return JobSpec(
        "alice", "gpu", "batchhub-alice-gpu", ResourceRequest(**resources), "/home/alice/.batchhub/gpu"
    )


def test_directives_carry_every_resource_and_the_scheduler_reads_them_back() -> None:
    backend = FakeBackend()
    lines = backend.directives(
        spec(cores=4, memory_mb=2048, gpus=1, runtime_s=3600, queue="short", project="physics")
    )
    assert all(line.startswith("#FAKE --") for line in lines)
    options = parse_directives("#!/bin/sh\n" + "\n".join(lines) + "\nexec true\n")
    assert options == {
        "name": "batchhub-alice-gpu",
        "cores": "4",
        "mem": "2048",
        "gpus": "1",
        "time": "3600",
        "queue": "short",
        "project": "physics",
        "output": "/home/alice/.batchhub/gpu/job.out",
        "error": "/home/alice/.batchhub/gpu/job.err",
        "chdir": "/home/alice/.batchhub/gpu",
    }


@pytest.mark.parametrize("queue", ["short\n#FAKE --cores=64", "a b", "x;rm"])
def test_a_value_that_could_smuggle_a_directive_is_refused(queue: str) -> None:
    # the user's choice: a message for the user, not "tell the admins"
    with pytest.raises(SubmitError, match=r"The queue .* is not valid"):
        FakeBackend().directives(spec(queue=queue))


def test_submit_runs_as_the_user_with_the_script_on_stdin() -> None:
    command = FakeBackend(command_timeout=12).submit_command(spec(), "#!/bin/sh\n")
    assert command.argv == ("fake-submit",)
    assert (command.as_user, command.stdin, command.timeout) == ("alice", "#!/bin/sh\n", 12)


def test_parse_submit() -> None:
    backend = FakeBackend()
    assert backend.parse_submit(result("Submitted fake job 42\n")) == "42"
    with pytest.raises(SubmitError, match="refused the job: Batch job submission failed: no"):
        backend.parse_submit(result(rc=1, stderr="fake-submit: error: Batch job submission failed: no\n"))
    with pytest.raises(SubmitError, match="held no job id"):
        backend.parse_submit(result("Thank you\n"))


def test_one_status_command_for_many_ids_and_local_mode_argv() -> None:
    assert FakeBackend().status_command(["1", "2", "30"]).argv == ("fake-status", "1,2,30")
    local = FakeBackend(local=True, spool_dir="spool", python="python3").status_command(["5"])
    assert local.argv == ("python3", "-m", "batchhub_fake.local", "--spool", "spool", "fake-status", "5")
    assert local.as_user is None
    with pytest.raises(ValueError):
        FakeBackend().status_command(["1,2"])


def test_parse_status_maps_states_hosts_exits_and_reasons() -> None:
    text = "\n".join(
        [
            STATUS_HEADER,
            "1|PD|||waiting for a free slot",
            "2|R|node7||",
            "3|NF|node7||",
            "4|OOM|node7|137|",
            "5|CD|node7|0|",
            "6|H|||",
            "99|R|node1||",  # not asked about: ignored
        ]
    )
    seen = FakeBackend().parse_status(result(text), ["1", "2", "3", "4", "5", "6", "7"])
    assert set(seen) == {"1", "2", "3", "4", "5", "6"}  # 7 is absent, not terminal
    assert (seen["1"].state, seen["1"].reason) == (JobState.PENDING, "waiting for a free slot")
    assert (seen["2"].state, seen["2"].host) == (JobState.RUNNING, "node7")
    assert (seen["3"].state, seen["3"].reason) == (JobState.FAILED, "the job's node failed")
    assert (seen["4"].exit_code, seen["4"].reason) == (137, "the job ran out of memory")
    assert (seen["5"].state, seen["5"].exit_code) == (JobState.COMPLETED, 0)
    assert seen["6"].state is JobState.HELD


@pytest.mark.parametrize(
    "bad",
    [
        result(rc=1, stderr="fake-status: error: unable to contact the fake controller"),
        result(rc=-9, timed_out=True),
        result("\x00\x17<html>502 Bad Gateway</html>\n"),
        result(""),
        result(STATUS_HEADER + "\n1|ZZ|||\n"),
        result(STATUS_HEADER + "\n1|R|h|x|\n"),
    ],
    ids=["rc", "timeout", "garbage", "empty", "unknown-state", "bad-exit"],
)
def test_a_failed_or_unreadable_query_raises_instead_of_guessing(bad: CommandResult) -> None:
    with pytest.raises(QueryError):
        FakeBackend().parse_status(bad, ["1"])


def test_parse_cancel() -> None:
    backend = FakeBackend()
    command = backend.cancel_command(["1", "2"], "alice")
    assert (command.argv, command.as_user) == (("fake-cancel", "1,2"), "alice")
    text = "1 cancelled\n2 finished\n3 not-found\n4 denied\n"
    assert backend.parse_cancel(result(text), ["1", "2", "3", "4", "5"]) == {
        "1": CancelOutcome.REQUESTED,
        "2": CancelOutcome.ALREADY_GONE,
        "3": CancelOutcome.ALREADY_GONE,
        "4": CancelOutcome.DENIED,
        "5": CancelOutcome.FAILED,
    }
    assert backend.parse_cancel(result(rc=1, stderr="busy"), ["1"]) == {"1": CancelOutcome.FAILED}
