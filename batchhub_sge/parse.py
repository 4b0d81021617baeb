"""Pure parsers of Grid Engine's output: ``qstat -xml`` listings, ``qstat
-j -xml`` details, and the texts of ``qsub`` and ``qdel``.

Nothing here runs a command. Every function takes text and returns values
or raises; ``QueryError`` means "the scheduler's answer could not be
trusted", which the monitor treats as unknown, never as a job's end.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from batchhub.jobs import CancelOutcome, JobState, QueryError, SubmitError

# --- state letters -----------------------------------------------------------

#: Letter groups in order of precedence: the first group found in a job's
#: ``<state>`` decides. ``Eqw`` is an error (it waits forever), ``dr`` is
#: being deleted although it still runs, ``hr`` runs although held.
_PRECEDENCE: tuple[tuple[str, JobState], ...] = (
    ("E", JobState.FAILED),
    ("d", JobState.STOPPING),
    ("sST", JobState.SUSPENDED),
    ("r", JobState.RUNNING),
    ("t", JobState.STARTING),
    ("h", JobState.HELD),
    ("qw", JobState.PENDING),
    ("z", JobState.COMPLETED),
)

# No default for `E`: the job's own error (from `qstat -j`) is the reason,
# and the monitor only asks for reasons the listing did not give.
_STATE_REASONS = {
    "d": "the job is being deleted",
    "s": "the job was suspended",
    "S": "the job's queue is suspended",
    "T": "the job's queue is suspended because a load threshold was reached",
    "h": "the job is on hold",
}


def state_of(letters: str) -> JobState | None:
    """The common state for Grid Engine's state letters, or ``None`` when
    none of the letters is known."""
    for group, state in _PRECEDENCE:
        if any(letter in letters for letter in group):
            return state
    return None


def default_reason(letters: str) -> str:
    """A short sentence for states whose letters alone say why."""
    for letter in "dsSTh":
        if letter in letters:
            return _STATE_REASONS[letter]
    return ""


# --- safe XML -------------------------------------------------------------------

_FORBIDDEN = re.compile(r"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


def _check_document(text: str) -> None:
    """Refuse an empty answer, and any document type declaration: Grid
    Engine never sends one, and entity definitions are how XML bombs and
    external-entity tricks work."""
    if not text.strip():
        raise QueryError("Grid Engine answered with nothing")
    if _FORBIDDEN.search(text):
        raise QueryError("Grid Engine's answer holds a DOCTYPE or ENTITY declaration; refusing to parse it")


def parse_xml(text: str) -> ET.Element:
    """Parse Grid Engine XML with the standard library, after
    ``_check_document``."""
    _check_document(text)
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise QueryError(f"Grid Engine's XML could not be read ({exc}): {text[:200]!r}") from None
    if root.tag == "comunication_error":  # sic: Grid Engine's own spelling
        raise QueryError(f"Grid Engine is not reachable: {_text(root, 'AN_text') or 'communication error'}")
    return root


#: Characters fed to the XML parser at a time: the parser holds the
#: interpreter lock for a whole piece, so small pieces let the hub's event
#: loop run between them while a worker thread reads a large listing.
PIECE = 64 * 1024


def _text(element: ET.Element, tag: str) -> str:
    found = element.find(tag)
    return (found.text or "").strip() if found is not None else ""


# --- qstat -xml -------------------------------------------------------------------


@dataclass(frozen=True)
class ListedJob:
    """One ``<job_list>`` entry of ``qstat -xml``."""

    job_id: str
    letters: str
    name: str
    owner: str
    queue: str  # "all.q@node" while placed, "" while waiting

    @property
    def host(self) -> str | None:
        _, at, host = self.queue.partition("@")
        return (host or None) if at else None


def parse_listing(text: str) -> list[ListedJob]:
    """Every job of a ``qstat -xml`` (or ``qstat -s z -xml``) document.

    Raises ``QueryError`` for anything but a complete ``<job_info>``
    document whose entries each carry a job number and state letters.

    A busy cluster's listing is megabytes: it is read as a stream, in
    pieces, each entry dropped once read, so no tree of the whole document
    is built (building one takes the interpreter lock for long garbage
    collections, stalling the hub's event loop even from a worker thread).
    """
    _check_document(text)
    parser = ET.XMLPullParser(events=("start", "end"))
    root = ""
    jobs = []
    try:
        for start in range(0, len(text) + PIECE, PIECE):
            if start < len(text):
                parser.feed(text[start : start + PIECE])
            else:
                parser.close()  # a truncated document fails here
            for event, element in parser.read_events():
                if not root:
                    root = element.tag
                    if root == "comunication_error":
                        parse_xml(text)  # raises, with Grid Engine's own words
                    if root != "job_info":
                        raise QueryError(f"Grid Engine's status listing has an unexpected root <{root}>")
                elif event == "end" and element.tag == "job_list":
                    jobs.append(_listed_job(element))
                    element.clear()
    except ET.ParseError as exc:
        raise QueryError(f"Grid Engine's XML could not be read ({exc}): {text[:200]!r}") from None
    return jobs


def _listed_job(entry: ET.Element) -> ListedJob:
    job_id, letters = _text(entry, "JB_job_number"), _text(entry, "state")
    if not job_id.isdigit() or not letters:
        raise QueryError(f"Grid Engine listed a job without number or state: {ET.tostring(entry)[:200]!r}")
    return ListedJob(
        job_id, letters, _text(entry, "JB_name"), _text(entry, "JB_owner"), _text(entry, "queue_name")
    )


# --- qstat -j ID,ID -xml -------------------------------------------------------------

_QIM_PREFIX = re.compile(r"^\d\d/\d\d/\d{4} \d\d:\d\d:\d\d \[[\d:]+\]: ")
_QIM_TAIL = re.compile(r"\s+KRB5CCNAME=.*$")


def _clean_error(message: str) -> str:
    """``11/25/2026 22:35:15 [2001:20441]: can't stat() "/x" as stdout_path:
    Permission denied KRB5CCNAME=none uid=...`` -> the middle part."""
    return _QIM_TAIL.sub("", _QIM_PREFIX.sub("", message.strip())).strip()


#: The scheduler's note that a queue is not in the job's own ``-q`` list.
_NOT_ASKED_FOR = re.compile(r"because it is not contained in its hard queue list")


def parse_details(text: str, job_ids: Sequence[str]) -> dict[str, str]:
    """Why each job waits or failed, from ``qstat -j ID,... -xml``.

    A job's own error (the reason for ``Eqw``) comes first, then the
    scheduler's messages for it; global messages apply to every described
    job that has none of its own. Unknown jobs get no reason.
    """
    root = parse_xml(text)
    if root.tag == "unknown_jobs":
        return {}
    if root.tag != "detailed_job_info":
        raise QueryError(f"Grid Engine's job details have an unexpected root <{root.tag}>")
    wanted = set(job_ids)
    found: dict[str, list[str]] = {}

    def add(job_id: str, message: str) -> None:
        if _NOT_ASKED_FOR.search(message):
            return  # a queue the job did not ask for is not why it waits
        if job_id in wanted and message and message not in found.setdefault(job_id, []):
            found[job_id].append(message)

    known: set[str] = set()  # jobs the answer describes (not the unknown ones)
    for job in root.findall("./djob_info/element"):
        job_id = _text(job, "JB_job_number")
        known.add(job_id)
        for qim in job.iter("QIM_message"):
            add(job_id, _clean_error(qim.text or ""))
    global_messages: list[str] = []
    # Scheduler messages (<SME_message_list>, <SME_global_message_list>):
    # those naming jobs belong to them, the others to every job.
    for message in root.iter("element"):
        text_ = _text(message, "MES_message")
        if not text_:
            continue
        ids = [(v.text or "").strip() for v in message.iter("ULNG_value")]
        if ids:
            for job_id in ids:
                add(job_id, text_)
        else:
            global_messages.append(text_)
    reasons = {job_id: "; ".join(messages)[:1000] for job_id, messages in found.items()}
    if global_messages:
        shared = "; ".join(dict.fromkeys(m for m in global_messages if m))[:1000]
        for job_id in (wanted & known) - reasons.keys():
            reasons[job_id] = shared
    return reasons


# --- qsub -terse -----------------------------------------------------------------------

_JOB_ID = re.compile(r"^(\d+)(?:\.\S+)?$")
_UNABLE = re.compile(r"Unable to run job:\s*(.*)")
_COMMLIB = re.compile(
    r"commlib error|unable to (send|contact|receive) .*qmaster|cannot connect", re.IGNORECASE
)

#: Grid Engine's terse refusals, said so a user knows what to change.
_EXPLAIN: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"no suitable queues"),
        "no queue can ever run a job this size: ask for fewer cores, less memory or fewer GPUs, "
        "or choose another queue",
    ),
    (re.compile(r'unknown queue "([^"]*)"'), 'the queue "{0}" does not exist: choose another queue'),
    (re.compile(r'unknown resource "([^"]*)"'), 'the cluster has no resource "{0}": tell the administrator'),
    (
        re.compile(r'parallel environment "([^"]*)" does not exist'),
        'the parallel environment "{0}" does not exist: tell the administrator',
    ),
    (re.compile(r'project "([^"]*)" does not exist'), 'the project "{0}" does not exist: choose another'),
    (
        re.compile(r"user id \d+ is lower than minimum user id"),
        "this account may not submit jobs (its user id is below the cluster's minimum)",
    ),
)


def submitted_job_id(returncode: int, stdout: str, stderr: str) -> str:
    """The job id ``qsub -terse`` printed, or ``SubmitError`` with a
    message for the user."""
    if returncode == 0:
        lines = [line.strip() for line in stdout.splitlines() if line.strip()]
        match = _JOB_ID.match(lines[0]) if lines else None
        if match:
            return match.group(1)
        raise SubmitError(
            f"Grid Engine accepted the submission but printed no job id: {stdout.strip()[:200]!r}"
        )
    text = f"{stderr}\n{stdout}"
    if _COMMLIB.search(text):
        raise SubmitError(
            "The scheduler (Grid Engine) is not reachable right now. Please try again in a minute."
        )
    match = _UNABLE.search(text)
    why = (match.group(1) if match else " ".join(text.split())[:300]).strip()
    why = re.sub(r"^(job rejected:|error:)\s*", "", why, flags=re.IGNORECASE)
    for pattern, explanation in _EXPLAIN:
        found = pattern.search(why)
        if found:
            why = explanation.format(*found.groups())
            break
    raise SubmitError(f"The scheduler refused the job: {why or f'qsub exited {returncode}'}")


# --- qdel ---------------------------------------------------------------------------------

_CANCEL_PATTERNS: tuple[tuple[re.Pattern[str], CancelOutcome], ...] = (
    (re.compile(r"has registered the job (\d+) for deletion"), CancelOutcome.REQUESTED),
    (re.compile(r"has deleted job (\d+)"), CancelOutcome.REQUESTED),
    (re.compile(r"job (\d+) is already in deletion"), CancelOutcome.REQUESTED),
    (re.compile(r'job "(\d+)" does not exist'), CancelOutcome.ALREADY_GONE),
    (re.compile(r'necessary privileges to delete the job "(\d+)"'), CancelOutcome.DENIED),
)


def cancel_outcomes(lines: Iterable[str], job_ids: Sequence[str]) -> dict[str, CancelOutcome]:
    """What ``qdel`` said about each job; a job it did not mention is
    ``FAILED`` (it may still be live)."""
    outcomes = dict.fromkeys(job_ids, CancelOutcome.FAILED)
    for line in lines:
        for pattern, outcome in _CANCEL_PATTERNS:
            match = pattern.search(line)
            if match and match.group(1) in outcomes:
                outcomes[match.group(1)] = outcome
    return outcomes
