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
    from pathlib import Path

    from .events import JobEvent
    from .jobs import JobSpec
    from .site_settings import SiteSettings

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


@hookspec(firstresult=True)
def batchhub_site_settings(backend_name: str, state_dir: Path, bin_dir: Path) -> SiteSettings | None:
    """What your plugin knows about running backend ``backend_name`` on this
    kind of machine, for ``batchhub demo`` and the test harness
    (``batchhub.testing``: ``RealHub``, ``live_job_ids``,
    ``scheduler_problem``). A production hub never calls it.

    Return a ``batchhub.site_settings.SiteSettings`` for the backends your
    plugin registers and ``None`` for any other name: the first answer
    wins. ``state_dir`` is the hub's private state directory (a local
    scheduler keeps its spool there); ``bin_dir`` holds the Python,
    ``batchhub-singleuser`` and ``jupyterhub-singleuser`` that jobs run.
    Take only the arguments you need; pluggy passes those. An OpenPBS
    plugin::

        @batchhub.hookimpl
        def batchhub_site_settings(backend_name):
            if backend_name == "pbs":
                return SiteSettings(env={"PBS_EXEC": "/opt/pbs"}, hint="start PBS: systemctl start pbs")

    With no answer, the harness uses the backend's defaults, checks the
    scheduler with the backend's ``list_command`` and lists live jobs with
    it (``parse_list``): a backend without one cannot be checked or listed.
    """
