"""Benchmark: JupyterHub's polling of running servers on real schedulers,
batchhub against batchspawner 1.3.0.

For each scheduler and each number of servers N it submits N real jobs
that only sleep, spread over the test users, then lets each tool watch
that same job set the way a restarted hub does: one spawner per server
holding its saved state, a first ``poll()`` of all at once (JupyterHub's
``init_spawners``), then JupyterHub's own ``Spawner.start_polling()`` for a
fixed window. It counts the scheduler commands (through counting wrappers
first on PATH), slurmctld's RPCs (``sdiag``), CPU, event-loop lag, memory
and wrong "stopped" verdicts per interval. batchhub runs in this process;
batchspawner in a child process of its own virtual environment, which this
script creates (``bench/.venv-batchspawner``).

Two smaller sections follow: a spawn storm (simultaneous ``start()`` calls
on the in-memory fake scheduler, and on real Slurm) and the latency from a
job's port report to ``start()`` returning.

Run:  .venv/bin/python bench/polling.py [--quick] [--write-docs]

Every job is named ``batchhub-bench-<run>...`` and cancelled at the end,
also on Ctrl-C or SIGTERM; ``--cleanup`` cancels leftovers of any run.
A benchmark prints numbers; it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime
import inspect
import json
import os
import platform
import pwd
import random
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from _probes import (
    LagTicker,
    PollTally,
    instrument,
    percentile,
    polling_window,
    read_counts,
    restart_check,
    rss_kib,
    settled_rss_kib,
)
from jupyterhub import orm
from traitlets import Float
from traitlets.config import Config

from batchhub import callback, hookimpl
from batchhub.events import JobEvent
from batchhub.jobs import Command, CommandResult, JobSpec, JobState
from batchhub.lifecycle import Lifecycle, Phase
from batchhub.plugins import get_registry
from batchhub.runner import CommandRunner
from batchhub.spawner import BatchSpawner, _Shared
from batchhub_fake import FakeClock, FakeRunner, FakeScheduler

REPO = Path(__file__).resolve().parent.parent
DRIVER = Path(__file__).with_name("_batchspawner_driver.py")
DEFAULT_VENV = "bench/.venv-batchspawner"
BATCHSPAWNER_REQUIREMENTS = ("batchspawner==1.3.0", "jupyterhub==6.1.1")
DOCS = REPO / "docs" / "benchmarks.md"
DOCS_HEADING = "## JupyterHub's polling on real schedulers"

#: Every job this script submits has a name starting with this.
TAG_PREFIX = "batchhub-bench-"
#: Where the saved state says the servers run (the tools never connect).
HOST, PORT = "vm", 12345
#: What JupyterHub's ``get_env()`` reads of the hub.
HUB = SimpleNamespace(public_host="", api_url="http://127.0.0.1:8081/hub/api/", base_url="/hub/")
#: The PATH batchhub gives commands; the wrappers go in front of it.
RUNNER_PATH = CommandRunner.class_traits()["path"].default_value
#: Submissions in flight at once while setting up a job set.
SUBMIT_CONCURRENCY = 16
#: Seconds a launcher takes from its job running to reporting a port
#: (a JupyterLab server starts in 2.5 to 4 s).
LAUNCHER_STARTUP = (1.0, 3.0)
#: The spawn storm's fake: seconds in the queue, and from started to running.
FAKE_QUEUE_DELAY, FAKE_START_DELAY = 0.5, 0.5
#: The fake's one node, and the address its launchers report from: the
#: hub takes a report only from the host the job runs on.
FAKE_HOST, FAKE_PEER = "localhost", "127.0.0.1"
#: Seconds a storm may take before the servers not ready count as failed.
STORM_TIMEOUT = 120.0
#: The storm's simulated cost of one scheduler command, in seconds.
FAKE_COMMAND_COST = (0.05, 0.2)
#: A job script that only sleeps, for real storms: no hub to report to.
SLEEP_TEMPLATE = '{% extends "default.sh.j2" %}\n{% block launch %}\nsleep 3600\nstatus=$?\n{% endblock %}\n'

FULL = {"sizes": "10,100,1000", "interval": 10, "window": 3, "storm": 200, "storm_real": 50}
QUICK = {"sizes": "5,20", "interval": 2, "window": 2, "storm": 20, "storm_real": 5}

#: Child processes to kill if the run is interrupted.
CHILDREN: set[asyncio.subprocess.Process] = set()


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- jobs on a real scheduler -----------------------------------------------


@dataclasses.dataclass(frozen=True)
class Job:
    job_id: str
    owner: str
    state: str  # "RUNNING" or "PENDING", as the scheduler said before the window


@dataclasses.dataclass(frozen=True)
class Listed:
    name: str
    owner: str
    state: str  # "RUNNING", "PENDING", or "OTHER" (starting, ending, in error)
    host: str = ""


def run_root(argv: Sequence[str], env: dict[str, str] | None = None) -> str:
    """A scheduler command as root, outside the wrappers: the bench's own look."""
    result = subprocess.run(list(argv), capture_output=True, text=True, timeout=120, env=env)
    if result.returncode != 0:
        raise RuntimeError(f"{shlex.join(argv)} failed ({result.returncode}): {result.stderr.strip()[:300]}")
    return result.stdout


class Cluster:
    """One real scheduler: how to submit, list and cancel the bench's jobs,
    and how each tool is configured for it."""

    name = ""
    backend = ""
    #: wrapper name -> real program, for the status commands the tools may run
    status_programs: dict[str, str] = {}
    #: batchspawner's exec_prefix ("" runs its commands as root)
    exec_prefix = ""
    sdiag: str | None = None

    def env(self) -> dict[str, str]:
        """Variables the scheduler's commands need."""
        return {}

    def submit_argv(self, tag: str) -> list[str]:
        raise NotImplementedError

    def listing(self) -> dict[str, Listed]:
        raise NotImplementedError

    def cancel(self, job_ids: Sequence[str]) -> None:
        raise NotImplementedError

    def configure_batchhub(self, c: Config) -> None:
        c.BatchSpawner.backend = self.backend


class Slurm(Cluster):
    name = backend = "slurm"
    exec_prefix = ""  # root may query any job; batchspawner's squeue names the job id

    def __init__(self) -> None:
        self.status_programs = {p: which(p) for p in ("squeue", "sacct", "scontrol")}
        self.sdiag = which("sdiag")
        self.sbatch, self.scancel = which("sbatch"), which("scancel")

    def submit_argv(self, tag: str) -> list[str]:
        return [
            self.sbatch,
            "--parsable",
            f"--job-name={tag}",
            "--output=/dev/null",
            "--chdir=/tmp",
            "--time=2:00:00",  # a forgotten job ends by itself
            "--wrap=sleep 3600",
        ]

    def listing(self) -> dict[str, Listed]:
        out = run_root([self.status_programs["squeue"], "-h", "-a", "-o", "%i|%j|%u|%T|%B"])
        jobs = {}
        for line in out.splitlines():
            job_id, name, owner, state, host = line.strip().split("|")
            state = state if state in ("RUNNING", "PENDING") else "OTHER"
            jobs[job_id] = Listed(name, owner, state, host if state == "RUNNING" else "")
        return jobs

    def cancel(self, job_ids: Sequence[str]) -> None:
        for start in range(0, len(job_ids), 500):
            subprocess.run([self.scancel, *job_ids[start : start + 500]], capture_output=True, timeout=120)


