"""Load the recorded Slurm outputs in tests/data/slurm as CommandResults."""

from __future__ import annotations

import shlex
from pathlib import Path

from batchhub.jobs import Command, CommandResult

DATA = Path(__file__).resolve().parents[1] / "data" / "slurm"


def sample(name: str) -> CommandResult:
    """The recorded run NAME: its argv, exit status, stdout and stderr."""

    def read(ext: str) -> str:
        path = DATA / f"{name}.{ext}"
        return path.read_text() if path.exists() else ""

    argv = shlex.split(read("cmd")) or ["unknown"]
    return CommandResult(Command(tuple(argv)), int(read("rc").strip() or 0), read("stdout"), read("stderr"))


def ids_of(result: CommandResult) -> list[str]:
    """The job ids a recorded squeue/sacct/scancel command asked about."""
    for arg in result.command.argv:
        if arg.startswith("--jobs="):
            return arg.removeprefix("--jobs=").split(",")
    return [arg for arg in result.command.argv[1:] if arg.isdigit()]


def lines_by_state(result: CommandResult) -> dict[str, str]:
    """Job id by native state, read straight from the recorded lines."""
    found = {}
    for line in result.stdout.splitlines():
        fields = line.split("|")
        found[fields[1]] = fields[0]
    return found
