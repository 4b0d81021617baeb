"""Backends are found through the ``batchhub`` entry points and pluggy,
exactly as a third party's would be."""

from __future__ import annotations

import types
from importlib.metadata import entry_points

import pytest

import batchhub
from batchhub.backend import Backend
from batchhub.jobs import ConfigError
from batchhub.plugins import PluginRegistry, get_registry
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
        get_registry().backend_class("pbs")
    message = str(err.value)
    assert "No batchhub backend named 'pbs'" in message
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
    class PbsBackend(Backend):
        name = "pbs"

    plugin = types.SimpleNamespace()

    @batchhub.hookimpl
    def batchhub_register_backends(register):
        register(PbsBackend)

    plugin.batchhub_register_backends = batchhub_register_backends
    registry = PluginRegistry()
    registry.register(plugin, name="pbs-plugin")
    assert registry.backend_class("pbs") is PbsBackend
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
