"""Job events passed to ``batchhub_job_event`` observers."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class JobEvent:
    """Something that happened to one server's job.

    ``kind`` is one of ``submitted``, ``state``, ``ready``, ``stopped``,
    ``failed``, ``cancelled``. ``time`` is seconds since the epoch.
    """

    kind: str
    username: str
    server_name: str
    backend: str
    job_id: str | None
    time: float
    state: str = ""
    message: str = ""
