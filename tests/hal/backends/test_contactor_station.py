"""A GPIO contactor (gpiozero MockFactory) wired to the sans-I/O core, dispatching the
core's contactor actions as the agent does: a contactor that does not follow makes the
EVSE Faulted, opens the coil and refuses the next session (issue 7 item 3; connector
status Faulted as in OCPP 2.0.1 Part 2 G01 / 1.6 PowerSwitchFailure)."""

from __future__ import annotations

import itertools

from evse_hal.backends.contactor import GpioContactor
from evse_hal.backends.gpiozero_contactor import create
from evse_hal.clock import FakeClock
from evse_hal.interfaces import DeviceFault, HalEvent, PilotChanged, TokenPresented
from gpiozero.pins.mock import MockFactory

from evse_agent.core import messages as m
from evse_agent.core.station import Station
from evse_agent.core.status16 import connector_status
from evse_agent.device_model.model import DeviceModel

COIL, FEEDBACK = 17, 27


class Bench:
    """Station + contactor; HAL events are queued by emit and fed to the core, the
    core's contactor actions are awaited on the device, as the agent's loops do."""

    def __init__(self, factory: MockFactory) -> None:
        self.factory = factory
        self.clock = FakeClock()
        dm = DeviceModel()
        dm.load_standard()
        ids = (f"tx-{n}" for n in itertools.count(1))
        self.station = Station(1, dm, lambda: next(ids))
        self.contactor: GpioContactor = create(
            {"pin": COIL, "feedback_pin": FEEDBACK, "input_bias": "none"}, 1, self.clock
        )
        self.pending: list[HalEvent] = []
        self.actions: list[m.Action] = []

    async def feed(self, event: m.Event) -> None:
        queue: list[m.Event] = [event]
        while queue:
            out = self.station.handle(queue.pop(0), self.clock.now())
            self.actions += out
            for action in out:
                if isinstance(action, m.CloseContactor):
                    await self.contactor.close()
                elif isinstance(action, m.OpenContactor):
                    await self.contactor.open()
            queue += self.pending
            self.pending.clear()

    async def after(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.contactor.poll()
        for event in list(self.pending):
            self.pending.remove(event)
            await self.feed(event)

    async def authorize(self, token: str) -> None:
        await self.feed(TokenPresented(token))
        request = [a for a in self.actions if isinstance(a, m.SendAuthorize)][-1]
        await self.feed(m.AuthorizeResult(request.request_id, request.id_token, "Accepted"))

    @property
    def coil(self) -> bool:
        return bool(self.factory.pin(COIL).state)

    def statuses(self) -> list[str]:
        return [a.status for a in self.actions if isinstance(a, m.ConnectorStatus)]


async def test_contactor_that_fails_to_close_faults_the_evse(mock_pins: MockFactory) -> None:
    mock_pins.pin(FEEDBACK).drive_high()  # aux contact open
    bench = Bench(mock_pins)
    await bench.contactor.start(bench.pending.append)
    try:
        await bench.feed(m.ConnectionChanged(True))
        await bench.feed(PilotChanged(1, "B"))
        await bench.authorize("AABBCCDD")
        await bench.feed(PilotChanged(1, "C"))
        assert m.CloseContactor(1) in bench.actions and bench.coil is True
        await bench.after(0.5)  # the aux contact never closes
        assert bench.statuses()[-1] == "Faulted"
        assert bench.station.evses[1].faults == {"contactor:stuck_open"}
        assert connector_status(bench.station.evses[1]).error_code == "PowerSwitchFailure"
        assert bench.coil is False
        assert bench.station.evses[1].contactor_closed is False  # the core let go too
        # The driver leaves; the next one is refused: no current offered, no close.
        await bench.feed(PilotChanged(1, "A"))
        bench.actions.clear()
        await bench.feed(PilotChanged(1, "B"))
        await bench.feed(TokenPresented("11223344"))
        await bench.feed(PilotChanged(1, "C"))
        assert not any(isinstance(a, m.CloseContactor) for a in bench.actions)
        assert all(a.amps == 0 for a in bench.actions if isinstance(a, m.OfferCurrent))
        assert bench.coil is False
        assert "Available" not in bench.statuses()
    finally:
        await bench.contactor.stop()


async def test_welded_contactor_faults_the_evse_after_the_session(mock_pins: MockFactory) -> None:
    mock_pins.pin(FEEDBACK).drive_high()
    bench = Bench(mock_pins)
    await bench.contactor.start(bench.pending.append)
    try:
        await bench.feed(m.ConnectionChanged(True))
        await bench.feed(PilotChanged(1, "B"))
        await bench.authorize("AABBCCDD")
        await bench.feed(PilotChanged(1, "C"))
        mock_pins.pin(FEEDBACK).drive_low()  # closes as commanded
        await bench.after(0.0)
        await bench.after(0.02)
        assert bench.contactor.closed is True
        await bench.feed(PilotChanged(1, "B"))  # the EV is full: the core opens
        assert m.OpenContactor(1) in bench.actions and bench.coil is False
        await bench.after(0.5)  # ... but the contacts stay welded
        assert DeviceFault("contactor", 1, "welded", True) not in bench.pending
        assert bench.station.evses[1].faults == {"contactor:welded"}
        assert bench.statuses()[-1] == "Faulted"
    finally:
        await bench.contactor.stop()
