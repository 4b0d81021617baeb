"""Backends are found through the ``batchhub`` entry points and pluggy,
exactly as a third party's would be."""

from __future__ import annotations

import sys
import types
from importlib.metadata import entry_points
from pathlib import Path

import pytest

import batchhub
from batchhub import plugins
from batchhub.backend import Backend
from batchhub.jobs import ConfigError, JobState, QueryError, TaggedJob
from batchhub.plugins import PluginRegistry, get_registry
from batchhub.site_settings import (
    SiteSettings,
    default_local_backend,
    local_backends,
    make_backend,
    scheduler_problem,
    site_settings,
)
from batchhub.testing.jobs import live_job_ids
from batchhub_fake import FakeBackend


def test_the_entry_point_group_lists_fake() -> None:
    found = {ep.name: ep.value for ep in entry_points(group="batchhub")}
    assert found["fake"] == "batchhub_fake.plugin"


def test_the_fake_backend_loads_through_pluggy() -> None:
    registry = get_registry()
    assert registry.backend_class("fake") is FakeBackend
    assert "fake" in registry.backends
    assert "fake" not in registry.broken


def test_an_unknown_backend_name_lists_the_installed_ones() -> None:
    with pytest.raises(ConfigError) as err:
        get_registry().backend_class("nosuch")
    message = str(err.value)
    assert "No batchhub backend named 'nosuch'" in message
    assert "Installed backends: " in message and "fake" in message.split("Installed backends: ")[1]


def test_a_plugin_that_fails_to_import_is_reported_and_others_still_load(monkeypatch) -> None:
    import batchhub.plugins as plugins

    class BrokenEntryPoint:
        name, value = "broken", "no_such_module.plugin"

        def load(self):
            raise ImportError("No module named 'no_such_module'")

    real = list(entry_points(group="batchhub"))
    monkeypatch.setattr(plugins, "entry_points", lambda group: [BrokenEntryPoint(), *real])
    registry = PluginRegistry()
    assert "broken" in registry.broken and "no_such_module" in registry.broken["broken"]
    assert registry.backend_class("fake") is FakeBackend
    with pytest.raises(ConfigError, match="'broken' is installed but failed to load"):
        registry.backend_class("broken")


def test_a_third_party_plugin_registers_like_ours() -> None:
    class ThirdPartyBackend(Backend):
        name = "thirdparty"

    plugin = types.SimpleNamespace()

    @batchhub.hookimpl
    def batchhub_register_backends(register):
        register(ThirdPartyBackend)

    plugin.batchhub_register_backends = batchhub_register_backends
    registry = PluginRegistry()
    registry.register(plugin, name="thirdparty-plugin")
    assert registry.backend_class("thirdparty") is ThirdPartyBackend
    assert registry.backend_class("fake") is FakeBackend


def test_two_plugins_claiming_one_name_is_an_error() -> None:
    class Impostor(Backend):
        name = "fake"

    plugin = types.SimpleNamespace()

    @batchhub.hookimpl
    def batchhub_register_backends(register):
        register(Impostor)

    plugin.batchhub_register_backends = batchhub_register_backends
    registry = PluginRegistry()
    registry.register(plugin, name="impostor")
    with pytest.raises(ConfigError, match="two plugins register a backend named 'fake'"):
        _ = registry.backends


# --- batchhub_site_settings: a made-up scheduler, wholly from its plugin ------------

TOY_LIST = """\
import os, sys
spool = os.environ["TOY_SPOOL"]  # the environment the plugin says its commands need
if os.path.exists(os.path.join(spool, "down")):
    sys.exit("toy-list: cannot reach the toy controller")
for name in sorted(os.listdir(spool)):
    if name.isdigit():
        with open(os.path.join(spool, name)) as f:
            print(name + "|" + f.read().strip())
"""


class ToyBackend(Backend):
    """A scheduler no batchhub module knows: its listing is a tiny script."""

    name = "toy"
    program_names = ("toy-list",)

    def list_command(self):
        return self.command("toy-list")

    def parse_list(self, result):
        self.require_answer(result)
        jobs = []
        for line in result.stdout.splitlines():
            job_id, name, owner = line.split("|")
            jobs.append(TaggedJob(job_id, name, owner, JobState.RUNNING))
        return jobs

    def cancel_command(self, job_ids, username):
        return self.command("toy-list", *job_ids, as_user=username)


