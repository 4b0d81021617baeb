"""batchspawner 1.3.0's polling of real jobs, measured for ``polling.py``.

``polling.py`` runs this script with the Python of batchspawner's own
virtual environment (batchhub is not installed there)::

    python bench/_batchspawner_driver.py CONFIG.json   # one JSON object on stdout
    python bench/_batchspawner_driver.py --constants   # version, startup_poll_interval

CONFIG.json: ``scheduler`` ("slurm" or "sge"), ``jobs`` ([job id, owner,
"RUNNING" or "PENDING"] each), ``interval`` (whole seconds: JupyterHub's
``poll_interval`` is an Integer), ``window`` (intervals measured),
``exec_prefix``, ``count_file`` and ``sdiag`` (a path, or null).

It does what JupyterHub does after a restart: one spawner per running
server with its saved state, a first ``poll()`` of all at once, then
``Spawner.start_polling()`` on each. batchspawner runs its query commands
through a shell with this process's environment, so the caller sets PATH
(counting wrappers first) and SGE_ROOT/SGE_CELL.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
from collections import Counter
from types import SimpleNamespace
from typing import Any

import batchspawner
from _probes import (
    PollTally,
    instrument,
    polling_window,
    read_counts,
    restart_check,
    rss_kib,
    settled_rss_kib,
)
from traitlets.config import Config

CLASSES = {"slurm": batchspawner.SlurmSpawner, "sge": batchspawner.GridengineSpawner}

#: What ``get_env()`` reads of the hub (batchspawner's req_keepvars calls it).
HUB = SimpleNamespace(public_host="", api_url="http://127.0.0.1:8081/hub/api/", base_url="/hub/")


def stand_in_user(name: str) -> SimpleNamespace:
    """The little of JupyterHub's ``User`` a batchspawner touches while polling."""
    return SimpleNamespace(name=name, url=f"/user/{name}/", escaped_name=name, groups=[])


def saved_status(scheduler: str, state: str) -> str:
    """``job_status`` as batchspawner saved it: squeue's ``%T %B`` line for
    Slurm; for Grid Engine a whole ``qstat -xml``, replaced at the first poll."""
    return f"{state} vm" if scheduler == "slurm" else ""


def keep_last_status(spawner: Any, seen: dict[str, str]) -> None:
    """Remember each job's last status text: ``poll()`` clears it before
    returning "stopped", and it says why (an error message, or nothing)."""
    original = spawner.query_job_status

    async def query_job_status() -> Any:
        status = await original()
        seen[spawner.job_id] = spawner.job_status
        return status

    spawner.query_job_status = query_job_status


def why_stopped(stopped: list[str], seen: dict[str, str]) -> dict[str, int]:
    """The status texts behind "stopped" verdicts, first line, most common first."""
    texts = Counter((seen.get(job_id, "").strip().splitlines() or ["(empty)"])[0][:120] for job_id in stopped)
    return dict(texts.most_common(5))


def make_spawners(cfg: dict[str, Any]) -> list[tuple[str, Any]]:
    config = Config()
    config.Spawner.poll_interval = int(cfg["interval"])
    config.BatchSpawnerBase.exec_prefix = cfg["exec_prefix"]
    cls = CLASSES[cfg["scheduler"]]
    spawners = []
    for job_id, owner, state in cfg["jobs"]:
        spawner = cls(config=config, user=stand_in_user(owner), hub=HUB)
        spawner.load_state({"job_id": job_id, "job_status": saved_status(cfg["scheduler"], state)})
        spawners.append((job_id, spawner))
    return spawners


async def measure(cfg: dict[str, Any]) -> dict[str, Any]:
    # one throwaway poll first: imports and one-time set-up are no server's cost
    with contextlib.suppress(Exception):  # e.g. a failed qstat: its text is no XML, and poll() raises
        await make_spawners({**cfg, "jobs": cfg["jobs"][:1]})[0][1].poll()
    rss_before = settled_rss_kib()
    tally, seen = PollTally(), {}
    spawners = make_spawners(cfg)
    for job_id, spawner in spawners:
        keep_last_status(spawner, seen)
        instrument(spawner, job_id, tally)
    first_poll_s = await restart_check(spawners, tally)
    first_stopped = len(tally.stopped)
    result = await polling_window(
        [spawner for _, spawner in spawners],
        tally,
        interval=cfg["interval"],
        window=cfg["window"],
        counter=lambda: read_counts(cfg["count_file"]),
        sdiag=cfg["sdiag"],
    )
    result.update(
        first_poll_s=first_poll_s,
        first_poll_stopped=first_stopped,
        stopped=tally.stopped,
        why_stopped=why_stopped(tally.stopped, seen),
        rss_kib=rss_kib() - rss_before,
    )
    return result


def constants() -> dict[str, Any]:
    base = batchspawner.BatchSpawnerBase
    return {
        "version": batchspawner.__version__,
        "startup_poll_interval": base.class_traits()["startup_poll_interval"].default_value,
    }


def main(argv: list[str]) -> None:
    if argv == ["--constants"]:
        print(json.dumps(constants()))
        return
    with open(argv[0]) as f:
        cfg = json.load(f)
    # batchspawner logs every failed query at error level: keep stdout for the JSON
    logging.basicConfig(level=logging.CRITICAL, stream=sys.stderr)
    result = asyncio.new_event_loop().run_until_complete(measure(cfg))
    print(json.dumps(result), flush=True)
    # No loop shutdown: batchspawner's run_command catches the cancellation
    # of a poll still in flight (a bare except) and the shutdown would wait
    # on it for ever. Those commands end by themselves.
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])
