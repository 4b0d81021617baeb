"""Registers the Slurm backend through the ``batchhub`` entry-point group."""

from __future__ import annotations

from collections.abc import Callable

import batchhub

from .backend import SlurmBackend


@batchhub.hookimpl
def batchhub_register_backends(register: Callable[[type], None]) -> None:
    register(SlurmBackend)
