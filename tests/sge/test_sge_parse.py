"""The Grid Engine backend against output recorded from a real Son of Grid
Engine (tests/data/sge, see its README): states, hosts, reasons, refusals
and cancels as a user would see them, and broken answers that must never
end a job."""

from __future__ import annotations

from pathlib import Path

import pytest

from batchhub.jobs import (
    CancelOutcome,
    Command,
    CommandResult,
    ConfigError,
    JobSpec,
    JobState,
    QueryError,
    ResourceRequest,
    SubmitError,
)
from batchhub.template import render_job_script
from batchhub_sge.backend import SGEBackend

DATA = Path(__file__).resolve().parent.parent / "data" / "sge"
ANY = Command(("qstat",))


def sample(name: str) -> CommandResult:
    """A recorded command result: stdout, stderr (optional) and exit status."""

    def read(suffix: str) -> str:
        path = DATA / f"{name}.{suffix}"
        return path.read_text() if path.exists() else ""

    assert (DATA / f"{name}.rc").exists(), f"no recorded sample {name!r}"
    return CommandResult(ANY, int(read("rc")), read("stdout"), read("stderr"))


def status(name: str, *ids: str) -> dict:
    return SGEBackend().parse_status(sample(name), list(ids))


def spec(**resources: object) -> JobSpec:
    return JobSpec(
        username="alice",
        server_name="",
        job_name="batchhub-alice",
        resources=ResourceRequest(**resources),  # type: ignore[arg-type]
        workdir="/home/alice/.batchhub/default",
        command=("batchhub-singleuser",),
    )


# --- states ------------------------------------------------------------------


def test_running_pending_and_held_jobs() -> None:
    obs = status("qstat-r-qw-hqw", "6", "7", "8")
    assert obs["6"].state is JobState.RUNNING and obs["6"].host == "vm" and obs["6"].native_state == "r"
    assert obs["7"].state is JobState.PENDING and obs["7"].host is None
    assert obs["8"].state is JobState.HELD and "hold" in obs["8"].reason


def test_only_the_jobs_asked_about_are_reported() -> None:
    assert set(status("qstat-r-qw-hqw", "7", "12345")) == {"7"}


def test_transferring_job_is_starting_on_its_host() -> None:
    obs = status("qstat-t", "25", "23")
    assert obs["25"].state is JobState.STARTING and obs["25"].host == "vm"
    assert obs["23"].state is JobState.RUNNING


@pytest.mark.parametrize(("name", "job_id", "letter"), [("qstat-s", "6", "s"), ("qstat-S", "6", "S")])
def test_suspended_job_and_suspended_queue(name: str, job_id: str, letter: str) -> None:
    obs = status(name, job_id)[job_id]
    assert obs.state is JobState.SUSPENDED and obs.native_state == letter and obs.reason


def test_threshold_suspension_is_suspended() -> None:
    obs = status("qstat-T", "25", "24")
    assert obs["25"].state is JobState.SUSPENDED and "threshold" in obs["25"].reason
    assert obs["24"].state is JobState.PENDING  # Rq: rescheduled, waiting again


def test_error_state_is_failed_although_listed_as_pending() -> None:
    obs = status("qstat-eqw", "9", "10", "7")
    assert obs["9"].state is JobState.FAILED and obs["9"].native_state == "Eqw"
    assert obs["10"].state is JobState.FAILED
    assert obs["7"].state is JobState.PENDING


def test_job_being_deleted_is_stopping() -> None:
    obs = status("qstat-dr", "6")["6"]
    assert obs.state is JobState.STOPPING and obs.host == "vm"


@pytest.mark.parametrize(
    ("letters", "state"),
    [
        ("qw", JobState.PENDING),
        ("Rq", JobState.PENDING),
        ("hqw", JobState.HELD),
        ("hRwq", JobState.HELD),
        ("t", JobState.STARTING),
        ("Rt", JobState.STARTING),
        ("r", JobState.RUNNING),
        ("Rr", JobState.RUNNING),
        ("hr", JobState.RUNNING),
        ("s", JobState.SUSPENDED),
        ("Rs", JobState.SUSPENDED),
        ("dr", JobState.STOPPING),
        ("ds", JobState.STOPPING),
        ("dt", JobState.STOPPING),
        ("Eqw", JobState.FAILED),
        ("Ehqw", JobState.FAILED),
    ],
)
def test_state_letters_by_precedence(letters: str, state: JobState) -> None:
    text = sample("qstat-r-qw-hqw").stdout.replace("<state>r</state>", f"<state>{letters}</state>")
    obs = SGEBackend().parse_status(CommandResult(ANY, 0, text), ["6"])["6"]
    assert obs.state is state and obs.native_state == letters


