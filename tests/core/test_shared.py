"""The hub's shared machinery: one monitor per backend, configured on
``c.JobMonitor``, with the old ``c.BatchSpawner.monitor_*`` options kept
as deprecated aliases."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from traitlets.config import Config

from batchhub.jobs import ConfigError
from batchhub.spawner import BatchSpawner, SpawnException
from batchhub.testing.polling import StandInUser, shared_runner, stop_monitors
from batchhub_fake import FakeClock, FakeRunner, FakeScheduler


@pytest.fixture(autouse=True)
def fake_runner() -> Iterator[None]:
    with shared_runner(FakeRunner(FakeScheduler(clock=FakeClock()))):
        yield


def config(**sections: dict[str, object]) -> Config:
    c = Config()
    c.BatchSpawner.backend = "fake"
    for section, values in sections.items():
        for name, value in values.items():
            setattr(c[section], name, value)
    return c


async def test_every_server_shares_one_monitor_configured_on_its_own_class() -> None:
    c = config(JobMonitor={"interval": 7.0, "fast_interval": 0.5, "lost_after": 5})
    alice = BatchSpawner(user=StandInUser("alice"), config=c)
    bob = BatchSpawner(user=StandInUser("bob"), config=c)
    monitor = alice.controller.monitor
    assert bob.controller.monitor is monitor
    assert (monitor.interval, monitor.fast_interval, monitor.lost_after) == (7.0, 0.5, 5)
    await stop_monitors()


async def test_the_old_spawner_options_still_set_the_monitor_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    c = config(BatchSpawner={"monitor_interval": 11.0, "monitor_lost_after": 4})
    with caplog.at_level(logging.WARNING):
        monitor = BatchSpawner(user=StandInUser("alice"), config=c).controller.monitor
    assert (monitor.interval, monitor.fast_interval, monitor.lost_after) == (11.0, 2.0, 4)
    assert "c.BatchSpawner.monitor_interval is deprecated: set c.JobMonitor.interval instead" in caplog.text
    await stop_monitors()


async def test_the_new_option_wins_over_the_old_one(caplog: pytest.LogCaptureFixture) -> None:
    c = config(BatchSpawner={"monitor_interval": 11.0}, JobMonitor={"interval": 7.0})
    with caplog.at_level(logging.WARNING):
        monitor = BatchSpawner(user=StandInUser("alice"), config=c).controller.monitor
    assert monitor.interval == 7.0
    assert "c.BatchSpawner.monitor_interval is deprecated and ignored" in caplog.text
    await stop_monitors()


def test_a_spawner_with_no_backend_says_what_to_set() -> None:
    spawner = BatchSpawner(user=StandInUser("alice"), config=Config())
    with pytest.raises(ConfigError, match=r"No batchhub backend is set\. Installed backends: .*fake"):
        spawner.check_config()


def test_a_spawn_with_no_backend_tells_the_user_to_tell_the_admins() -> None:
    # the hub checks at start-up; a spawner built anyway (a config changed since) says it too
    spawner = BatchSpawner(user=StandInUser("alice"), config=Config())
    with pytest.raises(SpawnException, match="please tell the admins: No batchhub backend is set"):
        spawner.controller  # noqa: B018
