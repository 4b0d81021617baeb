"""One timer for JupyterHub's polling of every BatchSpawner.

JupyterHub gives each spawner its own ``PeriodicCallback`` that runs
``poll_and_notify`` as a task every ``poll_interval``. With a thousand
servers that is a thousand timers and tasks per interval, and their
scheduling alone costs more CPU than batchhub's polls, which only read
the shared monitor's cache. So ``BatchSpawner.start_polling`` joins the
hub's ``HubPoller`` for its interval instead: one loop that asks every
member in one pass. A member the cache can answer costs a method call; one
the cache cannot answer yet (a job not queried since the hub started),
and one whose server has ended, go through JupyterHub's own
``poll_and_notify`` as before, so its stop callbacks run exactly as
JupyterHub runs them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Protocol

log = logging.getLogger("batchhub.poller")


class Member(Protocol):
    def poll_now(self) -> int | Any | None: ...

    async def poll_and_notify(self) -> int | None: ...


#: What ``poll_now`` returns when only the awaited ``poll()`` can answer.
ASK = object()


class HubPoller:
    """Polls its members every ``interval`` seconds, in one pass."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.members: dict[Member, None] = {}  # insertion-ordered set
        self._asking: dict[Member, asyncio.Future[Any]] = {}
        self._task: asyncio.Task[None] | None = None

    def join(self, member: Member) -> None:
        self.members[member] = None
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done() or self._task.get_loop() is not loop:
            self._task = loop.create_task(self._run())

    def leave(self, member: Member) -> None:
        self.members.pop(member, None)

    def poll_all(self) -> None:
        """One pass: every member once (what one timer does per interval)."""
        for member in list(self.members):
            if member not in self.members:
                continue  # left during this pass (a callback stopped it)
            try:
                status = member.poll_now()
            except Exception:
                log.exception("polling %s failed; asking it again next interval", member)
                continue
            if status is None:
                continue  # running: nothing to do, as in poll_and_notify
            asking = self._asking.get(member)
            if asking is None or asking.done():  # JupyterHub's own path: it stops polling, runs callbacks
                self._asking[member] = asyncio.ensure_future(member.poll_and_notify())
        for member in [m for m, future in self._asking.items() if future.done()]:
            del self._asking[member]

    async def _run(self) -> None:
        while self.members:
            await asyncio.sleep(self.interval)
            self.poll_all()

    async def stop(self) -> None:
        self.members.clear()
        tasks = [t for t in (self._task, *self._asking.values()) if t is not None and not t.done()]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._asking.clear()
