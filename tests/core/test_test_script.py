"""``scripts/test`` brings up only what a marker selection can use: a
selection that deselects the schedulers neither installs nor reconfigures
Grid Engine and Slurm; no selection, any selection it cannot read for
sure, and CI bring up everything. ``BATCHHUB_TEST_PLAN=1`` makes it print
the bring-up steps it would run as root, and run nothing."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "test"
SCHEDULERS = {"scripts/sge-up", "scripts/slurm-up"}
EVERYTHING = [
    "scripts/create-test-users",
    "scripts/install-web-deps",
    "scripts/sge-up",
    "scripts/slurm-up",
    "scripts/node-env",
    "scripts/hub-account",
]


def plan(*args: str, **env: str) -> list[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("BATCHHUB_")}
    environ.update(BATCHHUB_TEST_PLAN="1", **env)
    done = subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, env=environ, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_the_fast_suite_brings_up_no_scheduler() -> None:
    steps = plan("-m", "not sge and not slurm and not hub and not browser")
    assert steps == [step for step in EVERYTHING if step not in SCHEDULERS]


@pytest.mark.parametrize(
    ("selection", "left_out"),
    [
        (["-m", "not sge"], {"scripts/sge-up"}),
        (["-m", "  not slurm  and not jhcompat "], {"scripts/slurm-up"}),
        (["-mnot slurm and not sge", "tests/core"], SCHEDULERS),
        (["-x", "-m", "not hub and not slurm", "-q"], {"scripts/slurm-up"}),
    ],
)
def test_a_deselected_scheduler_is_not_brought_up(selection: list[str], left_out: set[str]) -> None:
    assert plan(*selection) == [step for step in EVERYTHING if step not in left_out]


@pytest.mark.parametrize(
    "selection",
    [
        [],
        ["tests/core"],
        ["-m", "sge"],
        ["-m", "not sge or slurm"],
        ["-m", "not (sge and slurm)"],
        ["-m", "not sge and slurm"],
        ["-m", "not sge and not slurm", "-m", "sge"],  # pytest uses the last -m
    ],
)
def test_any_other_selection_brings_up_everything(selection: list[str]) -> None:
    assert plan(*selection) == EVERYTHING


def test_ci_brings_up_everything_whatever_the_selection() -> None:
    assert plan("-m", "not sge and not slurm", BATCHHUB_REQUIRE_REAL="1") == EVERYTHING
