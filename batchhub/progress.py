"""The spawn page's progress bar: one spawn's steps as they happen.

Steps are recorded when the job's events arrive, not when the page asks,
so a page that connects late still sees each one (submitted with the job
id, queued with the scheduler's reason, running on a host, waiting for the
server, ready). The bar only climbs.

While the job waits in the queue, the stream also sends a live line now
and then (how long it has waited, why, and when the scheduler expects it
to start); those are not kept, since a page that connects later gets a
fresh one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from .aio import wait_event
from .events import JobEvent
from .lifecycle import Lifecycle, Phase

#: Progress percentages by phase.
PERCENT = {Phase.SUBMITTING: 10, Phase.QUEUED: 30, Phase.STARTING: 60, Phase.READY: 95}
#: Started on a node and the port is known: only the server's answer is missing.
PORT_KNOWN_PERCENT = 80


def live_gap(sent: int) -> float:
    """Seconds between live lines: often at first, then less, so a long
    wait does not fill the page's log."""
    return 10.0 if sent < 6 else 30.0 if sent < 24 else 60.0


class SpawnProgress:
    """The steps of the current spawn, and a stream of them for the page."""

    def __init__(self) -> None:
        self.steps: list[dict[str, Any]] = []
        self._changed = asyncio.Event()
        #: A "running on <host>" step was recorded.
        self.noted_running = False

    def reset(self) -> None:
        """Forget the last spawn's steps: a new one begins."""
        self.steps = []
        self.noted_running = False

    def note(self, phase: Phase, message: str, *, port_known: bool = False) -> None:
        """Record one step (a repeat of the last message is dropped)."""
        percent = PERCENT.get(phase, 95)
        if phase is Phase.STARTING and port_known:
            percent = PORT_KNOWN_PERCENT
        if self.steps and self.steps[-1]["message"] == message:
            return
        percent = max(percent, self.steps[-1]["progress"] if self.steps else 0)  # the bar only climbs
        self.steps.append({"progress": percent, "message": message})
        self.noted_running = self.noted_running or phase is Phase.STARTING
        self._changed.set()

    def note_event(self, event: JobEvent, lc: Lifecycle) -> None:
        """Record what ``event`` means for the user, given the lifecycle it left."""
        port_known = bool(lc.port)
        if event.kind == "submitted":
            message = f"Job {event.job_id} submitted to {event.backend}, queued: waiting for the scheduler"
            self.note(Phase.QUEUED, message)
        elif lc.phase is Phase.STARTING and lc.port is None:
            self.note(lc.phase, f"{lc.message}; waiting for the server to start")
        elif lc.phase.waiting or lc.phase is Phase.READY:
            if lc.phase is Phase.READY and not self.noted_running:
                # the port came before the scheduler's word: still say where it runs
                self.note(Phase.STARTING, f"Job {lc.job_id} running on {lc.host}", port_known=port_known)
            self.note(lc.phase, lc.message, port_known=port_known)

    async def stream(
        self, waiting: Callable[[], bool], live: Callable[[], str] | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """Every step, from the first, as JupyterHub's ``progress()`` yields
        them; ends once ``waiting()`` is false and all are sent. ``live()``
        gives the current queue line ("" when not queued): it is sent at
        once, then every ``live_gap`` seconds, and never kept in ``steps``."""
        sent = 0
        lives = 0
        last_live = float("-inf")
        while True:
            self._changed.clear()
            while sent < len(self.steps):
                yield dict(self.steps[sent])
                sent += 1
            if not waiting():
                return
            line = live() if live is not None else ""
            if line and time.monotonic() - last_live >= live_gap(lives):
                last_live, lives = time.monotonic(), lives + 1
                yield {"progress": self.steps[-1]["progress"] if self.steps else 0, "message": line}
            await wait_event(self._changed, 1.0)
