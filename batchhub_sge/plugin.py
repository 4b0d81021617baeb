"""Registers the Grid Engine backend, exactly as a third-party plugin would."""

from __future__ import annotations

from collections.abc import Callable

import batchhub

from .backend import SGEBackend


@batchhub.hookimpl
def batchhub_register_backends(register: Callable[[type], None]) -> None:
    register(SGEBackend)
