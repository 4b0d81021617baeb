"""What is free right now on each queue or partition, for the spawn form.

A backend may offer ONE command that lists the free cores and GPUs of
every queue (``Backend.free_command`` and ``parse_free``: Grid Engine
``qstat -F gpu -xml``, Slurm ``sinfo``). ``FreeResources`` runs it at most
once per ``c.FreeResources.interval`` for the whole hub (``batchhub.shared``
builds one per backend), however many users open the form; every form
shown meanwhile reads the cached answer. The form never waits long for it
and never fails because of it: a slow, failed or unreadable answer shows
nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from traitlets import Bool, Float
from traitlets.config import LoggingConfigurable

if TYPE_CHECKING:  # both import this module's Free
    from jupyterhub.spawner import Spawner

    from .backend import Backend
    from .monitor import Runner


@dataclass(frozen=True)
class Free:
    """Free resources of one queue or partition right now. ``gpus`` and the
    totals are ``None`` where the scheduler does not say."""

    cores: int
    gpus: int | None = None
    total_cores: int | None = None
    total_gpus: int | None = None

    def describe(self) -> str:
        """``4 of 8 cores and 1 of 2 GPUs free now``: what the form shows."""

        def part(free: int, total: int | None, word: str) -> str:
            of = f" of {total}" if total is not None else ""
            return f"{free}{of} {word}{'' if (total if total is not None else free) == 1 else 's'}"

        text = part(self.cores, self.total_cores, "core")
        if self.gpus is not None and (self.gpus or self.total_gpus):
            text += " and " + part(self.gpus, self.total_gpus, "GPU")
        return text + " free now"


class FreeResources(LoggingConfigurable):
    """One backend's free-resources cache (``c.FreeResources``)."""

    enabled = Bool(
        True,
        help="Show on the spawn form what is free now on each queue or partition, where the "
        "backend can tell (Grid Engine, Slurm). False: never run the command.",
    ).tag(config=True)

    interval = Float(
        60.0,
        help="Seconds an answer is kept: the hub runs the backend's free-resources command at "
        "most once per interval, whatever the number of users opening the form. A failed "
        "answer is kept as long (the form then shows nothing).",
    ).tag(config=True)

    wait = Float(
        2.0,
        help="Seconds a form waits for a fresh answer before it is shown without one (the "
        "answer still arrives in the cache for the next form).",
    ).tag(config=True)

    def __init__(
        self, backend: Backend, runner: Runner, clock: Callable[[], float] = time.monotonic, **kwargs: object
    ) -> None:
        super().__init__(**kwargs)
        self.backend = backend
        self.runner = runner
        self.clock = clock
        self._answer: dict[str, Free] = {}
        self._fetched_at: float | None = None
        self._fetching: asyncio.Task[dict[str, Free]] | None = None

    async def get(self) -> dict[str, Free]:
        """Free resources by queue name; ``{}`` when unknown. Runs the
        command only when the last answer is older than ``interval`` (and
        only once for all the forms that ask meanwhile)."""
        if not self.enabled:
            return {}
        now = self.clock()
        if self._fetched_at is not None and now - self._fetched_at < self.interval:
            return dict(self._answer)
        if self._fetching is None:
            self._fetching = asyncio.ensure_future(self._fetch())
        try:
            return dict(await asyncio.wait_for(asyncio.shield(self._fetching), self.wait))
        except asyncio.TimeoutError:
            self.log.info(
                "batchhub: free resources on %s not known yet; the form shows none", self.backend.name
            )
            return {}

    async def _fetch(self) -> dict[str, Free]:
        answer: dict[str, Free] = {}
        try:
            command = self.backend.free_command()
            if command is not None:
                result = await self.runner.run(command)
                answer = _checked(self.backend.parse_free(result))
        except Exception as exc:
            self.log.warning("batchhub: could not read free resources on %s: %s", self.backend.name, exc)
            answer = {}
        finally:
            self._fetched_at = self.clock()
            self._fetching = None
        self._answer = answer
        return answer


def _checked(answer: Mapping[str, Free]) -> dict[str, Free]:
    """The backend's answer, only well-formed entries."""
    return {
        str(queue): free
        for queue, free in answer.items()
        if isinstance(free, Free) and free.cores >= 0 and (free.gpus is None or free.gpus >= 0)
    }


def for_form(answer: Mapping[str, Free]) -> dict[str, str]:
    """The lines the form shows, by queue name."""
    return {queue: free.describe() for queue, free in answer.items()}


async def for_spawner(spawner: Spawner) -> dict[str, str]:
    """The free-resources lines for ``spawner``'s form, from the hub's one
    cache of its backend; ``{}`` when unknown, whatever goes wrong."""
    from . import shared  # it builds on the monitor, which imports the backends

    try:
        backend = spawner.backend_impl  # type: ignore[attr-defined]
        return for_form(await shared.free_resources(backend, spawner.config, spawner.log).get())
    except Exception as exc:  # the form comes up whatever went wrong here
        spawner.log.warning("batchhub: the form shows no free resources: %s", exc)
        return {}
