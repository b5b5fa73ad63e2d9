"""The sans-I/O core: events in, actions out, on a fake clock. Requirement ids are
OCPP 2.0.1 Part 2."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from evse_hal.clock import FakeClock
from evse_hal.interfaces import DeviceFault, MeterReading, PilotChanged, TokenPresented

from evse_agent.core import messages as m
from evse_agent.core.station import Station
from evse_agent.device_model.model import DeviceModel, VariableKey


class Harness:
    def __init__(self, evse_count: int = 1, **settings: str) -> None:
        self.clock = FakeClock()
        self.dm = DeviceModel()
        self.dm.load_standard()
        for label, value in settings.items():
            comp, var = label.split("__")
            assert self.dm.set_from_csms(VariableKey(comp, var), value) == "Accepted"
        ids = (f"tx-{n}" for n in itertools.count(1))
        self.station = Station(evse_count, self.dm, lambda: next(ids))
        self.actions: list[m.Action] = []
        self.send(m.ConnectionChanged(True))

    def send(self, event: m.Event) -> list[m.Action]:
        out = self.station.handle(event, self.clock.now())
        self.actions += out
        return out

    def tick(self, seconds: float) -> list[m.Action]:
        self.clock.advance(seconds)
        return self.send(m.Tick())

    def tx_events(self) -> list[m.TransactionEventAction]:
        return [a for a in self.actions if isinstance(a, m.TransactionEventAction)]

    def authorize_last(self, status: str = "Accepted") -> None:
        req = [a for a in self.actions if isinstance(a, m.SendAuthorize)][-1]
        self.send(m.AuthorizeResult(req.request_id, req.id_token, status))

    def meter(self, evse: int, wh: float, w: float = 0.0) -> None:
        self.send(m.MeterSampled(evse, MeterReading(wh, w, [230.0], [w / 230])))


def statuses(actions: list[m.Action]) -> list[str]:
    return [a.status for a in actions if isinstance(a, m.ConnectorStatus)]


def test_plug_first_session_with_default_start_and_stop_points() -> None:
    h = Harness()
    h.meter(1, 1000.0)
    assert statuses(h.actions) == ["Available"]
    h.send(PilotChanged(1, "B"))
    assert statuses(h.actions)[-1] == "Occupied"
    assert h.tx_events() == []  # TxStartPoint PowerPathClosed: not yet (E01.FR.05)
    h.send(TokenPresented("AABBCCDD"))
    h.authorize_last()
    started = h.tx_events()[0]
    assert (started.event_type, started.trigger_reason, started.seq_no) == (
        "Started",
        "Authorized",
        0,
    )
    assert started.id_token == m.IdToken("AABBCCDD")  # E01.FR.10
    assert started.evse_id == 1 and started.connector_id == 1
    assert started.meter_values[0].sampled[0].context == "Transaction.Begin"  # E01.FR.09
    assert m.OfferCurrent(1, 32.0) in h.actions
    assert m.CloseContactor(1) not in h.actions  # the EV has not asked yet
    h.send(PilotChanged(1, "C"))
    assert m.CloseContactor(1) in h.actions
    charging = h.tx_events()[-1]
    assert (charging.event_type, charging.trigger_reason, charging.charging_state) == (
        "Updated",
        "ChargingStateChanged",
        "Charging",
    )
    h.send(TokenPresented("AABBCCDD"))  # E07: same card stops, without Authorize
    assert not any(isinstance(a, m.SendAuthorize) for a in h.actions[-5:])
    ended = h.tx_events()[-1]
    assert (ended.event_type, ended.trigger_reason, ended.stopped_reason) == (
        "Ended",
        "StopAuthorized",
        "Local",
    )
    assert m.OpenContactor(1) in h.actions
    assert [e.seq_no for e in h.tx_events()] == list(range(len(h.tx_events())))  # E01.FR.07
    h.send(PilotChanged(1, "A"))
    assert statuses(h.actions)[-1] == "Available"
    assert len(h.tx_events()) == 3  # nothing after Ended


def test_card_first_then_plug_and_unplug_ends_transaction() -> None:
    h = Harness()
    h.send(TokenPresented("CARD1"))
    h.authorize_last()
    assert h.tx_events() == []
    h.tick(5)
    h.send(PilotChanged(1, "B"))
    started = h.tx_events()[0]
    assert started.trigger_reason == "CablePluggedIn" and started.id_token == m.IdToken("CARD1")
    h.send(PilotChanged(1, "C"))
    h.send(PilotChanged(1, "A"))
    ended = h.tx_events()[-1]
    assert (ended.trigger_reason, ended.stopped_reason, ended.charging_state) == (
        "EVCommunicationLost",
        "EVDisconnected",
        "Idle",
    )


def test_ev_connection_timeout_drops_authorization() -> None:
    h = Harness(TxCtrlr__EVConnectionTimeOut="30")
    h.send(TokenPresented("CARD1"))
    h.authorize_last()
    assert h.station.next_wakeup(h.clock.now()) == h.clock.now() + timedelta(seconds=30)
    h.tick(31)  # E03.FR.05
    h.send(PilotChanged(1, "B"))
    assert h.tx_events() == []
    assert m.OfferCurrent(1, 32.0) not in h.actions


def test_tx_start_point_ev_connected_starts_on_plug_and_reports_token_later() -> None:
    h = Harness(TxCtrlr__TxStartPoint="EVConnected")
    h.send(PilotChanged(1, "B"))
    started = h.tx_events()[0]
    assert (started.trigger_reason, started.id_token) == ("CablePluggedIn", None)  # E01.FR.02
    h.send(TokenPresented("CARD1"))
    h.authorize_last()
    updated = h.tx_events()[-1]
    assert (updated.event_type, updated.trigger_reason, updated.id_token) == (
        "Updated",
        "Authorized",
        m.IdToken("CARD1"),
    )


def test_rejected_card_does_not_charge() -> None:
    h = Harness()
    h.send(PilotChanged(1, "B"))
    h.send(TokenPresented("BAD"))
    h.authorize_last("Invalid")
    assert h.tx_events() == []
    assert all(not isinstance(a, m.OfferCurrent) or a.amps == 0 for a in h.actions)


def test_offline_unknown_token_follows_offline_tx_for_unknown_id() -> None:
    h = Harness(AuthCtrlr__OfflineTxForUnknownIdEnabled="true")
    h.send(m.ConnectionChanged(False))
    h.send(PilotChanged(1, "B"))
    h.send(TokenPresented("ANY"))  # C15.FR.08
    assert not any(isinstance(a, m.SendAuthorize) for a in h.actions)
    started = h.tx_events()[0]
    assert started.offline is True


def test_periodic_meter_values_follow_tx_updated_interval() -> None:
    h = Harness(SampledDataCtrlr__TxUpdatedInterval="10")
    h.meter(1, 500.0)
    h.send(PilotChanged(1, "B"))
    h.send(TokenPresented("CARD1"))
    h.authorize_last()
    h.send(PilotChanged(1, "C"))
    h.meter(1, 520.0, 7360.0)
    h.tick(10)
    periodic = h.tx_events()[-1]
    assert periodic.trigger_reason == "MeterValuePeriodic"
    sampled = {s.measurand: s for s in periodic.meter_values[0].sampled}
    assert sampled["Energy.Active.Import.Register"].value == 520.0
    assert sampled["Energy.Active.Import.Register"].context == "Sample.Periodic"
    assert sampled["Power.Active.Import"].value == 7360.0
    h.tick(10)
    assert [e.trigger_reason for e in h.tx_events()].count("MeterValuePeriodic") == 2


def test_remote_start_and_stop() -> None:
    h = Harness()
    h.send(m.RemoteStart(m.IdToken("REMOTE", "Central"), 42, evse_id=1))
    assert h.station.last_result is not None and h.station.last_result.status == "Accepted"
    assert not any(isinstance(a, m.SendAuthorize) for a in h.actions)  # AuthorizeRemoteStart
    h.send(PilotChanged(1, "B"))
    started = h.tx_events()[0]
    assert (started.trigger_reason, started.remote_start_id) == ("RemoteStart", 42)
    h.send(m.RemoteStop("nope"))
    assert h.station.last_result.status == "Rejected"
    h.send(m.RemoteStop(started.transaction_id))
    assert h.station.last_result.status == "Accepted"
    ended = h.tx_events()[-1]
    assert (ended.trigger_reason, ended.stopped_reason) == ("RemoteStop", "Remote")


def test_change_availability_is_scheduled_during_transaction() -> None:
    h = Harness()
    h.send(PilotChanged(1, "B"))
    h.send(TokenPresented("CARD1"))
    h.authorize_last()
    h.send(m.ChangeAvailability(False, 1))
    assert h.station.last_result.status == "Scheduled"  # G03.FR.03
    assert statuses(h.actions)[-1] == "Occupied"
    h.send(PilotChanged(1, "A"))
    assert statuses(h.actions)[-1] == "Unavailable"
    h.send(PilotChanged(1, "B"))
    h.send(TokenPresented("CARD2"))
    assert not any(isinstance(a, m.OfferCurrent) and a.amps > 0 for a in h.actions[-5:])


def test_fault_stops_energy_and_reports_faulted() -> None:
    h = Harness()
    h.send(PilotChanged(1, "B"))
    h.send(TokenPresented("CARD1"))
    h.authorize_last()
    h.send(PilotChanged(1, "C"))
    h.send(DeviceFault("meter", 1, "offline"))
    assert statuses(h.actions)[-1] == "Faulted"
    assert m.OpenContactor(1) in h.actions
    h.send(DeviceFault("meter", 1, "offline", active=False))
    assert statuses(h.actions)[-1] == "Occupied"


def test_recovered_transaction_is_ended_with_power_loss_and_continuing_seq_no() -> None:
    h = Harness()
    h.meter(1, 1234.0)
    out = h.send(m.RecoveredTransaction("tx-old", 1, 1, 7, m.IdToken("CARD1")))
    ended = [a for a in out if isinstance(a, m.TransactionEventAction)]
    assert len(ended) == 1
    assert (ended[0].seq_no, ended[0].stopped_reason, ended[0].trigger_reason) == (
        7,
        "PowerLoss",
        "AbnormalCondition",
    )
    assert ended[0].meter_values[0].sampled[0].value == 1234.0


def test_reset_on_idle_waits_for_transaction_end() -> None:
    h = Harness()
    h.send(PilotChanged(1, "B"))
    h.send(TokenPresented("CARD1"))
    h.authorize_last()
    h.send(m.ResetRequested(immediate=False))
    assert h.station.last_result.status == "Scheduled"  # B12.FR.01
    assert not any(isinstance(a, m.RestartStation) for a in h.actions)
    h.send(PilotChanged(1, "A"))
    assert isinstance(h.actions[-1], m.RestartStation)


def test_reset_immediate_ends_transaction_first() -> None:
    h = Harness(TxCtrlr__TxStopPoint="EVConnected")
    h.send(PilotChanged(1, "B"))
    h.send(TokenPresented("CARD1"))
    h.authorize_last()
    out = h.send(m.ResetRequested(immediate=True))
    kinds = [type(a).__name__ for a in out]
    assert kinds.index("TransactionEventAction") < kinds.index("RestartStation")  # B12.FR.04
    ended = h.tx_events()[-1]
    assert (ended.trigger_reason, ended.stopped_reason) == ("ResetCommand", "ImmediateReset")


def test_card_first_on_two_evses_follows_the_ev() -> None:
    h = Harness(evse_count=2)
    h.send(TokenPresented("CARD1"))
    h.authorize_last()
    h.send(PilotChanged(2, "B"))
    started = h.tx_events()[0]
    assert started.evse_id == 2


@pytest.mark.parametrize("evse_count", [1, 2])
def test_transaction_ids_are_unique(evse_count: int) -> None:
    h = Harness(evse_count=evse_count)
    for _ in range(3):
        h.send(PilotChanged(1, "B"))
        h.send(TokenPresented("CARD1"))
        h.authorize_last()
        h.send(PilotChanged(1, "A"))
    ids = {e.transaction_id for e in h.tx_events()}
    assert len(ids) == 3  # E01.FR.08


def test_invalid_id_token_in_transaction_response_stops_the_transaction() -> None:
    h = Harness()
    h.send(PilotChanged(1, "B"))
    h.send(TokenPresented("CARD1"))
    h.authorize_last()
    h.send(PilotChanged(1, "C"))
    tx_id = h.tx_events()[0].transaction_id
    h.send(m.TransactionResponse(tx_id, "Blocked"))  # StopTxOnInvalidId = true: C15.FR.04
    ended = h.tx_events()[-1]
    assert (ended.event_type, ended.trigger_reason, ended.stopped_reason) == (
        "Ended",
        "Deauthorized",
        "DeAuthorized",
    )
    assert m.OpenContactor(1) in h.actions


def test_invalid_id_token_with_ev_connected_stop_point_suspends_energy() -> None:
    h = Harness(TxCtrlr__TxStopPoint="EVConnected")
    h.send(PilotChanged(1, "B"))
    h.send(TokenPresented("CARD1"))
    h.authorize_last()
    h.send(PilotChanged(1, "C"))
    tx_id = h.tx_events()[0].transaction_id
    h.send(m.TransactionResponse(tx_id, "Invalid"))
    updated = h.tx_events()[-1]
    assert (updated.event_type, updated.trigger_reason, updated.charging_state) == (
        "Updated",
        "Deauthorized",
        "EVConnected",
    )  # C15.FR.03
    assert m.OpenContactor(1) in h.actions


def test_no_transaction_before_accepted_unless_tx_before_accepted_enabled() -> None:
    h = Harness(TxCtrlr__TxStartPoint="EVConnected")
    h.station.accepted_once = False
    h.send(m.ConnectionChanged(False))
    h.send(PilotChanged(1, "B"))
    assert h.tx_events() == []  # B02.FR.03 is opt-in: TxBeforeAcceptedEnabled
    h.send(m.ConnectionChanged(True))
    assert h.tx_events()[0].trigger_reason == "CablePluggedIn"


def test_tx_before_accepted_enabled_allows_a_queued_offline_transaction() -> None:
    h = Harness(TxCtrlr__TxStartPoint="EVConnected", TxCtrlr__TxBeforeAcceptedEnabled="true")
    h.station.accepted_once = False
    h.send(m.ConnectionChanged(False))
    h.send(PilotChanged(1, "B"))
    assert h.tx_events()[0].offline is True


def test_silent_meter_sends_no_made_up_meter_values() -> None:
    """A meter that stops answering mid-transaction: the last register must not be sent
    again with a new timestamp (periodic nor Ended, E06/J02); values return with the
    first fresh reading."""
    h = Harness(SampledDataCtrlr__TxUpdatedInterval="10")
    h.meter(1, 500.0)
    h.send(PilotChanged(1, "B"))
    h.send(TokenPresented("CARD1"))
    h.authorize_last()
    h.send(PilotChanged(1, "C"))
    h.meter(1, 520.0, 7360.0)
    h.tick(10)
    assert h.tx_events()[-1].meter_values  # while the meter answers
    h.send(DeviceFault("meter", 1, "CommunicationFault"))
    h.tick(10)
    periodic = h.tx_events()[-1]
    assert periodic.trigger_reason == "MeterValuePeriodic" and periodic.meter_values == ()
    h.send(PilotChanged(1, "A"))  # unplugged during the outage
    ended = h.tx_events()[-1]
    assert ended.event_type == "Ended" and ended.meter_values == ()
    h.send(DeviceFault("meter", 1, "CommunicationFault", active=False))
    h.meter(1, 530.0)
    assert h.station.evses[1].reading is not None
