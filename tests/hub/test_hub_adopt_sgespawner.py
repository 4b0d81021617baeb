"""A hub switches from sgespawner to batchhub without killing a server.

sgespawner 0.2.4's SGESpawner, in a hub of its own environment
(scripts/batchspawner-env), starts alice's server as a real Grid Engine
job: ``sudo -u alice qsub -v VARS`` with the job script, rendered from the
site's Jinja2 template, on stdin, then ``qstat -t -xml`` until the job runs
(``r``) on the port the hub chose. That hub stops with ``cleanup_servers =
False``; the same hub (database, ports, cookie secret) restarts with
``c.JupyterHub.spawner_class = "batchhub"`` on the sge backend, as
docs/migrating.md says. batchhub adopts the job from sgespawner's saved
state (``{"jobid": N}``): the same job and the same server process go on,
reachable through the proxy, no job is submitted, and a stop through the
hub cancels it.
"""

from __future__ import annotations

import pwd
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
from foreign_hub import FOREIGN_ENV, Foreign, foreign_hub, start_alices_server, switch_adopt_and_stop

from batchhub.testing.hub import RealHub

pytestmark = [pytest.mark.hub, pytest.mark.sge]

#: sgespawner 0.2.4 (beside batchspawner) with JupyterHub and JupyterLab,
#: for that hub and its jobs.
SGESPAWNER_ENV = FOREIGN_ENV

#: sgespawner names no job; its README's template names them so.
JOB_NAME = "jupyterhub"

#: The site's job template, as sgespawner's README writes it (``working_dir``
#: and ``jh_args`` are all it renders that the job needs). JupyterHub 2 and
#: later give the server its port and scopes only in the environment
#: (JUPYTERHUB_SERVICE_URL, JUPYTERHUB_OAUTH_ACCESS_SCOPES, ...), which
#: sgespawner's ``qsub -v`` list lacks: ``-V`` passes what sudo kept.
#: sgespawner renders ``working_dir`` as /home/<user>, whatever the home.
SGE_TEMPLATE = f"""#!/bin/sh
#$ -S /bin/sh
#$ -j y
#$ -wd {{{{ working_dir }}}}
#$ -N {JOB_NAME}
#$ -V
exec {SGESPAWNER_ENV}/bin/jupyterhub-singleuser {{{{ jh_args }}}}
"""

#: The template's file, in the hub's state directory (its account reads it).
TEMPLATE_FILE = "jupyterhub.sge.j2"

#: The first hub's spawner, as a site running sgespawner configures it.
SGESPAWNER_CONFIG = f"""
c.JupyterHub.spawner_class = 'sgespawner.SGESpawner'
c.SGESpawner.sge_template = '{{state}}/{TEMPLATE_FILE}'
c.Spawner.start_timeout = 240
c.Spawner.http_timeout = 120
"""


def alice_jobs() -> dict[str, str]:
    """alice's jobs that Grid Engine lists, by id: their state (``qw``,
    ``r``, ``dr``, ...), those named as the template names them."""
    argv = ["qstat", "-xml", "-u", "alice"]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=True).stdout
    return {
        (job.findtext("JB_job_number") or "").strip(): (job.findtext("state") or "").strip()
        for job in ET.fromstring(out).iter("job_list")
        if (job.findtext("JB_name") or "").strip() == JOB_NAME
    }


def job_state(job_id: str) -> str:
    """The job's Grid Engine state, "" once qstat no longer lists it."""
    return alice_jobs().get(job_id, "")


SGESPAWNER = Foreign(
    name="sgespawner",
    backend="sge",
    check="import defusedxml, sgespawner; assert sgespawner.__version__ == '0.2.4'",
    requirement="sgespawner 0.2.4",
    config=SGESPAWNER_CONFIG,
    jobs=lambda: set(alice_jobs()),
    cancel=lambda job_id: subprocess.run(["qdel", "-f", job_id], capture_output=True, check=False),
    # the jobs' output (-j y), in working_dir
    outputs=lambda: set(Path(pwd.getpwnam("alice").pw_dir).glob(f"{JOB_NAME}.o*")),
    files={TEMPLATE_FILE: SGE_TEMPLATE},
)


@pytest.fixture
def sgespawner_hub() -> Iterator[RealHub]:
    yield from foreign_hub(SGESPAWNER)


def test_batchhub_adopts_a_server_sgespawner_started(sgespawner_hub: RealHub) -> None:
    hub = sgespawner_hub
    before = SGESPAWNER.jobs()
    state = start_alices_server(hub, timeout=300)
    assert set(state) == {"jobid"} and isinstance(state["jobid"], int), state  # sgespawner's own record
    job_id = str(state["jobid"])
    assert SGESPAWNER.jobs() - before == {job_id}
    assert job_state(job_id) == "r"
    switch_adopt_and_stop(hub, SGESPAWNER, job_id, job_state, "r")
    assert "alice still running" in hub.log_text(), (
        "JupyterHub's first poll after the switch found it running"
    )