class GridEngine(Cluster):
    name = backend = "sge"
    # batchspawner's `qstat -xml` lists only the caller's own jobs: run it as the owner
    exec_prefix = "runuser -u {username} --"

    def __init__(self, bin_dir: str, root: str, cell: str) -> None:
        self.bin_dir, self.root, self.cell = bin_dir, root, cell
        self.status_programs = {p: f"{bin_dir}/{p}" for p in ("qstat", "qacct")}

    def env(self) -> dict[str, str]:
        return {"SGE_ROOT": self.root, "SGE_CELL": self.cell}

    def submit_argv(self, tag: str) -> list[str]:
        return [
            f"{self.bin_dir}/qsub",
            *("-terse", "-b", "y", "-N", tag, "-o", "/dev/null", "-j", "y", "-wd", "/tmp"),
            *("-l", "h_rt=2:00:00"),  # a forgotten job ends by itself
            *("/bin/sleep", "3600"),
        ]

    def listing(self) -> dict[str, Listed]:
        out = run_root([self.status_programs["qstat"], "-xml", "-u", "*"], env={**os.environ, **self.env()})
        jobs = {}
        for entry in ET.fromstring(out).iter("job_list"):
            letters = entry.findtext("state", "")
            state = "OTHER"
            if letters in ("r", "hr"):
                state = "RUNNING"
            elif letters == "qw":
                state = "PENDING"
            queue = entry.findtext("queue_name", "") or ""
            jobs[entry.findtext("JB_job_number", "")] = Listed(
                entry.findtext("JB_name", ""), entry.findtext("JB_owner", ""), state, queue.partition("@")[2]
            )
        return jobs

    def cancel(self, job_ids: Sequence[str]) -> None:
        env = {**os.environ, **self.env()}
        for start in range(0, len(job_ids), 500):
            chunk = ",".join(job_ids[start : start + 500])
            subprocess.run([f"{self.bin_dir}/qdel", chunk], capture_output=True, timeout=120, env=env)

    def configure_batchhub(self, c: Config) -> None:
        super().configure_batchhub(c)
        c.SGEBackend.programs = {"qsub": f"{self.bin_dir}/qsub", "qdel": f"{self.bin_dir}/qdel"}
        # qstat and qacct stay bare names: found on PATH, through the counting wrappers
        c.SGEBackend.command_env = self.env()
        c.CommandRunner.env = self.env()


def which(program: str) -> str:
    path = shutil.which(program, path=RUNNER_PATH)
    if path is None:
        raise SystemExit(f"{program} is not installed (looked on {RUNNER_PATH})")
    return path


def tagged(cluster: Cluster, prefix: str) -> dict[str, Listed]:
    return {job_id: job for job_id, job in cluster.listing().items() if job.name.startswith(prefix)}


def cancel_tagged(cluster: Cluster, prefix: str, wait: float = 60.0) -> None:
    """Cancel every job whose name starts with ``prefix`` and wait until the
    scheduler lists none (a running Grid Engine job lingers as ``dr``)."""
    deadline = time.monotonic() + wait
    while True:
        try:
            ids = sorted(tagged(cluster, prefix))
        except (RuntimeError, OSError, subprocess.SubprocessError) as exc:  # the scheduler is down: retry
            ids, problem = ["?"], str(exc).splitlines()[0]
        else:
            problem = ""
            if not ids:
                return
            cluster.cancel(ids)
        if time.monotonic() > deadline:
            log(f"{cluster.name}: jobs named {prefix}* may be left after {wait:g} s {problem}; see --cleanup")
            return
        time.sleep(1.0)


async def submit_jobs(cluster: Cluster, n: int, users: Sequence[str], tag: str) -> list[tuple[str, str]]:
    """``n`` sleeping jobs, round-robin over ``users``, submitted as each
    user, several at once. Returns (job id, owner) pairs."""
    slots = asyncio.Semaphore(SUBMIT_CONCURRENCY)
    env = {"PATH": RUNNER_PATH, "LANG": "C.UTF-8", **cluster.env()}

    async def submit(owner: str) -> tuple[str, str]:
        async with slots:
            proc = await asyncio.create_subprocess_exec(
                "runuser",
                "-u",
                owner,
                "--",
                *cluster.submit_argv(tag),
                cwd="/tmp",
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            out, err = await proc.communicate()
        job_id = out.decode().strip().split(";")[0]
        if proc.returncode != 0 or not job_id.isdigit():
            raise RuntimeError(f"{cluster.name}: submission as {owner} failed: {err.decode().strip()[:300]}")
        return job_id, owner

    # every submission finishes before a failure is raised: none is left running unseen
    done = await asyncio.gather(*(submit(users[i % len(users)]) for i in range(n)), return_exceptions=True)
    if failed := [d for d in done if isinstance(d, BaseException)]:
        raise failed[0]
    return done  # type: ignore[return-value]


async def settle(cluster: Cluster, tag: str, submitted: Sequence[tuple[str, str]]) -> list[Job]:
    """Wait until the scheduler has placed every job: each running or
    pending, and the split unchanged over three looks."""
    ids = {job_id for job_id, _ in submitted}
    seen: list[tuple[int, int]] = []
    deadline = time.monotonic() + 90
    while True:
        listed = {k: v for k, v in (await asyncio.to_thread(tagged, cluster, tag)).items() if k in ids}
        states = Counter(job.state for job in listed.values())
        seen.append((states["RUNNING"], states["PENDING"]))
        placed = len(listed) == len(ids) and not states["OTHER"]
        if (placed and len(seen) >= 3 and len(set(seen[-3:])) == 1) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    if len(listed) != len(ids) or states["OTHER"]:
        raise RuntimeError(
            f"{cluster.name}: after 90 s, {len(listed)} of {len(ids)} jobs are listed, "
            f"{states['OTHER']} neither running nor pending"
        )
    owners = dict(submitted)
    return [Job(job_id, owners[job_id], listed[job_id].state) for job_id, _ in submitted]


# --- counting wrappers --------------------------------------------------------


def write_wrappers(directory: Path, programs: dict[str, str], log_file: Path, bracket: bool = False) -> None:
    """Tiny shell scripts named like the real programs, first on PATH: each
    appends a line to ``log_file`` and runs the real one. ``bracket`` logs
    the end too (``name +`` / ``name -``), for commands in flight at once."""
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o755)  # the users' commands (runuser) run them too
    log_file.touch()
    log_file.chmod(0o666)
    for name, real in programs.items():
        log_q, real_q = shlex.quote(str(log_file)), shlex.quote(real)
        if bracket:
            body = f'echo "{name} +" >> {log_q}\n{real_q} "$@"\nrc=$?\necho "{name} -" >> {log_q}\nexit $rc\n'
        else:
            body = f'echo {name} >> {log_q}\nexec {real_q} "$@"\n'
        wrapper = directory / name
        wrapper.write_text("#!/bin/sh\n" + body)
        wrapper.chmod(0o755)


