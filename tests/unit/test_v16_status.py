"""The 1.6 ChargePointStatus derived from the core's EVSE state (core/status16.py),
driven through the real core: OCPP 1.6 edition 2 §4.9 (status transitions) and §7.7
(ChargePointStatus), errata 3.20 (Preparing -> Finishing), 3.55 (SuspendedEV in B2),
3.64 (SuspendedEVSE), §7.6 (ChargePointErrorCode). Every status is a valid
StatusNotification.req."""

from __future__ import annotations

import itertools

from evse_hal.clock import FakeClock
from evse_hal.interfaces import DeviceFault, MeterReading, PilotChanged, TokenPresented
from ocpp.messages import get_validator

from evse_agent.core import messages as m
from evse_agent.core.station import Station
from evse_agent.core.status16 import Status16, connector_status, station_status, statuses
from evse_agent.device_model.model import DeviceModel, VariableKey
from evse_agent.ocpp.v16_messages import status_payload

STATUS_REQUEST = get_validator(2, "StatusNotification", "1.6")


class Core:
    def __init__(self, evse_count: int = 1, **settings: str) -> None:
        self.clock = FakeClock()
        dm = DeviceModel()
        dm.load_standard()
        for label, value in settings.items():
            component, variable = label.split("__")
            assert dm.set_from_csms(VariableKey(component, variable), value) == "Accepted"
        ids = (f"tx-{n}" for n in itertools.count(1))
        self.station = Station(evse_count, dm, lambda: next(ids))
        self.actions: list[m.Action] = []
        self.send(m.ConnectionChanged(True))
        for evse_id in self.station.evses:
            self.send(m.MeterSampled(evse_id, MeterReading(1000.0, 0.0, [230.0], [0.0])))

    def send(self, event: m.Event) -> None:
        self.actions += self.station.handle(event, self.clock.now())

    def status(self, evse_id: int = 1) -> str:
        s = connector_status(self.station.evses[evse_id])
        STATUS_REQUEST.validate(status_payload(s, self.clock.now()))
        return s.status

    def tap(self, card: str) -> None:
        self.send(TokenPresented(card))
        requests = [a for a in self.actions if isinstance(a, m.SendAuthorize)]
        if requests and requests[-1].id_token.id_token == card:
            last = requests[-1]
            self.send(m.AuthorizeResult(last.request_id, last.id_token, "Accepted"))


def test_plug_first_session_walks_the_1_6_statuses() -> None:
    core = Core()
    assert core.status() == "Available"
    core.send(PilotChanged(1, "B"))
    assert core.status() == "Preparing"  # §4.9 A2: cable plugged in, no idTag yet
    core.tap("CARD")
    assert core.station.evses[1].tx is not None
    assert core.status() == "SuspendedEV"  # errata 3.55: current offered, EV in B2
    core.send(PilotChanged(1, "C"))
    assert core.status() == "Charging"
    core.send(PilotChanged(1, "B"))
    assert core.status() == "SuspendedEV"  # the EV paused
    core.send(PilotChanged(1, "C"))
    core.tap("CARD")  # the same card ends it
    assert core.station.evses[1].tx is None
    assert core.status() == "Finishing"  # §4.9: cable not yet removed
    core.send(PilotChanged(1, "A"))
    assert core.status() == "Available"


def test_card_first_is_preparing_until_the_connection_timeout() -> None:
    core = Core(TxCtrlr__EVConnectionTimeOut="30")
    core.tap("CARD")
    assert core.status() == "Preparing"  # no longer available for a new user
    core.clock.advance(31)
    core.send(m.Tick())
    assert core.status() == "Available"  # errata 3.89: back to the original state


def test_authorization_gone_with_the_transaction_going_on_is_suspended_evse() -> None:
    """Errata 3.17 with StopTransactionOnInvalidId true but a TxStopPoint without
    Authorized: the transaction goes on, no energy offered -> SuspendedEVSE (3.64)."""
    core = Core(TxCtrlr__TxStopPoint="EVConnected")
    core.send(PilotChanged(1, "C"))
    core.tap("CARD")
    assert core.status() == "Charging"
    core.send(m.TransactionResponse("tx-1", "Invalid"))
    assert core.station.evses[1].tx is not None
    assert core.status() == "SuspendedEVSE"


def test_unavailable_and_connector_zero() -> None:
    core = Core(evse_count=2)
    core.send(m.ChangeAvailability(False, 2))
    assert (core.status(1), core.status(2)) == ("Available", "Unavailable")
    assert station_status(core.station.evses.values()).status == "Available"
    core.send(m.ChangeAvailability(False, None))  # connectorId 0: the whole station
    assert station_status(core.station.evses.values()).status == "Unavailable"
    assert [s.connector_id for s in statuses(core.station.evses.values())] == [0, 1, 2]


def test_unavailable_waits_for_the_transaction() -> None:
    """§5.2: Scheduled while a transaction runs; Unavailable once it ends."""
    core = Core()
    core.send(PilotChanged(1, "C"))
    core.tap("CARD")
    core.send(m.ChangeAvailability(False, 1))
    assert core.status() == "Charging"
    core.send(PilotChanged(1, "A"))
    assert core.status() == "Unavailable"


def test_faults_name_a_1_6_error_code() -> None:
    core = Core(evse_count=2)
    core.send(DeviceFault("meter", 1, "offline"))
    s = connector_status(core.station.evses[1])
    assert s == Status16(1, "Faulted", "PowerMeterFailure", "meter:offline")
    assert station_status(core.station.evses.values()).status == "Available"
    core.send(DeviceFault("contactor", 0, "welded"))  # a station-wide device
    zero = station_status(core.station.evses.values())
    assert (zero.status, zero.error_code) == ("Faulted", "PowerSwitchFailure")
    core.send(DeviceFault("meter", 1, "offline", active=False))
    core.send(DeviceFault("contactor", 0, "welded", active=False))
    assert core.status(1) == "Available"
    core.send(DeviceFault("pilot", 2, "diode_fault"))
    assert connector_status(core.station.evses[2]).error_code == "EVCommunicationError"
    STATUS_REQUEST.validate(status_payload(Status16(2, "Faulted", "OtherError", "x" * 80),
                                           core.clock.now()))  # info cut to 50
