"""The PBS backend against batchhub's conformance kit and recorded PBS
output (tests/data: ``NAME.rc``, ``NAME.stdout``, ``NAME.stderr``, as the
commands printed them)."""

from __future__ import annotations

from pathlib import Path

import pytest
from batchhub_pbs.backend import PBSBackend

from batchhub.jobs import (
    CancelOutcome,
    CommandResult,
    ConfigError,
    JobSpec,
    JobState,
    QueryError,
    ResourceRequest,
    SubmitError,
    SubmitUncertain,
)
from batchhub.template import render_job_script
from batchhub.testing.conformance import BackendConformance
from batchhub.testing.samples import CancelSample, StatusSample, SubmitSample

DATA = Path(__file__).parent / "data"
MIXED = tuple(f"{n}.pbs" for n in range(101, 110))


class TestPBSConformance(BackendConformance):
    backend_class = PBSBackend
    job_ids = ("101.pbs", "102.pbs", "103.pbs")
    status_samples = (
        StatusSample.from_files(
            DATA,
            "qstat-mixed",  # exit 153: 107.pbs is unknown, so absent
            job_ids=MIXED,
            expect={
                "101.pbs": JobState.RUNNING,
                "102.pbs": JobState.PENDING,
                "103.pbs": JobState.COMPLETED,
                "104.pbs": JobState.CANCELLED,
                "105.pbs": JobState.TIMEOUT,
                "106.pbs": JobState.HELD,
                "108.pbs": JobState.STOPPING,
                "109.pbs": JobState.FAILED,
            },
        ),
        StatusSample.from_files(DATA, "qstat-all-unknown", job_ids=("201.pbs", "202.pbs"), expect={}),
        StatusSample.from_files(DATA, "qstat-server-down", job_ids=("101.pbs",), expect=QueryError),
    )
    cancel_samples = (
        CancelSample.from_files(
            DATA,
            "qdel-mixed",
            job_ids=("101.pbs", "103.pbs", "107.pbs"),
            expect={
                "101.pbs": CancelOutcome.REQUESTED,  # no message: deleted
                "103.pbs": CancelOutcome.ALREADY_GONE,
                "107.pbs": CancelOutcome.ALREADY_GONE,
            },
        ),
        CancelSample.from_files(
            DATA, "qdel-exiting", job_ids=("108.pbs",), expect={"108.pbs": CancelOutcome.ALREADY_GONE}
        ),
        CancelSample.from_files(
            DATA, "qdel-not-owner", job_ids=("102.pbs",), expect={"102.pbs": CancelOutcome.DENIED}
        ),
        CancelSample.from_files(
            DATA,
            "qdel-server-down",
            job_ids=("101.pbs", "102.pbs"),
            expect=dict.fromkeys(("101.pbs", "102.pbs"), CancelOutcome.FAILED),
        ),
    )
    submit_samples = (
        SubmitSample.from_files(DATA, "qsub-ok", expect="101.pbs"),
        SubmitSample.from_files(DATA, "qsub-ok-long-server", expect="4411.pbs-head01.cluster.example.org"),
        SubmitSample.from_files(DATA, "qsub-unknown-queue", expect=SubmitError),
        SubmitSample.from_files(DATA, "qsub-over-limit", expect=SubmitError),
        SubmitSample.from_files(DATA, "qsub-lost-answer", expect=SubmitUncertain),
    )


def spec(workdir: str = "/home/alice/.batchhub/default", **resources: object) -> JobSpec:
    return JobSpec(
        username="alice",
        server_name="",
        job_name="batchhub-alice.3f2a1c.s1",
        resources=ResourceRequest(**resources),  # type: ignore[arg-type]
        workdir=workdir,
    )


def recorded(name: str, command_args: tuple[str, ...] = ("qstat",)) -> CommandResult:
    sample = StatusSample.from_files(DATA, name, job_ids=("0.pbs",), expect={})
    return sample.result(PBSBackend().command(command_args[0], *command_args[1:]))