def peak_in_flight(log_file: Path) -> int:
    """Most commands running at once, from a bracketing wrapper's log."""
    current = peak = 0
    for line in log_file.read_text().splitlines():
        current += 1 if line.endswith("+") else -1
        peak = max(peak, current)
    return peak


# --- batchhub's side -------------------------------------------------------


class _FractionalPollSpawner(BatchSpawner):
    """BatchSpawner with a Float ``poll_interval``: JupyterHub's is an
    Integer, and the smoke test polls every half second."""

    poll_interval = Float(30.0).tag(config=True)


def stand_in_user(name: str) -> SimpleNamespace:
    """The little of JupyterHub's ``User`` a spawner touches (start's
    ``get_env()`` reads ``url``; polling only ``name``)."""
    return SimpleNamespace(name=name, url=f"/user/{name}/", escaped_name=name, groups=[])


def spawner_class(interval: float) -> type[BatchSpawner]:
    return BatchSpawner if float(interval).is_integer() else _FractionalPollSpawner


def polling_config(backend: str, interval: float) -> Config:
    c = Config()
    c.BatchSpawner.backend = backend
    c.BatchSpawner.poll_interval = interval if not float(interval).is_integer() else int(interval)
    c.JobMonitor.interval = interval
    return c


def adopted_spawner(cls: type[BatchSpawner], config: Config, backend: str, job: Job) -> BatchSpawner:
    """A spawner holding a ready server's saved state, as after a hub restart."""
    spawner = cls(config=config, user=stand_in_user(job.owner), hub=HUB)
    lifecycle = Lifecycle(
        phase=Phase.READY,
        job_id=job.job_id,
        job_state=JobState[job.state],
        host=HOST,
        port=PORT,
        message=f"Server ready on {HOST}:{PORT}",
    )
    spawner.load_state({"batchhub": {"backend": backend, **lifecycle.to_dict()}})
    return spawner


async def reset_shared(runner: Any = None) -> None:
    """Forget the hub-wide singletons (``_Shared``: the runner, and per
    backend a monitor and whatever else the spawner keeps there), stopping
    their loops, so each run starts as a fresh hub process would."""
    for name, value in list(vars(_Shared).items()):
        if name.startswith("_") or not isinstance(value, dict):
            continue
        for shared in value.values():
            stopped = shared.stop() if callable(getattr(shared, "stop", None)) else None
            if inspect.isawaitable(stopped):
                await stopped
        setattr(_Shared, name, {})
    _Shared.runner = runner


async def watch_batchhub(
    config: Config,
    jobs: Sequence[Job],
    *,
    interval: float,
    window: int,
    counter: Callable[[], Counter[str]],
    sdiag: str | None,
    runner: Any = None,
) -> dict[str, Any]:
    """batchhub's BatchSpawner in this process: restart check, then
    JupyterHub's polling for ``window`` intervals."""
    cls, backend = spawner_class(interval), config.BatchSpawner.backend
    # one throwaway poll first: imports and one-time set-up are no server's cost
    await reset_shared(runner)
    await adopted_spawner(cls, config, backend, jobs[0]).poll()
    await reset_shared(runner)
    rss_before = settled_rss_kib()
    tally = PollTally()
    spawners = [(job.job_id, adopted_spawner(cls, config, backend, job)) for job in jobs]
    for job_id, spawner in spawners:
        instrument(spawner, job_id, tally)
    try:
        first_poll_s = await restart_check(spawners, tally)
        first_stopped = len(tally.stopped)
        result = await polling_window(
            [s for _, s in spawners], tally, interval=interval, window=window, counter=counter, sdiag=sdiag
        )
        result.update(
            first_poll_s=first_poll_s,
            first_poll_stopped=first_stopped,
            stopped=tally.stopped,
            rss_kib=rss_kib() - rss_before,
        )
    finally:
        for _, spawner in spawners:
            spawner.stop_polling()
        await reset_shared()
    return result


# --- batchspawner's side ------------------------------------------------------


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def batchspawner_constants(venv: Path) -> dict[str, Any] | None:
    """What the installed batchspawner says of itself (version, startup poll
    interval), or None where it is not installed."""
    python = venv_python(venv)
    if not python.exists():
        return None
    probe = subprocess.run([str(python), str(DRIVER), "--constants"], capture_output=True, text=True)
    return json.loads(probe.stdout) if probe.returncode == 0 else None


def ensure_batchspawner(venv: Path) -> dict[str, Any]:
    """batchspawner 1.3.0's own virtual environment, made once."""
    if not venv_python(venv).exists():
        log(f"creating a virtual environment for {' '.join(BATCHSPAWNER_REQUIREMENTS)}")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    constants = batchspawner_constants(venv)
    if constants is None or constants.get("version") != "1.3.0":
        python = str(venv_python(venv))
        subprocess.run([python, "-m", "pip", "install", "-q", *BATCHSPAWNER_REQUIREMENTS], check=True)
        constants = batchspawner_constants(venv)
    if constants is None:
        raise SystemExit("batchspawner 1.3.0 could not be installed")
    return constants


async def watch_batchspawner(
    cluster: Cluster,
    jobs: Sequence[Job],
    *,
    venv: Path,
    wrappers: Path,
    count_file: Path,
    interval: float,
    window: int,
) -> dict[str, Any]:
    """batchspawner in a child process of its own environment, its
    commands through the same counting wrappers (it runs them through a
    shell with its own environment, so PATH carries the wrappers)."""
    config = {
        "scheduler": cluster.name,
        "jobs": [[job.job_id, job.owner, job.state] for job in jobs],
        "interval": int(interval),
        "window": window,
        "exec_prefix": cluster.exec_prefix,
        "count_file": str(count_file),
        "sdiag": cluster.sdiag,
    }
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(config, f)
    env = {"PATH": f"{wrappers}:{RUNNER_PATH}", "LANG": "C.UTF-8", "HOME": os.environ.get("HOME", "/")}
    env.update(cluster.env())
    try:
        with tempfile.TemporaryFile() as stderr:
            proc = await asyncio.create_subprocess_exec(
                str(venv_python(venv)), str(DRIVER), f.name, stdout=subprocess.PIPE, stderr=stderr, env=env
            )
            CHILDREN.add(proc)
            try:  # the restart check alone may take minutes where batchspawner saturates
                out, _ = await asyncio.wait_for(proc.communicate(), 900 + interval * (window + 1))
            except asyncio.TimeoutError:
                raise RuntimeError("the batchspawner driver did not finish within 15 minutes") from None
            finally:
                if proc.returncode is None:  # timed out or interrupted: it must not outlive the bench
                    proc.kill()
                CHILDREN.discard(proc)
            if proc.returncode != 0:
                stderr.seek(0)
                tail = stderr.read()[-2000:].decode(errors="replace")
                raise RuntimeError(f"batchspawner driver failed ({proc.returncode}): {tail}")
    finally:
        os.unlink(f.name)
    return json.loads(out.decode().strip().splitlines()[-1])


# --- one row per scheduler, size and tool ------------------------------------------


