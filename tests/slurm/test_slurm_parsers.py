"""The Slurm backend's parsers on outputs recorded from a real Slurm 22.05
(tests/data/slurm; see its README for the few lines built by hand)."""

from __future__ import annotations

import pytest
from slurm_samples import DATA, ids_of, lines_by_state, sample

from batchhub.jobs import (
    CancelOutcome,
    Command,
    CommandResult,
    HistoryUnavailable,
    JobState,
    QueryError,
    SubmitError,
    SubmitUncertain,
)
from batchhub_slurm.backend import SlurmBackend, first_node
from batchhub_slurm.states import STATES

backend = SlurmBackend()


def parse(name: str) -> dict:
    result = sample(name)
    return backend.parse_status(result, ids_of(result))


# --- status: every state we could make Slurm show -------------------------
def test_running_and_pending_with_reasons() -> None:
    result = sample("squeue-running-pending")
    by_state = lines_by_state(result)
    answer = parse("squeue-running-pending")
    running = answer[by_state["RUNNING"]]
    assert running.state is JobState.RUNNING
    assert running.host == "vm"
    pending = [obs for obs in answer.values() if obs.native_state == "PENDING"]
    # a waiting job keeps Slurm's code; explain_reason gives the plain words
    reasons = {obs.reason: obs.state for obs in pending}
    assert reasons["Resources"] is JobState.PENDING and reasons["Priority"] is JobState.PENDING
    plain = {backend.explain_reason(obs.reason): obs.state for obs in pending}
    assert (
        plain["Waiting for resources: the cores, memory or GPUs it asks for are in use"] is JobState.PENDING
    )
    assert plain["Waiting behind higher-priority jobs"] is JobState.PENDING
    assert JobState.HELD in reasons.values()
    assert all(obs.host is None for obs in pending), "a pending job has no host yet"


def test_held_by_user_is_held() -> None:
    (obs,) = parse("squeue-held").values()
    assert obs.state is JobState.HELD
    assert backend.explain_reason(obs.reason).startswith("Held by its owner")


def test_unsatisfiable_job_waits_with_a_reason_a_user_understands() -> None:
    (obs,) = parse("squeue-unsatisfiable").values()
    assert obs.state is JobState.PENDING
    assert backend.explain_reason(obs.reason).startswith(
        "Your request can never run here: no node in the partition has that many cores"
    )


def test_finished_jobs_carry_their_ending_and_exit_code() -> None:
    result = sample("squeue-finished")
    by_state = lines_by_state(result)
    answer = parse("squeue-finished")
    completed = answer[by_state["COMPLETED"]]
    failed = answer[by_state["FAILED"]]
    cancelled = answer[by_state["CANCELLED"]]
    assert (completed.state, completed.exit_code) == (JobState.COMPLETED, 0)
    assert (failed.state, failed.exit_code) == (JobState.FAILED, 3)
    assert failed.reason == "the job exited with code 3"
    assert cancelled.state is JobState.CANCELLED
    assert cancelled.exit_code == 128 + 15  # SIGTERM from scancel


@pytest.mark.parametrize(
    ("name", "state", "native"),
    [
        ("squeue-completing", JobState.STOPPING, "COMPLETING"),
        ("squeue-requeue-completing", JobState.STOPPING, "COMPLETING"),
        ("squeue-requeue-pending", JobState.PENDING, "PENDING"),
        ("squeue-timeout", JobState.TIMEOUT, "TIMEOUT"),
        ("squeue-node-fail", JobState.FAILED, "NODE_FAIL"),
        ("squeue-suspended", JobState.SUSPENDED, "SUSPENDED"),
    ],
)
def test_recorded_state(name: str, state: JobState, native: str) -> None:
    (obs,) = parse(name).values()
    assert (obs.state, obs.native_state) == (state, native)


def test_ended_jobs_say_why() -> None:
    (timeout,) = parse("squeue-timeout").values()
    (node_fail,) = parse("squeue-node-fail").values()
    assert timeout.reason == "the job reached its time limit"
    assert "node" in node_fail.reason and "down" in node_fail.reason


def test_requeue_with_hold_is_held() -> None:
    names = [p.stem for p in DATA.glob("squeue-requeuehold-*.stdout")]
    assert names, "the recording has the requeue-hold samples"
    states = {parse(name)[ids_of(sample(name))[0]].state for name in names}
    assert JobState.HELD in states
    assert not any(state.terminal for state in states)


def test_hand_built_states_from_the_real_line_format() -> None:
    answer = parse("built-squeue-oom-preempted-requeued")
    by_native = {obs.native_state: obs for obs in answer.values()}
    assert by_native["OUT_OF_MEMORY"].state is JobState.FAILED
    assert "memory" in by_native["OUT_OF_MEMORY"].reason
    assert by_native["PREEMPTED"].state is JobState.FAILED
    assert "preempted" in by_native["PREEMPTED"].reason
    assert by_native["REQUEUED"].state is JobState.PENDING
    assert by_native["REQUEUE_HOLD"].state is JobState.HELD
    assert by_native["CONFIGURING"].state is JobState.STARTING
    assert by_native["CONFIGURING"].host == "gpu03"


