"""A port report is taken only from a job the scheduler says runs, only
from the host it runs on; and a reported port is used only when this
user's server answers there."""

from __future__ import annotations

import asyncio
import http.server
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from traitlets.config import Config

from batchhub import readiness
from batchhub.callback import Refusal
from batchhub.jobs import JobSpec, ResourceRequest
from batchhub.spawner import BatchSpawner, SpawnException
from batchhub.testing.polling import StandInUser, shared_runner, stop_monitors
from batchhub_fake import FakeBackend, FakeClock, FakeRunner, FakeScheduler

PORT = 40123


@dataclass
class StandInServer:
    base_url: str


def spawner_with_a_job(sched: FakeScheduler) -> BatchSpawner:
    c = Config()
    c.BatchSpawner.backend = "fake"
    c.BatchSpawner.host_template = "localhost"  # the fake's node names mean this machine
    c.BatchSpawner.report_hold = 0.5
    c.JobMonitor.fast_interval = 0.05
    return BatchSpawner(user=StandInUser("alice"), config=c)


async def submitted(spawner: BatchSpawner) -> str:
    backend = FakeBackend()
    spec = JobSpec("alice", "", backend.job_name("alice", ""), ResourceRequest(), "/tmp/batchhub-port-test")
    script = "#!/bin/sh\n" + "\n".join(backend.directives(spec)) + "\nexec jupyterhub-singleuser\n"
    return await spawner.controller.submit(spec, script)


@pytest.fixture
def sched() -> Iterator[FakeScheduler]:
    sched = FakeScheduler(clock=FakeClock(), queue_delay=60.0, start_delay=0.0)
    with shared_runner(FakeRunner(sched)):
        yield sched


async def test_a_report_while_the_job_is_queued_is_held_then_refused(sched: FakeScheduler) -> None:
    spawner = spawner_with_a_job(sched)
    await submitted(spawner)
    with pytest.raises(Refusal) as refused:
        await spawner.batchhub_port_report(PORT, "127.0.0.1")
    assert refused.value.status == 503  # the launcher retries a 503
    assert spawner.controller.lifecycle.port is None
    await stop_monitors()


async def test_a_report_waits_for_the_scheduler_to_say_running(sched: FakeScheduler) -> None:
    spawner = spawner_with_a_job(sched)
    await submitted(spawner)
    report = asyncio.ensure_future(spawner.batchhub_port_report(PORT, "127.0.0.1"))
    await asyncio.sleep(0.1)
    assert not report.done(), "taken before the scheduler said the job runs"
    sched.clock.advance(61)  # the job starts; the monitor's next tick sees it
    assert await asyncio.wait_for(report, 5)
    assert spawner.controller.lifecycle.port == PORT
    await stop_monitors()


@pytest.mark.parametrize("peer", ["127.0.0.2", "10.1.2.3", "", "not-an-address"])
async def test_a_report_from_another_host_is_refused(sched: FakeScheduler, peer: str) -> None:
    spawner = spawner_with_a_job(sched)
    await submitted(spawner)
    sched.clock.advance(61)
    with pytest.raises(Refusal) as refused:
        await spawner.batchhub_port_report(PORT, peer)
    assert refused.value.status == 403
    assert spawner.controller.lifecycle.port is None
    assert await spawner.batchhub_port_report(PORT, "::ffff:127.0.0.1"), "the job's own host was refused"
    await stop_monitors()


class Jupyterish(http.server.BaseHTTPRequestHandler):
    """Serves ``{prefix}api`` as a Jupyter server does; 404 elsewhere."""

    prefix = "/user/bob/"

    def do_GET(self) -> None:
        if self.path == f"{self.prefix}api":
            body = json.dumps({"version": "2.0"}).encode()
            self.send_response(200)
        else:
            body = b"not found"
            self.send_response(404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def bobs_server() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Jupyterish)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


async def test_another_users_server_is_not_ready(bobs_server: int) -> None:
    problem = await readiness.serves_prefix(f"http://127.0.0.1:{bobs_server}/user/alice/api", 2)
    assert "404" in problem
    assert await readiness.serves_prefix(f"http://127.0.0.1:{bobs_server}/user/bob/api", 2) == ""


async def test_start_refuses_a_port_where_another_users_server_answers(
    sched: FakeScheduler, bobs_server: int
) -> None:
    spawner = spawner_with_a_job(sched)
    spawner.server = StandInServer("/user/alice/")  # type: ignore[assignment]
    await submitted(spawner)
    with pytest.raises(SpawnException) as failed:
        await spawner.confirm_server("127.0.0.1", bobs_server)
    assert "is not your server" in failed.value.jupyterhub_message
    spawner.server = StandInServer("/user/bob/")  # type: ignore[assignment]
    await spawner.confirm_server("127.0.0.1", bobs_server)  # bob's own server would be fine
    await stop_monitors()


async def test_nothing_listening_is_not_ready_within_the_budget() -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    problem = await readiness.serves_prefix("http://127.0.0.1:9/user/alice/api", 0.5)
    assert "nothing answered" in problem
    assert loop.time() - started < 5
