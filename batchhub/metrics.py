"""batchhub's Prometheus metrics, served in the hub's own ``/hub/metrics``.

Registered on ``prometheus_client``'s default registry when this module is
first imported, as JupyterHub's own metrics are, so JupyterHub's metrics
handler serves them with its own. Three sources feed them:

- the command runner reports every scheduler command it ran
  (``command_ran``): counts by backend, kind and outcome, and durations;
- the ``batchhub_job_event`` hook (this module is a plugin the core
  registers itself): job events, and from them how long each spawn waited
  in the queue and then for its server;
- a collector that reads the live monitors and sweepers at scrape time:
  tracked jobs by state, consecutive failed queries, the age of the last
  status query, orphans. Nothing is copied ahead of a scrape.

docs/metrics.md lists every metric with its labels.
"""

from __future__ import annotations

import time
from collections import Counter as Tally
from collections.abc import Iterable, Iterator

from prometheus_client import Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import REGISTRY, Collector

from .backend import COMMAND_KINDS
from .events import JobEvent
from .hookspecs import hookimpl
from .jobs import CommandResult, JobState

OUTCOMES = ("ok", "failed", "timed_out")

SCHEDULER_COMMANDS = Counter(
    "batchhub_scheduler_commands",
    "Scheduler commands run, by backend, kind (submit, status, reason, history, list, cancel) and "
    "outcome (ok: exit status 0; failed: another exit status, or the program could not start; "
    "timed_out: killed at its timeout)",
    ["backend", "kind", "outcome"],
)
SCHEDULER_COMMAND_DURATION = Histogram(
    "batchhub_scheduler_command_duration_seconds",
    "Seconds each scheduler command ran, by backend and kind",
    ["backend", "kind"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, float("inf")),
)
SPAWN_PHASE_DURATION = Histogram(
    "batchhub_spawn_phase_duration_seconds",
    "Seconds a spawn spent in each phase, by backend: queued (submitted until the scheduler "
    "started the job) and starting (job started until its server was ready)",
    ["backend", "phase"],
    buckets=(1, 2.5, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400, float("inf")),
)
JOB_EVENTS = Counter(
    "batchhub_job_events",
    "Job events, by backend and kind (submitted, uncertain, state, ready, stopped, failed, cancelled)",
    ["backend", "kind"],
)

_seen_backends: set[str] = set()
#: monotonic time each backend's latest status query ended
_last_status_query: dict[str, float] = {}


def command_ran(result: CommandResult) -> None:
    """Count one command the runner ran. Only what a backend built as one
    of its ``*_command``s counts; another command (the launcher writing the
    token file) is no scheduler command."""
    command = result.command
    if not command.kind or not command.backend:
        return
    backend, kind = command.backend, command.kind
    if backend not in _seen_backends:
        # every series from the first command on, so a rate of failures is 0, not absent
        _seen_backends.add(backend)
        for each in COMMAND_KINDS:
            for outcome in OUTCOMES:
                SCHEDULER_COMMANDS.labels(backend, each, outcome)
    outcome = _outcome(result)
    SCHEDULER_COMMANDS.labels(backend, kind, outcome).inc()
    SCHEDULER_COMMAND_DURATION.labels(backend, kind).observe(result.duration)
    if kind == "status":
        _last_status_query[backend] = time.monotonic()


def _outcome(result: CommandResult) -> str:
    if result.timed_out:
        return "timed_out"
    return "ok" if result.returncode == 0 else "failed"


