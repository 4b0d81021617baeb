# ruff: noqa: E501  (the mutations are exact source snippets)
"""Mutation check of the property suite: break the code on purpose, one
invariant at a time, and see the property test fail.

    .venv/bin/python tests/property/mutate.py [NAME ...]

Each mutation edits a temporary copy of the tree (never the work tree) and
runs tests/property against it. Every line of output should say "caught".
See docs/fake.md, "How the invariants were checked".
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

SRC = Path(__file__).resolve().parents[2]

# (name, file, text to replace, replacement); several rows may share a name
MUT = [
    (
        "orphans",
        "batchhub/controller.py",
        "        lc.apply(Submitted(job_id))\n        self._track()\n",
        "        lc.apply(Submitted(job_id))\n",
    ),
    (
        "two-jobs",
        "batchhub/controller.py",
        "        if self.lifecycle.job_live:\n            # a previous job",
        "        if False:\n            # a previous job",
    ),
    (
        "failed-query-stops",
        "batchhub/monitor.py",
        "        for job_id in ids:\n            if job_id in self.jobs:\n                self.jobs[job_id].queried = True\n",
        "        for job_id in ids:\n            if job_id in self.jobs:\n                self.jobs[job_id].queried = True\n                self._update(job_id, self.jobs[job_id], Observation(job_id, JobState.LOST, '', message))\n",
    ),
    (
        "monitor-backwards",
        "batchhub/monitor.py",
        "if old is not None and (old.state.terminal or obs.state < old.state):",
        "if False:",
    ),
    (
        "lifecycle-backwards",
        "batchhub/lifecycle.py",
        "(self.job_state.terminal or obs.state < self.job_state)",
        "(self.job_state.terminal)",
    ),
    (
        "terminal-revives",
        "batchhub/monitor.py",
        "if old is not None and (old.state.terminal or obs.state < old.state):",
        "if old is not None and obs.state < old.state:",
    ),
    (
        "terminal-revives",
        "batchhub/controller.py",
        "            self.monitor.untrack(obs.job_id)\n            self._emit(",
        "            self._emit(",
    ),
    ("cancel-twice", "batchhub/lifecycle.py", "            self.cancel_sent = True\n", ""),
    (
        "death-slow",
        "batchhub/lifecycle.py",
        "        if self.job_state is not None and (self.job_state.terminal",
        "        if obs.state.terminal and self.phase.waiting:\n            return  # wait for start_timeout\n        if self.job_state is not None and (self.job_state.terminal",
    ),
    (
        "two-jobs",
        "tests/property/test_spawn_properties.py",
        "    def no_orphans(self) -> None:\n",
        "    def no_orphans(self) -> None:\n        return\n",
    ),
    (
        "death-no-reason",
        "batchhub/lifecycle.py",
        'why = obs.reason or f"state {obs.native_state or obs.state.name}"',
        'why = f"state {obs.native_state or obs.state.name}"',
    ),
    (
        "status-per-job",
        "batchhub/monitor.py",
        "size = self.backend.max_ids_per_query or len(ids)",
        "size = 1",
    ),
    (
        "lost-submission-forgotten",
        "batchhub/controller.py",
        "job_id = await self.sweeper.find(spec.job_name, spec.username, timeout=self.uncertain_wait)",
        "job_id = None",
    ),
]


def main(only: list[str]) -> int:
    names = list(dict.fromkeys(m[0] for m in MUT))
    missed = 0
    for name in names:
        if only and name not in only:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            d = Path(tmp)
            for part in ["batchhub", "batchhub_fake", "tests/property", "pyproject.toml"]:
                copy = shutil.copytree if (SRC / part).is_dir() else shutil.copy
                (d / part).parent.mkdir(parents=True, exist_ok=True)
                copy(SRC / part, d / part)
            for _, path, old, new in [m for m in MUT if m[0] == name]:
                text = (d / path).read_text()
                assert text.count(old) == 1, f"{name}: the code changed; update the mutation for {path}"
                (d / path).write_text(text.replace(old, new))
            run = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pytest",
                    "-q",
                    "-x",
                    "-p",
                    "no:cacheprovider",
                    "-p",
                    "no:logging",
                    "tests/property",
                ],
                cwd=d,
                env={**os.environ, "PYTHONPATH": str(d)},
                capture_output=True,
                text=True,
            )
            errors = re.findall(r"(AssertionError: [^\n]*)", run.stdout)
            caught = run.returncode != 0 and errors
            missed += not caught
            print(
                f"{name}: {'caught' if caught else 'MISSED'}: {errors[0] if errors else run.stdout[-300:]}",
                flush=True,
            )
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
