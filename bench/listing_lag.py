"""Benchmark: does reading a busy cluster's status listing stall the hub?

The hub serves every page from one event loop, and the shared monitor
reads the scheduler's answer on it. This script builds Grid Engine's
``qstat -xml`` listing of a busy cluster (20,000 jobs by default, 1,000 of
them tracked by the hub), runs real monitor ticks on it while a ticker task
measures how late the loop wakes it (the lag a user's page would see), and
compares three ways of parsing:

- inline: on the event loop (what every tick did before);
- thread, one feed: in a worker thread, the whole document given to the
  XML parser at once (the parser holds the interpreter lock throughout);
- thread, in pieces: in a worker thread, fed 64 KiB at a time (batchhub's
  way), so the loop runs between pieces.

Run:  .venv/bin/python bench/listing_lag.py [--jobs 20000] [--ours 1000] [--ticks 5]

A benchmark prints numbers; it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import platform
import statistics
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from monitor_scaling import synthetic_qstat_xml

from batchhub.jobs import Command, CommandResult, JobState
from batchhub.monitor import JobMonitor
from batchhub_sge import parse
from batchhub_sge.backend import SGEBackend


class ListingRunner:
    """Answers every status command with the same recorded-style listing."""

    def __init__(self, document: str) -> None:
        self.document = document

    async def run(self, command: Command) -> CommandResult:
        await asyncio.sleep(0)
        return CommandResult(command, 0, self.document)


async def ticker(lags: list[float], stop: asyncio.Event, period: float = 0.005) -> None:
    """Sleeps ``period`` again and again, recording how late each wake is."""
    while not stop.is_set():
        started = time.perf_counter()
        await asyncio.sleep(period)
        lags.append(time.perf_counter() - started - period)


@contextlib.contextmanager
def piece_size(size: int) -> Iterator[None]:
    saved = parse.PIECE
    parse.PIECE = size
    try:
        yield
    finally:
        parse.PIECE = saved


async def measure(document: str, ours: Sequence[str], in_thread: bool, ticks: int) -> tuple[float, ...]:
    """Seconds per tick (median) and loop lag p50, p99 and max."""
    monitor = JobMonitor(
        SGEBackend(), ListingRunner(document), parse_in_thread_bytes=0 if in_thread else len(document) + 1
    )
    for job_id in ours:
        monitor.track(job_id, "someone", starting=False)
    lags: list[float] = []
    stop = asyncio.Event()
    watch = asyncio.ensure_future(ticker(lags, stop))
    await asyncio.sleep(0.05)
    times = []
    for _ in range(ticks):
        started = time.perf_counter()
        await monitor.tick()
        times.append(time.perf_counter() - started)
        await asyncio.sleep(0.02)
    stop.set()
    await watch
    assert all(monitor.observation(job_id).state is not JobState.LOST for job_id in ours)
    lags.sort()
    return (
        statistics.median(times),
        lags[len(lags) // 2],
        lags[min(len(lags) - 1, int(len(lags) * 0.99))],
        lags[-1],
    )


async def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=20000, help="jobs in the cluster's listing")
    parser.add_argument("--ours", type=int, default=1000, help="of them, jobs the hub tracks")
    parser.add_argument("--ticks", type=int, default=5, help="monitor ticks measured per way")
    args = parser.parse_args(argv)
    built = synthetic_qstat_xml(args.jobs)
    if built is None:
        sys.exit("the recorded Grid Engine sample is missing (tests/data/sge)")
    document, ids = built
    step = max(1, len(ids) // args.ours)
    ours = ids[::step][: args.ours]

    print(f"# Grid Engine listing: {args.jobs} jobs ({len(document) / 2**20:.1f} MiB), {len(ours)} tracked")
    print(f"# {platform.python_implementation()} {platform.python_version()}, {platform.machine()}\n")
    print("| parsing | ms per tick | loop lag p50 ms | loop lag p99 ms | loop lag max ms |")
    print("| --- | ---: | ---: | ---: | ---: |")
    ways = (("inline (on the event loop)", False, parse.PIECE), ("thread, one feed", True, len(document)))
    ways += (("thread, in 64 KiB pieces", True, parse.PIECE),)
    for label, in_thread, size in ways:
        with piece_size(size):
            tick, p50, p99, worst = await measure(document, ours, in_thread, args.ticks)
        print(f"| {label} | {tick * 1000:.0f} | {p50 * 1000:.1f} | {p99 * 1000:.1f} | {worst * 1000:.1f} |")


if __name__ == "__main__":
    asyncio.run(main())
