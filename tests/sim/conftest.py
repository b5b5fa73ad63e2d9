"""The `sim` fixture: a running SimServer over a two-EVSE MockHardware."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from simharness import Sim, start_sim, stop_sim


@pytest.fixture
async def sim() -> AsyncIterator[Sim]:
    running = await start_sim()
    try:
        yield running
    finally:
        await stop_sim(running)
