"""Finding the hub's jobs by their tag: lost submissions, strays, orphans.

Every job the hub submits is named ``<tag>-<user>[-<server>].<digest>.<submission>``
(``Backend.job_name``), so one listing of every user's live jobs
(``Backend.list_command``) tells which belong to this hub, to which server,
and to which submission. The ``Sweeper`` (one per backend per hub) uses
that listing to

- find the job of a submission whose answer was lost (the submit timed out
  or lost its connection: the job may exist), so it is adopted or cancelled;
- end every live job of a server when it stops or starts again, not only
  the one whose id was recorded;
- report orphans: jobs with the hub's tag that no hub state knows, every
  ``interval``; cancel them only where the admin enabled it. Untagged jobs
  and known ones are never touched.

Concurrent callers share one listing command.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from .aio import wait_event
from .backend import Backend
from .jobs import BatchhubError, CancelOutcome, TaggedJob
from .monitor import Runner

log = logging.getLogger("batchhub.sweeper")


@dataclass
class SweepReport:
    """What one orphan pass found and did."""

    orphans: list[TaggedJob] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)


class Sweeper:
    """Lists the hub's jobs by tag, for every server of one backend."""

    def __init__(
        self,
        backend: Backend,
        runner: Runner,
        *,
        known: Callable[[], Iterable[str]] = frozenset,
        interval: float = 300.0,
        retry: float = 2.0,
        cancel_orphans: bool = False,
    ) -> None:
        self.backend = backend
        self.runner = runner
        #: Ids of the jobs some hub state knows (tracked, or saved in the hub's database).
        self.known = known
        self.interval = interval
        self.retry = retry
        self.cancel_orphans = cancel_orphans
        #: Submissions whose job is to be cancelled when it shows up: name -> owner.
        self.doomed: dict[str, str] = {}
        #: Names a lost submission is being looked for under: never orphans meanwhile.
        self.searching: set[str] = set()
        self._suspects: set[str] = set()  # orphans of the last pass: reported once seen twice
        #: The latest pass whose listing succeeded, and the orphans cancelled so far (for the metrics).
        self.last_report: SweepReport | None = None
        self.orphans_cancelled = 0
        self._listing: asyncio.Task[list[TaggedJob] | None] | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    @property
    def can_list(self) -> bool:
        return self.backend.list_command() is not None

    # --- the listing ------------------------------------------------------
    async def listing(self) -> list[TaggedJob] | None:
        """Every live job with the hub's tag, or ``None`` when the listing
        failed (the scheduler is down or frozen: nothing can be concluded).
        Concurrent callers share one command."""
        if self._listing is None or self._listing.done():
            self._listing = asyncio.ensure_future(self._list())
        return await asyncio.shield(self._listing)

    async def _list(self) -> list[TaggedJob] | None:
        command = self.backend.list_command()
        if command is None:
            return None
        result = await self.runner.run(command)
        try:
            jobs = self.backend.parse_list(result)
        except BatchhubError as exc:
            log.warning("listing the %s jobs by tag failed: %s", self.backend.name, exc)
            return None
        except Exception:  # a parser's bug: no conclusion, never a cancel
            log.exception("the %s backend could not read its job listing", self.backend.name)
            return None
        return [job for job in jobs if self.backend.carries_hub_tag(job.name) and not job.state.terminal]

    # --- lost submissions ----------------------------------------------------
    async def find(self, name: str, owner: str, *, timeout: float, misses: int = 3) -> str | None:
        """The id of the live job of ``owner`` named ``name``: looked for
        until it shows up, until ``misses`` successful listings in a row
        lack it (it was never created), or until ``timeout`` (``None``:
        still unknown). Another user's job of that name is never taken."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        missing = 0
        self.searching.add(name)
        try:
            while True:
                jobs = await self.listing()
                if jobs is not None:
                    found = [job.job_id for job in jobs if job.name == name and job.owner == owner]
                    if found:
                        return found[0]
                    missing += 1
                    if missing >= misses:
                        return None
                if loop.time() + self.retry > deadline:
                    return None
                await asyncio.sleep(self.retry)
        finally:
            self.searching.discard(name)

    def cancel_when_seen(self, name: str, owner: str) -> None:
        """A lost submission that was given up: cancel its job if it ever
        shows up (checked every ``retry`` seconds while any is pending)."""
        self.doomed[name] = owner
        self._wake.set()

    # --- servers ----------------------------------------------------------------
    async def end_server_jobs(self, tag: str, owner: str, keep: Iterable[str] = ()) -> list[str]:
        """Cancel every live job of the server whose tag is ``tag`` (see
        ``Backend.server_tag``) except ``keep``; the ids cancelled. A
        failed listing cancels nothing (the next stop or start tries
        again, and the orphan pass reports what is left)."""
        jobs = await self.listing()
        if not jobs:
            return []
        keep = set(keep)
        strays = [
            job for job in jobs if _of_server(job.name, tag) and job.job_id not in keep and job.owner == owner
        ]
        return await self.cancel(strays)

    async def cancel(self, jobs: list[TaggedJob]) -> list[str]:
        """Cancel ``jobs``, each as its owner; the ids whose cancel was taken."""
        cancelled = []
        for job in jobs:  # one command per owner would do; strays are rare
            result = await self.runner.run(self.backend.cancel_command([job.job_id], job.owner))
            outcome = self.backend.read_cancel(result, [job.job_id])[job.job_id]
            if outcome in (CancelOutcome.REQUESTED, CancelOutcome.ALREADY_GONE):
                log.warning("cancelled job %s (%s) of %s: %s", job.job_id, job.name, job.owner, outcome.value)
                cancelled.append(job.job_id)
            else:
                log.warning("could not cancel job %s of %s: %s", job.job_id, job.owner, result.describe())
        return cancelled

    # --- orphans ------------------------------------------------------------------
    async def sweep(self) -> SweepReport:
        """One pass: cancel doomed submissions that showed up; report jobs
        with the hub's tag that no hub state knows, once seen in two passes
        in a row (a job submitted a moment ago is known by then); cancel
        them only where ``cancel_orphans`` is on."""
        report = SweepReport()
        jobs = await self.listing()
        if jobs is None:
            return report
        doomed = [job for job in jobs if self.doomed.get(job.name) == job.owner]
        for job_id in await self.cancel(doomed):
            name = next(job.name for job in doomed if job.job_id == job_id)
            self.doomed.pop(name, None)
        # what never appeared in a successful listing since it was doomed stays doomed
        known = set(self.known())
        candidates = [
            job
            for job in jobs
            if job.job_id not in known and job.name not in self.searching and job.name not in self.doomed
        ]
        suspects = {job.job_id for job in candidates}
        report.orphans = [job for job in candidates if job.job_id in self._suspects]
        self._suspects = suspects
        for job in report.orphans:
            log.warning(
                "orphan job %s (%s) of %s: tagged by this hub, known to no server",
                job.job_id,
                job.name,
                job.owner,
            )
        if self.cancel_orphans and report.orphans:
            report.cancelled = await self.cancel(report.orphans)
            self._suspects -= set(report.cancelled)
            self.orphans_cancelled += len(report.cancelled)
        self.last_report = report
        return report

    # --- the loop -----------------------------------------------------------------
    def start(self) -> None:
        # every poll() calls this: the cheap test first
        if (self._loop_task is None or self._loop_task.done()) and self.can_list:
            self._loop_task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        tasks = [t for t in (self._loop_task, self._listing) if t is not None and not t.done()]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._loop_task = None

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            await wait_event(self._wake, self.retry if self.doomed else self.interval)
            try:
                await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("orphan sweep failed")


def _of_server(name: str, tag: str) -> bool:
    """Whether a job name is a submission of the server tagged ``tag``."""
    return name == tag or (name.startswith(f"{tag}.") and "." not in name[len(tag) + 1 :])
