"""Helpers for testing batchhub and its plugins."""

from __future__ import annotations

import os
import pwd

import pytest

REQUIRE_REAL_ENV = "BATCHHUB_REQUIRE_REAL"


def require_real() -> bool:
    """True where a missing real scheduler, hub, proxy or browser must fail
    the run instead of skipping (CI sets ``BATCHHUB_REQUIRE_REAL=1``)."""
    return os.environ.get(REQUIRE_REAL_ENV, "") not in ("", "0", "false", "no")


def missing(what: str) -> None:
    """Skip the current test for a missing real component, or fail it where
    real components are required."""
    message = f"{what} is not available"
    if require_real():
        pytest.fail(f"{message} and {REQUIRE_REAL_ENV} is set: start it (see README) or unset the variable")
    pytest.skip(message)


def need_root_and_user(user: str, why: str) -> None:
    """``missing`` unless this runs as root and ``user`` has an account:
    what a test needs to submit jobs as that user."""
    if os.geteuid() != 0:
        missing(f"root, {why}")
    try:
        pwd.getpwnam(user)
    except KeyError:
        missing(f"the test user {user} (scripts/create-test-users)")
