"""Tells ``batchhub demo`` and the test harness to run the ``pbs`` backend
on fakepbs where this machine has no OpenPBS (no /opt/pbs): its commands
beside the jobs' Python, its spool in the hub's state directory. A
production hub never asks (see ``batchhub_site_settings``)."""

from __future__ import annotations

from pathlib import Path

import batchhub
from batchhub.site_settings import SiteSettings

REAL_PBS = Path("/opt/pbs")


@batchhub.hookimpl
def batchhub_site_settings(backend_name: str, state_dir: Path, bin_dir: Path) -> SiteSettings | None:
    if backend_name != "pbs" or REAL_PBS.exists():
        return None
    spool = state_dir / "fakepbs-spool"
    programs = {name: str(bin_dir / f"fakepbs-{name}") for name in ("qsub", "qstat", "qdel")}
    return SiteSettings(
        config={"PBSBackend": {"programs": programs}},
        env={"FAKEPBS_SPOOL": str(spool)},
        shared_dirs=[spool],
        hint="fakepbs, installed with batchhub-pbs: pip install docs/examples/batchhub-pbs",
    )
