"""The hub endpoint where a starting job reports the port its server uses.

``POST {hub}/api/batchhub/port`` with ``Authorization: token <server token>``
and the body ``{"port": <int 1024..65535>}``, nothing else.

The route is user-reachable (the job runs the user's code with the
server's token), so it does exactly one thing: pass one validated integer
to the one spawner whose ``api_token`` is the presented token, and only
when that spawner says it is waiting for it. It never copies request data
onto the spawner.

Protocol a spawner implements::

    async def batchhub_port_report(self, port: int, peer: str) -> bool:
        '''Take the port of the job that is starting, reported from the
        address ``peer``; True when accepted. False when this spawn is not
        waiting for a port (already got one, ready, stopping, stopped): the
        endpoint then answers 409. It may raise ``Refusal`` for other
        reasons (the scheduler does not yet say the job runs: 503, which
        the launcher retries; the report comes from another host: 403).'''

(A plain function returning a bool is accepted too.)

Importing this module registers the handler with JupyterHub (it appends
to ``jupyterhub.apihandlers.default_handlers``, which the hub reads when it
builds its routes, after it has loaded the spawner class).
"""

from __future__ import annotations

import hmac
import inspect
import json
from collections.abc import Awaitable, Iterable
from typing import Any, Protocol

from jupyterhub import apihandlers
from jupyterhub.apihandlers import APIHandler
from jupyterhub.user import User
from tornado import web

#: Route under the hub's prefix (``/hub/api/batchhub/port`` by default).
ROUTE = r"/api/batchhub/port"
PORT_MIN, PORT_MAX = 1024, 65535
MAX_BODY = 256


class PortReporter(Protocol):
    api_token: str | None

    def batchhub_port_report(self, port: int, peer: str) -> bool | Awaitable[bool]: ...


class Refusal(Exception):
    """Why a report was refused: an HTTP status and a message (for the
    job's error file and the hub log; it never contains the token nor
    echoes the request)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise Refusal(400, "duplicate keys in the body")
    return dict(pairs)


def parse_port_body(body: bytes) -> int:
    """The port from a report's body, which must be exactly
    ``{"port": <int>}`` with the port in 1024..65535."""
    if len(body) > MAX_BODY:
        raise Refusal(400, f"body too long (more than {MAX_BODY} bytes)")
    try:
        data = json.loads(body.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, ValueError):
        raise Refusal(400, 'body must be the JSON object {"port": <integer>}') from None
    if not isinstance(data, dict) or set(data) != {"port"}:
        raise Refusal(400, 'body must be exactly {"port": <integer>} with no other keys')
    port = data["port"]
    if isinstance(port, bool) or not isinstance(port, int):
        raise Refusal(400, f"port must be an integer, got {type(port).__name__}")
    if not PORT_MIN <= port <= PORT_MAX:
        raise Refusal(400, f"port must be in {PORT_MIN}..{PORT_MAX}, got {port}")
    return port


def find_spawner(spawners: Iterable[Any], token: str) -> PortReporter:
    """The one spawner whose server token is ``token``: the token both
    authenticates the job and names the server, so a user's token for
    one server cannot report for another."""
    matches = [
        s
        for s in spawners
        if isinstance(getattr(s, "api_token", None), str)
        and s.api_token
        and hmac.compare_digest(s.api_token.encode(), token.encode())
    ]
    if len(matches) != 1:
        raise Refusal(403, "this token is not the token of a server that is starting")
    spawner = matches[0]
    if not callable(getattr(spawner, "batchhub_port_report", None)):
        raise Refusal(403, "this server's spawner does not take port reports")
    return spawner


async def report_port(
    spawners: Iterable[Any], token: str | None, body: bytes, peer: str = ""
) -> tuple[PortReporter, int]:
    """Deliver one report from the address ``peer``: find the spawner,
    check the body, hand over the port. Raises ``Refusal``; changes
    nothing unless it returns."""
    if not token:
        raise Refusal(403, "a server token is required (Authorization: token ...)")
    spawner = find_spawner(spawners, token)
    port = parse_port_body(body)
    verdict = spawner.batchhub_port_report(port, peer)
    if inspect.isawaitable(verdict):
        verdict = await verdict
    if not verdict:
        raise Refusal(409, "this server is not waiting for a port (already reported, ready or stopped)")
    return spawner, port


class PortReportHandler(APIHandler):
    """``POST /hub/api/batchhub/port``: see the module docstring."""

    # Only the Authorization header counts: a browser's cookie must never
    # be able to report a port.
    _accept_cookie_auth = False

    async def post(self) -> None:
        user = self.current_user
        token = self.get_auth_token()
        who = user.name if isinstance(user, User) else "unauthenticated"
        try:
            orm_token = self.get_token() if token else None
            if not isinstance(user, User) or orm_token is None or orm_token.user is None:
                raise Refusal(403, "a server token is required (Authorization: token ...)")
            if orm_token.user.id != user.orm_user.id:
                raise Refusal(403, "this token does not belong to the server's user")
            spawner, port = await report_port(
                list(user.spawners.values()), token, self.request.body, self.request.remote_ip or ""
            )
        except Refusal as refusal:
            self.log.warning("batchhub port report from %s refused (%d): %s", who, refusal.status, refusal)
            raise web.HTTPError(refusal.status, refusal.message) from None
        self.log.info("batchhub port report: %s listens on port %d", getattr(spawner, "_log_name", who), port)
        self.set_status(200)
        self.finish(json.dumps({"port": port}))


def register() -> None:
    """Add the handler to JupyterHub's API routes (idempotent)."""
    if not any(route[0] == ROUTE for route in apihandlers.default_handlers):
        apihandlers.default_handlers.append((ROUTE, PortReportHandler))


register()
