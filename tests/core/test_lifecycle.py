"""The spawn lifecycle as a pure state machine: every transition, and the
late or out-of-order messages a real scheduler and hub send."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from batchhub.jobs import CancelOutcome, JobState, Observation
from batchhub.lifecycle import (
    CancelDone,
    Event,
    Lifecycle,
    Observed,
    Phase,
    PortReported,
    StartRequested,
    StopRequested,
    SubmitFailed,
    Submitted,
    TimedOut,
)

JOB = "42"


def obs(state: JobState, host: str | None = None, job_id: str = JOB, **kw: object) -> Observed:
    return Observed(Observation(job_id, state, native_state=state.name.lower(), host=host, **kw))


def run(*events: Event) -> Lifecycle:
    lc = Lifecycle()
    for event in events:
        lc.apply(event)
    return lc


QUEUED = (StartRequested(), Submitted(JOB))
STARTING = (*QUEUED, obs(JobState.STARTING, "node1"))
RUNNING = (*QUEUED, obs(JobState.RUNNING, "node1"))
READY = (*RUNNING, PortReported(8888))


# --- the phases of the module docstring --------------------------------


def test_idle_start_submitting() -> None:
    lc = run(StartRequested())
    assert lc.phase is Phase.SUBMITTING
    assert lc.phase.waiting and lc.job_id is None


def test_submitting_submitted_queued() -> None:
    lc = run(*QUEUED)
    assert lc.phase is Phase.QUEUED
    assert lc.job_id == JOB and lc.job_state is JobState.PENDING and lc.job_live
    assert JOB in lc.message


def test_queued_shows_the_schedulers_reason() -> None:
    lc = run(*QUEUED, obs(JobState.PENDING, reason="queue all.q is full"))
    assert lc.phase is Phase.QUEUED
    assert "queue all.q is full" in lc.message


def test_queued_running_starting() -> None:
    lc = run(*STARTING)
    assert lc.phase is Phase.STARTING
    assert lc.host == "node1"
    assert "node1" in lc.message


def test_starting_port_and_host_and_running_ready() -> None:
    lc = run(*STARTING, PortReported(8888))
    assert lc.phase is Phase.STARTING  # the job is not RUNNING yet
    lc.apply(obs(JobState.RUNNING))
    assert lc.phase is Phase.READY
    assert (lc.host, lc.port) == ("node1", 8888)


def test_port_before_the_scheduler_says_running_then_ready() -> None:
    lc = run(*QUEUED, PortReported(9000))
    assert lc.phase is Phase.QUEUED
    lc.apply(obs(JobState.RUNNING, "node2"))
    assert lc.phase is Phase.READY and (lc.host, lc.port) == ("node2", 9000)


def test_running_without_a_host_is_not_ready() -> None:
    lc = run(*QUEUED, obs(JobState.RUNNING), PortReported(9000))
    assert lc.phase is Phase.STARTING
    lc.apply(obs(JobState.RUNNING, "node3"))
    assert lc.phase is Phase.READY


def test_submitting_rejected_failed() -> None:
    lc = run(StartRequested(), SubmitFailed("Unable to run job: queue gpu.q does not exist"))
    assert lc.phase is Phase.FAILED
    assert lc.failure == "Unable to run job: queue gpu.q does not exist"
    assert not lc.job_live


@pytest.mark.parametrize("before", [QUEUED, STARTING], ids=["queued", "starting"])
def test_job_ended_while_waiting_failed(before: tuple[Event, ...]) -> None:
    lc = run(*before, obs(JobState.FAILED, reason="the job ran out of memory", exit_code=137))
    assert lc.phase is Phase.FAILED
    assert "ran out of memory" in lc.failure
    assert lc.exit_code == 137
    assert not lc.job_live


def test_job_ended_without_a_reason_names_its_state() -> None:
    lc = run(*QUEUED, Observed(Observation(JOB, JobState.FAILED, native_state="Eqw")))
    assert lc.phase is Phase.FAILED
    assert "Eqw" in lc.failure


def test_ready_ended_stopped() -> None:
    lc = run(*READY, obs(JobState.COMPLETED, exit_code=0))
    assert lc.phase is Phase.STOPPED
    assert lc.failure == ""
    assert lc.exit_code == 0


@pytest.mark.parametrize(
    "before",
    [(StartRequested(),), QUEUED, STARTING, READY],
    ids=["submitting", "queued", "starting", "ready"],
)
def test_stop_from_any_live_phase_stopping(before: tuple[Event, ...]) -> None:
    lc = run(*before, StopRequested("user asked"))
    assert lc.phase is Phase.STOPPING
    assert lc.needs_cancel == (lc.job_id is not None)


def test_stopping_job_gone_stopped() -> None:
    lc = run(*READY, StopRequested(), CancelDone(CancelOutcome.REQUESTED))
    assert lc.phase is Phase.STOPPING and lc.cancel_sent and not lc.needs_cancel
    lc.apply(obs(JobState.CANCELLED))
    assert lc.phase is Phase.STOPPED
    assert not lc.job_live


def test_stop_when_idle_is_stopped_at_once() -> None:
    assert run(StopRequested()).phase is Phase.STOPPED


def test_a_finished_spawn_may_start_again_from_nothing() -> None:
    lc = run(*READY, obs(JobState.COMPLETED), StartRequested())
    assert lc.phase is Phase.SUBMITTING
    assert (lc.job_id, lc.host, lc.port, lc.failure) == (None, None, None, "")
    assert lc.history  # the history carries over for the logs


# --- late and out-of-order events ----------------------------------------


def assert_ignored(lc: Lifecycle, event: Event) -> None:
    before = lc.to_dict()
    assert lc.apply(event) is False
    assert lc.to_dict() == before


def test_observation_of_another_job_is_ignored() -> None:
    assert_ignored(run(*QUEUED), obs(JobState.FAILED, job_id="41"))
    assert_ignored(run(*STARTING), obs(JobState.RUNNING, "evil", job_id="43"))


def test_observation_before_the_job_id_is_known_is_ignored() -> None:
    assert_ignored(run(StartRequested()), obs(JobState.RUNNING, "node1"))


def test_port_after_ready_is_ignored() -> None:
    assert_ignored(run(*READY), PortReported(1234))


def test_second_port_is_ignored() -> None:
    lc = run(*STARTING, PortReported(8888))
    assert_ignored(lc, PortReported(9999))
    assert lc.port == 8888


def test_port_outside_a_spawn_is_ignored() -> None:
    assert_ignored(Lifecycle(), PortReported(8888))
    assert_ignored(run(StartRequested()), PortReported(8888))  # no job yet
    assert_ignored(run(*QUEUED, StopRequested()), PortReported(8888))


def test_observation_going_backwards_is_ignored() -> None:
    lc = run(*STARTING)
    assert_ignored(lc, obs(JobState.PENDING))
    assert lc.phase is Phase.STARTING and lc.job_state is JobState.STARTING
    lc = run(*READY)
    assert_ignored(lc, obs(JobState.STARTING))
    assert lc.phase is Phase.READY


@pytest.mark.parametrize(
    "event",
    [
        obs(JobState.RUNNING, "node9"),
        obs(JobState.CANCELLED),
        PortReported(8888),
        Submitted("99"),
        SubmitFailed("late refusal"),
        TimedOut("too late"),
        StopRequested(),
        CancelDone(CancelOutcome.ALREADY_GONE),
        CancelDone(CancelOutcome.REQUESTED),
    ],
)
@pytest.mark.parametrize(
    "terminal",
    [
        (*QUEUED, obs(JobState.FAILED, reason="node failure")),
        (*READY, obs(JobState.COMPLETED)),
        (*READY, StopRequested(), CancelDone(CancelOutcome.ALREADY_GONE)),
        (StartRequested(), SubmitFailed("refused")),
    ],
    ids=["failed", "stopped-by-end", "stopped-by-cancel", "rejected"],
)
def test_anything_after_a_terminal_phase_is_ignored(terminal: tuple[Event, ...], event: Event) -> None:
    lc = run(*terminal)
    assert lc.phase.finished
    assert_ignored(lc, event)


def test_a_terminal_job_state_absorbs_while_stopping() -> None:
    lc = run(*READY, StopRequested(), CancelDone(CancelOutcome.REQUESTED))
    lc.apply(obs(JobState.CANCELLED))
    assert lc.phase is Phase.STOPPED
    assert_ignored(lc, obs(JobState.RUNNING, "node1"))


# --- stop during submit, timeouts and cancel outcomes --------------------


def test_stop_during_submit_then_submitted_needs_cancel() -> None:
    lc = run(StartRequested(), StopRequested())
    assert lc.phase is Phase.STOPPING and not lc.needs_cancel  # no job to cancel yet
    lc.apply(Submitted(JOB))
    assert lc.phase is Phase.STOPPING
    assert lc.job_id == JOB and lc.job_live
    assert lc.needs_cancel
    lc.apply(CancelDone(CancelOutcome.REQUESTED))
    assert not lc.needs_cancel  # one cancel only
    lc.apply(obs(JobState.CANCELLED))
    assert lc.phase is Phase.STOPPED


def test_stop_during_submit_then_refused_is_stopped() -> None:
    lc = run(StartRequested(), StopRequested(), SubmitFailed("refused"))
    assert lc.phase is Phase.STOPPED
    assert not lc.job_live


WAITING = [(StartRequested(),), QUEUED, STARTING]


@pytest.mark.parametrize("before", WAITING, ids=["submitting", "queued", "starting"])
def test_timed_out_while_waiting_is_stopping_with_the_message(before: tuple[Event, ...]) -> None:
    message = "The server did not start within 300 seconds"
    lc = run(*before, TimedOut(message))
    assert lc.phase is Phase.STOPPING
    assert lc.failure == message and lc.message == message
    assert lc.needs_cancel == (lc.job_id is not None)
    # the failure survives the end of the job, so the user is told why
    lc.apply(CancelDone(CancelOutcome.ALREADY_GONE))
    assert lc.phase is Phase.STOPPED
    assert lc.failure == message


def test_timeout_after_ready_is_ignored() -> None:
    assert_ignored(run(*READY), TimedOut("late"))


def test_cancel_already_gone_is_stopped() -> None:
    lc = run(*READY, StopRequested(), CancelDone(CancelOutcome.ALREADY_GONE))
    assert lc.phase is Phase.STOPPED
    assert lc.job_state is JobState.CANCELLED
    assert not lc.job_live and not lc.needs_cancel


@pytest.mark.parametrize("outcome", [CancelOutcome.FAILED, CancelOutcome.DENIED])
def test_a_failed_cancel_keeps_the_job_in_need_of_cancel(outcome: CancelOutcome) -> None:
    lc = run(*READY, StopRequested(), CancelDone(outcome, "qdel: cannot reach qmaster"))
    assert lc.phase is Phase.STOPPING
    assert lc.needs_cancel  # retried, never forgotten
    assert "qdel: cannot reach qmaster" in lc.message


def test_cancel_done_outside_stopping_is_ignored() -> None:
    assert_ignored(run(*READY), CancelDone(CancelOutcome.ALREADY_GONE))


def test_stop_twice_changes_nothing_the_second_time() -> None:
    lc = run(*READY, StopRequested())
    assert_ignored(lc, StopRequested("again"))


# --- persistence and properties -----------------------------------------

job_ids = st.sampled_from([JOB, JOB, JOB, "1"])  # mostly the job the spawn knows
observations = st.builds(
    lambda job_id, state, host, reason, code: Observed(
        Observation(job_id, state, state.name, reason, host, code)
    ),
    job_ids,
    st.sampled_from(list(JobState)),
    st.sampled_from([None, "node1", "node2"]),
    st.sampled_from(["", "waiting for a slot"]),
    st.sampled_from([None, 0, 1, 137]),
)
events = st.one_of(
    st.just(StartRequested()),
    st.builds(Submitted, job_ids),
    st.builds(SubmitFailed, st.text(max_size=20)),
    observations,
    st.builds(PortReported, st.integers(1, 65535)),
    st.builds(StopRequested, st.sampled_from(["", "user"])),
    st.builds(TimedOut, st.just("timed out")),
    st.builds(CancelDone, st.sampled_from(list(CancelOutcome)), st.just("")),
)


@st.composite
def spawns(draw: st.DrawFn) -> list[Event]:
    """The steps of a good spawn in order, cut short anywhere, with
    arbitrary events between them: sequences get far (READY, STOPPING)
    and still meet every odd message on the way."""
    steps = [*READY, StopRequested(), CancelDone(CancelOutcome.REQUESTED), obs(JobState.CANCELLED)]
    if draw(st.booleans()):  # the port may come before the scheduler says running
        steps[2], steps[3] = steps[3], steps[2]
    steps = steps[: draw(st.integers(0, len(steps)))]
    sequence: list[Event] = []
    for step in steps:
        sequence += draw(st.lists(events, max_size=3))
        sequence.append(step)
    return sequence + draw(st.lists(events, max_size=5))


@given(spawns(), st.lists(events, max_size=10))
def test_to_dict_from_dict_round_trips_and_behaves_the_same(before: list[Event], after: list[Event]) -> None:
    lc = run(*before)
    restored = Lifecycle.from_dict(json.loads(json.dumps(lc.to_dict())))
    assert restored.snapshot() == lc.snapshot()
    for event in after:
        assert restored.apply(event) == lc.apply(event)
        assert restored.snapshot() == lc.snapshot()


@given(spawns())
def test_job_state_only_moves_forward_within_a_spawn(sequence: list[Event]) -> None:
    lc = Lifecycle()
    for event in sequence:
        job_id, state = lc.job_id, lc.job_state
        lc.apply(event)
        if isinstance(event, StartRequested) or job_id != lc.job_id or state is None:
            continue
        assert lc.job_state is not None and lc.job_state >= state
        if state.terminal:
            assert lc.job_state is state


@given(spawns())
def test_ready_needs_host_port_and_a_running_job(sequence: list[Event]) -> None:
    lc = Lifecycle()
    for event in sequence:
        was_ready = lc.phase is Phase.READY
        lc.apply(event)
        if lc.phase is Phase.READY:
            assert lc.host and lc.port is not None
            if not was_ready:
                assert lc.job_state is JobState.RUNNING
        if lc.needs_cancel:
            assert lc.phase is Phase.STOPPING and lc.job_id is not None
