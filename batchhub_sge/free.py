"""What is free on each Grid Engine queue, from ``qstat -f -F GPU -xml``.

``qstat -g c`` sums slots per cluster queue but cannot show a consumable
such as ``gpu``; the full listing (``-f``) with ``-F gpu`` gives each queue
instance's used, reserved and total slots, its state, and what is left of
the GPU complex, in one call. Grid Engine's own rule holds: an instance in
any state (``a`` load alarm, ``d`` disabled, ``u`` unreachable, ``E``
error, ``s``/``S``/``C`` suspended, ...) takes no new job, so it has
nothing free.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from batchhub.free import Free
from batchhub.jobs import QueryError

from .parse import parse_xml


def _count(text: str) -> int:
    try:
        return max(0, int(float(text)))  # Grid Engine may write 2.000000
    except ValueError:
        raise QueryError(f"Grid Engine printed {text[:40]!r} where a number belongs") from None


def _field(instance: ET.Element, tag: str) -> int:
    found = instance.find(tag)
    return _count((found.text or "").strip()) if found is not None else 0


def parse_free(text: str, gpu_complex: str) -> dict[str, Free]:
    """Free slots (cores) and GPUs by cluster queue name (``all.q``)."""
    root = parse_xml(text)
    if root.tag != "job_info":
        raise QueryError(f"Grid Engine's queue listing has an unexpected root <{root.tag}>")
    sums: dict[str, list[int]] = {}
    gpus_seen: set[str] = set()
    for instance in root.iter("Queue-List"):
        name = (instance.findtext("name") or "").strip()
        queue, at, _host = name.partition("@")
        if not queue or not at:
            raise QueryError(f"Grid Engine listed a queue instance without a name: {name[:80]!r}")
        total = _field(instance, "slots_total")
        blocked = bool((instance.findtext("state") or "").strip())
        free = (
            0 if blocked else max(0, total - _field(instance, "slots_used") - _field(instance, "slots_resv"))
        )
        gpus, per_cluster = 0, False
        for resource in instance.iter("resource"):
            if gpu_complex and resource.get("name") == gpu_complex:
                gpus_seen.add(queue)
                gpus = _count((resource.text or "").strip())
                per_cluster = resource.get("type", "").startswith("g")  # gc: one pool, not per host
        cell = sums.setdefault(queue, [0, 0, 0])
        cell[0] += free
        cell[1] += total
        usable = 0 if blocked or not free else gpus
        cell[2] = max(cell[2], usable) if per_cluster else cell[2] + usable
    return {
        queue: Free(cores=free, total_cores=total, gpus=gpus if queue in gpus_seen else None)
        for queue, (free, total, gpus) in sums.items()
    }
