"""The hub's shared machinery, built here and only here: one command runner
per hub, and one job monitor and one orphan sweeper per backend.

Every ``BatchSpawner`` of a hub process shares them; that is what makes N
servers cost the scheduler one status query per interval. Tests and
benchmarks swap them through ``Shared`` (``batchhub.testing.polling``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from traitlets.config import Config

from .backend import Backend
from .free import FreeResources
from .monitor import JobMonitor, Runner
from .poller import HubPoller
from .runner import CommandRunner
from .sweeper import Sweeper


class Shared:
    """The hub process's singletons (plain class attributes, so a test can
    put a runner of its own in place before the first spawn)."""

    runner: Runner | None = None
    monitors: dict[str, JobMonitor] = {}
    sweepers: dict[str, Sweeper] = {}
    free: dict[str, FreeResources] = {}
    pollers: dict[float, HubPoller] = {}


def poller(interval: float) -> HubPoller:
    """The hub's one poller for spawners polled every ``interval`` seconds."""
    if interval not in Shared.pollers:
        Shared.pollers[interval] = HubPoller(interval)
    return Shared.pollers[interval]


def runner(config: Config, log: logging.Logger | logging.LoggerAdapter[Any]) -> Runner:
    """The hub's one command runner (``c.CommandRunner``)."""
    if Shared.runner is None:
        Shared.runner = CommandRunner(config=config, log=log)
    return Shared.runner


def monitor(
    backend: Backend,
    config: Config,
    log: logging.Logger | logging.LoggerAdapter[Any],
    legacy: Mapping[str, tuple[str, Any]] | None = None,
) -> JobMonitor:
    """The one monitor of ``backend`` (``c.JobMonitor``), built on first use.

    ``legacy`` maps a JobMonitor trait to a deprecated option that set it
    and its value (``{"interval": ("c.BatchSpawner.monitor_interval", 30)}``);
    each is applied with a warning, unless ``c.JobMonitor`` sets the trait."""
    found = Shared.monitors.get(backend.name)
    if found is not None:
        return found
    built = JobMonitor(backend, runner(config, log), config=config, log=log)
    own = config.get("JobMonitor", {})
    for trait, (old, value) in (legacy or {}).items():
        if trait in own:
            log.warning("%s is deprecated and ignored: c.JobMonitor.%s is set", old, trait)
        else:
            log.warning("%s is deprecated: set c.JobMonitor.%s instead", old, trait)
            setattr(built, trait, value)
    Shared.monitors[backend.name] = built
    return built


def sweeper(
    backend: Backend,
    config: Config,
    log: logging.Logger | logging.LoggerAdapter[Any],
    *,
    known: Callable[[], Iterable[str]],
    interval: float,
    cancel_orphans: bool,
) -> Sweeper:
    """The one orphan sweeper of ``backend``, built on first use."""
    found = Shared.sweepers.get(backend.name)
    if found is None:
        found = Shared.sweepers[backend.name] = Sweeper(
            backend, runner(config, log), known=known, interval=interval, cancel_orphans=cancel_orphans
        )
    return found


def free_resources(
    backend: Backend, config: Config, log: logging.Logger | logging.LoggerAdapter[Any]
) -> FreeResources:
    """The one free-resources cache of ``backend`` (``c.FreeResources``),
    built on first use (and again if the hub's runner was replaced)."""
    run = runner(config, log)
    found = Shared.free.get(backend.name)
    if found is None or found.runner is not run:
        found = Shared.free[backend.name] = FreeResources(backend, run, config=config, log=log)
    return found


def tracked_job_ids() -> set[str]:
    """Ids of every job some monitor of this hub tracks."""
    return {job_id for found in Shared.monitors.values() for job_id in found.jobs}
