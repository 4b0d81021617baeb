"""End to end on real schedulers: the fields a site enables (a Grid Engine
parallel environment that spreads slots over nodes, Slurm tasks per node, a
mail address) reach the scheduler, and the server starts; its process sees
the job's node list in BATCHHUB_NODES."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator

import pytest

from batchhub.testing.hub import RealHub, running_hub
from batchhub.testing.jobs import job_details, server_process

pytestmark = pytest.mark.hub

HOST = socket.gethostname().split(".")[0]
ADDRESS = f"alice@{HOST}"

SITE = {
    "sge": (
        "c.ResourceForm.fields = ['pe', 'cores', 'memory', 'email']\n"
        "c.ResourceForm.pe_choices = ['smp', 'mpi']\n",
        {"pe": "mpi", "cores": 2, "memory": "1G", "email": ADDRESS},
    ),
    "slurm": (
        "c.ResourceForm.fields = ['nodes', 'tasks_per_node', 'cores', 'memory', 'email']\n"
        "c.ResourceForm.nodes_max = 2\n"
        "c.ResourceForm.tasks_per_node_max = 4\n",
        {"nodes": 1, "tasks_per_node": 2, "cores": 1, "memory": "1G", "email": ADDRESS},
    ),
}


@pytest.fixture(scope="module", params=["sge", "slurm"])
def site_hub(request: pytest.FixtureRequest) -> Iterator[RealHub]:
    config, _ = SITE[request.param]
    yield from running_hub(request.param, config + "c.ResourceForm.cores_max = 4\n")


def test_parallel_job_with_mail_starts_its_server(site_hub: RealHub) -> None:
    hub = site_hub
    _, options = SITE[hub.backend]
    before = hub.live_jobs()
    hub.api("POST", "users", json={"usernames": ["alice"]})
    r = hub.api("POST", "users/alice/server", json={"user_options": options})
    assert r.status_code in (201, 202), r.text
    server = hub.wait_ready("alice")
    state = server["state"]["batchhub"]
    job_id = state["job_id"]
    assert job_id in hub.live_jobs() - before

    details = job_details(hub.backend, job_id)
    if hub.backend == "sge":
        # qstat -j: the mpi PE with both slots, mail to alice at the end and on abort
        assert re.search(r"parallel environment:\s+mpi range:\s+2\b", details), details
        assert re.search(rf"mail_list:\s+{re.escape(ADDRESS)}\b", details), details
        assert re.search(r"mail_options:\s+ae\b", details), details
    else:
        assert f"MailUser={ADDRESS}" in details and "MailType=END,FAIL" in details, details
        assert re.search(r"NumTasks=2\b", details) and "NumNodes=1" in details, details

    # the server runs on the job's first node and sees the node list
    proc = server_process(state["port"])
    assert proc is not None, "no jupyterhub-singleuser process on the reported port"
    assert proc.env.get("BATCHHUB_NODES", "").split(",")[0] == HOST, proc.env.get("BATCHHUB_NODES")

    r = hub.api("DELETE", "users/alice/server")
    assert r.status_code in (202, 204), r.text
    hub.wait_stopped("alice")
    deadline = time.monotonic() + 60
    while job_id in hub.live_jobs() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert job_id not in hub.live_jobs()


def test_a_bad_address_is_refused_naming_the_field(site_hub: RealHub) -> None:
    hub = site_hub
    _, options = SITE[hub.backend]
    before = hub.live_jobs()
    hub.api("POST", "users", json={"usernames": ["alice"]})
    r = hub.api("POST", "users/alice/server", json={"user_options": {**options, "email": "a@x.org -M root"}})
    assert r.status_code == 400, r.text
    assert "email:" in r.json()["message"] and "name@example.org" in r.json()["message"]
    assert hub.live_jobs() - before == set()
