"""The hub's free-resources cache: one command per interval for every
form, shared by concurrent forms, and a form never held up or broken by it."""

from __future__ import annotations

import asyncio

from batchhub.backend import Backend
from batchhub.free import Free, FreeResources, for_form
from batchhub.jobs import Command, CommandResult, QueryError


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Toy(Backend):
    name = "toy"
    program_names = ("free",)

    def free_command(self) -> Command | None:
        return self.command("free")

    def parse_free(self, result: CommandResult) -> dict[str, Free]:
        self.require_answer(result)
        return {"short": Free(cores=int(result.stdout))}


class Runner:
    def __init__(self, answers: list[CommandResult | float]) -> None:
        self.answers = answers
        self.runs = 0

    async def run(self, command: Command) -> CommandResult:
        self.runs += 1
        answer = self.answers.pop(0)
        if isinstance(answer, float):  # a slow scheduler: answer after that many seconds
            await asyncio.sleep(answer)
            answer = self.answers.pop(0)
        return answer


def ok(cores: int) -> CommandResult:
    return CommandResult(Command(("free",)), 0, str(cores), "")


async def test_one_command_per_interval_for_every_form() -> None:
    clock, runner = Clock(), Runner([ok(4), ok(2)])
    cache = FreeResources(Toy(), runner, clock=clock, interval=60)
    answers = await asyncio.gather(*(cache.get() for _ in range(20)))  # twenty forms at once
    assert answers == [{"short": Free(cores=4)}] * 20 and runner.runs == 1
    clock.now += 59
    assert await cache.get() == {"short": Free(cores=4)} and runner.runs == 1
    clock.now += 2
    assert await cache.get() == {"short": Free(cores=2)} and runner.runs == 2


async def test_a_failed_answer_shows_nothing_and_is_not_asked_again_at_once() -> None:
    clock = Clock()
    failed = CommandResult(Command(("free",)), 1, "", "commlib error")
    runner = Runner([failed, CommandResult(Command(("free",)), 0, "many", ""), ok(3)])
    cache = FreeResources(Toy(), runner, clock=clock)
    assert await cache.get() == {} and await cache.get() == {} and runner.runs == 1
    clock.now += 61
    assert await cache.get() == {}  # unreadable (parse_free raised)
    clock.now += 61
    assert await cache.get() == {"short": Free(cores=3)}


async def test_a_slow_answer_never_holds_the_form_and_serves_the_next() -> None:
    runner = Runner([0.3, ok(5)])
    cache = FreeResources(Toy(), runner, clock=Clock(), wait=0.05)
    assert await cache.get() == {}
    await asyncio.sleep(0.4)
    assert await cache.get() == {"short": Free(cores=5)} and runner.runs == 1


async def test_turned_off_or_not_offered_runs_nothing() -> None:
    runner = Runner([])
    assert await FreeResources(Toy(), runner, enabled=False).get() == {}
    assert await FreeResources(Backend(), runner).get() == {}
    assert runner.runs == 0


def test_the_lines_the_form_shows() -> None:
    assert for_form({"a": Free(cores=1, total_cores=1)}) == {"a": "1 of 1 core free now"}
    assert Free(cores=3).describe() == "3 cores free now"
    assert (
        Free(cores=0, gpus=0, total_cores=8, total_gpus=2).describe()
        == "0 of 8 cores and 0 of 2 GPUs free now"
    )
    assert Free(cores=2, gpus=0).describe() == "2 cores free now"


def test_a_query_error_is_what_a_backend_raises() -> None:
    try:
        Toy().parse_free(CommandResult(Command(("free",)), 1, "", ""))
    except QueryError:
        return
    raise AssertionError("no QueryError")
