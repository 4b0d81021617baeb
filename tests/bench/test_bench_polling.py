"""Smoke test of bench/polling.py: its batchhub side on the in-memory fake
scheduler, so the benchmark's code path cannot rot. It checks that rows
came out, never the numbers (timings belong to the benchmark)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_polling_bench_produces_rows(tmp_path: Path) -> None:
    out = tmp_path / "polling.json"
    argv = [
        sys.executable,
        str(REPO / "bench" / "polling.py"),
        *("--schedulers", "fake", "--sizes", "5", "--interval", "0.5", "--window", "2"),
        *("--storm", "10", "--storm-real", "0", "--json", str(out)),
    ]
    run = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads(out.read_text())
    [row] = results["polling"]
    assert (row["scheduler"], row["tool"], row["jobs"]) == ("fake", "batchhub", 5)
    assert row["running"] + row["pending"] == 5
    assert row["wrong_stopped"] == 0
    [storm] = results["storms"]
    assert storm["starts"] == 10 and storm["ready"] == 10 and not storm["failed"]
    assert "| fake | 5 |" in run.stdout
