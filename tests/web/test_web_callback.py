"""The port-report endpoint's rules, without a hub: exactly one integer
port, from the one spawner whose token was presented, once."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from batchhub.callback import Refusal, parse_port_body, report_port


class Spawner:
    """Implements the port-report protocol like the real spawner: accepts
    one port while waiting, then refuses."""

    def __init__(self, token: str | None, waiting: bool = True) -> None:
        self.api_token = token
        self.waiting = waiting
        self.ports: list[int] = []
        self.cmd = ["jupyterhub-singleuser"]

    def batchhub_port_report(self, port: int, peer: str = "") -> bool:
        if not self.waiting:
            return False
        self.waiting = False
        self.ports.append(port)
        return True


class Unaware:
    """A spawner that knows nothing of port reports."""

    api_token = "tok-unaware"


def body(obj) -> bytes:
    return json.dumps(obj).encode()


async def test_accepts_one_port_once():
    mine, other = Spawner("tok-a"), Spawner("tok-b")
    spawner, port = await report_port([other, mine], "tok-a", body({"port": 40000}))
    assert spawner is mine and port == 40000
    assert mine.ports == [40000] and other.ports == []
    with pytest.raises(Refusal) as info:
        await report_port([other, mine], "tok-a", body({"port": 40001}))
    assert info.value.status == 409
    assert mine.ports == [40000]


@pytest.mark.parametrize("port", [1024, 8888, 65535])
def test_port_bounds_accepted(port):
    assert parse_port_body(body({"port": port})) == port


@pytest.mark.parametrize(
    "raw",
    [
        body({"port": 1023}),
        body({"port": 65536}),
        body({"port": 0}),
        body({"port": -1}),
        body({"port": "8888"}),
        body({"port": 8888.0}),
        body({"port": True}),
        body({"port": None}),
        body({"port": [8888]}),
        body({"port": 8888, "cmd": ["sh"]}),
        body({"port": 8888, "ip": "evil"}),
        body({"Port": 8888}),
        body({}),
        body([8888]),
        body(8888),
        b'{"port": 8888, "port": 9999}',
        b"port=8888",
        b"",
        b"\xff\xfe",
        b'{"port": 8888' + b" " * 300 + b"}",
    ],
)
async def test_anything_but_exactly_a_port_is_refused_and_changes_nothing(raw):
    spawner = Spawner("tok")
    with pytest.raises(Refusal) as info:
        await report_port([spawner], "tok", raw)
    assert info.value.status == 400
    assert spawner.ports == [] and spawner.waiting


@given(st.dictionaries(st.text(max_size=8), st.integers() | st.text(max_size=5) | st.none(), max_size=3))
async def test_any_other_object_is_refused(obj):
    spawner = Spawner("tok")
    exact = set(obj) == {"port"} and isinstance(obj["port"], int) and 1024 <= obj["port"] <= 65535
    try:
        await report_port([spawner], "tok", body(obj))
    except Refusal:
        assert not exact and spawner.ports == []
    else:
        assert exact and spawner.ports == [obj["port"]]


@pytest.mark.parametrize("token", [None, "", "tok-b", "tok-a ", "TOK-A", "tok"])
async def test_wrong_or_missing_token_is_refused(token):
    spawner = Spawner("tok-a")
    with pytest.raises(Refusal) as info:
        await report_port([spawner, Spawner(None), Spawner("")], token, body({"port": 9000}))
    assert info.value.status == 403
    assert spawner.ports == []


async def test_not_waiting_is_refused():
    spawner = Spawner("tok", waiting=False)
    with pytest.raises(Refusal) as info:
        await report_port([spawner], "tok", body({"port": 9000}))
    assert info.value.status == 409 and spawner.ports == []


async def test_spawner_without_the_protocol_is_refused():
    with pytest.raises(Refusal) as info:
        await report_port([Unaware()], "tok-unaware", body({"port": 9000}))
    assert info.value.status == 403


async def test_two_spawners_with_one_token_are_refused():
    a, b = Spawner("same"), Spawner("same")
    with pytest.raises(Refusal) as info:
        await report_port([a, b], "same", body({"port": 9000}))
    assert info.value.status == 403 and a.ports == b.ports == []


async def test_refusal_messages_never_echo_the_request():
    secret = "tok-" + "s" * 40
    for raw in (body({"port": 1, secret: 2}), body({"port": secret})):
        with pytest.raises(Refusal) as info:
            await report_port([Spawner(secret)], secret, raw)
        assert secret not in str(info.value)