def test_empty_listing_means_no_jobs() -> None:
    text = sample("qstat-z").stdout.split("<queue_info>")[0] + "<queue_info>\n</queue_info>\n</job_info>\n"
    assert SGEBackend().parse_status(CommandResult(ANY, 0, text), ["6"]) == {}


# --- failed queries are unknown, never an end ---------------------------------------


def test_qmaster_down_is_a_failed_query() -> None:
    with pytest.raises(QueryError, match=r"commlib|qmaster"):
        status("qstat-qmaster-down", "6")


@pytest.mark.parametrize("cut", [0, 10, 200, 600, -20, -3])
def test_truncated_listing_is_a_failed_query(cut: int) -> None:
    text = sample("qstat-r-qw-hqw").stdout[:cut]
    with pytest.raises(QueryError):
        SGEBackend().parse_status(CommandResult(ANY, 0, text), ["6", "7"])


@pytest.mark.parametrize(
    "text", ["", "   \n", "garbage", "<html>proxy error</html>", "<job_info><job_list/>"]
)
def test_garbage_is_a_failed_query(text: str) -> None:
    with pytest.raises(QueryError):
        SGEBackend().parse_status(CommandResult(ANY, 0, text), ["6"])


def test_nonzero_exit_is_a_failed_query_even_with_a_listing() -> None:
    with pytest.raises(QueryError):
        SGEBackend().parse_status(CommandResult(ANY, 1, sample("qstat-r-qw-hqw").stdout), ["6"])


def test_timed_out_query_is_a_failed_query() -> None:
    with pytest.raises(QueryError):
        SGEBackend().parse_status(
            CommandResult(ANY, 0, sample("qstat-r-qw-hqw").stdout, timed_out=True), ["6"]
        )


@pytest.mark.parametrize(
    "prolog",
    [
        '<!DOCTYPE job_info [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">]>',
        '<!DOCTYPE job_info [<!ENTITY x SYSTEM "file:///etc/passwd">]>',
        "<!doctype job_info>",
    ],
)
def test_entity_tricks_are_refused_before_parsing(prolog: str) -> None:
    text = sample("qstat-r-qw-hqw").stdout.replace("<?xml version='1.0'?>", f"<?xml version='1.0'?>{prolog}")
    with pytest.raises(QueryError, match=r"DOCTYPE|ENTITY"):
        SGEBackend().parse_status(CommandResult(ANY, 0, text), ["6"])


# --- reasons ------------------------------------------------------------------------


def test_pending_reasons_from_scheduler_messages() -> None:
    reasons = SGEBackend().parse_reasons(sample("qstat-j-pending"), ["7", "8"])
    assert 'cannot run at host "vm" because it offers only hc:gpu' in reasons["7"]
    assert reasons["8"] == "Job is in hold state"


def test_an_overloaded_queue_is_the_reason_not_the_queues_the_job_did_not_ask_for() -> None:
    backend = SGEBackend()
    reason = backend.parse_reasons(sample("qstat-j-overloaded"), ["9002"])["9002"]
    assert reason.startswith('queue instance "busy.q@vm" dropped because it is overloaded'), reason
    assert "hard queue list" not in reason
    assert backend.explain_reason(reason).startswith("The cluster is busy: every queue that fits")


def test_error_reasons_of_failed_jobs() -> None:
    reasons = SGEBackend().parse_reasons(sample("qstat-j-eqw"), ["9", "10"])
    assert reasons["9"].startswith('can\'t stat() "/root/nope.out" as stdout_path: Permission denied')
    assert "KRB5CCNAME" not in reasons["9"] and "[2001:" not in reasons["9"]
    assert reasons["10"].startswith('unable to find shell "/nonexistent/shell"')
    assert "Job is in error state" in reasons["10"]


