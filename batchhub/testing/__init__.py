"""Helpers for testing batchhub and its plugins."""

from __future__ import annotations

import os

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