def summarise(side: dict[str, Any], tool: str, jobs: Sequence[Job], alive: set[str], interval: float) -> dict:
    """Per-interval figures of one tool's window; the wrong verdicts are
    "stopped" for jobs the scheduler still lists at the end."""
    placed = {
        "tool": tool,
        "jobs": len(jobs),
        "running": sum(job.state == "RUNNING" for job in jobs),
        "pending": sum(job.state == "PENDING" for job in jobs),
    }
    if "error" in side:
        return {**placed, "error": side["error"]}
    intervals = side["seconds"] / interval
    rpcs = side.get("rpcs")
    return {
        **placed,
        "polls_per_interval": side["polls"] / intervals,
        "commands_per_interval": sum(side["commands"].values()) / intervals,
        "commands": side["commands"],
        "rpcs_per_interval": None if rpcs is None else sum(rpcs.values()) / intervals,
        "rpcs": rpcs,
        "cpu_per_interval": side["cpu_s"] / intervals,
        "lag_p50_ms": side["lag_p50_ms"],
        "lag_p99_ms": side["lag_p99_ms"],
        "rss_kib_per_server": side["rss_kib"] / max(1, len(jobs)),
        "wrong_stopped": sum(job_id in alive for job_id in side["stopped"]),
        "why_stopped": side.get("why_stopped", {}),
        "first_poll_s": side["first_poll_s"],
        "first_poll_stopped": side["first_poll_stopped"],
        "in_flight_at_end": side["in_flight_at_end"],
        "poll_p50_s": side["poll_p50_s"],
        "poll_max_s": side["poll_max_s"],
        "saturated": side["polls"] < 0.9 * len(jobs) * intervals or side["poll_max_s"] > interval,
    }


async def place_jobs(cluster: Cluster, n: int, users: Sequence[str], tag: str) -> list[Job]:
    log(f"{cluster.name}: submitting {n} jobs as {', '.join(users)}")
    started = time.perf_counter()
    jobs = await settle(cluster, tag, await submit_jobs(cluster, n, users, tag))
    running = sum(job.state == "RUNNING" for job in jobs)
    log(f"{cluster.name}: {n} jobs placed in {time.perf_counter() - started:.1f} s ({running} running)")
    return jobs


async def attempt(side: Awaitable[dict[str, Any]]) -> dict[str, Any]:
    """One tool's measurement, or its failure as a row: the run goes on."""
    try:
        return await side
    except (RuntimeError, OSError, asyncio.TimeoutError) as exc:
        log(f"failed: {exc}")
        return {"error": str(exc).splitlines()[0][:200]}


def batchhub_config(cluster: Cluster, interval: float, wrappers: Path) -> Config:
    config = polling_config(cluster.backend, interval)
    cluster.configure_batchhub(config)
    config.CommandRunner.path = f"{wrappers}:{RUNNER_PATH}"
    config.CommandRunner.as_user_prefix = ["runuser", "-u", "{username}", "--"]
    return config


async def fresh_rss_kib(
    scheduler: str, jobs: Sequence[Job], args: argparse.Namespace, wrappers: Path | None
) -> float | None:
    """batchhub's memory growth measured again in a fresh process, the same
    code over one interval: in this process, memory that earlier runs freed
    is lent to the next, and its growth reads low."""
    config = {
        "scheduler": scheduler,
        "jobs": [[job.job_id, job.owner, job.state] for job in jobs],
        "interval": args.interval,
        "wrappers": str(wrappers) if wrappers else None,
        "sge": [args.sge_bin, args.sge_root, args.sge_cell],
    }
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(config, f)
    argv = [sys.executable, str(Path(__file__)), "--memory-pass", f.name]
    try:
        proc = await asyncio.create_subprocess_exec(*argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        CHILDREN.add(proc)
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), 300 + 3 * args.interval)
        finally:
            if proc.returncode is None:
                proc.kill()
            CHILDREN.discard(proc)
        return float(json.loads(out.decode().strip().splitlines()[-1])["rss_kib"])
    except (asyncio.TimeoutError, ValueError, IndexError, KeyError) as exc:
        log(f"the fresh process's memory measurement failed ({exc!r}); keeping this process's")
        return None
    finally:
        os.unlink(f.name)


async def memory_pass(path: str) -> dict[str, float]:
    """The child side of ``fresh_rss_kib``."""
    with open(path) as f:
        cfg = json.load(f)
    jobs = [Job(*job) for job in cfg["jobs"]]
    runner = None
    if cfg["scheduler"] == "fake":
        _, runner, jobs = fake_cluster(len(jobs))
        config = polling_config("fake", cfg["interval"])
    else:
        cluster = Slurm() if cfg["scheduler"] == "slurm" else GridEngine(*cfg["sge"])
        config = batchhub_config(cluster, cfg["interval"], Path(cfg["wrappers"]))
    side = await watch_batchhub(
        config, jobs, interval=cfg["interval"], window=1, counter=Counter, sdiag=None, runner=runner
    )
    return {"rss_kib": side["rss_kib"]}


async def batchhub_side(
    scheduler: str,
    config: Config,
    jobs: Sequence[Job],
    args: argparse.Namespace,
    *,
    counter: Callable[[], Counter[str]],
    sdiag: str | None,
    wrappers: Path | None = None,
    runner: Any = None,
) -> dict[str, Any]:
    """batchhub measured in this process, its memory in a fresh one."""
    log(f"{scheduler}: batchhub watches {len(jobs)} jobs for {args.window} intervals of {args.interval:g} s")
    window = {"interval": args.interval, "window": args.window}
    side = await attempt(watch_batchhub(config, jobs, counter=counter, sdiag=sdiag, runner=runner, **window))
    if "error" not in side:
        side["rss_kib_in_process"] = side["rss_kib"]
        side["rss_kib"] = await fresh_rss_kib(scheduler, jobs, args, wrappers) or side["rss_kib"]
    return side


async def real_rows(cluster: Cluster, n: int, args: argparse.Namespace, run: RunContext) -> list[dict]:
    """Submit ``n`` jobs, let batchhub and then batchspawner watch them, cancel them."""
    tag = f"{run.tag}-{cluster.name}-{n}-jobs"  # no size's tag starts another's
    count_file, wrappers = run.workdir / "counts", run.workdir / "wrappers"
    write_wrappers(wrappers, cluster.status_programs, count_file)
    config = batchhub_config(cluster, args.interval, wrappers)

    def counter() -> Counter[str]:
        return read_counts(str(count_file))

    sides: dict[str, dict[str, Any]] = {}
    try:
        jobs = await place_jobs(cluster, n, args.user_list, tag)
        sides["batchhub"] = await batchhub_side(
            cluster.name, config, jobs, args, counter=counter, sdiag=cluster.sdiag, wrappers=wrappers
        )
        if args.batchspawner:
            log(f"{cluster.name}: batchspawner 1.3.0 watches the same jobs")
            window = {"interval": args.interval, "window": args.window}
            sides["batchspawner 1.3.0"] = await attempt(
                watch_batchspawner(
                    cluster, jobs, venv=run.venv, wrappers=wrappers, count_file=count_file, **window
                )
            )
        alive = set(await asyncio.to_thread(tagged, cluster, tag))
    finally:
        await asyncio.to_thread(cancel_tagged, cluster, tag)
    return [
        {"scheduler": cluster.name, **summarise(side, tool, jobs, alive, args.interval)}
        for tool, side in sides.items()
    ]


