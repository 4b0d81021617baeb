"""batchhub: JupyterHub servers as batch jobs on any HPC scheduler."""

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

__version__ = "0.1.0"

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