class PhaseClock:
    """Times each spawn's phases from its job events: ``queued`` from
    ``submitted`` to the first state in which the job has started (the
    scheduler's STARTING or RUNNING), ``starting`` from then to ``ready``.
    A spawn that ends early records only the phases it finished; a job
    re-adopted after a hub restart, whose submission this process never
    saw, records none."""

    #: Most spawns remembered at once; the oldest are dropped beyond it.
    limit = 100_000

    def __init__(self) -> None:
        # (user, server, job id) -> [submitted at, started at or None]
        self._spawns: dict[tuple[str, str, str | None], list[float | None]] = {}

    def note(self, event: JobEvent) -> None:
        key = (event.username, event.server_name, event.job_id)
        if event.kind == "submitted":
            self._spawns[key] = [event.time, None]
            while len(self._spawns) > self.limit:
                del self._spawns[next(iter(self._spawns))]
            return
        times = self._spawns.get(key)
        if times is None:
            return
        submitted, started = times
        if event.kind == "state" and started is None and _started(event.state):
            times[1] = event.time
            SPAWN_PHASE_DURATION.labels(event.backend, "queued").observe(
                max(0.0, event.time - (submitted or 0.0))
            )
        elif event.kind == "ready":
            if started is not None:
                SPAWN_PHASE_DURATION.labels(event.backend, "starting").observe(max(0.0, event.time - started))
            del self._spawns[key]
        elif event.kind in ("stopped", "failed", "cancelled"):
            del self._spawns[key]


def _started(state: str) -> bool:
    member = JobState.__members__.get(state)
    return member is not None and member.active


phases = PhaseClock()


@hookimpl
def batchhub_job_event(event: JobEvent) -> None:
    JOB_EVENTS.labels(event.backend, event.kind).inc()
    phases.note(event)


class LiveCollector(Collector):
    """Reads the hub's monitors and sweepers (``batchhub.shared``) when
    Prometheus scrapes: nothing is kept up to date in between."""

    def describe(self) -> Iterable[Metric]:
        return list(self._families())

    def collect(self) -> Iterable[Metric]:
        # imported here: the shared machinery imports the runner, which imports this module
        from .shared import Shared

        tracked, failures, age, orphans, cancelled = self._families()
        now = time.monotonic()
        states = [*JobState.__members__, "UNKNOWN"]
        for backend, monitor in sorted(Shared.monitors.items()):
            jobs = list(monitor.jobs.values())
            count = Tally(entry.observation.state.name if entry.observation else "UNKNOWN" for entry in jobs)
            for state in states:
                tracked.add_metric([backend, state], count[state])
            failures.add_metric([backend], monitor.failures)
            last = _last_status_query.get(backend)
            if jobs and last is not None:
                age.add_metric([backend], now - last)
        for backend, sweeper in sorted(Shared.sweepers.items()):
            if sweeper.last_report is not None:
                orphans.add_metric([backend], len(sweeper.last_report.orphans))
            cancelled.add_metric([backend], sweeper.orphans_cancelled)
        return [tracked, failures, age, orphans, cancelled]

    @staticmethod
    def _families() -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "batchhub_jobs_tracked",
            "Jobs the monitor tracks, by backend and their last known state (UNKNOWN: not yet answered for)",
            labels=["backend", "state"],
        )
        yield GaugeMetricFamily(
            "batchhub_monitor_consecutive_failed_queries",
            "Status queries in a row that failed or timed out (0 after an answer); each doubles the "
            "monitor's delay up to its max_backoff",
            labels=["backend"],
        )
        yield GaugeMetricFamily(
            "batchhub_monitor_last_query_age_seconds",
            "Seconds since the monitor's latest status query ended, whatever its outcome; only while "
            "it tracks jobs (an idle monitor asks nothing). Above interval (plus jitter and backoff), "
            "the monitor's loop is late",
            labels=["backend"],
        )
        yield GaugeMetricFamily(
            "batchhub_orphan_jobs",
            "Jobs with the hub's tag that no server knows, in the sweeper's latest successful pass",
            labels=["backend"],
        )
        yield CounterMetricFamily(
            "batchhub_orphans_cancelled",
            "Orphan jobs the sweeper cancelled (only with cancel_orphans)",
            labels=["backend"],
        )


LIVE = LiveCollector()
REGISTRY.register(LIVE)
