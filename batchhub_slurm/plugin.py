"""Registers the Slurm backend through the ``batchhub`` entry-point group."""

from __future__ import annotations

from collections.abc import Callable

import batchhub
from batchhub.site_settings import SiteSettings

from .backend import SlurmBackend


@batchhub.hookimpl
def batchhub_register_backends(register: Callable[[type], None]) -> None:
    register(SlurmBackend)


@batchhub.hookimpl
def batchhub_site_settings(backend_name: str) -> SiteSettings | None:
    """A local Slurm controller and node (scripts/slurm-up)."""
    if backend_name != SlurmBackend.name:
        return None
    return SiteSettings(
        hint="start slurmctld and slurmd; a batchhub checkout has scripts/slurm-up for both",
        job_details=lambda job_id: [["scontrol", "show", "job", "-d", job_id]],
    )