def fake_cluster(n: int) -> tuple[FakeScheduler, FakeRunner, list[Job]]:
    """``n`` jobs on the in-memory fake, 4 of them running, and its runner."""
    clock = FakeClock()
    sched = FakeScheduler(clock=clock, slots=4, queue_delay=0.0, start_delay=0.0)
    owners = [f"user{i}" for i in range(n)]
    submitted = [(sched.submit(f"#FAKE --name={TAG_PREFIX}fake\nsleep 3600\n", o), o) for o in owners]
    clock.advance(1.0)
    states = {job.job_id: job.state for job in sched.live_jobs()}
    jobs = [Job(i, owner, "RUNNING" if states[i].active else "PENDING") for i, owner in submitted]
    return sched, FakeRunner(sched), jobs


async def fake_row(n: int, args: argparse.Namespace) -> list[dict]:
    """The batchhub side against the in-memory fake scheduler: the code
    path of a real run, for the smoke test. No batchspawner, no wrappers."""
    sched, runner, jobs = fake_cluster(n)
    side = await batchhub_side(
        "fake",
        polling_config("fake", args.interval),
        jobs,
        args,
        counter=lambda: Counter({"fake-status": runner.counts["status"]}),
        sdiag=None,
        runner=runner,
    )
    alive = {job.job_id for job in sched.live_jobs()}
    return [{"scheduler": "fake", **summarise(side, "batchhub", jobs, alive, args.interval)}]


# --- spawn storm ------------------------------------------------------------


class StormSpawner(BatchSpawner):
    """The real BatchSpawner with the two steps that run commands in real
    users' home directories stubbed: no real users are involved."""

    async def prepare_workdir(self, spec: JobSpec) -> None:
        pass

    async def _error_tail(self, spec: JobSpec, limit: int = 1500) -> str:
        return ""

    def workdir(self) -> str:
        # the default template looks the user up in the password database
        return f"/home/{self.user.name}/.batchhub/default"


class RealStormSpawner(StormSpawner):
    """For a real scheduler: the job's directory must exist, owned by the user."""

    workroot = ""

    def workdir(self) -> str:
        return f"{self.workroot}/{self.user.name}/{self.name}"

    async def prepare_workdir(self, spec: JobSpec) -> None:
        owner = pwd.getpwnam(self.user.name)
        for path in (os.path.dirname(spec.workdir), spec.workdir):
            os.makedirs(path, mode=0o700, exist_ok=True)
            os.chown(path, owner.pw_uid, owner.pw_gid)


class LatencyRunner:
    """The fake's runner with a random cost per command, the cap
    ``CommandRunner.max_concurrent`` applied as ``CommandRunner.run`` applies
    it, and counts of commands in flight and waiting for a slot."""

    def __init__(self, inner: FakeRunner, cap: int, rng: random.Random) -> None:
        self.inner = inner
        self.cap = cap
        self.rng = rng
        self.slots = asyncio.Semaphore(cap)
        self.in_flight = self.waiting = self.peak = self.peak_waiting = 0

    async def run(self, command: Command) -> CommandResult:
        self.waiting += 1
        self.peak_waiting = max(self.peak_waiting, self.waiting)
        async with self.slots:
            self.waiting -= 1
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            try:
                await asyncio.sleep(self.rng.uniform(*FAKE_COMMAND_COST))
                return await self.inner.run(command)
            finally:
                self.in_flight -= 1


class SubmitTimes:
    """Notes when each job was submitted, through the ``batchhub_job_event``
    hook, as a site's metrics plugin would."""

    def __init__(self, storm: Storm) -> None:
        self.storm = storm

    @hookimpl
    def batchhub_job_event(self, event: JobEvent) -> None:
        if event.kind == "submitted" and event.job_id:
            self.storm.submitted.setdefault(event.job_id, time.perf_counter())
            self.storm.owners[event.job_id] = event.username


@contextlib.contextmanager
def observing(storm: Storm) -> Iterator[None]:
    plugin = SubmitTimes(storm)
    get_registry().pm.register(plugin)
    try:
        yield
    finally:
        get_registry().pm.unregister(plugin)


@dataclasses.dataclass
class Storm:
    """Times of one storm, all from ``time.perf_counter()``."""

    started: float
    submitted: dict[str, float] = dataclasses.field(default_factory=dict)  # by job id
    owners: dict[str, str] = dataclasses.field(default_factory=dict)  # by job id
    reported: dict[int, float] = dataclasses.field(default_factory=dict)
    ready: dict[int, float] = dataclasses.field(default_factory=dict)
    failed: list[str] = dataclasses.field(default_factory=list)
    launchers: set[asyncio.Future[None]] = dataclasses.field(default_factory=set)

    def launch(self, delay: float, index: int, spawner: BatchSpawner, peer: str) -> None:
        """A job's launcher reports its port ``delay`` seconds from now."""

        def begin() -> None:
            task = asyncio.ensure_future(launcher_report(index, spawner, self, peer))
            self.launchers.add(task)
            task.add_done_callback(self.launchers.discard)

        asyncio.get_running_loop().call_later(delay, begin)

    def stop_launchers(self) -> None:
        for task in list(self.launchers):
            task.cancel()

    def ready_latencies(self) -> list[float]:
        return [self.ready[i] - self.reported[i] for i in self.ready if i in self.reported]


async def timed_start(index: int, spawner: BatchSpawner, storm: Storm) -> None:
    try:
        await spawner.start()
    except Exception as exc:
        storm.failed.append(f"{spawner.user.name}: {exc}")
        return
    storm.ready[index] = time.perf_counter()


async def launcher_report(index: int, spawner: BatchSpawner, storm: Storm, peer: str) -> None:
    """What the launcher in the job does once its server listens: report the
    port from the job's host, through the port-report endpoint's own code
    (no HTTP), retrying a 5xx answer as the launcher does."""
    storm.reported[index] = time.perf_counter()
    body = json.dumps({"port": PORT}).encode()
    delay = 0.25
    for _ in range(20):
        try:
            await callback.report_port([spawner], spawner.api_token, body, peer)
            return
        except callback.Refusal as exc:
            if exc.status < 500:
                storm.failed.append(f"{spawner.user.name}: port report refused ({exc.status}): {exc.message}")
                return
        await asyncio.sleep(delay)
        delay = min(delay * 2, 5.0)


def job_id_of(spawner: BatchSpawner) -> str | None:
    return (spawner.get_state().get("batchhub") or {}).get("job_id")


async def fake_launchers(
    sched: FakeScheduler, clock: FakeClock, spawners: list[BatchSpawner], storm: Storm
) -> None:
    """Moves the fake's clock with real time, and plays each job's launcher:
    a job seen running reports its port a server start-up later."""
    rng, origin = random.Random(1), clock.now()
    by_user = {s.user.name: i for i, s in enumerate(spawners)}  # one server per user here
    noticed: set[str] = set()
    while True:
        await asyncio.sleep(0.02)
        clock.advance(max(0.0, origin + time.perf_counter() - storm.started - clock.now()))
        for job in sched.live_jobs():
            index = by_user.get(storm.owners.get(job.job_id, ""))
            if job.state is JobState.RUNNING and job.job_id not in noticed and index is not None:
                noticed.add(job.job_id)
                storm.launch(rng.uniform(*LAUNCHER_STARTUP), index, spawners[index], FAKE_PEER)


