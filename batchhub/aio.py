"""One asyncio helper the core needs in several places."""

from __future__ import annotations

import asyncio


async def wait_event(event: asyncio.Event, timeout: float) -> bool:
    """Wait until ``event`` is set or ``timeout`` seconds pass; True if set.

    Used instead of ``asyncio.wait_for(event.wait(), timeout)``: before
    Python 3.12 that can swallow a cancellation arriving as the event is
    set, and a loop that survives its cancellation hangs the hub's shutdown
    (JupyterHub cancels every task and waits for each to end)."""
    if event.is_set():
        return True
    waiter = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait({waiter}, timeout=max(0.0, timeout))
    finally:
        waiter.cancel()
    return event.is_set()
