"""BatchSpawner without a hub: users without an ordinary account are refused
with a message for them, an over-long server name too, and a spawn that a
hub restart cancelled leaves word for the user's next visit."""

from __future__ import annotations

import pwd
from collections.abc import Iterator
from typing import Any

import pytest
from traitlets.config import Config

from batchhub.jobs import ConfigError, JobSpec, ResourceRequest
from batchhub.runner import CommandRunner
from batchhub.spawner import BatchSpawner, SpawnException
from batchhub.testing import missing
from batchhub.testing.polling import StandInUser, shared_runner, stop_monitors
from batchhub_fake import FakeBackend, FakeClock, FakeRunner, FakeScheduler


def config() -> Config:
    c = Config()
    c.BatchSpawner.backend = "fake"
    c.JobMonitor.fast_interval = 0.05
    c.BatchSpawner.stop_timeout = 5.0
    return c


@pytest.fixture
def sched() -> Iterator[FakeScheduler]:
    sched = FakeScheduler(clock=FakeClock(), queue_delay=60.0, start_delay=0.0)
    with shared_runner(FakeRunner(sched)):
        yield sched


async def test_a_user_without_an_account_gets_a_message_not_a_key_error() -> None:
    with shared_runner(CommandRunner(as_user_prefix=[])):
        spawner = BatchSpawner(user=StandInUser("bh-no-such-user"), config=config())
        said = (
            "Your server cannot start: there is no account named bh-no-such-user on the cluster; "
            "ask the admins to create one."
        )
        for step in (spawner.workdir, spawner.run_pre_spawn_hook):
            with pytest.raises(SpawnException) as info:
                step()
            assert info.value.status_code == 403
            assert info.value.jupyterhub_message == said
        await stop_monitors()


async def test_the_rules_hold_with_any_runner(sched: FakeScheduler) -> None:
    # a runner that is no CommandRunner (a test double) runs the commands: the rules still apply
    spawner = BatchSpawner(user=StandInUser("root"), config=config())
    with pytest.raises(SpawnException, match="the account root cannot run servers here; ask the admins"):
        spawner.workdir()
    await stop_monitors()


class NamedSpawner(BatchSpawner):
    server_name = ""

    @property
    def name(self) -> str:  # JupyterHub takes it from the database
        return self.server_name


async def test_a_server_name_too_long_for_a_directory_is_refused(sched: FakeScheduler) -> None:
    try:
        pwd.getpwnam("alice")
    except KeyError:
        missing("the test user alice (scripts/create-test-users)")
    spawner = NamedSpawner(user=StandInUser("alice"), config=config())
    spawner.server_name = "gpu-" * 60
    assert spawner.workdir().endswith("/.batchhub/" + "gpu-" * 60)
    spawner.server_name = "é" * 100  # 200 bytes, each escaped to three characters
    with pytest.raises(SpawnException, match="too long to name its private directory") as info:
        spawner.workdir()
    assert info.value.status_code == 400
    await stop_monitors()


async def half_started_spawn(workdir: str) -> tuple[dict[str, Any], str]:
    """The saved state and job id of a spawn that a hub left after its
    submission (it stopped or crashed before the server started)."""
    before = BatchSpawner(user=StandInUser("alice"), config=config())
    backend = FakeBackend()
    spec = JobSpec("alice", "", backend.job_name("alice", ""), ResourceRequest(), workdir)
    job_id = await before.controller.submit(spec, "#!/bin/sh\n" + "\n".join(backend.directives(spec)) + "\n")
    saved = before.get_state()
    await stop_monitors()
    return saved, job_id


async def test_a_spawn_cancelled_by_a_restart_leaves_word_until_the_next_start(sched: FakeScheduler) -> None:
    saved, job_id = await half_started_spawn("/tmp/batchhub-notice-test")

    # the restarted hub's spawner: adopts the half-started job, cancels it on its first poll
    after = BatchSpawner(user=StandInUser("alice"), config=config())
    after.load_state(saved)
    assert await after.poll() is not None
    assert job_id not in {job.job_id for job in sched.live_jobs()}
    after.clear_state()  # JupyterHub's stop of a server found stopped
    notice = (
        f"The hub restarted while your server was starting; its job {job_id} was cancelled. Start it again."
    )
    state = after.get_state()
    assert state["batchhub_notice"] == notice
    await stop_monitors()

    # the user's next visit, perhaps after another restart: the form opens with the notice
    later = BatchSpawner(user=StandInUser("alice"), config=config())
    later.load_state(state)
    form = await later._render_options_form(later)
    assert form.startswith('<div class="alert alert-warning" role="alert">' + notice + "</div>")
    later._notice = "<b>" + notice
    assert "&lt;b&gt;" in await later._render_options_form(later)  # escaped, never markup
    await stop_monitors()


def test_token_in_the_environment_is_refused_where_other_users_can_read_it() -> None:
    # Grid Engine shows every job's environment to every user (qstat -j)
    c = Config()
    c.BatchSpawner.backend = "sge"
    c.BatchSpawner.token_delivery = "env"
    spawner = BatchSpawner(user=StandInUser("alice"), config=c)
    with pytest.raises(ConfigError, match="token_delivery = 'env' is refused for the 'sge' backend"):
        spawner.check_config()


def test_token_in_the_environment_is_taken_where_the_backend_declares_it_private() -> None:
    # Slurm keeps a job's environment to its owner and root: the backend says so
    c = Config()
    c.BatchSpawner.backend = "slurm"
    c.BatchSpawner.token_delivery = "env"
    spawner = BatchSpawner(user=StandInUser("alice"), config=c)
    assert spawner.check_config().private_job_env is True


async def test_the_last_job_is_remembered_across_a_stop_and_a_restart(sched: FakeScheduler) -> None:
    """What the jobs page shows of a server whose job ended before this hub
    process started: the saved state keeps the job's id and how it ended."""
    saved, job_id = await half_started_spawn("/tmp/batchhub-last-job")
    assert "batchhub_last_job" not in saved, "nothing has ended yet"

    after = BatchSpawner(user=StandInUser("alice"), config=config())
    after.load_state(saved)
    assert await after.poll() is not None  # the half-started job is cancelled: it has ended
    after.clear_state()  # JupyterHub's stop
    state = after.get_state()
    await stop_monitors()
    assert state["batchhub"]["job_id"] is None, "the job itself is forgotten"

    later = BatchSpawner(user=StandInUser("alice"), config=config())
    later.load_state(state)
    remembered = later.last_job
    assert remembered["job_id"] == job_id and remembered["backend"] == "fake"
    assert remembered["failure"] == "" and "cancelled" in remembered["message"], "it ended, it did not fail"
    later.clear_state()  # the next start clears the state again: the last job stays
    assert later.get_state()["batchhub_last_job"] == remembered
