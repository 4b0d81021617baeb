"""What batchhub loads through the ``batchhub`` entry point."""

from collections.abc import Callable

import batchhub

from .backend import PBSBackend


@batchhub.hookimpl
def batchhub_register_backends(register: Callable[[type], None]) -> None:
    register(PBSBackend)
