"""The demo's hub config: the backend's settings come from its plugin, the
site adds its own with --config and --set, and the backend is always named."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import pytest
from traitlets.config import PyFileConfigLoader

from batchhub import cli
from batchhub.demo import HubSettings, find_proxy, parse_set, render_config, write_config
from batchhub.jobs import ConfigError
from batchhub.plugins import get_registry
from batchhub.testing import missing
from batchhub.testing.hub import RealHub, hub_prerequisites


def load(path: Path):
    return PyFileConfigLoader(path.name, str(path.parent)).load_config()


def test_set_values_are_python_literals_or_strings() -> None:
    config = parse_set(
        [
            "SGEBackend.command_timeout=60",
            "SGEBackend.command_env={'SGE_CELL': 'c2'}",
            "FakeBackend.local=True",
            "BatchSpawner.job_prologue=module load x",
            "Backend.job_name_prefix=",
        ]
    )
    assert config == {
        "SGEBackend": {"command_timeout": 60, "command_env": {"SGE_CELL": "c2"}},
        "FakeBackend": {"local": True},
        "BatchSpawner": {"job_prologue": "module load x"},
        "Backend": {"job_name_prefix": ""},
    }


@pytest.mark.parametrize("bad", ["timeout=60", "SGEBackend.command_timeout", ".x=1", "A.b-c=1"])
def test_a_set_without_class_trait_and_value_says_how(bad: str) -> None:
    with pytest.raises(ConfigError, match=r"Class\.trait=value"):
        parse_set([bad])


@pytest.mark.parametrize("backend", ["fake", "sge", "slurm"])
def test_every_config_names_its_backend_and_the_plugins_settings(backend: str, tmp_path: Path) -> None:
    path = write_config(HubSettings(backend=backend, state_dir=tmp_path, proxy="/bin/true"))
    config = load(path)
    assert config.BatchSpawner.backend == backend
    if backend == "fake":  # local mode, its spool shared in the state directory
        assert config.FakeBackend.spool_dir == str(tmp_path / "fake-spool")
        assert (tmp_path / "fake-spool").stat().st_mode & 0o7777 == 0o1777
    if backend == "sge":
        assert config.SGEBackend.command_env["SGE_CELL"] == "default"
    assert "CommandRunner.env" not in path.read_text()


def test_config_files_then_set_values_come_after_the_plugins(tmp_path: Path) -> None:
    site = tmp_path / "site.py"
    site.write_text(
        "c.SGEBackend.command_env = {'SGE_ROOT': '/opt/sge', 'SGE_CELL': 'c2'}\n"
        "c.SGEBackend.command_timeout = 5.0\n"
        "c.BatchSpawner.stop_timeout = 99\n"
    )
    settings = HubSettings(
        backend="sge",
        state_dir=tmp_path / "state",
        proxy="/bin/true",
        config_files=(site,),
        backend_config=parse_set(["SGEBackend.command_timeout=60"]),
    )
    config = load(write_config(settings))
    assert config.SGEBackend.command_env == {"SGE_ROOT": "/opt/sge", "SGE_CELL": "c2"}
    assert config.SGEBackend.command_timeout == 60
    assert config.BatchSpawner.stop_timeout == 99


def test_the_demo_help_lists_the_installed_backends(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["demo", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert f"one of {', '.join(get_registry().backends)}" in help_text
    assert "default fake, which runs jobs as local processes" in help_text


def test_a_config_file_that_cannot_load_stops_the_demo_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("c.SGEBackend.command_timeout = (\n")
    assert cli.main(["demo", "--config", str(broken)]) == 2
    assert "cannot load the config file" in capsys.readouterr().err
    assert cli.main(["demo", "--backend", "nosuch"]) == 2
    assert "No batchhub backend named 'nosuch'" in capsys.readouterr().err


def test_render_config_without_a_backend_name_is_impossible(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="No batchhub backend named ''"):
        render_config(HubSettings(backend="", state_dir=tmp_path, proxy="/bin/true"))


def test_without_root_the_hub_runs_as_you_with_no_sudo(tmp_path: Path, monkeypatch) -> None:
    try:
        alice = pwd.getpwnam("alice")
    except KeyError:
        missing("the test user alice (scripts/create-test-users)")
    if find_proxy() is None:
        missing("configurable-http-proxy (scripts/install-web-deps)")
    monkeypatch.setattr(os, "geteuid", lambda: alice.pw_uid)
    assert "root" in (hub_prerequisites(users=["alice", "bob"]) or "")
    assert hub_prerequisites(users=["alice"]) is None
    hub = RealHub(tmp_path, backend_config={"Backend": {"command_timeout": 9.0}})
    assert hub.account is None
    config = load(hub.config_file)
    assert config.CommandRunner.as_user_prefix == []
    assert config.BatchSpawner.backend == "fake" and config.Backend.command_timeout == 9.0
