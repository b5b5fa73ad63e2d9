"""The 1.6 adapter's transaction mapping without a socket: core actions in, queued 1.6
messages out (written before sent, §4.8/§4.10), the CSMS's transactionId substituted
at send time (also after a restart), errata 3.18's -1, deferred StartTransaction,
RemoteStop by integer id. Every message sent is valid against ocpp/v16/schemas."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from evse_hal.interfaces import MeterReading
from ocpp.messages import get_validator

from evse_agent.core import messages as m
from evse_agent.core.evse import Evse
from evse_agent.core.station import RequestResult
from evse_agent.device_model.model import DeviceModel
from evse_agent.ocpp.connection import CallFailed
from evse_agent.ocpp.v16 import V16Adapter
from evse_agent.storage import Storage

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
CARD = m.IdToken("AABBCCDD")


class FakePort:
    station_id = "CS-UNIT"
    boot_info = {"vendorName": "evse-agent", "model": "unit", "serialNumber": "CS-UNIT"}

    def __init__(self) -> None:
        self.fed: list[m.Event] = []
        self.running: dict[int, str] = {}

    def feed(self, event: m.Event) -> RequestResult | None:
        self.fed.append(event)
        return RequestResult("Accepted")

    def connector_statuses(self) -> list[m.ConnectorStatus]:
        return []

    def evse_ids(self) -> list[int]:
        return [1, 2]

    def transaction_ids(self) -> dict[int, str]:
        return dict(self.running)

    async def unlock(self, evse_id: int, connector_id: int) -> bool:
        return True

    def persist_availability(self, evse_id: int | None, operative: bool) -> None:
        pass

    def schedule_restart(self) -> None:
        pass


class FakeEndpoint:
    """Answers like a CSMS; validates what the station sends against the 1.6 schemas."""

    def __init__(self, first_id: int = 100) -> None:
        self.sent: list[tuple[str, dict[str, Any], str | None]] = []
        self.next_id = first_id
        self.refuse: set[str] = set()

    async def call(self, action: str, payload: dict[str, Any], timeout: float,
                   mid: str | None = None) -> dict[str, Any]:
        get_validator(2, action, "1.6").validate(payload)
        self.sent.append((action, payload, mid))
        if action in self.refuse:
            raise CallFailed("error", "refused", "InternalError")
        if action == "StartTransaction":
            self.next_id += 1
            return {"transactionId": self.next_id, "idTagInfo": {"status": "Accepted"}}
        return {}


def reading(wh: float) -> MeterReading:
    return MeterReading(wh, 0.0, [230.0], [0.0])


def adapter(tmp_path: Path, port: FakePort | None = None) -> V16Adapter:
    dm = DeviceModel()
    dm.load_standard()
    evses: Mapping[int, Evse] = {1: Evse(1, reading=reading(5000.0)), 2: Evse(2)}
    return V16Adapter(port or FakePort(), Storage(tmp_path / "db"), dm,
                      lambda: T0, lambda: evses)


def event(kind: str, seq: int, tx: str = "local-1", **fields: Any) -> m.TransactionEventAction:
    energy = fields.pop("energy", None)
    values = ()
    if energy is not None:
        context = {"Started": "Transaction.Begin", "Ended": "Transaction.End"}.get(
            kind, "Sample.Periodic")
        values = (m.MeterValue(T0 + timedelta(seconds=seq), (
            m.SampledValue(energy, "Energy.Active.Import.Register", context, "Wh"),)),)
    defaults: dict[str, Any] = {"evse_id": 1, "connector_id": 1, "trigger_reason": "Authorized"}
    defaults.update(fields)
    return m.TransactionEventAction(kind, T0 + timedelta(seconds=seq), seq_no=seq,
                                    transaction_id=tx, meter_values=values, **defaults)


async def deliver(a: V16Adapter, endpoint: FakeEndpoint) -> list[tuple[str, dict[str, Any]]]:
    """What the outbox does: send in order, dequeue, hand the answer back."""
    a._endpoint = endpoint  # type: ignore[assignment]
    out = []
    for msg in a.storage.queued():
        try:
            response = await a._send_queued(msg)
        except CallFailed:
            a.storage.dequeue(msg.id)  # given up (TransactionMessageAttempts)
            continue
        a.storage.dequeue(msg.id)
        a.queued_answered(msg, response)
        out.append((msg.action, endpoint.sent[-1][1]))
    return out


def a_session(a: V16Adapter) -> None:
    a.transaction_event(event("Started", 0, id_token=CARD, energy=1000.4))
    a.transaction_event(event("Updated", 1, trigger_reason="ChargingStateChanged", energy=1001))
    a.transaction_event(event("Updated", 2, trigger_reason="MeterValuePeriodic", energy=1500))
    a.transaction_event(event("Ended", 3, trigger_reason="StopAuthorized",
                              stopped_reason="Local", energy=2000.6))


async def test_queued_before_sent_and_substituted_at_send_time(tmp_path: Path) -> None:
    a = adapter(tmp_path)
    a_session(a)  # offline: everything waits in SQLite
    queued = a.storage.queued()
    assert [q.action for q in queued] == ["StartTransaction", "MeterValues", "StopTransaction"]
    assert queued[1].payload["transactionId"] == "local-1"  # not known yet
    assert a.storage.open_transactions() == []  # ended: nothing to recover
    sent = await deliver(a, FakeEndpoint(first_id=41))
    start, values, stop = (p for _, p in sent)
    assert start == {"connectorId": 1, "idTag": "AABBCCDD", "meterStart": 1000,
                     "timestamp": "2026-01-01T12:00:00.000Z"}
    assert values["transactionId"] == 42 and values["connectorId"] == 1
    assert stop["transactionId"] == 42 and stop["meterStop"] == 2001
    assert stop["reason"] == "Local" and stop["idTag"] == "AABBCCDD"
    data = stop["transactionData"]
    assert [d["sampledValue"][0]["context"] for d in data] == ["Transaction.Begin",
                                                               "Transaction.End"]
    assert a.transactions.get("local-1") is None  # forgotten once StopTransaction answered
    fed = [e for e in a.port.fed if isinstance(e, m.TransactionResponse)]  # type: ignore[attr-defined]
    assert fed == [m.TransactionResponse("local-1", "Accepted")]


async def test_the_csms_id_survives_a_restart(tmp_path: Path) -> None:
    """kill -9 after StartTransaction.conf: a new process sends the rest with that id."""
    first = adapter(tmp_path)
    first.transaction_event(event("Started", 0, id_token=CARD, energy=1000))
    first.transaction_event(event("Updated", 1, trigger_reason="MeterValuePeriodic", energy=1100))
    endpoint = FakeEndpoint(first_id=6)
    first._endpoint = endpoint  # type: ignore[assignment]
    start = first.storage.queued()[0]
    await first._send_queued(start)
    first.storage.dequeue(start.id)  # ... and the process dies before anything else
    assert first.storage.open_transactions()[0][0] == "local-1"  # to be ended on restart

    second = adapter(tmp_path)  # same database
    second.transaction_event(event("Ended", 2, trigger_reason="AbnormalCondition",
                                   stopped_reason="PowerLoss", energy=1200))
    sent = await deliver(second, FakeEndpoint())
    assert [(action, p["transactionId"]) for action, p in sent] == [
        ("MeterValues", 7), ("StopTransaction", 7)]
    assert sent[-1][1]["reason"] == "PowerLoss" and "idTag" not in sent[-1][1]
    assert second.csms_transaction_id("local-1") is None  # done with it


async def test_start_transaction_given_up_means_minus_one(tmp_path: Path) -> None:
    """Errata 3.18: no transactionId ever received -> -1 in the later messages."""
    a = adapter(tmp_path)
    a_session(a)
    endpoint = FakeEndpoint()
    endpoint.refuse.add("StartTransaction")
    sent = await deliver(a, endpoint)
    assert [(action, p["transactionId"]) for action, p in sent] == [
        ("MeterValues", -1), ("StopTransaction", -1)]


async def test_start_waits_for_an_id_tag_and_a_connector(tmp_path: Path) -> None:
    """A 1.6 transaction needs both (§6.45): TxStartPoint EVConnected starts the core's
    transaction at the plug; StartTransaction goes when the card is presented, with
    the plug's meter value and time. One that ends first is not a 1.6 transaction."""
    a = adapter(tmp_path)
    a.transaction_event(event("Started", 0, trigger_reason="CablePluggedIn", energy=900))
    a.transaction_event(event("Updated", 1, trigger_reason="MeterValuePeriodic", energy=950))
    assert a.storage.queued() == []
    a.transaction_event(event("Updated", 2, id_token=CARD, energy=960))
    a.transaction_event(event("Updated", 3, trigger_reason="MeterValuePeriodic", energy=990))
    start, values = a.storage.queued()
    assert start.action == "StartTransaction" and start.payload["meterStart"] == 900
    assert start.payload["timestamp"] == "2026-01-01T12:00:00.000Z"
    assert values.action == "MeterValues"

    a.transaction_event(event("Started", 0, tx="local-2", evse_id=None, connector_id=None,
                              id_token=CARD))  # a tap, no EV yet
    a.transaction_event(event("Ended", 1, tx="local-2", evse_id=None, connector_id=None,
                              trigger_reason="EVConnectTimeout", stopped_reason="Timeout"))
    assert len(a.storage.queued()) == 2  # nothing for local-2