@pytest.fixture
def toy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The process-wide registry with our plugins and a toy one, as a third
    party would write it; yields the toy scheduler's spool."""
    script = tmp_path / "toy-list"
    script.write_text(f"#!{sys.executable}\n{TOY_LIST}")
    script.chmod(0o755)
    spool = tmp_path / "spool"
    spool.mkdir()

    class ToyPlugin:
        @batchhub.hookimpl
        def batchhub_register_backends(self, register):
            register(ToyBackend)

        @batchhub.hookimpl
        def batchhub_site_settings(self, backend_name, state_dir):
            if backend_name != "toy":
                return None
            return SiteSettings(
                config={"ToyBackend": {"programs": {"toy-list": str(script)}}},
                env={"TOY_SPOOL": str(spool)},
                hint="start it with toy-up",
                shared_dirs=[state_dir / "toy-spool"],
            )

    registry = PluginRegistry()
    registry.register(ToyPlugin(), name="toy-plugin")
    monkeypatch.setattr(plugins, "_registry", registry)
    return spool


def test_live_job_ids_lists_any_backend_through_its_own_listing(toy: Path) -> None:
    (toy / "11").write_text("bhabc-alice.1a2b3c.x|alice")
    (toy / "12").write_text("bhabc-bob.4d5e6f.y|bob")
    (toy / "13").write_text("someone-elses-job|carol")
    assert live_job_ids("toy", prefix="bhabc-") == {"11", "12"}
    assert live_job_ids("toy") == {"11", "12", "13"}


def test_scheduler_problem_asks_the_listing_and_gives_the_plugins_hint(toy: Path) -> None:
    assert scheduler_problem("toy") is None
    (toy / "down").touch()
    problem = scheduler_problem("toy")
    assert problem is not None
    assert "cannot reach the toy controller" in problem and problem.endswith("(start it with toy-up)")
    with pytest.raises(QueryError, match="cannot reach the toy controller"):
        live_job_ids("toy")


def test_a_missing_program_is_named(toy: Path) -> None:
    settings = site_settings("toy")
    assert settings.hint == "start it with toy-up"
    (toy.parent / "toy-list").unlink()
    problem = scheduler_problem("toy")
    assert problem is not None and "toy-list" in problem and "toy-up" in problem


def test_an_unknown_backend_is_a_clear_error_not_a_bare_name(toy: Path) -> None:
    with pytest.raises(ConfigError, match=r"No batchhub backend named 'nosuch'.*Installed backends: .*toy"):
        live_job_ids("nosuch")
    problem = scheduler_problem("nosuch")
    assert problem is not None and "'nosuch' backend plugin" in problem and "toy" in problem


def test_a_backend_that_cannot_list_says_so(monkeypatch: pytest.MonkeyPatch, toy: Path) -> None:
    monkeypatch.setattr(ToyBackend, "list_command", lambda self: None)
    with pytest.raises(ConfigError, match="toy backend has no list_command"):
        live_job_ids("toy")


def test_without_an_answer_a_backend_gets_empty_settings(toy: Path) -> None:
    class Quiet(Backend):
        name = "quiet"

    class QuietPlugin:
        @batchhub.hookimpl
        def batchhub_register_backends(self, register):
            register(Quiet)

    plugins.get_registry().register(QuietPlugin(), name="quiet-plugin")
    assert site_settings("quiet") == SiteSettings()
    assert "quiet" not in local_backends()


def test_the_demo_default_is_the_backend_that_runs_locally(toy: Path, monkeypatch) -> None:
    assert local_backends()[0] == "fake"
    assert default_local_backend() == "fake"
    registry = PluginRegistry(load_entry_points=False)
    monkeypatch.setattr(plugins, "_registry", registry)
    registry.register(types.SimpleNamespace(), name="nothing")
    with pytest.raises(ConfigError, match="no installed backend runs jobs locally"):
        default_local_backend()


def test_the_plugins_settings_configure_the_backend(toy: Path, tmp_path: Path) -> None:
    backend, settings = make_backend("toy", tmp_path, {"ToyBackend": {"command_timeout": 7.0}})
    assert backend.program("toy-list") == str(toy.parent / "toy-list")
    assert backend.command_env == {"TOY_SPOOL": str(toy)}
    assert backend.command_timeout == 7.0
    assert settings.shared_dirs == [tmp_path / "toy-spool"]


def test_our_plugins_answer_for_their_own_backend_only(tmp_path: Path) -> None:
    import batchhub_fake.plugin
    import batchhub_sge.plugin
    import batchhub_slurm.plugin

    assert batchhub_fake.plugin.batchhub_site_settings("toy", tmp_path, tmp_path) is None
    assert batchhub_sge.plugin.batchhub_site_settings("toy") is None
    assert batchhub_slurm.plugin.batchhub_site_settings("toy") is None
    fake = site_settings("fake", tmp_path)
    assert fake.local and fake.shared_dirs == [tmp_path / "fake-spool"]
    for name in ("sge", "slurm"):
        settings = site_settings(name)
        assert not settings.local and f"scripts/{name}-up" in settings.hint