def test_every_slurm_state_is_mapped() -> None:
    assert len(STATES) == 24
    held = SlurmBackend()._observe("1", "PENDING", "JobHeldAdmin", "n/a", "")
    assert held.state is JobState.HELD


# --- status: the quirks --------------------------------------------------
def test_one_unknown_id_alone_means_gone_not_failed() -> None:
    result = sample("squeue-unknown-single")
    assert result.returncode == 1, "the recorded quirk: squeue fails for one unknown id"
    assert backend.parse_status(result, ids_of(result)) == {}


def test_the_same_error_for_several_ids_is_a_failed_query() -> None:
    result = sample("squeue-unknown-single")
    with pytest.raises(QueryError):
        backend.parse_status(result, ["1", "2"])


def test_unknown_ids_in_a_list_are_absent() -> None:
    assert parse("squeue-unknown-list") == {}
    answer = parse("squeue-mixed")
    assert "999999" not in answer
    assert len(answer) == 1


@pytest.mark.parametrize("name", ["squeue-controller-down", "squeue-controller-down-single"])
def test_controller_down_is_a_failed_query_never_an_end(name: str) -> None:
    with pytest.raises(QueryError, match="Unable to contact slurm controller"):
        parse(name)


def test_after_a_controller_restart_jobs_are_known_again() -> None:
    answer = parse("squeue-after-restart")
    assert {obs.state for obs in answer.values()} == {JobState.COMPLETED, JobState.FAILED}


def test_a_state_newer_than_this_code_is_not_an_end() -> None:
    command = backend.status_command(["7"])
    answer = backend.parse_status(CommandResult(command, 0, "7|WARPED|vm|vm|0|None|\n"), ["7"])
    assert answer["7"].state is JobState.PENDING
    assert answer["7"].native_state == "WARPED"


def test_a_line_batchhub_cannot_read_fails_the_query() -> None:
    command = backend.status_command(["7"])
    with pytest.raises(QueryError):
        backend.parse_status(CommandResult(command, 0, "7|RUNNING\n"), ["7"])


@pytest.mark.parametrize(
    ("nodelist", "first"),
    [
        ("vm", "vm"),
        ("gpu[03-05,9],cpu1", "gpu03"),
        ("rack[1-2]-n[07-08]", "rack1-n07"),
        ("", None),
        ("n/a", None),
    ],
)
def test_first_node_of_a_host_list(nodelist: str, first: str | None) -> None:
    assert first_node(nodelist) == first


# --- accounting ------------------------------------------------------------
def test_sacct_without_accounting_says_history_is_unavailable() -> None:
    result = sample("sacct-disabled")
    with pytest.raises(HistoryUnavailable, match="accounting storage is disabled"):
        backend.parse_history(result, ids_of(result))


def test_other_sacct_failures_are_a_failed_query_only() -> None:
    command = backend.history_command(["5"])
    assert command is not None
    down = CommandResult(command, 1, "", "sacct: error: Problem talking to the database: Connection refused")
    with pytest.raises(QueryError) as caught:
        backend.parse_history(down, ["5"])
    assert not isinstance(caught.value, HistoryUnavailable), "a passing outage must not stop asking for good"


def test_sacct_records_give_terminal_observations() -> None:
    command = backend.history_command(["5", "6", "7"])
    assert command is not None
    out = "5|COMPLETED|0:0|vm|None\n6|CANCELLED by 2001|0:15|vm|None\n7|OUT_OF_MEMORY|0:125|vm|OutOfMemory\n"
    answer = backend.parse_history(CommandResult(command, 0, out), ["5", "6", "7"])
    assert answer["5"].state is JobState.COMPLETED and answer["5"].exit_code == 0
    assert answer["6"].state is JobState.CANCELLED
    assert answer["7"].state is JobState.FAILED and "memory" in answer["7"].reason


def test_accounting_can_be_turned_off() -> None:
    assert SlurmBackend(use_accounting=False).history_command(["1"]) is None


# --- submit ------------------------------------------------------------------
def test_submit_returns_the_id() -> None:
    assert backend.parse_submit(sample("sbatch-ok")) == sample("sbatch-ok").stdout.strip()
    federated = CommandResult(Command(("sbatch",)), 0, "1234;cluster2\n")
    assert backend.parse_submit(federated) == "1234"


@pytest.mark.parametrize(
    ("name", "advice"),
    [
        ("sbatch-invalid-partition", "no such partition"),
        ("sbatch-too-much-memory", "Ask for less"),
        ("sbatch-too-many-gpus", "that many GPUs"),
        ("sbatch-unknown-gres", "no GPUs of that kind"),
        ("sbatch-controller-down", "not answering"),
        ("sbatch-invalid-time", "Slurm refused the job"),
    ],
)
def test_refusals_become_advice(name: str, advice: str) -> None:
    with pytest.raises(SubmitError, match=advice) as caught:
        backend.parse_submit(sample(name))
    assert "Slurm said:" in str(caught.value), "the admin still sees Slurm's own words"


