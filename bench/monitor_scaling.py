"""Benchmark: the shared job monitor against naive per-job polling.

For N tracked jobs, one monitor tick costs ONE batched status command,
where per-job polling (as older batch spawners do it, one ``poll()`` per
server) costs N commands. This script runs both side by side through real
asyncio, against the fake scheduler, with each command given a simulated
cost (a scheduler command is a process start plus a round trip to the
scheduler's daemon) and the same concurrency cap as ``CommandRunner``.

It also times the real Grid Engine parser on a synthetic 1,000-job
``qstat -xml`` document built from a recorded sample.

Run:  .venv/bin/python bench/monitor_scaling.py [--cost-ms 20] [--max-concurrent 16]

A benchmark prints numbers; it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import platform
import re
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

from batchhub.jobs import Command, CommandResult, JobState
from batchhub.monitor import JobMonitor
from batchhub_fake import FakeBackend, FakeClock, FakeRunner, FakeScheduler

REPO = Path(__file__).resolve().parent.parent
SGE_SAMPLE = REPO / "tests" / "data" / "sge" / "qstat-r-qw-hqw.stdout"


class CostlyRunner(FakeRunner):
    """The fake's runner with a simulated wall-clock cost per command and a
    cap on commands in flight, like ``CommandRunner.max_concurrent``."""

    def __init__(self, scheduler: FakeScheduler, cost: float, max_concurrent: int) -> None:
        super().__init__(scheduler)
        self.cost = cost
        self.slots = asyncio.Semaphore(max_concurrent)

    async def run(self, command: Command) -> CommandResult:
        async with self.slots:
            await asyncio.sleep(self.cost)
            return await super().run(command)


def cluster_with(n: int, cost: float, max_concurrent: int) -> tuple[CostlyRunner, list[str]]:
    """A fake cluster running ``n`` jobs."""
    clock = FakeClock()
    sched = FakeScheduler(clock=clock, slots=n, queue_delay=0.0, start_delay=0.0)
    backend = FakeBackend()
    script = "#FAKE --name=batchhub-user{0} --cores=1\nexec jupyterhub-singleuser\n"
    ids = [sched.submit(script.format(i), f"user{i}") for i in range(n)]
    clock.advance(1.0)
    assert all(job.state is JobState.RUNNING for job in sched.live_jobs())
    assert backend.max_ids_per_query is None or backend.max_ids_per_query >= n
    return CostlyRunner(sched, cost, max_concurrent), ids


async def shared_tick(n: int, cost: float, max_concurrent: int, ticks: int) -> tuple[float, float]:
    """Commands and seconds per tick of the shared monitor."""
    runner, ids = cluster_with(n, cost, max_concurrent)
    monitor = JobMonitor(FakeBackend(), runner)
    for job_id in ids:
        monitor.track(job_id, "someone", starting=False)
    times = []
    for _ in range(ticks):
        started = time.perf_counter()
        await monitor.tick()
        times.append(time.perf_counter() - started)
    assert all(monitor.observation(job_id).state is JobState.RUNNING for job_id in ids)
    return len(runner.commands) / ticks, statistics.median(times)


async def naive_tick(n: int, cost: float, max_concurrent: int, ticks: int) -> tuple[float, float]:
    """Commands and seconds per round of one status command per job."""
    runner, ids = cluster_with(n, cost, max_concurrent)
    backend = FakeBackend()

    async def poll_one(job_id: str) -> JobState:
        result = await runner.run(backend.status_command([job_id]))
        return backend.parse_status(result, [job_id])[job_id].state

    times = []
    for _ in range(ticks):
        started = time.perf_counter()
        states = await asyncio.gather(*(poll_one(job_id) for job_id in ids))
        times.append(time.perf_counter() - started)
        assert all(state is JobState.RUNNING for state in states)
    return len(runner.commands) / ticks, statistics.median(times)


def synthetic_qstat_xml(n: int) -> tuple[str, list[str]] | None:
    """A ``qstat -xml -u '*'`` document of ``n`` jobs, half running and
    half waiting, made by repeating the entries of a recorded sample."""
    if not SGE_SAMPLE.exists():
        return None
    text = SGE_SAMPLE.read_text()
    entry = re.compile(r"[ \t]*<job_list state=\"(\w+)\">.*?</job_list>\n", re.DOTALL)
    blocks = {m.group(1): m.group(0) for m in entry.finditer(text)}
    if "running" not in blocks or "pending" not in blocks or "<queue_info>" not in text:
        return None
    ids = [str(1000 + i) for i in range(n)]

    def numbered(kind: str, job_id: str) -> str:
        return re.sub(r"<JB_job_number>\d+<", f"<JB_job_number>{job_id}<", blocks[kind])

    running = "".join(numbered("running", i) for i in ids[: n // 2])
    pending = "".join(numbered("pending", i) for i in ids[n // 2 :])
    head = text[: text.index("<queue_info>")]
    body = f"<queue_info>\n{running}  </queue_info>\n  <job_info>\n{pending}  </job_info>\n</job_info>\n"
    return head + body, ids


def time_parse(parse, result: CommandResult, ids: Sequence[str], repeat: int = 20) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        found = parse(result, ids)
        times.append(time.perf_counter() - started)
    assert len(found) == len(ids), f"parsed {len(found)} of {len(ids)} jobs"
    return statistics.median(times)


def row(what: str, document: str, seconds: float) -> str:
    return f"| {what} | {len(document) / 1024:.0f} KiB | {seconds * 1000:.2f} ms |"


def parser_rows(n: int) -> list[str]:
    rows = []
    fake = FakeBackend()
    runner, ids = cluster_with(n, 0.0, 1)
    listing = runner.scheduler.execute(fake.status_command(ids))
    seconds = time_parse(fake.parse_status, listing, ids)
    rows.append(row(f"fake listing, {n} jobs", listing.stdout, seconds))
    try:
        from batchhub_sge.backend import SGEBackend
    except ImportError:
        rows.append("| SGE `qstat -xml` | - | skipped: the Grid Engine backend is not installed |")
        return rows
    built = synthetic_qstat_xml(n)
    if built is None:
        rows.append(f"| SGE `qstat -xml` | - | skipped: no sample at {SGE_SAMPLE.relative_to(REPO)} |")
        return rows
    doc, sge_ids = built
    sge = SGEBackend()
    result = CommandResult(sge.status_command(sge_ids), 0, doc)
    seconds = time_parse(sge.parse_status, result, sge_ids)
    rows.append(row(f"SGE `qstat -xml -u '*'`, {n} jobs", doc, seconds))
    return rows


async def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cost-ms", type=float, default=20.0, help="simulated wall time of one command")
    parser.add_argument("--max-concurrent", type=int, default=16, help="commands in flight at once")
    parser.add_argument("--ticks", type=int, default=3, help="ticks measured per size (median reported)")
    parser.add_argument("--sizes", default="10,100,1000", help="numbers of tracked jobs")
    args = parser.parse_args(argv)
    cost = args.cost_ms / 1000
    sizes = [int(s) for s in args.sizes.split(",")]

    print(f"# monitor scaling: {args.cost_ms:g} ms per command, at most {args.max_concurrent} at once")
    print(f"# {platform.python_implementation()} {platform.python_version()}, {platform.machine()}\n")
    print(
        "| jobs | shared: commands/tick | shared: ms/tick | per-job: commands/tick | per-job: ms/tick "
        "| per-job: floor ms | commands ratio | time ratio |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for n in sizes:
        s_cmds, s_time = await shared_tick(n, cost, args.max_concurrent, args.ticks)
        p_cmds, p_time = await naive_tick(n, cost, args.max_concurrent, args.ticks)
        # the least per-job polling can take: full waves of capped commands
        floor = math.ceil(p_cmds / args.max_concurrent) * cost
        print(
            f"| {n} | {s_cmds:g} | {s_time * 1000:.0f} | {p_cmds:g} | {p_time * 1000:.0f} "
            f"| {floor * 1000:.0f} | {p_cmds / s_cmds:.0f}x | {p_time / s_time:.1f}x |"
        )
    print("\n| parser | document | parse time (median) |")
    print("| --- | ---: | ---: |")
    for row in parser_rows(max(sizes)):
        print(row)


if __name__ == "__main__":
    asyncio.run(main())