async def storm_fake(n: int) -> dict[str, Any]:
    """``n`` simultaneous ``start()`` calls through the real BatchSpawner on
    the in-memory fake scheduler, each command given a random cost."""
    clock = FakeClock()
    sched = FakeScheduler(
        clock=clock, slots=n, queue_delay=FAKE_QUEUE_DELAY, start_delay=FAKE_START_DELAY, hosts=(FAKE_HOST,)
    )
    config = Config()
    config.BatchSpawner.backend = "fake"
    cap = CommandRunner(config=config).max_concurrent
    runner = LatencyRunner(FakeRunner(sched), cap, random.Random(0))
    await reset_shared(runner)
    spawners: list[BatchSpawner] = []
    for i in range(n):
        spawner = StormSpawner(config=config, user=stand_in_user(f"user{i}"), hub=HUB)
        spawner.api_token = f"token{i:027d}"
        spawners.append(spawner)
    ticker = LagTicker()
    ticker.start()
    storm = Storm(time.perf_counter())
    launchers = asyncio.ensure_future(fake_launchers(sched, clock, spawners, storm))
    try:
        with observing(storm):
            starts = asyncio.gather(*(timed_start(i, s, storm) for i, s in enumerate(spawners)))
            try:
                await asyncio.wait_for(starts, STORM_TIMEOUT)
            except asyncio.TimeoutError:
                storm.failed.append(f"{n - len(storm.ready)} servers not ready within {STORM_TIMEOUT:g} s")
    finally:
        launchers.cancel()
        storm.stop_launchers()
        lag = (ticker.p50_ms(), ticker.p99_ms())
        await ticker.stop()
        await reset_shared()
    result = storm_summary("fake (in memory)", n, storm, lag, peak=runner.peak, cap=cap)
    result.update(peak_waiting=runner.peak_waiting, status_commands=runner.inner.counts["status"])
    return result


def storm_summary(
    where: str, n: int, storm: Storm, lag: tuple[float, float], *, peak: int, cap: int
) -> dict[str, Any]:
    latencies = storm.ready_latencies()
    return {
        "where": where,
        "starts": n,
        "all_submitted_s": max(storm.submitted.values()) - storm.started if storm.submitted else None,
        "ready": len(storm.ready),
        "all_ready_s": max(storm.ready.values()) - storm.started if storm.ready else None,
        "failed": storm.failed,
        "lag_p50_ms": lag[0],
        "lag_p99_ms": lag[1],
        "peak_in_flight": peak,
        "cap": cap,
        "ready_latency_p50_s": percentile(latencies, 0.5),
        "ready_latency_p99_s": percentile(latencies, 0.99),
    }


async def real_launchers(cluster: Cluster, spawners: list[BatchSpawner], storm: Storm) -> None:
    """The launchers of a real storm: a job the scheduler lists as running
    reports its port a server start-up later (the job itself only sleeps)."""
    rng = random.Random(1)
    noticed: set[int] = set()
    while True:
        await asyncio.sleep(0.5)
        listed = await asyncio.to_thread(cluster.listing)
        for index, spawner in enumerate(spawners):
            job = listed.get(job_id_of(spawner) or "")
            if job is not None and job.state == "RUNNING" and job.host and index not in noticed:
                noticed.add(index)
                peer = await asyncio.to_thread(socket.gethostbyname, job.host)
                storm.launch(rng.uniform(*LAUNCHER_STARTUP), index, spawner, peer)


async def until_steady(storm: Storm, spawners: list[BatchSpawner], cluster: Cluster, timeout: float) -> None:
    """Until every job is submitted and every running one ready, or ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await asyncio.sleep(1.0)
        listed = await asyncio.to_thread(cluster.listing)
        ids = [job_id_of(s) for s in spawners]
        running = sum(1 for job_id in ids if job_id in listed and listed[job_id].state == "RUNNING")
        if all(ids) and len(storm.ready) >= running:
            return


def real_storm_spawners(
    cluster: Cluster, n: int, users: Sequence[str], run: RunContext, tag: str, wrappers: Path
) -> list[BatchSpawner]:
    """``n`` spawners for a real scheduler whose jobs only sleep, their
    commands through bracketing wrappers that log each one's start and end."""
    config = Config()
    cluster.configure_batchhub(config)
    config.SlurmBackend.job_name_prefix = tag
    config.BatchSpawner.job_template = SLEEP_TEMPLATE
    config.ResourceForm.memory_default = "256M"  # so every CPU of the node can run one
    config.CommandRunner.path = f"{wrappers}:{RUNNER_PATH}"
    config.CommandRunner.as_user_prefix = ["runuser", "-u", "{username}", "--"]
    workroot = run.workdir / "storm-jobs"
    workroot.mkdir(mode=0o755)
    spawners: list[BatchSpawner] = []
    for i in range(n):
        # a named server each (a transient ORM record, in no database): one user has many
        server = orm.Spawner(name=f"s{i}")
        spawner = RealStormSpawner(
            config=config, user=stand_in_user(users[i % len(users)]), hub=HUB, orm_spawner=server
        )
        spawner.workroot = str(workroot)
        spawner.api_token = f"token{i:027d}"
        spawners.append(spawner)
    return spawners


async def storm_real(cluster: Cluster, n: int, args: argparse.Namespace, run: RunContext) -> dict[str, Any]:
    """``n`` simultaneous ``start()`` calls on a real scheduler; the jobs
    only sleep. Those that cannot run on this machine stay pending; once the
    others are ready, the pending spawns are abandoned (as the hub cancels a
    pending spawn) and every server is stopped through ``stop()``."""
    tag = f"{run.tag}-storm"
    log_file, wrappers = run.workdir / "storm-log", run.workdir / "storm-wrappers"
    programs = {"sbatch": which("sbatch"), "scancel": which("scancel"), **cluster.status_programs}
    write_wrappers(wrappers, programs, log_file, bracket=True)
    await reset_shared()
    spawners = real_storm_spawners(cluster, n, args.user_list, run, tag, wrappers)
    cap = CommandRunner(config=spawners[0].config).max_concurrent
    ticker = LagTicker()
    ticker.start()
    storm = Storm(time.perf_counter())
    launchers = asyncio.ensure_future(real_launchers(cluster, spawners, storm))
    starts: list[asyncio.Future[None]] = []
    try:
        with observing(storm):
            starts = [asyncio.ensure_future(timed_start(i, s, storm)) for i, s in enumerate(spawners)]
            await until_steady(storm, spawners, cluster, timeout=STORM_TIMEOUT)
        lag = (ticker.p50_ms(), ticker.p99_ms())
        stop_started = time.perf_counter()
        for task in starts:
            task.cancel()
        await asyncio.gather(*starts, return_exceptions=True)
        await asyncio.gather(*(s.stop() for s in spawners), return_exceptions=True)
        summary = storm_summary(
            f"{cluster.name} (real)", n, storm, lag, peak=peak_in_flight(log_file), cap=cap
        )
        summary["all_stopped_s"] = time.perf_counter() - stop_started
    finally:
        launchers.cancel()
        storm.stop_launchers()
        for task in starts:
            task.cancel()
        await ticker.stop()
        await reset_shared()
        await asyncio.to_thread(cancel_tagged, cluster, tag)
    return summary