def test_reasons_for_unknown_jobs_are_empty() -> None:
    assert SGEBackend().parse_reasons(sample("qstat-j-unknown"), ["999"]) == {}
    reasons = SGEBackend().parse_reasons(sample("qstat-j-known-unknown"), ["25", "999"])
    assert "999" not in reasons
    assert "All queues dropped because of overload or full" in reasons["25"]  # a global message


def test_reasons_with_qmaster_down_are_a_failed_query() -> None:
    # qstat -j -xml exits 0 here, with a <comunication_error> document
    with pytest.raises(QueryError, match="not reachable"):
        SGEBackend().parse_reasons(sample("qstat-j-qmaster-down"), ["1"])


def test_reason_command_is_one_batched_qstat_j() -> None:
    command = SGEBackend().reason_command(["7", "8"])
    assert command is not None and command.argv == ("qstat", "-j", "7,8", "-xml")


# --- history --------------------------------------------------------------------------


def test_finished_jobs_from_the_zombie_listing() -> None:
    backend = SGEBackend()
    found = backend.parse_history(sample("qstat-z"), ["6", "9", "4242"])
    assert set(found) == {"6", "9"}
    assert all(obs.state is JobState.COMPLETED and obs.native_state == "z" for obs in found.values())
    assert "qacct -j 6" in found["6"].reason


def test_history_failure_is_a_failed_query() -> None:
    with pytest.raises(QueryError):
        SGEBackend().parse_history(sample("qstat-qmaster-down"), ["6"])


# --- submit -------------------------------------------------------------------------------


def test_submit_returns_the_terse_job_id() -> None:
    assert SGEBackend().parse_submit(sample("qsub-ok")) == "12"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("qsub-unknown-queue", 'the queue "nosuch.q" does not exist'),
        ("qsub-unknown-complex", 'no resource "nosuch"'),
        ("qsub-unknown-pe", 'parallel environment "nosuchpe" does not exist'),
        ("qsub-unknown-project", 'the project "nosuchproject" does not exist'),
        ("qsub-too-many-gpus-w-e", "no queue can ever run a job this size"),
        ("qsub-too-much-memory", "less memory"),
        ("qsub-too-many-slots", "fewer cores"),
        ("qsub-bad-runtime", 'attribute "h_rt" is not a time value'),
        ("qsub-root", "may not submit jobs"),
        ("qsub-qmaster-down", "not reachable right now"),
    ],
)
def test_refusals_become_messages_for_the_user(name: str, message: str) -> None:
    with pytest.raises(SubmitError) as caught:
        SGEBackend().parse_submit(sample(name))
    text = str(caught.value)
    assert message in text
    assert "Exiting." not in text and "Unable to run job" not in text


def test_submit_command_runs_qsub_terse_as_the_user_with_the_script_on_stdin() -> None:
    backend = SGEBackend(
        programs={"qsub": "/usr/lib/gridengine/qsub"}, command_env={"SGE_ROOT": "/var/lib/gridengine"}
    )
    command = backend.submit_command(spec(), "#!/bin/bash\n")
    assert command.argv == ("/usr/lib/gridengine/qsub", "-terse")
    assert command.as_user == "alice" and command.stdin == "#!/bin/bash\n"
    assert command.env["SGE_ROOT"] == "/var/lib/gridengine"


# --- cancel -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "job_id", "outcome"),
    [
        ("qdel-running", "6", CancelOutcome.REQUESTED),
        ("qdel-pending", "8", CancelOutcome.REQUESTED),
        ("qdel-again", "8", CancelOutcome.ALREADY_GONE),
        ("qdel-other-user", "11", CancelOutcome.DENIED),
        ("qdel-qmaster-down", "1", CancelOutcome.FAILED),
    ],
)
def test_cancel_outcomes(name: str, job_id: str, outcome: CancelOutcome) -> None:
    assert SGEBackend().parse_cancel(sample(name), [job_id]) == {job_id: outcome}


def test_cancel_of_a_mixed_list() -> None:
    outcomes = SGEBackend().parse_cancel(sample("qdel-mixed"), ["8", "11", "77"])
    assert outcomes == {
        "8": CancelOutcome.ALREADY_GONE,
        "11": CancelOutcome.REQUESTED,
        "77": CancelOutcome.FAILED,  # not mentioned: it may still be live
    }


