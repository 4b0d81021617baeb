"""Grid Engine's reasons for a waiting job, in plain words.

The scheduler explains a waiting job in ``qstat -j`` messages written for
admins ('queue instance "all.q@vm" dropped because it is overloaded:
np_load_avg=1.85 (= ...) >= 1.75; All queues dropped because of overload
or full'). ``plain_reason`` turns them into the words every backend shares
("The cluster is busy: ..."); the hub logs the scheduler's own text beside
them. The first pattern that matches decides, so the table is in order of
what matters most to the user.
"""

from __future__ import annotations

import re

BUSY = "The cluster is busy: every queue that fits your request is full or overloaded"
RESOURCES = "Waiting for resources: the cores, memory or GPUs it asks for are in use"
HELD = "Held: the job is on hold; its owner or an admin can release it (qrls)"

#: (pattern, plain words), first match wins.
TABLE: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"Job is in hold state|job is on hold|^Held\b", re.IGNORECASE), HELD),
    (
        re.compile(
            r"dropped because it is (overloaded|full)|All queues dropped because of overload or full"
            r"|is in suspend alarm|^The cluster is busy",
            re.IGNORECASE,
        ),
        BUSY,
    ),
    (
        re.compile(r"unfinished predecessor|dropped because of job dependencies", re.IGNORECASE),
        "Waiting for another job to finish",
    ),
    (
        re.compile(r"exceeds limit|dropped because of user limitations", re.IGNORECASE),
        "Waiting for resources: your jobs have reached one of the cluster's limits",
    ),
    (
        re.compile(r"dropped because it is (disabled|temporarily not available|suspended)", re.IGNORECASE),
        "Waiting for resources: the queues that fit your request are disabled or unavailable",
    ),
    (
        re.compile(
            r"cannot run (at host|in queue|in PE|on host)\b.*because it (offers only|only offers)"
            r"|resources requested are not available|^Waiting for resources",
            re.IGNORECASE,
        ),
        RESOURCES,
    ),
)


#: "(-l gpu=3) cannot run at host "vm" because it offers only hc:gpu=2.000000":
#: what was asked and what is left (hc: host, qc: queue, gc: global value).
SHORT_OF = re.compile(
    r"\(-l ([^)]+)\) cannot run (globally|at host \S+|in queue \S+).*?because it offers only "
    r"(?:[a-z]{2}:)?([\w.-]+)=([\d.]+)"
)


def _shortfall(text: str) -> str:
    """What the job asks for and what the scheduler has left, in words, or ""."""
    match = SHORT_OF.search(text)
    if not match:
        return ""
    asked, where, name, left = match.groups()
    left = left.rstrip("0").rstrip(".") or "0"
    if where == "globally":  # the whole cluster has no more than that
        return f"Your request can never run here: it asks for {asked}, the cluster has {name}={left} in all"
    return f"{RESOURCES} (it asks for {asked}; {name}={left} is free now)"


def plain_reason(text: str) -> str:
    """Plain words for Grid Engine's messages about a waiting job; any
    other text (a job's own error, for ``Eqw``) is returned as it is."""
    for pattern, plain in TABLE:
        if pattern.search(text):
            if text.startswith(plain):  # already in plain words (with any detail)
                return text
            return (_shortfall(text) or plain) if plain is RESOURCES else plain
    return _shortfall(text) or text
