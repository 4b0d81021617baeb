"""Servers another spawner started, adopted when a hub switches to batchhub.

A hub that switches from batchspawner (1.x) or sgespawner keeps its
database: each running server's row holds that spawner's saved state, and
JupyterHub hands it to ``BatchSpawner.load_state`` at the restart, then
polls. Those states name the job:

- batchspawner saves ``{"job_id": "123", "job_status": "RUNNING node1"}``
  (``job_status`` is the raw answer of its last query, whatever the
  scheduler printed); under wrapspawner's ProfilesSpawner the same sits in
  ``"child_state"``;
- sgespawner saves ``{"jobid": 123}``.

JupyterHub saves a spawner's state only once its start succeeded, and a
stop clears the job id, so a job id in such a state is a server that was
running. ``from_foreign_state`` turns it into batchhub's own saved state:
the job READY on the configured backend, its host and port left unknown.
The monitor then tracks it like any job of batchhub's (one status query per
interval for all), ``stop()`` cancels it as its owner, and the server's
URL stays the one JupyterHub recorded (``BatchSpawner.get_url`` falls back
to it while no port is known). Nothing is submitted and nothing restarts.

Such a job carries no batchhub job-name tag and has no token file, so the
sweeper's server and orphan passes, which go by the tag, never touch it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .lifecycle import Phase

#: Where each spawner keeps its job id in its saved state, and its name.
FOREIGN_JOB_KEYS = (("job_id", "batchspawner"), ("jobid", "sgespawner"))

#: A job id as schedulers write them: 123, 123.1 (an array task),
#: 123_4, 123+0, 123[4], 123.server (PBS). Never an option (no leading -).
JOB_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+\[\]-]{0,127}$")


def foreign_job(state: Mapping[str, Any]) -> tuple[str, str] | None:
    """``(job id, spawner name)`` of the job another spawner's saved
    ``state`` names, or ``None`` when it names none (a stopped server, a
    batchhub state, a state of some other spawner)."""
    if not isinstance(state, Mapping) or state.get("batchhub"):
        return None
    for source in (state, state.get("child_state")):
        if not isinstance(source, Mapping):
            continue
        for key, spawner in FOREIGN_JOB_KEYS:
            value = source.get(key)
            if value not in (None, ""):
                return str(value).strip(), spawner
    return None


def from_foreign_state(state: Mapping[str, Any], backend: str) -> dict[str, Any] | None:
    """batchhub's saved state for the running job another spawner's saved
    ``state`` names, on ``backend``: the configured one, which must be the
    scheduler the old spawner used (docs/migrating.md maps each spawner
    class to its backend); ``None`` when it names none. Raises
    ``ValueError`` for a job id no scheduler writes."""
    found = foreign_job(state)
    if found is None:
        return None
    job_id, spawner = found
    if not JOB_ID_PATTERN.match(job_id):
        raise ValueError(f"the {spawner} state names a job id batchhub does not take: {job_id!r}")
    return {
        "backend": backend,
        "phase": Phase.READY.value,
        "job_id": job_id,
        "job_state": None,  # the monitor's first answer says
        "host": None,
        "port": None,  # the server's URL stays the one JupyterHub recorded
        "message": f"Job {job_id} adopted from {spawner}",
    }


def saved_job_id(state: Mapping[str, Any] | None) -> str | None:
    """The job id a server's saved state records: batchhub's own, or the
    one a previous spawner's state names (not yet adopted)."""
    if not isinstance(state, Mapping):
        return None
    own = state.get("batchhub")
    if isinstance(own, Mapping):
        job_id = own.get("job_id")
        return str(job_id) if job_id else None
    found = foreign_job(state)
    return found[0] if found else None