def test_directives_ask_for_what_the_user_chose() -> None:
    lines = PBSBackend().directives(
        spec(cores=4, memory_mb=8192, gpus=1, runtime_s=5400, queue="gpu", project="chem42")
    )
    assert lines == [
        "#PBS -N batchhub-alice.3f2a1c.s1",
        "#PBS -o /home/alice/.batchhub/default/job.out",
        "#PBS -e /home/alice/.batchhub/default/job.err",
        "#PBS -k oed",
        "#PBS -r n",
        "#PBS -l select=1:ncpus=4:mem=8192mb:ngpus=1",
        "#PBS -l walltime=01:30:00",
        "#PBS -q gpu",
        "#PBS -A chem42",
    ]


def test_directives_leave_the_rest_to_the_site_and_add_its_own() -> None:
    backend = PBSBackend(extra_directives=["-l place=excl"])
    lines = backend.directives(spec())
    assert "#PBS -l select=1:ncpus=1" in lines
    assert not any("walltime" in line or "-q " in line for line in lines)
    assert lines[-1] == "#PBS -l place=excl"


# the core checks names and paths before any backend sees them (check_spec)
def test_a_queue_name_that_is_not_one_is_the_users_error() -> None:
    with pytest.raises(SubmitError, match="queue"):
        render_job_script(PBSBackend(), spec(queue="workq\n#PBS -u root"))


@pytest.mark.parametrize("workdir", ["/home/alice/My Files", "/home/alice/host:dir"])
def test_a_workdir_pbs_cannot_write_to_is_the_sites_error(workdir: str) -> None:
    with pytest.raises(ConfigError, match="the pbs scheduler cannot take"):
        render_job_script(PBSBackend(), spec(workdir=workdir))


def test_minus_V_is_refused() -> None:
    with pytest.raises(ConfigError, match="environment"):
        PBSBackend(extra_directives=["-V"])


def test_status_is_one_qstat_for_every_id_including_finished_ones() -> None:
    command = PBSBackend(programs={"qstat": "/opt/pbs/bin/qstat"}).status_command(["101.pbs", "102.pbs"])
    assert command.argv == ("/opt/pbs/bin/qstat", "-f", "-F", "json", "-x", "101.pbs", "102.pbs")
    assert command.as_user is None


def test_status_reads_hosts_exit_codes_and_comments() -> None:
    answer = PBSBackend().parse_status(recorded("qstat-mixed"), MIXED)
    assert answer["101.pbs"].host == "node1"
    assert answer["101.pbs"].native_state == "R"
    assert answer["102.pbs"].host is None
    assert "Insufficient amount of resource: ngpus" in answer["102.pbs"].reason
    assert answer["103.pbs"].exit_code == 0
    assert answer["104.pbs"].exit_code == 128 + 15  # killed by SIGTERM: PBS says 256 + 15
    assert answer["105.pbs"].exit_code is None  # PBS's own code (-29), not the script's
    assert "walltime" in answer["105.pbs"].reason
    assert answer["109.pbs"].exit_code == 3
    assert "107.pbs" not in answer


def test_an_unknown_state_is_never_an_end() -> None:
    result = recorded("qstat-mixed")
    text = result.stdout.replace('"job_state":"R"', '"job_state":"Z"')
    answer = PBSBackend().parse_status(CommandResult(result.command, 153, text, ""), MIXED)
    assert answer["101.pbs"].state is JobState.PENDING
    assert answer["101.pbs"].native_state == "Z"


def test_listing_gives_every_users_live_jobs_with_names_and_owners() -> None:
    backend = PBSBackend()
    assert backend.list_command().argv == ("qstat", "-f", "-F", "json")
    jobs = {job.job_id: job for job in backend.parse_list(recorded("qstat-list"))}
    assert set(jobs) == {"101.pbs", "102.pbs", "110.pbs"}
    assert jobs["101.pbs"].name == "batchhub-alice.3f2a1c.s1"
    assert jobs["101.pbs"].owner == "alice"
    assert jobs["110.pbs"].owner == "carol"
    assert jobs["102.pbs"].state is JobState.PENDING
    assert [job.job_id for job in jobs.values() if backend.carries_hub_tag(job.name)] == [
        "101.pbs",
        "102.pbs",
    ]


def test_a_failed_listing_is_a_query_error() -> None:
    with pytest.raises(QueryError):
        PBSBackend().parse_list(recorded("qstat-server-down"))


def test_cancel_is_one_qdel_as_the_owner() -> None:
    command = PBSBackend().cancel_command(["101.pbs", "103.pbs"], "alice")
    assert command.argv == ("qdel", "101.pbs", "103.pbs")
    assert command.as_user == "alice"
