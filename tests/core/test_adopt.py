"""A hub that switches from batchspawner or sgespawner adopts the servers
they started: their saved state becomes batchhub's, the job is tracked,
never submitted again, and a stop cancels it; the sweeper, which goes by
batchhub's job-name tag, never mistakes such a job for a stray or an
orphan. On the fake scheduler; tests/hub/test_hub_adopt_batchspawner.py
does it with batchspawner 1.3.0 itself on Slurm."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from traitlets.config import Config

from batchhub import adopt
from batchhub.jobs import JobState
from batchhub.lifecycle import Phase
from batchhub.spawner import BatchSpawner
from batchhub.testing.polling import StandInUser, shared_runner, stop_monitors
from batchhub_fake import FakeClock, FakeRunner, FakeScheduler

#: What batchspawner 1.3.0's SlurmSpawner saves for a running server
#: (BatchSpawnerBase.get_state: the job id and its last squeue answer).
BATCHSPAWNER_STATE = {"job_id": "4242", "job_status": "RUNNING vm"}


def test_batchspawners_state_becomes_a_ready_job_on_the_configured_backend() -> None:
    state = adopt.from_foreign_state(BATCHSPAWNER_STATE, "slurm")
    assert state == {
        "backend": "slurm",
        "phase": "ready",
        "job_id": "4242",
        "job_state": None,
        "host": None,
        "port": None,
        "message": "Job 4242 adopted from batchspawner",
    }
    assert json.loads(json.dumps(state)) == state  # it goes to the hub's database


@pytest.mark.parametrize(
    ("state", "found"),
    [
        ({"jobid": 77}, ("77", "sgespawner")),  # sgespawner saves an int
        ({"profile": "gpu", "child_state": {"job_id": "9"}}, ("9", "batchspawner")),  # wrapspawner
        ({"job_id": "123_4"}, ("123_4", "batchspawner")),  # a Slurm array task
        ({}, None),
        ({"job_id": ""}, None),  # batchspawner's state once its server stopped
        ({"pid": 1234}, None),  # LocalProcessSpawner's
        ({"batchhub": {"job_id": "5", "phase": "ready"}, "job_id": "6"}, None),  # batchhub's own
    ],
)
def test_which_saved_states_name_a_job(state: dict, found: tuple[str, str] | None) -> None:
    assert adopt.foreign_job(state) == found


def test_a_job_id_no_scheduler_writes_is_refused() -> None:
    with pytest.raises(ValueError, match="does not take: '-u alice'"):
        adopt.from_foreign_state({"job_id": "-u alice"}, "slurm")


def test_saved_job_id_reads_batchhubs_state_and_not_yet_adopted_ones() -> None:
    assert adopt.saved_job_id({"batchhub": {"job_id": "5"}}) == "5"
    assert adopt.saved_job_id({"batchhub": {"phase": "idle", "job_id": None}}) is None
    assert adopt.saved_job_id(BATCHSPAWNER_STATE) == "4242"
    assert adopt.saved_job_id({"jobid": 77}) == "77"
    assert adopt.saved_job_id(None) is None


# --- the spawner adopts, tracks and cancels it -----------------------------------


def alices_spawner() -> BatchSpawner:
    """alice's spawner as a hub on the fake scheduler builds it at a restart."""
    config = {
        "BatchSpawner": {"backend": "fake", "stop_timeout": 5.0},
        "JobMonitor": {"interval": 0.05, "fast_interval": 0.05},
    }
    return BatchSpawner(user=StandInUser("alice"), config=Config(config))


@pytest.fixture
def sched() -> Iterator[FakeScheduler]:
    """Jobs run as soon as they are submitted."""
    sched = FakeScheduler(clock=FakeClock(), queue_delay=0.0, start_delay=0.0)
    with shared_runner(FakeRunner(sched)):
        yield sched


def job_named(sched: FakeScheduler, name: str, owner: str) -> str:
    """A running job the hub did not submit, as batchspawner names them."""
    job_id = sched.submit(f"#FAKE --name={name}\nexec sleep 600\n", owner)
    sched.sync()
    return job_id


async def test_the_spawner_adopts_a_batchspawner_job_and_a_stop_cancels_it(sched: FakeScheduler) -> None:
    job_id = job_named(sched, "spawner-jupyterhub", "alice")
    bobs = job_named(sched, "spawner-jupyterhub", "bob")  # another user's, same name
    spawner = alices_spawner()
    spawner.load_state({"job_id": job_id, "job_status": "RUNNING vm"})
    try:
        assert await spawner.poll() is None, "the scheduler runs it: the server runs"
        lc = spawner.controller.lifecycle
        assert lc.phase is Phase.READY and lc.job_state is JobState.RUNNING
        assert lc.port is None, "the URL stays the one JupyterHub recorded"
        saved = spawner.get_state()["batchhub"]
        assert saved["backend"] == "fake" and saved["job_id"] == job_id
        runner = spawner.controller.runner
        assert runner.counts["submit"] == 0, "nothing is submitted"

        # the sweeper goes by batchhub's tag: such a job is no stray and no orphan
        sweeper = spawner.controller.sweeper
        assert sweeper is not None
        sweeper.cancel_orphans = True
        for _ in range(3):
            report = await sweeper.sweep()
            assert report.orphans == [] and report.cancelled == []
        assert await spawner.controller.end_strays() == []

        await spawner.stop()
        live = {job.job_id for job in sched.live_jobs()}
        assert job_id not in live and bobs in live, "her job ended, as her; nobody else's"
        assert sched.jobs[job_id].state is JobState.CANCELLED
        assert spawner.controller.lifecycle.phase is Phase.STOPPED
        assert await spawner.poll() is not None
    finally:
        await stop_monitors()


async def test_a_batchspawner_job_gone_while_the_hub_was_down_is_a_stopped_server(
    sched: FakeScheduler,
) -> None:
    job_id = job_named(sched, "spawner-jupyterhub", "alice")
    sched.finish(job_id, exit_code=0)
    spawner = alices_spawner()
    spawner.load_state({"job_id": job_id, "job_status": "RUNNING vm"})
    try:
        assert await spawner.poll() == 0
        assert spawner.controller.runner.counts["submit"] == 0
    finally:
        await stop_monitors()


async def test_an_unadoptable_state_is_said_in_the_log(
    sched: FakeScheduler, caplog: pytest.LogCaptureFixture
) -> None:
    spawner = alices_spawner()
    spawner.load_state({"job_id": "$(reboot)"})
    assert "batchhub cannot adopt the server of alice" in caplog.text
    try:
        assert await spawner.poll() == 0  # nothing tracked: JupyterHub clears the server
    finally:
        await stop_monitors()
