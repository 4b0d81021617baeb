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


def test_backends_prints_aligned_columns(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "backends")
    assert code == 0
    header, *rows = out.splitlines()
    assert header.split() == ["NAME", "CLASS", "DESCRIPTION"]
    assert {"fake", "sge", "slurm"} <= {row.split()[0] for row in rows}
    for column in ("CLASS", "DESCRIPTION"):
        start = header.index(column)
        for row in rows:  # each cell starts where its heading does, after a gap
            assert row[start - 2 : start] == "  " and row[start] != " ", (column, out)


def test_the_render_help_example_works_on_a_default_config(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["render", "--help"])
    help_text = capsys.readouterr().out
    examples = [
        line.split() for line in help_text.splitlines() if line.strip().startswith("batchhub render ")
    ]
    assert examples, help_text
    for example in examples:
        code, out, err = run(capsys, *example[1:])
        assert code == 0, f"{' '.join(example)}: {err}"
        assert out.startswith("#!")


def test_check_on_the_backend_without_a_scheduler_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "check", "--backend", "fake")
    assert code == 0, out + err
    assert out.strip().startswith("fake: runs jobs as local processes, with no scheduler to reach")


def test_check_names_a_missing_scheduler_program(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = tmp_path / "jupyterhub_config.py"
    config.write_text("c = get_config()\nc.SGEBackend.programs = {'qstat': '/nonexistent/qstat'}\n")
    code, out, _ = run(capsys, "check", "--backend", "sge", "-f", str(config))
    assert code == 1
    assert out.startswith("sge: cannot run /nonexistent/qstat: it is not installed on this host")
    assert "c.SGEBackend.programs = {'qstat': '/path/to/qstat'}" in out
    assert len(out.strip().splitlines()) == 1, out
