"""The ``batchhub`` command: an admin's mistake ends in one clear line and
exit code 2, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from batchhub.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_render_prints_a_script(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "render", "--backend", "fake", "cores=2", "memory=4G")
    assert code == 0, err
    assert out.startswith("#!")


@pytest.mark.parametrize(
    ("option", "said"),
    [
        ("cores", "render: option 'cores' needs a value, as in cores=2"),
        ("memory4G", "render: option 'memory4G' needs a value"),
        ("=2", "render: option '=2' needs a name"),
    ],
)
def test_render_refuses_an_option_without_name_and_value(
    capsys: pytest.CaptureFixture[str], option: str, said: str
) -> None:
    code, out, err = run(capsys, "render", "--backend", "fake", option)
    assert code == 2
    assert out == ""
    assert said in err
    assert len(err.strip().splitlines()) == 1, err


def test_render_refuses_an_option_given_twice(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "render", "--backend", "fake", "cores=2", "cores=4")
    assert code == 2
    assert "cores is given twice" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("command", ["render", "check"])
def test_a_missing_config_file_is_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, command: str
) -> None:
    missing = tmp_path / "jupyterhub_config.py"
    code, out, err = run(capsys, command, "--backend", "fake", "-f", str(missing))
    assert code == 2
    assert out == ""
    assert f"batchhub {command}: no config file {str(missing)!r}" in err
    assert len(err.strip().splitlines()) == 1, err


def test_a_broken_config_file_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = tmp_path / "jupyterhub_config.py"
    config.write_text("c = get_config()\nc.ResourceForm.cores_max = (\n")
    code, _, err = run(capsys, "render", "--backend", "fake", "-f", str(config))
    assert code == 2
    assert f"cannot load the config file {str(config)!r}" in err and "SyntaxError" in err
    assert len(err.strip().splitlines()) == 1, err


def test_a_missing_template_file_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = tmp_path / "job.sh.j2"
    code, _, err = run(capsys, "render", "--backend", "fake", "--template", str(missing))
    assert code == 2
    assert f"cannot read the job template {str(missing)!r}" in err
    assert len(err.strip().splitlines()) == 1, err


def test_the_installed_command_shows_no_traceback(tmp_path: Path) -> None:
    for argv in (["render", "--backend", "fake", "cores"], ["render", "--backend", "fake", "-f", "nope.py"]):
        proc = subprocess.run(
            [sys.executable, "-m", "batchhub.cli", *argv], capture_output=True, text=True, cwd=tmp_path
        )
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" not in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
