"""What differs between the JupyterHub versions batchhub runs on (5 and 6),
kept in one place: the spawn failure the user sees, and the major version."""

from __future__ import annotations

from typing import Any

import jupyterhub
from tornado.web import HTTPError

try:  # JupyterHub >= 6: a clean failure page with the message, no traceback
    from jupyterhub.spawner import SpawnException as _HubSpawnException
except ImportError:  # JupyterHub 5

    class _HubSpawnException(HTTPError):  # type: ignore[no-redef]
        def __init__(self, message: str, *, reason: str = "", status_code: int = 400, **_: Any) -> None:
            super().__init__(status_code, log_message=message, reason=reason or None)


#: The running JupyterHub's major version.
HUB_MAJOR = int(jupyterhub.__version__.split(".")[0])


class SpawnException(_HubSpawnException):
    """A spawn failure whose message the user sees exactly as written (the
    hub shows ``jupyterhub_message`` on the spawn page and in the progress
    stream, instead of the exception's repr)."""

    def __init__(self, message: str, *, reason: str, status_code: int = 500, **kw: Any) -> None:
        super().__init__(message, reason=reason, status_code=status_code, **kw)
        self.jupyterhub_message = message
