"""Small asyncio helpers."""

from __future__ import annotations

import asyncio


async def wait_event(event: asyncio.Event, timeout: float | None) -> bool:
    """Wait for `event` at most `timeout` seconds; True when it was set.

    asyncio.timeout rather than wait_for: on Python 3.11, wait_for can swallow a
    cancellation that arrives as the event fires, and a loop around it then never
    stops (SIGTERM would hang the agent).
    """
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
        return True
    except TimeoutError:
        return False