# --- cancel ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "outcome"),
    [
        ("scancel-running", CancelOutcome.REQUESTED),
        ("scancel-unknown", CancelOutcome.ALREADY_GONE),
        ("scancel-finished", CancelOutcome.ALREADY_GONE),
        ("scancel-other-user", CancelOutcome.DENIED),
        ("scancel-controller-down", CancelOutcome.FAILED),
    ],
)
def test_cancel_outcomes(name: str, outcome: CancelOutcome) -> None:
    result = sample(name)
    ids = ids_of(result)
    assert backend.parse_cancel(result, ids) == dict.fromkeys(ids, outcome)


def test_cancel_of_a_mixed_list_answers_per_job() -> None:
    result = sample("scancel-mixed")
    finished, unknown, live = ids_of(result)
    assert backend.parse_cancel(result, [finished, unknown, live]) == {
        finished: CancelOutcome.ALREADY_GONE,
        unknown: CancelOutcome.ALREADY_GONE,
        live: CancelOutcome.REQUESTED,
    }


def test_cancel_that_timed_out_failed() -> None:
    command = backend.cancel_command(["1"], "alice")
    timed_out = CommandResult(command, -9, "", "", 30.0, timed_out=True)
    assert backend.parse_cancel(timed_out, ["1"]) == {"1": CancelOutcome.FAILED}


@pytest.mark.parametrize(
    "stderr",
    [
        "sbatch: error: Batch job submission failed: Socket timed out on send/recv operation",
        "sbatch: error: Batch job submission failed: Zero Bytes were transmitted or received",
    ],
)
def test_a_lost_answer_to_sbatch_is_uncertain_never_refused(stderr: str) -> None:
    # the request may have reached slurmctld (a frozen controller): the job may exist
    backend = SlurmBackend()
    command = Command(("sbatch", "--parsable"))
    with pytest.raises(SubmitUncertain) as lost:
        backend.parse_submit(CommandResult(command, 1, "", stderr))
    assert "refused" not in str(lost.value)


def test_a_controller_that_refuses_connections_is_a_plain_failure() -> None:
    # nothing reached slurmctld: no job can exist
    backend = SlurmBackend()
    command = Command(("sbatch", "--parsable"))
    stderr = (
        "sbatch: error: Batch job submission failed: Unable to contact slurm controller (connect failure)"
    )
    with pytest.raises(SubmitError) as failed:
        backend.parse_submit(CommandResult(command, 1, "", stderr))
    assert not isinstance(failed.value, SubmitUncertain)


# --- expected start times (squeue --start) ---------------------------------------
def test_start_command_is_one_query_for_all_waiting_jobs() -> None:
    command = backend.start_command(["127", "128", "129"])
    assert command is not None and command.kind == "start" and command.as_user is None
    assert command.argv[0] == "squeue" and "--start" in command.argv
    assert "--jobs=127,128,129" in command.argv


def test_parse_starts_gives_aware_times_for_estimated_jobs_only() -> None:
    starts = backend.parse_starts(sample("squeue-start"), ["127", "128", "129"])
    assert set(starts) == {"128", "129"}  # 127 runs: squeue --start leaves it out
    assert starts["128"].tzinfo is not None
    assert starts["128"].astimezone().strftime("%H:%M:%S") == "11:48:53"
    assert backend.parse_starts(sample("squeue-start-running"), ["127"]) == {}


def test_parse_starts_skips_jobs_without_an_estimate_and_fails_on_failed_queries() -> None:
    ok = CommandResult(Command(("squeue",)), 0, "5|N/A\n6|2026-12-02T11:48:53\n7|Unknown\n", "")
    assert set(backend.parse_starts(ok, ["5", "6", "7"])) == {"6"}
    gone = CommandResult(Command(("squeue",)), 1, "", "slurm_load_jobs error: Invalid job id specified")
    assert backend.parse_starts(gone, ["5"]) == {}
    with pytest.raises(QueryError):
        backend.parse_starts(
            CommandResult(Command(("squeue",)), 1, "", "Unable to contact slurm controller"), ["5", "6"]
        )


@pytest.mark.parametrize(
    ("code", "plain"),
    [
        ("Resources", "Waiting for resources"),
        ("Priority", "Waiting behind higher-priority jobs"),
        ("JobHeldUser", "Held"),
        ("JobHeldAdmin", "Held"),
        ("PartitionConfig", "Your request can never run here: "),
        ("BadConstraints", "Your request can never run here: "),
        ("QOSMaxCpuPerUserLimit", "QOSMaxCpuPerUserLimit"),  # unknown codes pass through
    ],
)
def test_reason_codes_in_plain_words(code: str, plain: str) -> None:
    assert backend.explain_reason(code).startswith(plain)
    assert backend.explain_reason(backend.explain_reason(code)) == backend.explain_reason(code)
