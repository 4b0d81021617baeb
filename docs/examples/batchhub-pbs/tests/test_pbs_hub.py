"""End to end with no root: a real JupyterHub, run as you, spawns your
server as a job on the fake PBS (fakepbs), lists it with the backend's own
listing, and stops it with qdel (see hub_check.py)."""

from __future__ import annotations

import pytest
from hub_check import finish, problem, spawn_list_and_stop, start_hub

from batchhub.testing import missing

pytestmark = pytest.mark.hub


def test_spawn_list_and_stop_on_fake_pbs() -> None:
    why = problem()
    if why:
        missing(why)
    hub = start_hub()
    try:
        spawn_list_and_stop(hub)
    finally:
        finish(hub)