async def test_stop_reasons_that_depend_on_the_request(tmp_path: Path) -> None:
    port = FakePort()
    a = adapter(tmp_path, port)
    a.registration = "Accepted"
    for local, seq in (("tx-a", 0), ("tx-b", 10)):
        a.transaction_event(event("Started", seq, tx=local, id_token=CARD, energy=1))
    await deliver(a, FakeEndpoint(first_id=0))
    port.running = {1: "tx-a", 2: "tx-b"}
    answer = await a.handlers()["UnlockConnector"]({"connectorId": 1})
    assert answer.payload == {"status": "Unlocked"}
    assert port.fed[-1] == m.RemoteStop("tx-a")
    a.transaction_event(event("Ended", 1, tx="tx-a", stopped_reason="Remote"))
    answer = await a.handlers()["Reset"]({"type": "Soft"})
    assert answer.payload == {"status": "Accepted"}
    a.transaction_event(event("Ended", 11, tx="tx-b", evse_id=2, connector_id=2,
                              stopped_reason="ImmediateReset"))
    sent = await deliver(a, FakeEndpoint())
    assert [(p["transactionId"], p["reason"]) for _, p in sent] == [
        (1, "UnlockCommand"), (2, "SoftReset")]


async def test_remote_stop_maps_the_integer_id(tmp_path: Path) -> None:
    port = FakePort()
    a = adapter(tmp_path, port)
    a.transaction_event(event("Started", 0, id_token=CARD, energy=1))
    await deliver(a, FakeEndpoint(first_id=8))
    port.running = {1: "local-1"}
    answer = await a.handlers()["RemoteStopTransaction"]({"transactionId": 9})
    assert answer.payload == {"status": "Accepted"} and port.fed[-1] == m.RemoteStop("local-1")
    answer = await a.handlers()["RemoteStopTransaction"]({"transactionId": 10})
    assert answer.payload == {"status": "Rejected"}


