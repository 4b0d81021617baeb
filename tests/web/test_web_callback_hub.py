# ruff: noqa: F811  (pytest fixtures imported from jupyterhub.tests shadow their names)
"""The port-report endpoint inside a real JupyterHub (MockHub with the real
proxy): routing, token authentication and refusals over HTTP."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys

import pytest
from jupyterhub.tests.conftest import app, cleanup_after, db, ssl_tmpdir, tmp_cwd  # noqa: F401
from jupyterhub.tests.utils import add_user, api_request
from jupyterhub.utils import url_path_join

import batchhub.callback  # noqa: F401  (registers the route before the hub builds its handlers)
from batchhub.singleuser import write_token_file
from batchhub.testing import missing

pytestmark = pytest.mark.hub


@pytest.fixture(scope="module", autouse=True)
def _proxy_available():
    if shutil.which("configurable-http-proxy") is None:
        missing("configurable-http-proxy (scripts/install-web-deps; node_modules/.bin on PATH)")


class Recorder:
    """The spawner side of the protocol: one port while waiting."""

    def __init__(self) -> None:
        self.waiting = True
        self.ports: list[int] = []

    def __call__(self, port: int, peer: str = "") -> bool:
        if not self.waiting:
            return False
        self.waiting = False
        self.ports.append(port)
        return True


def server_with_token(app, name: str) -> tuple[object, str, Recorder]:
    """A user whose default server holds a real server token and waits for a port."""
    user = add_user(app.db, app, name=name)
    token = user.new_api_token(note="Server at test")
    spawner = user.spawner  # the default server
    spawner.api_token = token
    recorder = Recorder()
    spawner.batchhub_port_report = recorder
    return spawner, token, recorder


async def report(app, token: str | None, payload: object, raw: bytes | None = None):
    headers = {"Authorization": f"token {token}"} if token else {}
    return await api_request(
        app,
        "batchhub/port",
        method="post",
        headers=headers,
        noauth=token is None,
        data=raw if raw is not None else json.dumps(payload),
    )


async def test_report_accepted_once(app):
    _, token, recorder = server_with_token(app, "porter1")
    r = await report(app, token, {"port": 41234})
    assert r.status_code == 200, r.text
    assert r.json() == {"port": 41234}
    assert recorder.ports == [41234]
    again = await report(app, token, {"port": 41235})
    assert again.status_code == 409
    assert "not waiting" in again.json()["message"]
    assert recorder.ports == [41234]


@pytest.mark.parametrize(
    "payload",
    [{"port": 80}, {"port": "41234"}, {"port": 41234, "cmd": ["/bin/sh"]}, {"port": 41234.5}, [41234]],
)
async def test_bad_bodies_refused(app, payload):
    _, token, recorder = server_with_token(app, "porter2")
    r = await report(app, token, payload)
    assert r.status_code == 400
    assert recorder.ports == [] and recorder.waiting


async def test_other_tokens_refused(app):
    _, alice_token, alice = server_with_token(app, "porter3")
    bob = add_user(app.db, app, name="porter4")
    bob_plain_token = bob.new_api_token(note="a user's own token")
    for token in (bob_plain_token, "not-a-token-at-all", None):
        r = await report(app, token, {"port": 41234})
        assert r.status_code in (401, 403), (token, r.status_code)
    # the admin's token is no server's token either
    r = await api_request(app, "batchhub/port", method="post", data=json.dumps({"port": 41234}))
    assert r.status_code == 403
    assert alice.ports == [] and alice.waiting
    assert alice_token  # untouched and still usable
    assert (await report(app, alice_token, {"port": 41234})).status_code == 200


async def test_a_server_token_reports_only_for_its_own_server(app):
    _, _, rec_a = server_with_token(app, "porter5")
    _, token_b, rec_b = server_with_token(app, "porter6")
    assert (await report(app, token_b, {"port": 42000})).status_code == 200
    assert rec_b.ports == [42000] and rec_a.ports == [] and rec_a.waiting


async def test_the_launcher_reports_to_the_real_endpoint(app, tmp_path):
    """batchhub-singleuser, as a job runs it, against this hub's route."""
    _, token, recorder = server_with_token(app, "porter7")
    token_file = tmp_path / "srv" / "token"
    write_token_file(str(token_file), token)
    # a stand-in server: it listens first, then reports the port it holds
    show = (
        "import os, socket, sys\n"
        "from batchhub.singleuser import report_listening_port\n"
        "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen()\n"
        "report_listening_port(s.getsockname()[1])\n"
        "print(sys.argv[-1], s.getsockname()[1], os.environ['JUPYTERHUB_API_TOKEN'] == sys.argv[1])\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTERHUB_")}
    env["JUPYTERHUB_API_URL"] = url_path_join(app.hub.url, "api")
    proc = await asyncio.create_subprocess_exec(
        *[
            sys.executable,
            "-m",
            "batchhub.singleuser",
            "--token-file",
            str(token_file),
            "--report-timeout",
            "10",
        ],
        *["--", sys.executable, "-c", show, token],
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    assert out.decode().split() == ["--port=0", str(recorder.ports[0]), "True"]
    assert not token_file.exists()
