"""Queue waits that inform: plain reasons with the scheduler's words in the
log, expected start times fetched in one batched command, and the live
queue line on the spawn page."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import datetime, timezone

import pytest
from test_monitor import ScriptedBackend, ScriptedRunner

from batchhub.jobs import Command, CommandResult, JobState
from batchhub.lifecycle import Phase
from batchhub.monitor import JobMonitor
from batchhub.progress import SpawnProgress, live_gap

START = datetime(2026, 12, 2, 14, 5, tzinfo=timezone.utc)


class StartsBackend(ScriptedBackend):
    """``starts ID...`` answers each asked id with START; reasons are codes."""

    def explain_reason(self, reason: str) -> str:
        return {"Res": "Waiting for resources", "Pri": "Waiting behind higher-priority jobs"}.get(
            reason, reason
        )

    def start_command(self, job_ids: Sequence[str]) -> Command | None:
        return Command(("starts", *job_ids))

    def parse_starts(self, result: CommandResult, job_ids: Sequence[str]) -> dict[str, datetime]:
        self.require_answer(result)
        return {job_id: START for job_id in result.stdout.split() if job_id in job_ids}


class StartsRunner(ScriptedRunner):
    async def run(self, command: Command) -> CommandResult:
        if command.argv[0] == "starts":
            self.commands.append(command)
            return CommandResult(command, 0, " ".join(command.argv[1:]))
        return await super().run(command)


def make(start_interval: float = 15.0) -> tuple[JobMonitor, StartsRunner, list[float]]:
    now = [0.0]
    runner = StartsRunner()
    monitor = JobMonitor(
        StartsBackend(), runner, clock=lambda: now[0], jitter=0.0, start_interval=start_interval
    )
    return monitor, runner, now


async def test_expected_starts_are_one_command_for_the_waiting_jobs_someone_waits_on() -> None:
    monitor, runner, now = make()
    runner.set("1", JobState.PENDING, "PENDING", "Res")
    runner.set("2", JobState.HELD, "PENDING", "Pri")
    runner.set("3", JobState.RUNNING, "RUNNING", host="n1")  # running: no estimate asked
    runner.set("4", JobState.PENDING, "PENDING", "Res")  # nobody waits on it
    for job_id in ("1", "2", "3"):
        monitor.track(job_id, "alice")
    monitor.track("4", "bob", starting=False)
    await monitor.tick()
    assert runner.ids_of("starts") == [["1", "2"]]
    assert monitor.expected_start("1") == START and monitor.expected_start("3") is None
    assert monitor.expected_start("4") is None
    await monitor.tick()
    assert runner.count("starts") == 1  # not again before start_interval
    now[0] += 15
    await monitor.tick()
    assert runner.count("starts") == 2
    runner.set("1", JobState.RUNNING, "RUNNING", host="n1")
    await monitor.tick()
    assert monitor.expected_start("1") is None  # running now: no expected start


async def test_a_job_new_to_the_queue_is_asked_about_at_once() -> None:
    monitor, runner, _now = make()
    runner.set("1", JobState.PENDING, "PENDING")
    monitor.track("1", "alice")
    await monitor.tick()
    runner.set("2", JobState.PENDING, "PENDING")
    monitor.track("2", "alice")
    await monitor.tick()
    assert runner.ids_of("starts") == [["1"], ["1", "2"]]


async def test_no_start_command_where_the_backend_has_none() -> None:
    runner = ScriptedRunner()
    monitor = JobMonitor(ScriptedBackend(), runner, jitter=0.0)
    runner.set("1", JobState.PENDING, "PENDING")
    monitor.track("1", "alice")
    await monitor.tick()
    assert [c.argv[0] for c in runner.commands] == ["status"]
    assert monitor.expected_start("1") is None


async def test_a_failed_start_query_keeps_the_last_estimates() -> None:
    monitor, runner, _now = make(start_interval=0)
    runner.set("1", JobState.PENDING, "PENDING")
    monitor.track("1", "alice")
    await monitor.tick()
    assert monitor.expected_start("1") == START

    async def fail(command: Command) -> CommandResult:
        if command.argv[0] == "starts":
            return CommandResult(command, 1, "", "down")
        return await ScriptedRunner.run(runner, command)

    runner.run = fail  # type: ignore[method-assign]
    await monitor.tick()
    assert monitor.expected_start("1") == START


async def test_reasons_are_shown_in_plain_words_and_logged_as_the_scheduler_said(
    caplog: pytest.LogCaptureFixture,
) -> None:
    monitor, runner, _ = make()
    runner.set("1", JobState.PENDING, "PENDING", "Res")
    monitor.track("1", "alice")
    with caplog.at_level(logging.INFO):
        await monitor.tick()
        await monitor.tick()
    assert monitor.observation("1").reason == "Waiting for resources"
    logged = [r.getMessage() for r in caplog.records if "the scheduler said" in r.getMessage()]
    assert logged == ["job 1 (PENDING): Waiting for resources; the scheduler said: Res"]  # once per change
    runner.set("1", JobState.PENDING, "PENDING", "Pri")
    with caplog.at_level(logging.INFO):
        await monitor.tick()
    assert monitor.observation("1").reason == "Waiting behind higher-priority jobs"
    assert "the scheduler said: Pri" in caplog.text


async def test_the_page_gets_a_live_queue_line_that_is_not_kept() -> None:
    progress = SpawnProgress()
    progress.note(Phase.QUEUED, "Job 7 submitted")
    lines = iter(
        ["Job 7 queued for 5 s: Waiting for resources", "Job 7 queued for 6 s: Waiting for resources"]
    )
    waiting = [True]
    got = []

    async def read() -> None:
        async for step in progress.stream(lambda: waiting[0], lambda: next(lines, "")):
            got.append(step)

    reader = asyncio.ensure_future(read())
    await asyncio.sleep(1.5)
    waiting[0] = False
    await asyncio.wait_for(reader, 3)
    assert got == [
        {"progress": 30, "message": "Job 7 submitted"},
        {"progress": 30, "message": "Job 7 queued for 5 s: Waiting for resources"},
    ]  # one line, then none until live_gap has passed
    assert [s["message"] for s in progress.steps] == ["Job 7 submitted"]


def test_live_lines_thin_out_over_a_long_wait() -> None:
    assert live_gap(0) == 10 and live_gap(10) == 30 and live_gap(100) == 60
    assert sum(live_gap(n) for n in range(60)) > 20 * 60  # a 20-minute wait sends under 60 lines
