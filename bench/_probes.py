"""Measurements shared by ``polling.py`` and the batchspawner driver.

Standard library only: the driver runs in batchspawner's own virtual
environment, where batchhub is not installed, and both sides must measure
in exactly the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import gc
import os
import re
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

#: How long the lag ticker sleeps; its overshoot is the event loop's lag.
TICK = 0.01

#: sdiag's own request, made twice per window by the bench: not the tool's load.
SDIAG_OWN_RPC = "REQUEST_STATS_INFO"

_RPC_LINE = re.compile(r"^\s+([A-Z_]+)\s+\(\s*\d+\)\s+count:(\d+)")


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) by nearest rank; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class LagTicker:
    """A task that sleeps ``TICK`` over and over and records how late it
    wakes: what any other coroutine on the loop (a web request) would wait."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    def reset(self) -> None:
        self.samples = []

    async def _run(self) -> None:
        while True:
            started = time.perf_counter()
            await asyncio.sleep(TICK)
            self.samples.append(max(0.0, time.perf_counter() - started - TICK))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def p50_ms(self) -> float:
        return percentile(self.samples, 0.50) * 1000

    def p99_ms(self) -> float:
        return percentile(self.samples, 0.99) * 1000


def cpu_seconds() -> float:
    """CPU time of this process and of its children that have been waited for
    (the scheduler commands it ran)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def rss_kib() -> int:
    """Resident memory of this process now (not the peak), in KiB."""
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") // 1024


def settled_rss_kib() -> int:
    """Resident memory once garbage is collected and freed memory handed back
    to the system: what earlier work in the process freed must not be lent
    to the next measurement, or its growth would read low. (Python's own
    allocator still keeps partly used arenas: small growths stay rough.)"""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)
    return rss_kib()


def read_counts(path: str) -> Counter[str]:
    """Commands the counting wrappers logged: one line per run, the program's name."""
    try:
        with open(path) as log:
            return Counter(line.split()[0] for line in log if line.strip())
    except FileNotFoundError:
        return Counter()