async def test_an_id_tag_1_6_cannot_carry_is_refused_without_asking(tmp_path: Path) -> None:
    port = FakePort()
    a = adapter(tmp_path, port)
    a.authorize(m.SendAuthorize(1, m.IdToken("X" * 21)))
    for _ in range(3):
        await asyncio.sleep(0)
    assert port.fed == [m.AuthorizeResult(1, m.IdToken("X" * 21), "Invalid")]


@pytest.mark.parametrize("payload", [{}, {"key": []}, {"key": ["HeartbeatInterval", "Nope"]}])
async def test_get_configuration_answers_valid_1_6(tmp_path: Path, payload: Any) -> None:
    a = adapter(tmp_path)
    answer = await a.handlers()["GetConfiguration"](payload)
    get_validator(3, "GetConfiguration", "1.6").validate(answer.payload)
    if payload.get("key"):
        assert answer.payload["unknownKey"] == ["Nope"]


async def test_records_nothing_refers_to_are_forgotten_on_start(tmp_path: Path) -> None:
    first = adapter(tmp_path)
    first.transaction_event(event("Started", 0, id_token=CARD, energy=1))
    first.transactions.add("orphan", first.transactions.get("local-1"))  # type: ignore[arg-type]
    second = adapter(tmp_path)
    assert second.transactions.get("local-1") is not None  # open, StartTransaction queued
    assert second.transactions.get("orphan") is None
