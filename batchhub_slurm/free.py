"""What is free on each Slurm partition, from ONE ``sinfo`` per node.

``sinfo --Node -O PartitionName,StateCompact,CPUsState,Gres,GresUsed``
prints a line per node and partition: its state, its CPUs as
allocated/idle/other/total, and its GRES configured and in use. Idle CPUs
are what a job can still get (drained and down CPUs count as "other"); a
node's GPUs count as free only on a node that takes jobs (idle or mixed,
responding) with an idle CPU left.
"""

from __future__ import annotations

import re

from batchhub.free import Free
from batchhub.jobs import QueryError

#: The ``-O`` format: fields ending in ``|``, no padding.
SINFO_FREE_FORMAT = "PartitionName:|,StateCompact:|,CPUsState:|,Gres:|,GresUsed:|"

#: Node states (without the ``*~#!%$@^-`` flags) in which a node takes new jobs.
_TAKES_JOBS = frozenset({"idle", "mix", "mixed"})
_FLAGS = "*~#!%$@^-+"


def _split_gres(text: str) -> list[str]:
    """``gpu:a100:2(S:0-1),mps:100`` -> its items (commas inside
    parentheses, as in ``IDX:0,2``, do not split)."""
    items, depth, current = [], 0, ""
    for char in text:
        depth += char == "("
        depth -= char == ")"
        if char == "," and depth == 0:
            items.append(current)
            current = ""
        else:
            current += char
    items.append(current)
    return [item.strip() for item in items if item.strip() and item.strip() != "(null)"]


def gres_count(text: str, gres: str) -> int:
    """How many of ``gres`` (``gpu``, or typed ``gpu:a100``) a GRES string
    holds: ``gpu:2``, ``gpu:a100:1(IDX:0)``, ``gpu:a100:2,gpu:v100:1``."""
    name, _, kind = gres.partition(":")
    total = 0
    for item in _split_gres(text):
        parts = re.sub(r"\(.*\)$", "", item).split(":")
        if parts[0] != name or len(parts) < 2:
            continue
        count = parts[-1]
        if not count.isdigit():  # "gpu:a100" alone: one
            parts, count = [*parts, "1"], "1"
        if kind and (len(parts) < 3 or parts[1] != kind):
            continue
        total += int(count)
    return total


def parse_free(text: str, gres: str) -> dict[str, Free]:
    """Free cores and GPUs by partition from ``SINFO_FREE_FORMAT`` lines."""
    sums: dict[str, list[int]] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        fields = line.strip().split("|")
        if len(fields) < 5:
            raise QueryError(f"sinfo printed a line batchhub cannot read: {line[:200]!r}")
        partition, state, cpus, configured, used = (f.strip() for f in fields[:5])
        counts = cpus.split("/")
        if not partition or len(counts) != 4 or not all(c.isdigit() for c in counts):
            raise QueryError(f"sinfo printed a line batchhub cannot read: {line[:200]!r}")
        idle, total = int(counts[1]), int(counts[3])
        gpus_total = gres_count(configured, gres)
        takes_jobs = state.rstrip(_FLAGS) in _TAKES_JOBS and "*" not in state and idle > 0
        gpus_free = max(0, gpus_total - gres_count(used, gres)) if takes_jobs else 0
        cell = sums.setdefault(partition.rstrip("*"), [0, 0, 0, 0])
        cell[0] += idle
        cell[1] += total
        cell[2] += gpus_free
        cell[3] += gpus_total
    return {
        partition: Free(cores=idle, total_cores=total, gpus=gpus, total_gpus=gpus_total)
        for partition, (idle, total, gpus, gpus_total) in sums.items()
    }