def sdiag_rpcs(sdiag: str | None) -> Counter[str] | None:
    """slurmctld's RPC counts by message type since its last restart, or
    None where there is no Slurm (``sdiag`` is None) or it did not answer."""
    if not sdiag:
        return None
    try:
        out = subprocess.run([sdiag], capture_output=True, text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    counts: Counter[str] = Counter()
    section = False
    for line in out.splitlines():
        if line.startswith("Remote Procedure Call statistics by message type"):
            section = True
        elif section and not line.strip():
            break
        elif section and (match := _RPC_LINE.match(line)):
            counts[match.group(1)] += int(match.group(2))
    return counts


def rpc_delta(before: Counter[str] | None, after: Counter[str] | None) -> dict[str, int] | None:
    """RPCs made between two sdiag readings, sdiag's own left out; None when
    either reading is missing or the counters went back (slurmctld restarted)."""
    if before is None or after is None:
        return None
    delta = {kind: after[kind] - before.get(kind, 0) for kind in after if kind != SDIAG_OWN_RPC}
    if any(value < 0 for value in delta.values()):
        return None
    return {kind: value for kind, value in delta.items() if value}


# --- JupyterHub's polling, as the hub drives it ------------------------------


class PollTally:
    """What the spawners' ``poll()`` calls answered."""

    def __init__(self) -> None:
        self.polls = 0
        self.in_flight = 0
        self.errors = 0
        #: job ids a poll called stopped (a non-None status, or an error at
        #: the restart check, which JupyterHub takes as stopped)
        self.stopped: list[str] = []
        self.durations: list[float] = []


def instrument(spawner: Any, job_id: str, tally: PollTally) -> None:
    """Wrap this one spawner's ``poll`` (and batchhub's ``poll_now``) so every
    poll the hub makes is counted; the hub calls ``self.poll()``, so the
    instance attribute wins."""
    original = spawner.poll

    async def poll() -> int | None:
        tally.in_flight += 1
        started = time.perf_counter()
        try:
            status = await original()
        except Exception:
            tally.errors += 1
            raise
        finally:
            tally.in_flight -= 1
            tally.durations.append(time.perf_counter() - started)
        tally.polls += 1
        if status is not None:
            tally.stopped.append(job_id)
        return status

    spawner.poll = poll
    original_now = getattr(spawner, "poll_now", None)
    if original_now is None:
        return

    def poll_now() -> object:
        # batchhub's hub poller asks the cache first; only what it cannot
        # answer, or an ended server, goes on to poll() (counted there)
        started = time.perf_counter()
        status = original_now()
        if status is None:
            tally.polls += 1
            tally.durations.append(time.perf_counter() - started)
        return status

    spawner.poll_now = poll_now


async def restart_check(spawners: Sequence[tuple[str, Any]], tally: PollTally) -> float:
    """JupyterHub's ``init_spawners`` after a restart: the first ``poll()``
    of every running server, all at once (``ensure_future`` + ``gather``).
    Returns the seconds it took."""

    async def check(job_id: str, spawner: Any) -> None:
        try:
            await spawner.poll()
        except Exception:  # the hub: "assuming the spawner is not running"
            tally.stopped.append(job_id)

    started = time.perf_counter()
    futures = [asyncio.ensure_future(check(job_id, spawner)) for job_id, spawner in spawners]
    await asyncio.gather(*futures)
    return time.perf_counter() - started


@dataclass
class Reading:
    """The counters at one instant."""

    time: float
    cpu: float
    counts: Counter[str]
    rpcs: Counter[str] | None

    @classmethod
    def now(cls, counter: Callable[[], Counter[str]], sdiag: str | None) -> Reading:
        return cls(time.perf_counter(), cpu_seconds(), counter(), sdiag_rpcs(sdiag))


async def polling_window(
    spawners: Sequence[Any],
    tally: PollTally,
    *,
    interval: float,
    window: int,
    counter: Callable[[], Counter[str]],
    sdiag: str | None,
) -> dict[str, Any]:
    """Start JupyterHub's own ``Spawner.start_polling()`` on every spawner
    and measure ``window`` intervals of it. ``counter`` says how many
    scheduler commands ran so far, by program.

    Rounds of polls fall near every whole interval after the start, so the
    window runs from half an interval to ``window`` + 0.5 intervals: it
    holds ``window`` rounds, whatever the jitter.
    """
    ticker = LagTicker()
    ticker.start()
    # the ticker's own CPU, measured alone first: it is the bench's, not the tool's
    calibrate = Reading.now(counter, None)
    await asyncio.sleep(2.0)
    ticker_rate = (cpu_seconds() - calibrate.cpu) / (time.perf_counter() - calibrate.time)
    for spawner in spawners:
        spawner.start_polling()
    await asyncio.sleep(interval / 2)
    before, polls_before, durations_before = Reading.now(counter, sdiag), tally.polls, len(tally.durations)
    ticker.reset()
    await asyncio.sleep(interval * window)
    lag_p50, lag_p99 = ticker.p50_ms(), ticker.p99_ms()  # before sdiag blocks the loop
    after, polls = Reading.now(counter, sdiag), tally.polls - polls_before
    for spawner in spawners:
        spawner.stop_polling()
    await ticker.stop()
    durations = tally.durations[durations_before:]
    return {
        "seconds": after.time - before.time,
        "polls": polls,
        "commands": dict(after.counts - before.counts),
        "rpcs": rpc_delta(before.rpcs, after.rpcs),
        "cpu_s": max(0.0, after.cpu - before.cpu - ticker_rate * (after.time - before.time)),
        "ticker_cpu_s": ticker_rate * (after.time - before.time),
        "lag_p50_ms": lag_p50,
        "lag_p99_ms": lag_p99,
        "in_flight_at_end": tally.in_flight,
        "poll_p50_s": percentile(durations, 0.5),
        "poll_max_s": max(durations, default=0.0),
    }
