"""Every hook batchhub calls, with its contract.

A plugin is a module named in the ``batchhub`` entry-point group; it
implements any of these with ``@batchhub.hookimpl``. Our own backends
register exactly this way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from collections.abc import Callable

    from .events import JobEvent
    from .jobs import JobSpec

hookspec = pluggy.HookspecMarker("batchhub")
hookimpl = pluggy.HookimplMarker("batchhub")


@hookspec
def batchhub_register_backends(register: Callable[[type], None]) -> None:
    """Register scheduler backends.

    Call ``register(BackendClass)`` once per ``batchhub.backend.Backend``
    subclass; its ``name`` is what sites put in
    ``c.BatchSpawner.backend``. Two plugins registering one name is an
    error reported at load time.
    """


@hookspec
def batchhub_prepare_job(spec: JobSpec, spawner: Any) -> JobSpec | None:
    """Adjust a job before it is rendered and submitted (site policy).

    Return a changed ``JobSpec`` (use ``dataclasses.replace``) or ``None``
    to leave it. Called in plugin order, each seeing the previous result;
    e.g. add ``module load`` lines to ``prologue``, cap memory for a group.
    Raise ``batchhub.jobs.SubmitError`` with a message for the user to
    refuse the job: nothing is submitted.
    """


@hookspec
def batchhub_job_event(event: JobEvent) -> None:
    """Observe a job's life: submitted, state changed, ready, stopped,
    failed. For metrics and audit; must not block, and an exception here
    is logged and never breaks a spawn."""
