"""The agent's hardware side: core actions to devices on one worker, HAL events in
order into the core, and the meter polling (a mixin of `agent.Agent`)."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from evse_hal.interfaces import DeviceError, DeviceFault, HalEvent, PilotChanged

from .agent_link import _reason
from .aio import wait_event
from .core import messages as m
from .ocpp.iso15118 import ISO15118_EVENTS, refuse_on_16
from .ocpp.v201 import V201Adapter

if TYPE_CHECKING:
    from .core.station import RequestResult, Station
    from .device_model.live import LiveFeed
    from .hardware import Hardware
    from .ocpp.v16 import V16Adapter

log = logging.getLogger("evse_agent")

METER_OFFLINE = "offline"  # the DeviceFault of a meter without a reading (as the HAL's)


class HardwareLoops:
    hw: Hardware
    station: Station
    live: LiveFeed
    adapter: V201Adapter | V16Adapter
    _hw_commands: asyncio.Queue[m.Action]
    _hal_events: asyncio.Queue[HalEvent]
    _meter_wake: asyncio.Event
    _statuses: dict[tuple[int, int], m.ConnectorStatus]
    _meter_faults: set[int]

    if TYPE_CHECKING:  # provided by Agent and CsmsLink
        def feed(self, event: m.Event) -> RequestResult | None: ...
        def schedule_restart(self) -> None: ...
        def _ev_bridge(self, evse_id: int) -> Any: ...

    # -- dispatch ------------------------------------------------------------------
    def _dispatch(self, actions: list[m.Action]) -> None:
        for a in actions:
            match a:
                case m.TransactionEventAction():
                    log.info(
                        "transaction %s %s seq %d (%s)",
                        a.transaction_id[:8], a.event_type, a.seq_no, a.trigger_reason,
                    )
                    self.adapter.transaction_event(a)
                case m.ConnectorStatus():
                    log.info("EVSE %d connector %s", a.evse_id, a.status)
                    self._statuses[(a.evse_id, a.connector_id)] = a
                    self.live.connector_status(a.evse_id, a.connector_id, a.status)
                    self.adapter.connector_status(a)
                case m.SendAuthorize():
                    self.adapter.authorize(a)
                case m.SendMeterValues():
                    self.adapter.meter_values(a)
                case m.RestartStation():
                    log.info("all transactions ended: restarting")
                    asyncio.get_running_loop().call_later(0.5, self.schedule_restart)
                case m.Log():
                    log.info("%s %s", a.text, a.fields or "")
                case m.ShowText():
                    self.live.display_text(a.text)
                    self._hw_commands.put_nowait(a)
                case _:
                    self._hw_commands.put_nowait(a)

    async def _hardware_worker(self) -> None:
        while True:
            a = await self._hw_commands.get()
            try:
                match a:
                    case m.OfferCurrent():
                        await self.hw.evses[a.evse_id].pilot.set_offered_current(a.amps)
                    case m.CloseContactor():
                        log.info("EVSE %d contactor close", a.evse_id)
                        await self.hw.evses[a.evse_id].contactor.close()
                    case m.OpenContactor():
                        log.info("EVSE %d contactor open", a.evse_id)
                        await self.hw.evses[a.evse_id].contactor.open()
                    case m.ReleaseConnector():
                        await self.hw.evses[a.evse_id].lock.unlock()
                    case m.ShowText():
                        await self.hw.display.show(a.text)
            except DeviceError as err:
                log.error("%s", err)
            except Exception as err:  # a backend bug must not end the worker
                device = _device_of(a)
                log.error("%s on EVSE %s failed: %s", device, getattr(a, "evse_id", 0),
                          _reason(err))
                log.debug("%s failed", type(a).__name__, exc_info=True)
                self.feed(DeviceFault(device, getattr(a, "evse_id", 0), "internal error"))

    def _hal_event(self, event: HalEvent) -> None:
        self._hal_events.put_nowait(event)

    async def _hal_worker(self) -> None:
        """HAL events in the order they happened. A plug or unplug is preceded by a
        fresh meter reading, so a transaction begins and ends on the exact register."""
        while True:
            event = await self._hal_events.get()
            if isinstance(event, PilotChanged) and event.evse_id in self.hw.evses:
                await self._read_meter(event.evse_id)
            if isinstance(event, ISO15118_EVENTS):  # certificates: the adapter's business
                if isinstance(self.adapter, V201Adapter):
                    contract = self.adapter.iso15118.hal_event(event)
                    if contract is not None:
                        self.feed(contract)
                else:
                    refuse_on_16(event, self._ev_bridge(event.evse_id))
                continue
            self.feed(event)
            self._meter_wake.set()  # something moved: poll at the busy rate now

    # -- meters ------------------------------------------------------------------------
    async def _meters(self) -> None:
        """Poll meters: every second while an EV is plugged, else every 30 s."""
        while True:
            await self._read_meters()
            busy = any(e.plugged or e.tx for e in self.station.evses.values())
            self._meter_wake.clear()
            await wait_event(self._meter_wake, 1.0 if busy else 30.0)

    async def _read_meters(self) -> None:
        if self.hw.mock is not None:
            self.hw.mock.sync()
        for evse_id in self.hw.evses:
            await self._read_meter(evse_id)

    async def _read_meter(self, evse_id: int) -> None:
        meter = self.hw.evses[evse_id].meter
        try:
            reading = await meter.read()
        except DeviceError as err:
            if evse_id not in self._meter_faults:
                # Fed at once, so the event that asked for this reading (an unplug) is
                # handled without the old register. A backend that supervises itself
                # reports the same "offline" fault (one fault per outage: a repeat of an
                # active fault is no news to the core or monitoring) and logs it itself.
                own = getattr(meter, "reports_faults", False)
                log.log(logging.DEBUG if own else logging.ERROR, "%s", err)
                self._meter_faults.add(evse_id)
                self.feed(DeviceFault("meter", evse_id, METER_OFFLINE))
            return
        if evse_id in self._meter_faults:
            self._meter_faults.discard(evse_id)
            self.feed(DeviceFault("meter", evse_id, METER_OFFLINE, active=False))
        self.feed(m.MeterSampled(evse_id, reading))


def _device_of(action: m.Action) -> str:
    """The HAL device a hardware command drives (DeviceFault.device)."""
    return {m.OfferCurrent: "pilot", m.CloseContactor: "contactor",
            m.OpenContactor: "contactor", m.ReleaseConnector: "lock",
            m.ShowText: "display"}.get(type(action), "hardware")
