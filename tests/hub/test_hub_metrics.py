"""The hub's own /hub/metrics after a spawn and a stop, on a real JupyterHub
with the real proxy: batchhub's metrics beside JupyterHub's, with the
counts of what the spawn ran (the local fake, then real Grid Engine and
Slurm)."""

from __future__ import annotations

import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from batchhub.testing.hub import RealHub

pytestmark = pytest.mark.hub


class Scrape:
    def __init__(self, hub: RealHub) -> None:
        r = requests.get(
            f"{hub.url}/hub/metrics", headers={"Authorization": f"token {hub.admin_token}"}, timeout=30
        )
        assert r.status_code == 200, r.text
        self.text = r.text
        self.samples = {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(r.text)
            for sample in family.samples
        }

    def get(self, name: str, **labels: str) -> float:
        return self.samples.get((name, tuple(sorted(labels.items()))), 0.0)

    def total(self, name: str, **labels: str) -> float:
        """Sum over every series of ``name`` with ``labels`` among its labels."""
        return sum(
            value
            for (found, have), value in self.samples.items()
            if found == name and set(labels.items()) <= set(have)
        )


def test_metrics_count_a_spawn_and_a_stop(scheduler_hub: RealHub) -> None:
    hub = scheduler_hub  # a hub of this module's own: the counts start at zero
    backend = hub.backend
    before = Scrape(hub)
    assert "jupyterhub_" in before.text, "JupyterHub's own metrics, in the same place"
    assert before.total("batchhub_scheduler_commands_total") == 0

    hub.api("POST", "users", json={"usernames": ["alice"]})
    r = hub.api("POST", "users/alice/server")
    assert r.status_code in (201, 202), r.text
    job_id = hub.wait_ready("alice")["state"]["batchhub"]["job_id"]

    running = Scrape(hub)
    assert running.get("batchhub_jobs_tracked", backend=backend, state="RUNNING") == 1
    assert running.total("batchhub_jobs_tracked", backend=backend) == 1
    assert running.get("batchhub_monitor_consecutive_failed_queries", backend=backend) == 0
    assert 0 <= running.get("batchhub_monitor_last_query_age_seconds", backend=backend) < 60

    r = hub.api("DELETE", "users/alice/server")
    assert r.status_code in (202, 204), r.text
    hub.wait_stopped("alice")
    hub.wait_jobs_gone({job_id})

    m = Scrape(hub)
    commands = "batchhub_scheduler_commands_total"
    assert m.get(commands, backend=backend, kind="submit", outcome="ok") == 1
    assert m.get(commands, backend=backend, kind="status", outcome="ok") >= 1
    assert m.get(commands, backend=backend, kind="cancel", outcome="ok") == 1
    assert m.total(commands, backend=backend, outcome="failed") == 0
    assert m.total(commands, backend=backend, outcome="timed_out") == 0
    ran = m.total(commands, backend=backend)
    durations = m.total("batchhub_scheduler_command_duration_seconds_count", backend=backend)
    assert durations == ran, "every command counted has its duration"

    for phase in ("queued", "starting"):
        assert m.get("batchhub_spawn_phase_duration_seconds_count", backend=backend, phase=phase) == 1, phase
    waited = sum(
        m.get("batchhub_spawn_phase_duration_seconds_sum", backend=backend, phase=phase)
        for phase in ("queued", "starting")
    )
    assert 0 < waited < 120
    events = "batchhub_job_events_total"
    assert m.get(events, backend=backend, kind="submitted") == 1
    assert m.get(events, backend=backend, kind="ready") == 1

    deadline = time.monotonic() + 30  # the monitor lets go of a job once it saw it end
    while m.total("batchhub_jobs_tracked", backend=backend) and time.monotonic() < deadline:
        time.sleep(0.5)
        m = Scrape(hub)
    assert m.total("batchhub_jobs_tracked", backend=backend) == 0