def test_cancel_command_is_one_qdel_as_the_owner() -> None:
    command = SGEBackend().cancel_command(["8", "11"], "alice")
    assert command.argv == ("qdel", "8,11") and command.as_user == "alice"


# --- directives ---------------------------------------------------------------------------------


def test_directives_for_cores_memory_gpu_runtime_queue_project() -> None:
    lines = SGEBackend().directives(
        spec(cores=2, memory_mb=4097, gpus=1, runtime_s=90061, queue="all.q", project="chem")
    )
    assert lines == [
        "#$ -clear",  # a user's own ~/.sge_request never fills what the hub left unset
        "#$ -N batchhub-alice",
        "#$ -S /bin/bash",
        "#$ -wd /home/alice/.batchhub/default",
        "#$ -o /home/alice/.batchhub/default/job.out",
        "#$ -e /home/alice/.batchhub/default/job.err",
        "#$ -pe smp 2",
        "#$ -l rmem=2049M",  # 4097 MB over 2 slots, rounded up
        "#$ -l gpu=1",
        "#$ -l h_rt=25:01:01",
        "#$ -q all.q",
        "#$ -P chem",
    ]


def test_single_core_job_needs_no_parallel_environment() -> None:
    lines = SGEBackend().directives(spec(cores=1, memory_mb=2048))
    assert not any("-pe" in line for line in lines)
    assert "#$ -l rmem=2048M" in lines


def test_site_settings_change_the_directives() -> None:
    backend = SGEBackend(
        pe="mpi",
        pe_for_one_core=True,
        memory_complex="h_vmem",
        memory_per_slot=False,
        gpu_complex="gpgpu",
        shell="/bin/sh",
        verify="e",
        extra_directives=["-l arch=lx-amd64"],
    )
    lines = backend.directives(spec(cores=1, memory_mb=3000, gpus=2))
    for expected in ("#$ -pe mpi 1", "#$ -l h_vmem=3000M", "#$ -l gpgpu=2", "#$ -S /bin/sh", "#$ -w e"):
        assert expected in lines
    assert lines[-1] == "#$ -l arch=lx-amd64"


def test_never_passes_the_environment() -> None:
    for flag in ("-V", "-v SECRET=x"):
        with pytest.raises(ConfigError, match="environment"):
            SGEBackend(extra_directives=[flag]).directives(spec())
    assert not any(" -v" in line or " -V" in line for line in SGEBackend().directives(spec(cores=4)))


@pytest.mark.parametrize(
    "resources",
    [{"queue": "all.q -l h_vmem=100G"}, {"queue": "a\nb"}, {"project": "p;rm"}, {"project": "x y"}],
)
def test_unsafe_user_values_are_refused(resources: dict) -> None:
    with pytest.raises(SubmitError):
        render_job_script(SGEBackend(), spec(**resources))


def test_a_workdir_grid_engine_would_misread_is_refused() -> None:
    for workdir in ("/home/alice/my dir", "/home/alice/host:x", "relative/dir"):
        bad = JobSpec("alice", "", "batchhub-alice", ResourceRequest(), workdir)
        with pytest.raises(ConfigError, match="the sge scheduler cannot take"):
            render_job_script(SGEBackend(), bad)


def test_status_lists_only_the_owners_jobs_in_one_command() -> None:
    backend = SGEBackend()
    ids = [str(n) for n in range(50)]
    owners = ["carol", "alice", "bob", "alice"]
    assert backend.status_command(ids, owners=owners).argv == ("qstat", "-xml", "-u", "alice,bob,carol")
    # unknown owners, or a name qstat could misread: everyone's jobs, never a wrong list
    assert backend.status_command(ids).argv == ("qstat", "-xml", "-u", "*")
    assert backend.status_command(ids, owners=["alice", "x,y"]).argv[-1] == "*"


def test_a_thousand_owners_fit_one_status_command() -> None:
    # one argument may hold at most 128 KiB (the kernel's MAX_ARG_STRLEN)
    backend = SGEBackend()
    assert backend.max_ids_per_query is not None and backend.max_ids_per_query >= 1000
    owners = [f"u{n:031d}" for n in range(backend.max_ids_per_query)]  # 32 characters, the longest name
    command = backend.status_command([str(n) for n in range(len(owners))], owners=owners)
    assert len(command.argv[-1].encode()) < 128 * 1024
