"""Drive ``BatchSpawner`` objects through JupyterHub's own polling path.

After a restart JupyterHub loads every running server's saved state, polls
them all at once (``init_spawners``), then polls each every
``poll_interval`` through ``Spawner.start_polling()``. These helpers build
spawners holding a running server's state and drive them through exactly
that code, so tests and benchmarks can count what it costs the scheduler.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from traitlets.config import Config

from batchhub.jobs import Command, CommandResult
from batchhub.monitor import Runner
from batchhub.spawner import BatchSpawner, _Shared


@dataclass
class StandInUser:
    """The little of JupyterHub's ``User`` a spawner touches while polling."""

    name: str


class CountingRunner:
    """Wraps a runner and counts the commands it runs by program name."""

    def __init__(self, inner: Runner) -> None:
        self.inner = inner
        self.counts: Counter[str] = Counter()

    async def run(self, command: Command) -> CommandResult:
        self.counts[PurePath(command.argv[0]).name] += 1
        return await self.inner.run(command)


@contextlib.contextmanager
def shared_runner(runner: Any) -> Iterator[None]:
    """Make ``runner`` the hub's one command runner, with no monitors or
    sweepers yet; restores the previous ones afterwards."""
    saved = _Shared.runner, _Shared.monitors, _Shared.sweepers
    _Shared.runner, _Shared.monitors, _Shared.sweepers = runner, {}, {}
    try:
        yield
    finally:
        _Shared.runner, _Shared.monitors, _Shared.sweepers = saved


async def stop_monitors() -> None:
    for sweeper in list(_Shared.sweepers.values()):
        await sweeper.stop()
    for monitor in list(_Shared.monitors.values()):
        await monitor.stop()


def adopted_spawners(
    config: Config, jobs: Sequence[tuple[str, str]], *, host: str = "node", port: int = 40000
) -> list[BatchSpawner]:
    """One spawner per ``(username, job_id)``, holding the saved state of a
    ready server on that job, as JupyterHub builds them after a restart."""
    backend = config.BatchSpawner.backend
    spawners = []
    for username, job_id in jobs:
        spawner = BatchSpawner(user=StandInUser(username), config=config)
        spawner.load_state(
            {
                "batchhub": {
                    "backend": backend,
                    "phase": "ready",
                    "job_id": job_id,
                    "job_state": "RUNNING",
                    "host": host,
                    "port": port,
                }
            }
        )
        spawners.append(spawner)
    return spawners


async def first_poll(spawners: Sequence[BatchSpawner]) -> list[int | None]:
    """Poll every spawner at once, as JupyterHub's ``init_spawners`` does:
    a future per server, all created before the first await."""
    futures = [asyncio.ensure_future(spawner.poll()) for spawner in spawners]
    return list(await asyncio.gather(*futures))


async def poll_for(spawners: Sequence[BatchSpawner], seconds: float) -> list[int]:
    """Run JupyterHub's own ``start_polling()`` on every spawner for
    ``seconds``; returns the statuses of servers whose poll said stopped.

    Polling starts staggered over one ``poll_interval``, as on a hub whose
    servers started at different moments, so polls arrive all the time
    rather than in one burst per interval."""
    stopped: list[int] = []
    loop = asyncio.get_running_loop()
    handles = []
    for i, spawner in enumerate(spawners):
        spawner.add_poll_callback(lambda s=spawner: stopped.append(s.controller.exit_status()))
        offset = spawner.poll_interval * i / max(1, len(spawners))
        handles.append(loop.call_later(offset, spawner.start_polling))
    try:
        await asyncio.sleep(seconds)
    finally:
        for handle in handles:
            handle.cancel()
        for spawner in spawners:
            spawner.stop_polling()
    return stopped
