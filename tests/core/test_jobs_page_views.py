"""What the jobs page makes of a server, without a hub: a remembered job
from the saved state, whatever that state holds, and odd times and node
lists that never take the page down."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from batchhub.jobs_page import describe, parse_times, server_views, shown_nodes, utc


def stand_in(last_job: Any) -> SimpleNamespace:
    """A stopped server as the page sees it: no job in this hub process,
    ``last_job`` from its saved state."""
    return SimpleNamespace(
        user=SimpleNamespace(name="alice"),
        name="",
        backend="sge",
        active=False,
        ready=False,
        server=None,
        _controller=None,
        _saved_state={},
        last_job=last_job,
        resource_request=lambda: (_ for _ in ()).throw(ValueError("no options")),
    )


def test_a_remembered_failed_job_is_shown_failed_with_when_it_ended() -> None:
    saved = {"job_id": "42", "backend": "sge", "failure": "Job 42 failed: no licence", "ended": 1_700_000_000}
    view = describe(stand_in(saved), now=1_700_000_100)
    assert view is not None
    assert (view.job_id, view.state, view.failure) == ("42", "failed", "Job 42 failed: no licence")
    assert view.ended == "2023-11-14 22:13:20 UTC"


@pytest.mark.parametrize(
    "saved",
    [
        {"job_id": "42", "ended": "yesterday"},
        {"job_id": "42", "ended": float("nan")},
        {"job_id": "42", "ended": float("inf")},
        {"job_id": "42", "ended": 1e20},
        {"job_id": "42", "ended": [1]},
        {"job_id": "42", "ended": True},
        {"job_id": "42", "failure": None, "message": 7},
    ],
)
def test_odd_saved_times_show_no_time_and_no_error(saved: dict[str, Any]) -> None:
    view = describe(stand_in(saved), now=1_700_000_100)
    assert view is not None and view.job_id == "42" and view.ended == ""


@pytest.mark.parametrize("saved", [None, {}, [], "42", {"job_id": ""}])
def test_no_remembered_job_no_entry(saved: Any) -> None:
    assert describe(stand_in(saved), now=1_700_000_100) is None


async def test_a_server_the_page_cannot_describe_leaves_the_others_shown() -> None:
    broken = stand_in({"job_id": "1"})
    broken.user = None  # anything describe() trips on
    views = await server_views([broken, stand_in({"job_id": "2", "ended": 1_700_000_000})], read=False)
    assert [view.job_id for view in views] == ["2"]


def test_times_beyond_any_clock_are_not_read() -> None:
    assert parse_times("[batchhub-times start=99999999999999999999 end=-]") is None
    assert utc(1e20) == "" and utc(float("nan")) == "" and utc(None) == ""


def test_nodes_left_out_are_said_in_words() -> None:
    assert shown_nodes(["a", "b", "+998"]) == ["a", "b", "and 998 more"]
    assert shown_nodes(["vm", "vm2"]) == ["vm", "vm2"]
