"""Registers the Grid Engine backend, exactly as a third-party plugin would."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import batchhub
from batchhub.site_settings import SiteSettings

from .backend import SGEBackend


@batchhub.hookimpl
def batchhub_register_backends(register: Callable[[type], None]) -> None:
    register(SGEBackend)


@batchhub.hookimpl
def batchhub_site_settings(backend_name: str) -> SiteSettings | None:
    """Son of Grid Engine as Debian installs it (scripts/sge-up)."""
    if backend_name != SGEBackend.name:
        return None
    env = {
        "SGE_ROOT": os.environ.get("SGE_ROOT", "/var/lib/gridengine"),
        "SGE_CELL": os.environ.get("SGE_CELL", "default"),
    }
    return SiteSettings(
        env=env,
        hint="start sge_qmaster and sge_execd; a batchhub checkout has scripts/sge-up for both",
        job_details=lambda job_id: [["qstat", "-j", job_id], ["qstat", "-j", job_id, "-xml"]],
        spool_dirs=[Path("/var/spool/gridengine/execd")],
    )