# --- output -----------------------------------------------------------------


def fmt(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def polling_table(rows: Sequence[dict]) -> list[str]:
    lines = [
        "| scheduler | servers | running / pending | tool | polls / interval | status commands / interval "
        "| slurmctld RPCs / interval | CPU s / interval | loop lag p50 / p99 ms | RSS KiB / server "
        '| wrong "stopped" | restart check s |',
        "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        if "error" in r:
            cells = " | ".join(["-"] * 8)
            lines.append(
                f"| {r['scheduler']} | {r['jobs']} | {r['running']} / {r['pending']} | {r['tool']} "
                f"| failed: {r['error']} | {cells} |"
            )
            continue
        mark = " (saturated)" if r["saturated"] else ""
        lines.append(
            f"| {r['scheduler']} | {r['jobs']} | {r['running']} / {r['pending']} | {r['tool']}{mark} "
            f"| {fmt(r['polls_per_interval'])} | {fmt(r['commands_per_interval'], 1)} "
            f"| {fmt(r['rpcs_per_interval'], 0)} | {fmt(r['cpu_per_interval'], 2)} "
            f"| {fmt(r['lag_p50_ms'], 1)} / {fmt(r['lag_p99_ms'], 1)} | {fmt(r['rss_kib_per_server'], 1)} "
            f"| {r['wrong_stopped']} | {fmt(r['first_poll_s'], 2)} |"
        )
    return lines


def storm_table(storms: Sequence[dict]) -> list[str]:
    lines = [
        "| where | simultaneous starts | all submitted s | ready / left pending | all ready s "
        "| all stopped s | loop lag p50 / p99 ms | peak commands in flight (cap) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for s in storms:
        pending = s["starts"] - s["ready"] - len(s["failed"])
        lines.append(
            f"| {s['where']} | {s['starts']} | {fmt(s['all_submitted_s'], 1)} | {s['ready']} / {pending} "
            f"| {fmt(s['all_ready_s'], 1)} | {fmt(s.get('all_stopped_s'), 1)} "
            f"| {fmt(s['lag_p50_ms'], 1)} / {fmt(s['lag_p99_ms'], 1)} | {s['peak_in_flight']} ({s['cap']}) |"
        )
    return lines


def latency_table(storms: Sequence[dict], constants: dict[str, Any] | None) -> list[str]:
    lines = [
        "| tool | port report to start() returning: median | p99 | how |",
        "| --- | ---: | ---: | --- |",
    ]
    for s in storms:
        if s["ready"]:
            lines.append(
                f"| batchhub, {s['where']}, {s['ready']} servers | {s['ready_latency_p50_s'] * 1000:.0f} ms "
                f"| {s['ready_latency_p99_s'] * 1000:.0f} ms | measured: the report wakes the waiting "
                "start() |"
            )
    step = (constants or {}).get("startup_poll_interval", 0.5)
    source = "read from the installed package" if constants else "its default; not installed here"
    lines.append(
        f"| batchspawner 1.3.0 | {step * 500:.0f} ms | {step * 990:.0f} ms | not measured: `start()` loops "
        f"`while self.port == 0: await asyncio.sleep(self.startup_poll_interval)`, {step:g} s ({source}), "
        f"so a report waits uniformly 0 to {step:g} s |"
    )
    return lines


def notes(rows: Sequence[dict]) -> list[str]:
    found = []
    for r in rows:
        if "error" in r:
            continue
        if r["scheduler"] == "slurm" and r["rpcs"] is None:
            found.append(
                f"- {r['tool']} on slurm with {r['jobs']} servers: no RPC count, slurmctld's counters "
                "went back or `sdiag` failed during the window (was slurmctld restarted?)."
            )
        if r["saturated"] and not r["polls_per_interval"]:
            found.append(
                f"- {r['tool']} on {r['scheduler']} with {r['jobs']} servers is saturated: no poll finished "
                f"within the window ({r['in_flight_at_end']} still running at its end); the restart check "
                f"took {r['first_poll_s']:.0f} s."
            )
        elif r["saturated"]:
            found.append(
                f"- {r['tool']} on {r['scheduler']} with {r['jobs']} servers is saturated: "
                f"{r['polls_per_interval']:.0f} of {r['jobs']} polls per interval finished, the slowest took "
                f"{r['poll_max_s']:.1f} s, {r['in_flight_at_end']} were still running at the window's end."
            )
        if r["wrong_stopped"]:
            found.append(
                f"- {r['tool']} on {r['scheduler']} with {r['jobs']} servers called {r['wrong_stopped']} "
                f"live servers stopped ({r['first_poll_stopped']} at the restart check): a hub would "
                "stop them."
                + "".join(
                    f" {count}x after the status text `{text}`." for text, count in r["why_stopped"].items()
                )
            )
    return found


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.machine(),
    )
    kib = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))  # type: ignore[union-attr]
    return (
        f"{os.cpu_count()} CPUs ({cpu}), {kib / 1024 / 1024:.0f} GiB of memory, "
        f"{platform.python_implementation()} {platform.python_version()}"
    )


def command_line(argv: Sequence[str]) -> str:
    """This run's command line, minus options that only name output files."""
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--json":
            skip = True
        elif not arg.startswith("--json="):
            kept.append(arg)
    return shlex.join([".venv/bin/python", "bench/polling.py", *kept])


def report(results: dict[str, Any], args: argparse.Namespace) -> list[str]:
    lines = [
        f"Polling: {args.window} interval{'s' if args.window != 1 else ''} of {args.interval:g} s "
        "measured per tool, after the restart check (all servers' first poll at once).",
        "",
        *polling_table(results["polling"]),
    ]
    if extra := notes(results["polling"]):
        lines += ["", *extra]
    if results["storms"]:
        latency = latency_table(results["storms"], results["constants"])
        lines += ["", *storm_table(results["storms"]), "", *latency]
    return lines


def write_docs(lines: Sequence[str], argv: Sequence[str]) -> None:
    section = [
        DOCS_HEADING,
        "",
        "`bench/polling.py` (see `bench/README.md`): N real jobs that only sleep, watched by",
        "N spawners after a hub restart through JupyterHub's own `Spawner.start_polling()`,",
        "first by batchhub, then by batchspawner 1.3.0 in its own environment. Counts per",
        "polling interval; status commands counted by wrappers first on PATH; slurmctld RPCs",
        "from `sdiag`; CPU of the hub process and its children; RSS growth divided by N.",
        "",
        f"Run on {datetime.date.today().isoformat()}, {machine()}:",
        "",
        "```sh",
        command_line(argv),
        "```",
        "",
        *lines,
        "",
        "Caveats:",
        "",
        "- The servers are jobs that only sleep; this one-node cluster runs a few of them",
        "  and the rest pend, which costs a status query just the same.",
        "- JupyterHub's HTTP probe of each server at the restart check, and batchhub's",
        "  check that a Jupyter server answers, are left out: no server listens.",
        "- batchhub runs in the bench's own process, where memory that earlier runs freed",
        "  is reused: its RSS per server comes from the same code run again in a fresh",
        "  process for one interval. batchspawner runs in a fresh process each time.",
        "- `sdiag` counts every client of slurmctld during the window, not only the tool.",
        "",
    ]
    body = "\n".join(section).rstrip("\n") + "\n"
    text = DOCS.read_text()
    start = text.find(DOCS_HEADING)
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + body
    else:  # replace this section only, up to the next one
        end = text.find("\n## ", start + len(DOCS_HEADING))
        text = text[:start] + body + ("\n" + text[end + 1 :] if end >= 0 else "")
    DOCS.write_text(text)
    log(f"wrote the section {DOCS_HEADING!r} of {DOCS.relative_to(REPO)}")


