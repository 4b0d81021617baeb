"""Grid Engine's reasons for a waiting job, from recorded ``qstat -j``
answers (tests/data/sge), in plain words."""

from __future__ import annotations

from pathlib import Path

import pytest

from batchhub.jobs import Command, CommandResult
from batchhub_sge.backend import SGEBackend
from batchhub_sge.reasons import BUSY, HELD, RESOURCES, plain_reason

DATA = Path(__file__).resolve().parents[1] / "data" / "sge"
backend = SGEBackend()

#: What the issue's user saw on the spawn page (qstat -j on a loaded 2-core host).
OVERLOADED = (
    'queue instance "all.q@vm" dropped because it is overloaded: np_load_avg=1.855137 '
    "(= 1.390137 + 0.50 * 1.860000 with nproc=2) >= 1.75; All queues dropped because of overload or full"
)


def reasons(name: str, ids: list[str]) -> dict[str, str]:
    def read(ext: str) -> str:
        path = DATA / f"{name}.{ext}"
        return path.read_text() if path.exists() else ""

    result = CommandResult(Command(("qstat",)), int(read("rc") or 0), read("stdout"), read("stderr"))
    return {
        job_id: backend.explain_reason(text) for job_id, text in backend.parse_reasons(result, ids).items()
    }


def test_overloaded_or_full_is_the_cluster_is_busy() -> None:
    assert backend.explain_reason(OVERLOADED) == (
        "The cluster is busy: every queue that fits your request is full or overloaded"
    )
    assert plain_reason('queue instance "all.q@vm" dropped because it is full') == BUSY
    assert reasons("qstat-j-known-unknown", ["25", "999"]) == {"25": BUSY}


def test_recorded_pending_and_held_jobs() -> None:
    found = reasons("qstat-j-pending", ["7", "8"])
    # (-l gpu=3) cannot run at host "vm" because it offers only hc:gpu=1.000000
    assert found["7"] == f"{RESOURCES} (it asks for gpu=3; gpu=1 is free now)"
    assert found["8"] == HELD
    assert found["8"].startswith("Held")


def test_the_listing_s_hold_reason_is_held_too() -> None:
    assert backend.explain_reason("the job is on hold") == HELD


def test_a_job_s_own_error_stays_as_it_is() -> None:
    found = reasons("qstat-j-eqw", ["9", "10"])
    assert found["9"].startswith('can\'t stat() "/root/nope.out" as stdout_path')


@pytest.mark.parametrize(
    ("text", "plain"),
    [
        ('cannot run in PE "smp" because it only offers 0 slots', RESOURCES),
        ('cannot run because it exceeds limit "alice/////" in rule "max_u/1"', "Waiting for resources: your"),
        (
            'queue instance "all.q@vm" dropped because it is temporarily not available',
            "Waiting for resources",
        ),
        ("job dropped because of job dependencies", "Waiting for another job to finish"),
        ("something Grid Engine says that no table knows", "something Grid Engine says"),
    ],
)
def test_other_messages(text: str, plain: str) -> None:
    assert backend.explain_reason(text).startswith(plain)


def test_what_is_short_is_said_in_words() -> None:
    host = '(-l gpu=3) cannot run at host "vm" because it offers only hc:gpu=2.000000'
    assert backend.explain_reason(host) == f"{RESOURCES} (it asks for gpu=3; gpu=2 is free now)"
    cluster = "(-l gpu=9) cannot run globally because it offers only gc:gpu=4.000000"
    assert backend.explain_reason(cluster) == (
        "Your request can never run here: it asks for gpu=9, the cluster has gpu=4 in all"
    )


@pytest.mark.parametrize(
    "text",
    [
        OVERLOADED,
        "Job is in hold state",
        'cannot run in PE "smp" because it only offers 0 slots',
        '(-l gpu=3) cannot run at host "vm" because it offers only hc:gpu=2.000000',
    ],
)
def test_plain_words_stay_plain(text: str) -> None:
    once = backend.explain_reason(text)
    assert backend.explain_reason(once) == once
