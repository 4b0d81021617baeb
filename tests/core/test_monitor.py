"""JobMonitor against a small scripted scheduler: batching, failures,
loss detection, reasons, history and the background loop."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence

import pytest

from batchhub.backend import Backend
from batchhub.jobs import Command, CommandResult, HistoryUnavailable, JobState, Observation, QueryError
from batchhub.monitor import JobMonitor

# --- a scheduler in a few lines ------------------------------------------


def encode(o: Observation) -> str:
    code = "" if o.exit_code is None else str(o.exit_code)
    return "|".join([o.job_id, o.state.name, o.native_state, o.reason, o.host or "", code])


def decode(line: str) -> Observation:
    job_id, state, native, reason, host, code = line.split("|")
    return Observation(job_id, JobState[state], native, reason, host or None, int(code) if code else None)


class ScriptedBackend(Backend):
    """Commands ``status ID...``, ``why ID...``, ``history ID...`` with one
    ``encode``d job per line; a non-zero exit or unreadable output is a
    failed query."""

    name = "scripted"

    def __init__(self, *, max_ids: int | None = None, reasons: bool = False, history: bool = False) -> None:
        super().__init__()
        self.max_ids_per_query = max_ids  # type: ignore[misc]
        self.reasons = reasons
        self.history = history

    def status_command(self, job_ids: Sequence[str], owners: Sequence[str] = ()) -> Command:
        return Command(("status", *job_ids))

    def parse_status(self, result: CommandResult, job_ids: Sequence[str]) -> dict[str, Observation]:
        if not result.ok:
            raise QueryError(result.describe())
        try:
            found = [decode(line) for line in result.stdout.splitlines()]
        except (ValueError, KeyError):
            raise QueryError(f"unreadable listing {result.stdout[:50]!r}") from None
        return {o.job_id: o for o in found if o.job_id in job_ids}

    def reason_command(self, job_ids: Sequence[str]) -> Command | None:
        return Command(("why", *job_ids)) if self.reasons else None

    def parse_reasons(self, result: CommandResult, job_ids: Sequence[str]) -> dict[str, str]:
        return dict(line.split("|", 1) for line in result.stdout.splitlines())

    def history_command(self, job_ids: Sequence[str]) -> Command | None:
        return Command(("history", *job_ids)) if self.history else None

    def parse_history(self, result: CommandResult, job_ids: Sequence[str]) -> dict[str, Observation]:
        return {o.job_id: o for o in map(decode, result.stdout.splitlines())}


class ScriptedRunner:
    """Answers the scripted backend's commands from what the test put in
    ``listing``, ``reasons`` and ``history``; counts every command."""

    def __init__(self) -> None:
        self.listing: dict[str, Observation] = {}
        self.reasons: dict[str, str] = {}
        self.history: dict[str, Observation] = {}
        #: How the next status commands fail: "rc", "timeout" or "garbage".
        self.failures: list[str] = []
        self.fail_reasons = 0
        self.commands: list[Command] = []
        self.gate: asyncio.Event | None = None

    def count(self, verb: str) -> int:
        return sum(1 for c in self.commands if c.argv[0] == verb)

    def ids_of(self, verb: str) -> list[list[str]]:
        return [list(c.argv[1:]) for c in self.commands if c.argv[0] == verb]

    def set(self, job_id: str, state: JobState, native: str = "", reason: str = "", **kw: object) -> None:
        self.listing[job_id] = Observation(job_id, state, native or state.name.lower(), reason, **kw)

    async def run(self, command: Command) -> CommandResult:
        self.commands.append(command)
        await asyncio.sleep(0)
        if self.gate is not None:
            await self.gate.wait()
        verb, ids = command.argv[0], command.argv[1:]
        if verb == "status" and self.failures:
            how = self.failures.pop(0)
            if how == "timeout":
                return CommandResult(command, -9, "", "", 30.0, timed_out=True)
            if how == "garbage":
                return CommandResult(command, 0, "<html>502 Bad Gateway</html>\n")
            return CommandResult(command, 1, "", "error: unable to contact the controller\n")
        if verb == "why" and self.fail_reasons:
            self.fail_reasons -= 1
            return CommandResult(command, 1, "", "why: busy\n")
        source = {"status": self.listing, "history": self.history}.get(verb)
        if source is not None:
            lines = [encode(source[i]) for i in ids if i in source]
        else:
            lines = [f"{i}|{self.reasons[i]}" for i in ids if i in self.reasons]
        return CommandResult(command, 0, "".join(line + "\n" for line in lines))


def make(runner: ScriptedRunner | None = None, **kw: object) -> tuple[JobMonitor, ScriptedRunner]:
    backend_kw = {k: kw.pop(k) for k in ("max_ids", "reasons", "history") if k in kw}
    runner = runner or ScriptedRunner()
    kw.setdefault("jitter", 0.0)
    monitor = JobMonitor(ScriptedBackend(**backend_kw), runner, rng=random.Random(7), **kw)  # type: ignore[arg-type]
    return monitor, runner


class Recorder:
    def __init__(self) -> None:
        self.seen: list[Observation] = []

    def __call__(self, obs: Observation) -> None:
        self.seen.append(obs)


def state(monitor: JobMonitor, job_id: str) -> JobState | None:
    obs = monitor.observation(job_id)
    return obs.state if obs else None


# --- batching -------------------------------------------------------------


async def test_one_status_command_per_tick_for_fifty_jobs() -> None:
    monitor, runner = make()
    ids = [str(n) for n in range(1, 51)]
    for job_id in ids:
        runner.set(job_id, JobState.RUNNING, host="node1")
        monitor.track(job_id, "alice")
    await monitor.tick()
    assert runner.count("status") == 1
    assert sorted(runner.ids_of("status")[0], key=int) == ids
    assert all(state(monitor, job_id) is JobState.RUNNING for job_id in ids)
    await monitor.tick()
    assert runner.count("status") == 2
    assert len(runner.commands) == 2


async def test_ids_are_chunked_where_the_backend_caps_them() -> None:
    monitor, runner = make(max_ids=50)
    ids = [str(n) for n in range(1, 121)]
    for job_id in ids:
        runner.set(job_id, JobState.PENDING)
        monitor.track(job_id, "bob")
    await monitor.tick()
    chunks = runner.ids_of("status")
    assert [len(chunk) for chunk in chunks] == [50, 50, 20]
    assert sorted((i for chunk in chunks for i in chunk), key=int) == ids
    assert all(state(monitor, job_id) is JobState.PENDING for job_id in ids)


async def test_no_jobs_no_commands() -> None:
    monitor, runner = make()
    await monitor.tick()
    assert runner.commands == []


# --- failed queries -------------------------------------------------------


@pytest.mark.parametrize("how", ["rc", "timeout", "garbage"])
async def test_a_failed_query_changes_no_observation(how: str) -> None:
    monitor, runner = make()
    seen = Recorder()
    runner.set("1", JobState.RUNNING, host="node1")
    monitor.track("1", "alice", seen)
    await monitor.tick()
    assert len(seen.seen) == 1 and monitor.failures == 0
    del runner.listing["1"]  # the scheduler would say it is gone, if it could answer
    runner.failures = [how, how]
    await monitor.tick()
    assert state(monitor, "1") is JobState.RUNNING
    assert monitor.failures == 1 and monitor.last_error
    await monitor.tick()
    assert monitor.failures == 2
    assert state(monitor, "1") is JobState.RUNNING
    assert len(seen.seen) == 1  # nobody was told anything


async def test_backoff_doubles_per_failure_up_to_the_cap_and_resets() -> None:
    monitor, runner = make(interval=30.0, fast_interval=2.0, max_backoff=100.0)
    runner.set("1", JobState.RUNNING)
    monitor.track("1", "alice", starting=False)
    assert monitor.next_delay() == 30.0
    runner.failures = ["rc"] * 3
    delays = []
    for _ in range(3):
        await monitor.tick()
        delays.append(monitor.next_delay())
    assert delays == [60.0, 100.0, 100.0]
    await monitor.tick()  # a good answer
    assert monitor.failures == 0 and monitor.next_delay() == 30.0
    monitor.set_starting("1", True)  # someone waits: fast, and backoff starts from fast
    assert monitor.next_delay() == 2.0
    runner.failures = ["timeout"]
    await monitor.tick()
    assert monitor.next_delay() == 4.0


def test_jitter_stays_within_its_bounds_and_spreads() -> None:
    monitor, _ = make(interval=10.0, jitter=0.2)
    delays = [monitor.next_delay() for _ in range(500)]
    assert all(8.0 <= d <= 12.0 for d in delays)
    assert max(delays) - min(delays) > 2.0  # hubs do not query in lock-step


# --- loss and cancellation -------------------------------------------------


async def test_lost_only_after_consecutive_answers_without_it() -> None:
    monitor, runner = make(lost_after=3)
    seen = Recorder()
    runner.set("1", JobState.RUNNING, host="node1")
    monitor.track("1", "alice", seen)
    await monitor.tick()
    del runner.listing["1"]
    # absent, failed, absent, failed, failed: two answers without it, not lost
    for failing in (False, True, False, True, True):
        runner.failures = ["rc"] if failing else []
        await monitor.tick()
        assert state(monitor, "1") is JobState.RUNNING
    await monitor.tick()  # the third successful answer without it
    assert state(monitor, "1") is JobState.LOST
    assert seen.seen[-1].state is JobState.LOST and seen.seen[-1].reason


async def test_a_job_that_reappears_starts_the_count_again() -> None:
    monitor, runner = make(lost_after=3)
    runner.set("1", JobState.PENDING)
    monitor.track("1", "alice")
    for listed in (False, False, True, False, False):
        if listed:
            runner.set("1", JobState.PENDING)
        else:
            runner.listing.pop("1", None)
        await monitor.tick()
    assert state(monitor, "1") is JobState.PENDING


async def test_expect_gone_means_cancelled_at_the_first_absence() -> None:
    monitor, runner = make(lost_after=3)
    runner.set("1", JobState.RUNNING)
    monitor.track("1", "alice")
    await monitor.tick()
    monitor.expect_gone("1")
    del runner.listing["1"]
    await monitor.tick()
    assert state(monitor, "1") is JobState.CANCELLED


async def test_history_says_how_a_vanished_job_ended() -> None:
    monitor, runner = make(history=True, lost_after=3)
    for job_id in ("1", "2"):
        runner.set(job_id, JobState.RUNNING, host="node1")
        monitor.track(job_id, "alice")
    await monitor.tick()
    assert runner.count("history") == 0  # nobody vanished: no accounting query
    del runner.listing["1"]
    runner.history["1"] = Observation("1", JobState.COMPLETED, "done", "", "node1", 0)
    await monitor.tick()
    assert runner.ids_of("history") == [["1"]]
    obs = monitor.observation("1")
    assert obs is not None and obs.state is JobState.COMPLETED and obs.exit_code == 0
    assert state(monitor, "2") is JobState.RUNNING


async def test_a_non_terminal_history_record_is_not_taken_for_an_end() -> None:
    monitor, runner = make(history=True, lost_after=2)
    runner.set("1", JobState.RUNNING)
    monitor.track("1", "alice")
    await monitor.tick()
    del runner.listing["1"]
    runner.history["1"] = Observation("1", JobState.RUNNING, "r")
    await monitor.tick()
    assert state(monitor, "1") is JobState.RUNNING
    await monitor.tick()
    assert state(monitor, "1") is JobState.LOST


class NoAccountingBackend(ScriptedBackend):
    """A scheduler whose accounting is switched off (Slurm's accounting_storage/none)."""

    def parse_history(self, result: CommandResult, job_ids: Sequence[str]) -> dict[str, Observation]:
        raise HistoryUnavailable("accounting storage is disabled")


class FlakyAccountingBackend(ScriptedBackend):
    """A scheduler whose accounting database is briefly unreachable."""

    def parse_history(self, result: CommandResult, job_ids: Sequence[str]) -> dict[str, Observation]:
        raise QueryError("connection refused")


@pytest.mark.parametrize(("backend_class", "asked"), [(NoAccountingBackend, 1), (FlakyAccountingBackend, 3)])
async def test_accounting_that_does_not_exist_is_asked_once(backend_class: type, asked: int) -> None:
    runner = ScriptedRunner()
    monitor = JobMonitor(backend_class(history=True), runner, lost_after=9, jitter=0.0)  # type: ignore[arg-type]
    for job_id in ("1", "2", "3"):
        runner.set(job_id, JobState.RUNNING)
        monitor.track(job_id, "alice")
    await monitor.tick()
    for job_id in ("1", "2", "3"):  # jobs leave the listing one tick after another
        del runner.listing[job_id]
        await monitor.tick()
    assert runner.count("history") == asked
    assert all(state(monitor, j) is JobState.RUNNING for j in ("1", "2", "3")), "no answer is no end"


# --- reasons ---------------------------------------------------------------


async def test_reasons_fetched_in_one_batch_for_waiting_jobs_once_per_state() -> None:
    monitor, runner = make(reasons=True)
    runner.set("1", JobState.PENDING, "qw")  # waited on, queued: wanted
    runner.set("2", JobState.RUNNING, "r")  # running: no reason needed
    runner.set("3", JobState.PENDING, "qw")  # nobody waits on it
    runner.set("4", JobState.FAILED, "Eqw")  # failed while waited on: wanted
    runner.set("5", JobState.PENDING, "qw", reason="listing says why")
    runner.reasons = {"1": "queue all.q is full", "4": "can't chdir to /home/x"}
    for job_id in ("1", "2", "4", "5"):
        monitor.track(job_id, "alice")
    monitor.track("3", "bob", starting=False)
    await monitor.tick()
    assert runner.ids_of("why") == [["1", "4"]]
    assert monitor.observation("1").reason == "queue all.q is full"
    assert monitor.observation("4").reason == "can't chdir to /home/x"
    assert monitor.observation("5").reason == "listing says why"
    await monitor.tick()
    await monitor.tick()
    assert runner.count("why") == 1  # the state has not changed: the reason is known
    assert monitor.observation("1").reason == "queue all.q is full"
    runner.set("1", JobState.HELD, "hqw")
    runner.reasons["1"] = "held by the user"
    await monitor.tick()
    assert runner.ids_of("why")[-1] == ["1"]
    assert monitor.observation("1").reason == "held by the user"


async def test_a_job_that_fails_while_waited_on_is_reported_with_its_reason() -> None:
    monitor, runner = make(reasons=True)
    seen = Recorder()
    runner.set("1", JobState.FAILED, "Eqw")
    runner.reasons = {"1": "error: can't chdir to /home/alice/missing"}
    monitor.track("1", "alice", seen)
    await monitor.tick()
    # the spawner hears of the failure once, so that once must say why
    assert [(o.state, o.reason) for o in seen.seen] == [(JobState.FAILED, runner.reasons["1"])]


async def test_a_failed_reason_query_is_tried_again() -> None:
    monitor, runner = make(reasons=True)
    runner.set("1", JobState.PENDING, "qw")
    runner.reasons = {"1": "queue all.q is full"}
    runner.fail_reasons = 1
    monitor.track("1", "alice")
    await monitor.tick()
    assert monitor.observation("1").reason == ""
    await monitor.tick()
    assert runner.count("why") == 2
    assert monitor.observation("1").reason == "queue all.q is full"


# --- listeners and monotonicity ------------------------------------------


async def test_listeners_hear_changes_only() -> None:
    monitor, runner = make()
    seen = Recorder()
    runner.set("1", JobState.PENDING)
    monitor.track("1", "alice", seen)
    await monitor.tick()
    await monitor.tick()
    assert [o.state for o in seen.seen] == [JobState.PENDING]
    runner.set("1", JobState.RUNNING, host="node1")
    await monitor.tick()
    await monitor.tick()
    assert [o.state for o in seen.seen] == [JobState.PENDING, JobState.RUNNING]


async def test_states_never_go_backwards() -> None:
    monitor, runner = make()
    seen = Recorder()
    runner.set("1", JobState.RUNNING, host="node1")
    monitor.track("1", "alice", seen)
    await monitor.tick()
    runner.set("1", JobState.PENDING)  # requeued: ignored
    await monitor.tick()
    assert state(monitor, "1") is JobState.RUNNING
    runner.set("1", JobState.COMPLETED, exit_code=0)
    await monitor.tick()
    runner.set("1", JobState.RUNNING, host="node2")  # a finished job never revives
    await monitor.tick()
    assert state(monitor, "1") is JobState.COMPLETED
    assert [o.state for o in seen.seen] == [JobState.RUNNING, JobState.COMPLETED]


async def test_a_failing_listener_does_not_stop_the_others() -> None:
    monitor, runner = make()
    seen = Recorder()

    def broken(obs: Observation) -> None:
        raise RuntimeError("bug in a spawner")

    runner.set("1", JobState.RUNNING)
    runner.set("2", JobState.RUNNING)
    monitor.track("1", "alice", broken)
    monitor.track("2", "bob", seen)
    await monitor.tick()
    assert len(seen.seen) == 1
    assert state(monitor, "1") is JobState.RUNNING


async def test_a_job_untracked_during_a_query_is_left_alone() -> None:
    monitor, runner = make()
    seen = Recorder()
    runner.set("1", JobState.RUNNING)
    monitor.track("1", "alice", seen)
    runner.gate = asyncio.Event()
    tick = asyncio.ensure_future(monitor.tick())
    await asyncio.sleep(0.01)
    monitor.untrack("1")
    runner.gate.set()
    await tick
    assert seen.seen == [] and monitor.observation("1") is None


# --- refresh, settled and the loop -----------------------------------------


async def test_concurrent_refreshes_share_one_query() -> None:
    monitor, runner = make()
    runner.set("1", JobState.RUNNING)
    monitor.track("1", "alice")
    runner.gate = asyncio.Event()
    waiting = [asyncio.ensure_future(monitor.refresh()) for _ in range(5)]
    await asyncio.sleep(0.01)
    runner.gate.set()
    await asyncio.gather(*waiting)
    assert runner.count("status") == 1
    await monitor.refresh()  # a later refresh is a new query
    assert runner.count("status") == 2


async def test_settled_waits_for_the_first_answer() -> None:
    monitor, runner = make()
    runner.set("1", JobState.RUNNING, host="node1")
    monitor.track("1", "alice", starting=False)
    assert monitor.observation("1") is None
    await monitor.settled("1")
    assert state(monitor, "1") is JobState.RUNNING
    await monitor.settled("1")
    assert runner.count("status") == 1  # already answered: no new query


async def test_settled_returns_when_the_scheduler_cannot_answer() -> None:
    monitor, runner = make()
    runner.failures = ["rc"] * 10
    monitor.track("1", "alice")
    await asyncio.wait_for(monitor.settled("1"), 5)
    assert monitor.observation("1") is None  # unknown, not ended
    assert 1 <= runner.count("status") <= 3


async def test_the_loop_ticks_fast_while_starting_and_slow_otherwise() -> None:
    monitor, runner = make(interval=5.0, fast_interval=0.05)
    runner.set("1", JobState.PENDING)
    monitor.track("1", "alice", starting=True)
    monitor.start()
    monitor.start()  # idempotent: still one loop
    try:
        await asyncio.sleep(0.6)
        assert runner.count("status") >= 4
        monitor.set_starting("1", False)
        await asyncio.sleep(0.15)  # let the wait computed while starting run out
        before = runner.count("status")
        await asyncio.sleep(0.6)
        assert runner.count("status") - before <= 1
    finally:
        await monitor.stop()
    stopped_at = runner.count("status")
    monitor.track("1", "alice", starting=True)  # a poke to a stopped loop does nothing
    await asyncio.sleep(0.2)
    assert runner.count("status") == stopped_at


async def test_a_poke_wakes_the_slow_loop() -> None:
    monitor, runner = make(interval=30.0, fast_interval=0.05)
    runner.set("1", JobState.RUNNING)
    monitor.track("1", "alice", starting=False)
    monitor.start()
    try:
        await asyncio.sleep(0.2)
        before = runner.count("status")
        runner.set("2", JobState.PENDING)
        monitor.track("2", "bob", starting=False)  # a new job: queried soon, not in 30 s
        for _ in range(100):
            if monitor.observation("2") is not None:
                break
            await asyncio.sleep(0.02)
        assert state(monitor, "2") is JobState.PENDING
        assert runner.count("status") > before
    finally:
        await monitor.stop()


class BuggyBackend(ScriptedBackend):
    """A third-party parser that crashes on output it did not expect."""

    def parse_status(self, result: CommandResult, job_ids: Sequence[str]) -> dict[str, Observation]:
        if "surprise" in result.stdout:
            raise IndexError("list index out of range")
        return super().parse_status(result, job_ids)

    def parse_reasons(self, result: CommandResult, job_ids: Sequence[str]) -> dict[str, str]:
        raise KeyError("reason")


async def test_a_crashing_parser_is_a_failed_query_not_an_ended_job() -> None:
    runner = ScriptedRunner()
    monitor = JobMonitor(BuggyBackend(reasons=True), runner, jitter=0)
    runner.set("1", JobState.PENDING, "qw")
    monitor.track("1", "alice")
    await monitor.tick()  # the reason parser crashes: the state still stands
    assert state(monitor, "1") is JobState.PENDING
    runner.set("1", JobState.RUNNING, "r", reason="surprise")
    for _ in range(5):
        await monitor.refresh()  # callers such as poll() see no exception
    assert state(monitor, "1") is JobState.PENDING
    assert monitor.failures == 5 and "IndexError" in monitor.last_error
