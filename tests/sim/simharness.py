"""A SimServer on a free port, backed by a real MockHardware on a FakeClock, with a
state provider shaped like the agent's (built here from the mock's snapshot).

A plain module rather than conftest.py content: the tests import its helpers, and
tests/ has no packages to import a conftest through."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import aiohttp
from evse_hal.clock import FakeClock
from evse_hal.interfaces import HalEvent
from evse_hal.mock import MockHardware

from evse_agent.sim.api import SimServer


def station_state(hardware: MockHardware) -> dict[str, Any]:
    """The /api/state document as the contract defines it; connector status is derived
    from the pilot alone, which is all a test without an agent can know."""
    snapshot = hardware.snapshot()
    evses = [
        {
            "id": e["id"],
            "connector_status": "Available" if e["pilot"] == "A" else "Occupied",
            "pilot": e["pilot"],
            "contactor_closed": e["contactor_closed"],
            "offered_current_a": e["offered_current_a"],
            "energy_wh": e["energy_wh"],
            "power_w": e["power_w"],
            "transaction_id": None,
        }
        for e in snapshot["evses"]
    ]
    return {
        "ocpp": {"connected": False, "version": "2.0.1", "registration": None},
        "evses": evses,
        "display": snapshot["display"],
    }


@dataclass
class Sim:
    hardware: MockHardware
    clock: FakeClock
    server: SimServer
    url: str
    http: aiohttp.ClientSession
    events: list[HalEvent] = field(default_factory=list)
    after_action_calls: list[int] = field(default_factory=list)


async def start_sim(poll_interval_s: float = 1.0) -> Sim:
    clock = FakeClock()
    hardware = MockHardware(2, clock)
    events: list[HalEvent] = []
    await hardware.start(events.append)
    calls: list[int] = []

    async def after_action() -> None:
        # Records how many events the agent would have had to process by now.
        calls.append(len(events))

    server = SimServer(
        hardware,
        lambda: station_state(hardware),
        "127.0.0.1",
        0,
        after_action,
        poll_interval_s=poll_interval_s,
    )
    port = await server.start()
    http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
    return Sim(hardware, clock, server, f"http://127.0.0.1:{port}", http, events, calls)


async def stop_sim(sim: Sim) -> None:
    await sim.http.close()
    await sim.server.stop()
    await sim.hardware.stop()
