"""Runs the fake's commands in process, against a ``FakeScheduler``.

It has the interface of ``batchhub.runner.CommandRunner`` (``await
run(command)``), so the monitor and the controller use it unchanged, and it
counts every command by kind so tests can assert, for instance, exactly
one status command per monitor tick.
"""

from __future__ import annotations

import asyncio
from collections import Counter

from batchhub.jobs import Command, CommandResult

from . import protocol
from .scheduler import FakeScheduler

#: The kind each fake verb is counted under.
KINDS = {
    protocol.SUBMIT: "submit",
    protocol.STATUS: "status",
    protocol.CANCEL: "cancel",
    protocol.LIST: "list",
}


class FakeRunner:
    """A command runner whose only "programs" are the fake scheduler's."""

    def __init__(self, scheduler: FakeScheduler, default_timeout: float = 30.0) -> None:
        self.scheduler = scheduler
        self.default_timeout = default_timeout
        self.counts: Counter[str] = Counter()
        self.commands: list[Command] = []
        self.results: list[CommandResult] = []

    async def run(self, command: Command) -> CommandResult:
        # yield once, as a real subprocess would, so concurrent callers interleave
        await asyncio.sleep(0)
        kind = KINDS.get(protocol.verb_of(command.argv) or "", "other")
        self.counts[kind] += 1
        self.commands.append(command)
        result = self.scheduler.execute(command, self.default_timeout)
        self.results.append(result)
        return result
