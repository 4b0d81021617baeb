"""The shared job monitor: one per backend per hub.

N users waiting on N jobs cost the scheduler ONE status query per interval,
not N: the monitor tracks every live job id, asks about all of them in one
batched command (chunked only where the backend declares a limit), keeps
the answers in a cache that ``poll()`` reads, and calls back the spawners
whose jobs changed.

Rules that keep servers and jobs safe:

- A failed or timed-out query changes nothing: every job keeps its last
  known state, and the next tick backs off.
- A job missing from a successful answer is LOST only after
  ``lost_after`` consecutive successful answers without it (schedulers
  drop finished jobs from their listings; a query during a restart may
  come back empty). Where the backend has accounting, the monitor asks it
  how the job ended first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol, TypeVar

from traitlets import Float, Int
from traitlets.config import LoggingConfigurable

from .aio import wait_event
from .backend import Backend
from .jobs import Command, CommandResult, HistoryUnavailable, JobState, Observation, QueryError

log = logging.getLogger("batchhub.monitor")

Listener = Callable[[Observation], None]
T = TypeVar("T")


class Runner(Protocol):
    """What the monitor needs of a runner (``CommandRunner``, or the fake's)."""

    async def run(self, command: Command) -> CommandResult: ...


@dataclass
class Tracked:
    owner: str
    listener: Listener | None = None
    starting: bool = True  # someone is waiting for it: poll fast, fetch reasons
    observation: Observation | None = None
    queried: bool = False  # at least one query (good or bad) ran since tracking began
    missing: int = 0  # consecutive successful answers that lacked it
    reason_fetched_for: str = field(default="")  # native state whose reason is known
    cancelling: bool = False  # a cancel was sent: absence means it is gone
    raw_reason: str = ""  # the scheduler's own words for the reason last logged
    plain_reason: str = ""  # and the backend's plain words for them
    expected_start: datetime | None = None  # when the scheduler expects it to start


class JobMonitor(LoggingConfigurable):
    """Tracks live jobs of one backend with batched status queries.

    A configurable, so a site tunes it as ``c.JobMonitor.interval = 60``;
    the hub builds one per backend in ``batchhub.shared``. Tests pass the
    traits as keywords, and a ``clock`` and ``rng`` of their own.
    """

    interval = Float(30.0, help="Seconds between the shared status queries while no spawn is waiting.").tag(
        config=True
    )
    fast_interval = Float(
        2.0, help="Seconds between status queries while some spawn is waiting for its job."
    ).tag(config=True)
    jitter = Float(
        0.1,
        help="Fraction by which each delay varies at random, so hubs sharing a scheduler do not "
        "query in lock-step.",
    ).tag(config=True)
    lost_after = Int(
        3,
        help="Consecutive successful status answers without a job before it counts as lost "
        "(failed queries never count).",
    ).tag(config=True)
    max_backoff = Float(
        300.0, help="Longest delay between queries after failed ones (each failure doubles it)."
    ).tag(config=True)
    coalesce = Float(
        0.2,
        help="Seconds an early tick (a submission, a port report, a cancel) waits for more of "
        "them, so a burst shares one status query.",
    ).tag(config=True)
    start_interval = Float(
        15.0,
        help="Seconds between asks for the expected start times of queued jobs someone waits on "
        "(where the backend can estimate them, as Slurm's squeue --start does): one command for "
        "all of them, and a job new to the queue is asked about at its first tick.",
    ).tag(config=True)
    parse_in_thread_bytes = Int(
        64 * 1024,
        help="Status answers at least this long are parsed in a worker thread, so a busy "
        "cluster's listing does not stall the hub's event loop.",
    ).tag(config=True)

    def __init__(
        self,
        backend: Backend,
        runner: Runner,
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        **traits: Any,
    ) -> None:
        super().__init__(**traits)
        self.backend = backend
        self.runner = runner
        self.clock = clock
        self.rng = rng or random.Random()
        self.jobs: dict[str, Tracked] = {}
        #: False once the backend said it has no accounting: asked once, not per job.
        self.history_available = True
        self.failures = 0  # consecutive failed queries
        self.last_error = ""
        self.stats: Counter[str] = Counter()
        self._tick_task: asyncio.Task[None] | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        # pokes counted, and the count when the latest tick took its list of
        # jobs: a poke is served by any tick that starts after it
        self._pokes = 0
        self._pokes_served = 0
        self._urgent = False
        self._starts_asked_at = float("-inf")

    # --- tracking ------------------------------------------------------
    def track(self, job_id: str, owner: str, listener: Listener | None = None, starting: bool = True) -> None:
        """Watch ``job_id`` until ``untrack``. ``listener`` is called with
        each new observation of it.

        Only a job new to the monitor asks for an early tick: JupyterHub
        calls ``poll()`` (and so this) for every server every interval, and
        those calls must cost the scheduler nothing."""
        entry = self.jobs.get(job_id)
        if entry is None:
            self.jobs[job_id] = Tracked(owner, listener, starting)
            self.poke()
        else:
            entry.owner, entry.listener, entry.starting = owner, listener, starting

    def untrack(self, job_id: str) -> None:
        self.jobs.pop(job_id, None)

    def set_starting(self, job_id: str, starting: bool) -> None:
        if job_id in self.jobs:
            self.jobs[job_id].starting = starting

    def expect_gone(self, job_id: str) -> None:
        """A cancel was sent for ``job_id``: the first answer without it
        means cancelled, with no need to wait ``lost_after`` answers."""
        if job_id in self.jobs:
            self.jobs[job_id].cancelling = True
            self.jobs[job_id].starting = True  # watch closely until it is gone

    def observation(self, job_id: str) -> Observation | None:
        entry = self.jobs.get(job_id)
        return entry.observation if entry else None

    def expected_start(self, job_id: str) -> datetime | None:
        """When the scheduler last said it expects ``job_id`` to start, while it waits."""
        entry = self.jobs.get(job_id)
        if entry is None or entry.observation is None or not entry.observation.state.queued:
            return None
        return entry.expected_start

    def poke(self, urgent: bool = False) -> None:
        """Ask for an early tick: a job was submitted, reported its port or
        was cancelled. Pokes that arrive close together share one tick; an
        ``urgent`` one (a user's server waits on the answer) does not wait
        for more to collect."""
        self._pokes += 1
        self._urgent = self._urgent or urgent
        self._wake.set()

    # --- one tick -------------------------------------------------------
    async def refresh(self) -> None:
        """Run a tick now, or join the one in flight; concurrent callers
        share one query."""
        if self._tick_task is None or self._tick_task.done():
            self._tick_task = asyncio.ensure_future(self.tick())
        await asyncio.shield(self._tick_task)

    def is_settled(self, job_id: str) -> bool:
        """Whether ``settled`` would return at once."""
        entry = self.jobs.get(job_id)
        return entry is None or entry.queried

    async def settled(self, job_id: str) -> None:
        """Return once ``job_id`` has been covered by a query since it was
        tracked: after a hub restart, poll() waits for this so it answers
        from the scheduler, not from nothing."""
        for _ in range(3):
            entry = self.jobs.get(job_id)
            if entry is None or entry.queried:
                return
            await self.refresh()

    async def tick(self) -> None:
        """One round: one status command per chunk of tracked ids (one in
        all unless the backend caps ids per command), then reasons for
        waiting jobs and accounting for vanished ones."""
        self._pokes_served, self._urgent = self._pokes, False
        ids = list(self.jobs)
        if not ids:
            return
        size = self.backend.max_ids_per_query or len(ids)
        for start in range(0, len(ids), size):
            await self._query_chunk(ids[start : start + size])

    async def _query_chunk(self, ids: Sequence[str]) -> None:
        self.stats["status_queries"] += 1
        owners = sorted({self.jobs[job_id].owner for job_id in ids if job_id in self.jobs})
        result = await self.runner.run(self.backend.status_command(ids, owners=owners))
        try:
            if result.timed_out:
                raise QueryError(result.describe())
            answer = await self._parse(self.backend.parse_status, result, ids)
        except QueryError as exc:
            self._failed(ids, str(exc))
            return
        except Exception as exc:  # a parser's bug is a failed query, never an ended job
            log.exception("the %s backend could not read a status answer", self.backend.name)
            self._failed(ids, f"unreadable status answer ({exc!r})")
            return
        self.failures, self.last_error = 0, ""
        # a job we cancelled ended by our cancel, whatever accounting says: no need to ask
        vanished = [
            job_id
            for job_id in ids
            if job_id not in answer and job_id in self.jobs and not self.jobs[job_id].cancelling
        ]
        if vanished:
            answer.update(await self._history(vanished))
        # reasons join the observation before anyone hears of it: a spawner
        # told "failed" fails at once and would never see a later reason
        await self._fetch_reasons(answer)
        self._explain(answer)
        await self._fetch_starts(answer)
        for job_id in ids:
            entry = self.jobs.get(job_id)
            if entry is None:
                continue  # untracked while the query ran
            entry.queried = True
            obs = answer.get(job_id)
            if obs is None:
                entry.missing += 1
                if entry.cancelling:
                    obs = Observation(job_id, JobState.CANCELLED, "", "cancelled")
                elif entry.missing < self.lost_after:
                    continue
                else:
                    obs = Observation(job_id, JobState.LOST, "", "the scheduler no longer lists the job")
            else:
                entry.missing = 0
            self._update(job_id, entry, obs)

    async def _parse(
        self, parser: Callable[[CommandResult, Sequence[str]], T], result: CommandResult, ids: Sequence[str]
    ) -> T:
        """Run a backend's parser; a large answer (a busy cluster's whole
        listing) is parsed in a worker thread so the hub's event loop keeps
        serving pages meanwhile."""
        if len(result.stdout) < self.parse_in_thread_bytes:
            return parser(result, ids)
        return await asyncio.to_thread(parser, result, ids)

    def _failed(self, ids: Sequence[str], message: str) -> None:
        self.failures += 1
        self.last_error = message
        self.stats["failed_queries"] += 1
        for job_id in ids:
            if job_id in self.jobs:
                self.jobs[job_id].queried = True
        log.warning("status query for %d job(s) failed (%d in a row): %s", len(ids), self.failures, message)

    def _update(self, job_id: str, entry: Tracked, obs: Observation) -> None:
        old = entry.observation
        if old is not None and (old.state.terminal or obs.state < old.state):
            return  # never move a job backwards, never revive a finished one
        if obs.reason == "" and old is not None and old.native_state == obs.native_state:
            obs = replace(obs, reason=old.reason)  # keep a fetched reason while the state holds
        if obs == old:
            return
        entry.observation = obs
        if entry.listener is not None:
            try:
                entry.listener(obs)
            except Exception:  # a listener's bug must not stop the monitor
                log.exception("listener for job %s failed", job_id)

    async def _history(self, ids: Sequence[str]) -> dict[str, Observation]:
        command = self.backend.history_command(ids) if self.history_available else None
        if command is None:
            return {}
        self.stats["history_queries"] += 1
        result = await self.runner.run(command)
        try:
            found = await self._parse(self.backend.parse_history, result, ids)
        except HistoryUnavailable as exc:
            self.history_available = False
            log.info("%s keeps no job accounting (%s); not asking again", self.backend.name, exc)
            return {}
        except Exception:  # QueryError, or a parser's bug: no history, count absences instead
            log.debug("history query for %d job(s) gave no answer", len(ids), exc_info=True)
            return {}
        return {job_id: obs for job_id, obs in found.items() if obs.state.terminal}

    async def _fetch_reasons(self, answer: dict[str, Observation]) -> None:
        """Reasons only for jobs someone waits on whose state has no known
        reason yet: one batched command, and none at all most ticks. Found
        reasons are written into ``answer``."""
        wanted = []
        for job_id, obs in answer.items():
            entry = self.jobs.get(job_id)
            if entry is None or obs.reason or entry.reason_fetched_for == obs.native_state:
                continue
            if entry.starting and (obs.state.queued or obs.state is JobState.FAILED):
                wanted.append(job_id)
        if not wanted:
            return
        command = self.backend.reason_command(wanted)
        if command is None:
            return
        reasons = await self._optional_query("reason", command, self.backend.parse_reasons, wanted)
        if reasons is None:
            return  # asked again next tick: a passing failure must not hide the reason
        for job_id in wanted:
            entry = self.jobs.get(job_id)
            if entry is not None:
                entry.reason_fetched_for = answer[job_id].native_state
            if reasons.get(job_id):
                answer[job_id] = replace(answer[job_id], reason=reasons[job_id])

    async def _optional_query(
        self,
        kind: str,
        command: Command,
        parser: Callable[[CommandResult, Sequence[str]], T],
        ids: Sequence[str],
    ) -> T | None:
        """One batched optional query (reasons, start times); ``None`` when
        it failed or could not be read, and what is known stands."""
        self.stats[f"{kind}_queries"] += 1
        result = await self.runner.run(command)
        if not result.ok:
            return None
        try:
            return await self._parse(parser, result, ids)
        except Exception:  # QueryError, or a parser's bug
            log.debug("%s query for %d job(s) gave no answer", kind, len(ids), exc_info=True)
            return None

    def _explain(self, answer: dict[str, Observation]) -> None:
        """The backend's plain words for each reason; the scheduler's own
        text goes to the hub's log once per change."""
        for job_id, obs in answer.items():
            if not obs.reason:
                continue
            entry = self.jobs.get(job_id)
            if entry is not None and entry.raw_reason == obs.reason:  # explained at its last change
                answer[job_id] = replace(obs, reason=entry.plain_reason)
                continue
            try:
                plain = self.backend.explain_reason(obs.reason) or obs.reason
            except Exception:  # a table's bug leaves the scheduler's words
                log.exception("the %s backend could not explain a reason", self.backend.name)
                plain = obs.reason
            if entry is not None:
                entry.raw_reason, entry.plain_reason = obs.reason, plain
                if plain != obs.reason:
                    self.log.info(
                        "job %s (%s): %s; the scheduler said: %s", job_id, obs.state.name, plain, obs.reason
                    )
            answer[job_id] = replace(obs, reason=plain)

    async def _fetch_starts(self, answer: dict[str, Observation]) -> None:
        """Expected start times for queued jobs someone waits on: one
        batched command, at most every ``start_interval`` unless a waiting
        job has never been asked about."""
        wanted = []
        fresh = False
        for job_id, obs in answer.items():
            entry = self.jobs.get(job_id)
            if entry is not None and entry.starting and not entry.cancelling and obs.state.queued:
                wanted.append(job_id)
                fresh = fresh or not entry.queried
        if not wanted or (not fresh and self.clock() - self._starts_asked_at < self.start_interval):
            return
        command = self.backend.start_command(wanted)
        if command is None:
            return
        self._starts_asked_at = self.clock()
        starts = await self._optional_query("start", command, self.backend.parse_starts, wanted)
        if starts is None:
            return  # the last estimates stand
        for job_id in wanted:
            entry = self.jobs.get(job_id)
            if entry is not None:
                entry.expected_start = starts.get(job_id)

    # --- the loop -------------------------------------------------------
    def next_delay(self) -> float:
        """Seconds to the next tick: short while a spawn waits, long
        otherwise, doubled per consecutive failure, jittered so many hubs
        do not query in lock-step."""
        starting = any(entry.starting for entry in self.jobs.values())
        base = self.fast_interval if starting else self.interval
        if self.failures:
            base = min(self.max_backoff, base * 2 ** min(self.failures, 16))
        return max(0.05, base * (1 + self.rng.uniform(-self.jitter, self.jitter)))

    def start(self) -> None:
        """Start the background loop (idempotent)."""
        if self._loop_task is None or self._loop_task.done():
            self._loop_task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        """Stop the loop and any tick in flight; returns promptly."""
        tasks = [t for t in (self._loop_task, self._tick_task) if t is not None and not t.done()]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._loop_task = self._tick_task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception:  # keep monitoring whatever one tick did
                log.exception("monitor tick failed")
            if await self._sleep(self.next_delay()) and not self._urgent:
                # a poke: give a burst of submissions a moment to collect
                await asyncio.sleep(min(self.coalesce, self.fast_interval))

    async def _sleep(self, delay: float) -> bool:
        """Sleep ``delay`` seconds or until a poke; True for a poke."""
        if self._pokes > self._pokes_served:
            return True
        self._wake.clear()
        await wait_event(self._wake, delay)
        return self._pokes > self._pokes_served
