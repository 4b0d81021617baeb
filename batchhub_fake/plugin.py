"""Registers the fake backend, exactly as a third-party plugin would."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import batchhub
from batchhub.site_settings import SiteSettings

from .backend import FakeBackend


@batchhub.hookimpl
def batchhub_register_backends(register: Callable[[type], None]) -> None:
    register(FakeBackend)


@batchhub.hookimpl
def batchhub_site_settings(backend_name: str, state_dir: Path, bin_dir: Path) -> SiteSettings | None:
    """Local mode: each job is a local process, its record in a spool
    inside the hub's state directory that every job's user can write."""
    if backend_name != FakeBackend.name:
        return None
    spool = state_dir / "fake-spool"
    config = {"local": True, "spool_dir": str(spool), "python": str(bin_dir / "python")}
    return SiteSettings(
        config={FakeBackend.__name__: config},
        local=True,
        shared_dirs=[spool],
        problem=lambda: None,  # nothing to start: the scheduler is this package
    )