# --- the run ------------------------------------------------------------------


@dataclasses.dataclass
class RunContext:
    tag: str  # names of this run's jobs start with it
    workdir: Path  # wrappers, counts, storm job directories
    venv: Path


def make_clusters(args: argparse.Namespace) -> list[Cluster]:
    clusters: list[Cluster] = []
    for name in args.scheduler_list:
        if name == "slurm":
            clusters.append(Slurm())
        elif name == "sge":
            clusters.append(GridEngine(args.sge_bin, args.sge_root, args.sge_cell))
    return clusters


async def run_all(args: argparse.Namespace, run: RunContext, clusters: Sequence[Cluster]) -> dict[str, Any]:
    results: dict[str, Any] = {"polling": [], "storms": [], "constants": None}
    if args.batchspawner and clusters:
        results["constants"] = await asyncio.to_thread(ensure_batchspawner, run.venv)
    else:  # only to cite its start-up poll interval, if it happens to be there
        results["constants"] = await asyncio.to_thread(batchspawner_constants, run.venv)
    for name in args.scheduler_list:
        cluster = next((c for c in clusters if c.name == name), None)
        for n in args.size_list:
            try:
                rows = await (fake_row(n, args) if cluster is None else real_rows(cluster, n, args, run))
            except RuntimeError as exc:  # this scheduler failed at this size; the others go on
                log(f"{name}: {n} servers: {exc}")
                error = str(exc).splitlines()[0][:200]
                rows = [
                    {"scheduler": name, "tool": "-", "jobs": n, "running": 0, "pending": 0, "error": error}
                ]
            for row in rows:
                log(polling_table([row])[-1])
            results["polling"] += rows
    if args.storm:
        log(f"spawn storm: {args.storm} simultaneous starts on the fake scheduler")
        results["storms"].append(await storm_fake(args.storm))
    slurm = next((c for c in clusters if c.name == "slurm"), None)
    if args.storm_real and slurm is not None:
        log(f"spawn storm: {args.storm_real} simultaneous starts on real Slurm")
        results["storms"].append(await storm_real(slurm, args.storm_real, args, run))
    return results


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add(
        "--schedulers",
        default="slurm,sge",
        help="comma-separated: slurm, sge (real, already running) and fake (in memory: batchhub "
        "only, for the smoke test) [%(default)s]",
    )
    add("--sizes", help=f"comma-separated numbers of servers (jobs) [{FULL['sizes']}]")
    add("--interval", type=float, help=f"polling interval in seconds, both tools [{FULL['interval']:g}]")
    add("--window", type=int, help=f"intervals measured per tool and size [{FULL['window']}]")
    add("--users", default="alice,bob", help="users the jobs are submitted as, round-robin [%(default)s]")
    add("--storm", type=int, help=f"simultaneous start()s on the fake scheduler, 0 skips [{FULL['storm']}]")
    add(
        "--storm-real",
        type=int,
        help=f"simultaneous start()s on real Slurm (if listed), 0 skips [{FULL['storm_real']}]",
    )
    add("--no-batchspawner", dest="batchspawner", action="store_false", help="measure batchhub only")
    add(
        "--batchspawner-venv",
        default=DEFAULT_VENV,
        help="batchspawner 1.3.0's virtual environment, relative to the repository; made if missing "
        "[%(default)s]",
    )
    add(
        "--sge-bin",
        default="/usr/lib/gridengine",
        help="directory of Grid Engine's real binaries; Debian's /usr/bin ones are slower shell "
        "wrappers [%(default)s]",
    )
    add(
        "--sge-root", default=os.environ.get("SGE_ROOT", "/var/lib/gridengine"), help="SGE_ROOT [%(default)s]"
    )
    add("--sge-cell", default=os.environ.get("SGE_CELL", "default"), help="SGE_CELL [%(default)s]")
    quick = ", ".join(f"--{key.replace('_', '-')} {value}" for key, value in QUICK.items())
    add("--quick", action="store_true", help=f"tiny run: {quick}")
    add(
        "--write-docs",
        action="store_true",
        help=f"rewrite the section {DOCS_HEADING!r} of docs/benchmarks.md",
    )
    add("--json", metavar="FILE", help="also write every measurement as JSON to FILE")
    add("--cleanup", action="store_true", help=f"only cancel every job named {TAG_PREFIX}* and exit")
    add("--memory-pass", metavar="FILE", help=argparse.SUPPRESS)  # the bench's own child process
    args = parser.parse_args(argv)
    for key, value in (QUICK if args.quick else FULL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.scheduler_list = [s for s in args.schedulers.split(",") if s]
    args.size_list = [int(s) for s in args.sizes.split(",") if s]
    args.user_list = [u for u in args.users.split(",") if u]
    if unknown := set(args.scheduler_list) - {"slurm", "sge", "fake"}:
        parser.error(f"unknown schedulers: {', '.join(sorted(unknown))}")
    if set(args.scheduler_list) - {"fake"} and not float(args.interval).is_integer():
        parser.error("real schedulers need a whole --interval: JupyterHub's poll_interval is an Integer")
    return args


def on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # unwinds like Ctrl-C: the finally blocks cancel the jobs


def cleanup(clusters: Sequence[Cluster], prefix: str) -> None:
    for proc in list(CHILDREN):
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
    for cluster in clusters:
        try:
            cancel_tagged(cluster, prefix)
        except Exception as exc:  # one scheduler's failure must not keep the other's jobs
            log(f"{cluster.name}: cleanup failed: {exc}")


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if args.memory_pass:
        print(json.dumps(asyncio.run(memory_pass(args.memory_pass))))
        return
    clusters = make_clusters(args)
    if args.cleanup:
        cleanup(clusters, TAG_PREFIX)
        return
    run = RunContext(
        tag=f"{TAG_PREFIX}{os.getpid()}",
        workdir=Path(tempfile.mkdtemp(prefix=TAG_PREFIX)),
        venv=REPO / args.batchspawner_venv,
    )
    run.workdir.chmod(0o755)  # users' commands read the wrappers and job directories in it
    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        results = asyncio.run(run_all(args, run, clusters))
    except KeyboardInterrupt:
        log("interrupted: cancelling this run's jobs")
        raise SystemExit(130) from None
    finally:
        cleanup(clusters, run.tag)
        shutil.rmtree(run.workdir, ignore_errors=True)
    lines = report(results, args)
    print("\n".join(lines))
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine(), **results}, indent=1, default=str))
    if args.write_docs:
        write_docs(lines, argv)


if __name__ == "__main__":
    main()
