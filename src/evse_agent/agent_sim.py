"""The agent's face to the mock control API: the station's state as DESIGN.md
promises it, and the API server started late so it never delays boot (a mixin of
`agent.Agent`)."""

from __future__ import annotations

import asyncio
import importlib
from typing import TYPE_CHECKING, Any

from .aio import wait_event
from .ocpp.v16 import V16Adapter

if TYPE_CHECKING:
    from evse_hal.interfaces import HalEvent

    from .config import Config
    from .core import messages as m
    from .core.station import Station
    from .hardware import Hardware
    from .ocpp.v201 import V201Adapter


class SimView:
    cfg: Config
    hw: Hardware
    station: Station
    adapter: V201Adapter | V16Adapter
    _sim: Any  # sim.api.SimServer once started, imported lazily
    _hw_commands: asyncio.Queue[m.Action]
    _hal_events: asyncio.Queue[HalEvent]

    def state(self) -> dict[str, Any]:
        """The whole station for the mock control API (DESIGN.md contract)."""
        snapshot = self.hw.mock.snapshot() if self.hw.mock else {"evses": []}
        hw = {e["evse_id"] if "evse_id" in e else e.get("id"): e for e in snapshot["evses"]}
        evses = []
        for evse_id, e in self.station.evses.items():
            h = self._simulated_values(evse_id, hw.get(evse_id, {}))
            evses.append({
                "id": evse_id,
                "connector_status": e.reported_status or "Available",
                "pilot": h.get("pilot", e.pilot),
                "contactor_closed": bool(h.get("contactor_closed", e.contactor_closed)),
                "offered_current_a": float(h.get("offered_current_a", e.offered_a)),
                "energy_wh": float(h.get("energy_wh", e.reading.energy_wh if e.reading else 0)),
                "power_w": float(h.get("power_w", e.reading.power_w if e.reading else 0)),
                "transaction_id": self._known_transaction_id(e.tx.id) if e.tx else None,
            })
        return {
            "ocpp": {
                "connected": self.adapter.connected,
                "version": self.adapter.version,
                "registration": self.adapter.registration,
            },
            "evses": evses,
            "display": {"text": self.hw.display.text},
        }

    def _simulated_values(self, evse_id: int, values: dict[str, Any]) -> dict[str, Any]:
        """The mock's view of an EVSE minus what real devices measure: those values come
        from the core's last observation (pilot, contactor feedback, meter sample)."""
        devices = self.hw.evses.get(evse_id)
        if devices is None:
            return values
        real = {
            "pilot": ("pilot", "offered_current_a"),
            "contactor": ("contactor_closed",),
            "meter": ("energy_wh", "power_w"),
        }
        out = dict(values)
        for role, keys in real.items():
            if not self.hw.is_simulated(getattr(devices, role)):
                for key in keys:
                    out.pop(key, None)
        return out

    def _known_transaction_id(self, local_id: str) -> str | None:
        """The id the CSMS knows: on 1.6 the integer StartTransaction.conf brought."""
        if not isinstance(self.adapter, V16Adapter):
            return local_id
        assigned = self.adapter.csms_transaction_id(local_id)
        return str(assigned) if assigned is not None else None

    async def _start_sim(self) -> None:
        """The mock control API (aiohttp, ~0.25 s to import) comes up once the first
        BootNotification is answered, or after a second, so it never delays boot."""
        await wait_event(self.adapter.first_answer, 1.0)
        # Imported on a worker thread: the loop keeps talking to the CSMS meanwhile.
        api = await asyncio.to_thread(importlib.import_module, "evse_agent.sim.api")
        SimServer = api.SimServer  # noqa: N806 - a class

        host, port = self.cfg.sim_listen
        self._sim = SimServer(self.hw.mock, self.state, host, port, self._settle)
        await self._sim.start()

    async def _settle(self) -> None:
        """Let the events a mock action produced reach the core and the hardware."""
        for _ in range(3):
            await asyncio.sleep(0)
        while not (self._hw_commands.empty() and self._hal_events.empty()):
            await asyncio.sleep(0.01)
