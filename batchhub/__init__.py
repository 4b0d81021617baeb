"""batchhub: JupyterHub servers as batch jobs on any HPC scheduler.

``from batchhub import BatchSpawner`` gives the spawner class, as
``c.JupyterHub.spawner_class = "batchhub"`` does. It is loaded on first
use: importing ``batchhub`` (as every backend plugin does, for
``hookimpl``) never imports JupyterHub.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .hookspecs import hookimpl
from .jobs import (
    BatchhubError,
    CancelOutcome,
    Command,
    CommandResult,
    ConfigError,
    HistoryUnavailable,
    JobSpec,
    JobState,
    Observation,
    QueryError,
    ResourceRequest,
    SubmitError,
)

if TYPE_CHECKING:
    from .spawner import BatchSpawner as BatchSpawner  # re-exported, loaded lazily

__version__ = "0.1.0"

#: Names loaded from their module on first use: (module, attribute).
_LAZY = {"BatchSpawner": (".spawner", "BatchSpawner")}

__all__ = [
    "BatchhubError",
    "CancelOutcome",
    "Command",
    "CommandResult",
    "ConfigError",
    "HistoryUnavailable",
    "JobSpec",
    "JobState",
    "Observation",
    "QueryError",
    "ResourceRequest",
    "SubmitError",
    "__version__",
    "hookimpl",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from importlib import import_module

        module, attribute = _LAZY[name]
        value = getattr(import_module(module, __name__), attribute)
        globals()[name] = value  # later lookups skip this hook
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
