"""Checks that a reported port really is this user's server.

A port report carries the server's token, but the job runs the user's own
code, and a node is shared with other users. So before the hub routes a
user's URL to ``host:port`` it checks that the report came from the host
the scheduler runs the job on, and that what answers there is a Jupyter
server serving this user's URL prefix (another user's server answers 404
there, and a stranger's process does not answer as a Jupyter server).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket

from tornado.httpclient import AsyncHTTPClient, HTTPClientError

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _address(text: str) -> Address | None:
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


async def addresses_of(host: str) -> set[Address]:
    """Every address ``host`` resolves to (empty when it does not)."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError:
        return set()
    return {a for info in infos if (a := _address(str(info[4][0]))) is not None}


async def report_from_host(peer: str, host: str) -> bool:
    """Whether the address ``peer`` is one of ``host``'s addresses."""
    address = _address(peer)
    return address is not None and address in await addresses_of(host)


async def serves_prefix(url: str, budget: float) -> str:
    """Ask ``url`` (a server's ``{base_url}api``) until it answers, for up
    to ``budget`` seconds. Returns "" when a Jupyter server answered with
    its version, else what was wrong, for the user."""
    client = AsyncHTTPClient()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + budget
    problem = "nothing answered"
    while True:
        try:
            response = await client.fetch(url, request_timeout=5, follow_redirects=False, raise_error=False)
        except (OSError, HTTPClientError) as exc:  # not listening yet, or reset
            problem = f"nothing answered ({exc})"
        else:
            if response.code == 200:
                try:
                    if "version" in json.loads(response.body):
                        return ""
                except (ValueError, TypeError):
                    pass
                return "the answer was not a Jupyter server's"
            return f"HTTP {response.code}: another server, not yours, listens there"
        if loop.time() + 0.2 > deadline:
            return problem
        await asyncio.sleep(0.2)
