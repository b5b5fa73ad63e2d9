"""What a 1.6 CSMS may ask, end to end: TriggerMessage (Remote Trigger profile,
§5.17), ChangeAvailability (§5.2), Reset (§5.14), UnlockConnector (§5.18), ClearCache
(§5.4), DataTransfer (§5.6), the profiles not built yet, and malformed frames (OCPP-J
1.6 §4.2.3). Section numbers: OCPP 1.6 edition 2; "errata": the 1.6 errata sheet v4.x."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from e2e_support import STATION, booted16, calls

from evse_agent.csms import DevCsms, StationCallError


@pytest.fixture
def csms16(csms: DevCsms) -> DevCsms:
    csms.checker.version = "1.6"  # type: ignore[attr-defined]
    return csms


def status(connector_id: int, value: str | None = None) -> Any:
    return lambda p: p["connectorId"] == connector_id and value in (None, p["status"])


async def start16(csms: DevCsms, station_factory: Any, settings: Any = None) -> Any:
    st = station_factory(settings, version="1.6")
    st.start()
    await booted16(csms)
    return st


async def charge(csms: DevCsms, st: Any, connector_id: int = 1) -> int:
    mark = len(csms.received)
    await st.plug(connector_id)
    await st.tap(f"CARD-{connector_id}")
    await csms.wait_for(STATION, "StartTransaction", since=mark)
    await csms.wait_for(STATION, "StatusNotification", status(connector_id, "Charging"),
                        since=mark)
    return len(calls(csms, "StartTransaction"))  # the dev CSMS numbers them 1, 2, ...


def sent_after_response(csms: DevCsms, request: str, triggered: str) -> bool:
    """The station's CALLRESULT to the last `request` precedes its `triggered` CALL."""
    frames = csms.checker.frames  # type: ignore[attr-defined]
    call = max(i for i, (d, m) in enumerate(frames) if d == "->" and m[0] == 2 and m[2] == request)
    response = next(i for i, (d, m) in enumerate(frames)
                    if i > call and d == "<-" and m[0] == 3 and m[1] == frames[call][1][1])
    first = next((i for i, (d, m) in enumerate(frames)
                  if i > call and d == "<-" and m[0] == 2 and m[2] == triggered), None)
    return first is not None and first > response


# -- Remote Trigger ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("Heartbeat", {}),
        ("DiagnosticsStatusNotification", {"status": "Idle"}),
        ("FirmwareStatusNotification", {"status": "Idle"}),
    ],
)
async def test_trigger_message_is_sent_after_the_response(
    csms16: DevCsms, station_factory: Any, message: str, expected: dict[str, Any]
) -> None:
    """§5.17: Accepted, then the requested message, in that order on the wire."""
    await start16(csms16, station_factory)
    mark = len(csms16.received)
    answer = await csms16.call(STATION, "TriggerMessage", {"requestedMessage": message})
    assert answer["status"] == "Accepted"
    assert await csms16.wait_for(STATION, message, since=mark, timeout=5) == expected
    assert sent_after_response(csms16, "TriggerMessage", message)


async def test_trigger_status_and_meter_values_per_connector(
    csms16: DevCsms, station_factory: Any
) -> None:
    """StatusNotification and MeterValues for one connector or all (connectorId
    optional); MeterValues carry MeterValuesSampledData and the transactionId
    (errata 3.46, 3.16); an unknown connector and BootNotification once Accepted
    (errata 3.35) are Rejected."""
    st = await start16(csms16, station_factory)
    tx_id = await charge(csms16, st, 2)
    mark = len(csms16.received)
    answer = await csms16.call(STATION, "TriggerMessage",
                               {"requestedMessage": "StatusNotification", "connectorId": 2})
    assert answer["status"] == "Accepted"
    got = await csms16.wait_for(STATION, "StatusNotification", since=mark)
    assert (got["connectorId"], got["status"]) == (2, "Charging")
    await asyncio.sleep(0.3)
    assert len(calls(csms16, "StatusNotification", mark)) == 1
    mark = len(csms16.received)
    await csms16.call(STATION, "TriggerMessage", {"requestedMessage": "StatusNotification"})
    await csms16.wait_for(STATION, "StatusNotification", status(2), since=mark)
    assert [p["connectorId"] for p in calls(csms16, "StatusNotification", mark)] == [0, 1, 2]

    mark = len(csms16.received)
    answer = await csms16.call(STATION, "TriggerMessage", {"requestedMessage": "MeterValues"})
    assert answer["status"] == "Accepted"
    await csms16.wait_for(STATION, "MeterValues", lambda p: p["meterValue"][0]["sampledValue"][0]
                          ["context"] == "Trigger" and p["connectorId"] == 2, since=mark)
    triggered = [p for p in calls(csms16, "MeterValues", mark)
                 if p["meterValue"][0]["sampledValue"][0]["context"] == "Trigger"]
    by_connector = {p["connectorId"]: p for p in triggered}
    assert set(by_connector) == {1, 2}
    assert by_connector[2]["transactionId"] == tx_id and "transactionId" not in by_connector[1]
    measurands = {s["measurand"] for s in by_connector[2]["meterValue"][0]["sampledValue"]}
    got = await csms16.call(STATION, "GetConfiguration", {"key": ["MeterValuesSampledData"]})
    configured = set(got["configurationKey"][0]["value"].split(","))
    assert measurands <= configured and "Energy.Active.Import.Register" in measurands

    for payload in ({"requestedMessage": "StatusNotification", "connectorId": 3},
                    {"requestedMessage": "BootNotification"}):
        answer = await csms16.call(STATION, "TriggerMessage", payload)
        assert answer["status"] == "Rejected", payload


# -- ChangeAvailability ----------------------------------------------------------------
async def test_change_availability_connector_and_station(
    csms16: DevCsms, station_factory: Any
) -> None:
    """§5.2: a connector now; the whole Charge Point (connectorId 0) Scheduled while a
    transaction runs, applied when it ends; an unknown connector Rejected."""
    st = await start16(csms16, station_factory)
    unknown = await csms16.call(STATION, "ChangeAvailability",
                                {"connectorId": 7, "type": "Inoperative"})
    assert unknown["status"] == "Rejected"
    mark = len(csms16.received)
    answer = await csms16.call(STATION, "ChangeAvailability",
                               {"connectorId": 2, "type": "Inoperative"})
    assert answer["status"] == "Accepted"
    await csms16.wait_for(STATION, "StatusNotification", status(2, "Unavailable"), since=mark)
    answer = await csms16.call(STATION, "ChangeAvailability",
                               {"connectorId": 2, "type": "Operative"})
    assert answer["status"] == "Accepted"
    await csms16.wait_for(STATION, "StatusNotification", status(2, "Available"), since=mark)

    await charge(csms16, st, 1)
    mark = len(csms16.received)
    answer = await csms16.call(STATION, "ChangeAvailability",
                               {"connectorId": 0, "type": "Inoperative"})
    assert answer["status"] == "Scheduled"
    await csms16.wait_for(STATION, "StatusNotification", status(2, "Unavailable"), since=mark)
    await st.unplug(1)
    stop = await csms16.wait_for(STATION, "StopTransaction", since=mark)
    assert stop["reason"] == "EVDisconnected"
    await csms16.wait_for(STATION, "StatusNotification", status(1, "Unavailable"), since=mark)
    await csms16.wait_for(STATION, "StatusNotification", status(0, "Unavailable"), since=mark)
    mark = len(csms16.received)
    answer = await csms16.call(STATION, "ChangeAvailability",
                               {"connectorId": 0, "type": "Operative"})
    assert answer["status"] == "Accepted"
    await csms16.wait_for(STATION, "StatusNotification", status(0, "Available"), since=mark)


# -- Reset -------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["Soft", "Hard"])
async def test_reset_stops_transactions_then_restarts_in_place(
    csms16: DevCsms, station_factory: Any, kind: str
) -> None:
    """§5.14 with errata 3.36: StopTransaction (reason SoftReset / HardReset) for the
    running transaction, then a restart (same process id) and a new BootNotification."""
    st = await start16(csms16, station_factory)
    pid = st.proc.pid
    tx_id = await charge(csms16, st, 1)
    mark = len(csms16.received)
    answer = await csms16.call(STATION, "Reset", {"type": kind})
    assert answer["status"] == "Accepted"
    stop = await csms16.wait_for(STATION, "StopTransaction", since=mark)
    assert stop["transactionId"] == tx_id and stop["reason"] == f"{kind}Reset"
    await csms16.wait_for(STATION, "BootNotification", since=mark, timeout=20)
    await booted16(csms16, since=mark)
    assert st.proc.poll() is None and st.proc.pid == pid
    assert len(calls(csms16, "StopTransaction")) == 1


# -- UnlockConnector, ClearCache, DataTransfer, what is not built --------------------------
async def test_unlock_connector(csms16: DevCsms, station_factory: Any) -> None:
    """§5.18: a running transaction is stopped first (reason UnlockCommand); an
    unknown connector is NotSupported (errata 3.87)."""
    st = await start16(csms16, station_factory)
    answer = await csms16.call(STATION, "UnlockConnector", {"connectorId": 2})
    assert answer["status"] == "Unlocked"
    answer = await csms16.call(STATION, "UnlockConnector", {"connectorId": 9})
    assert answer["status"] == "NotSupported"
    tx_id = await charge(csms16, st, 1)
    answer = await csms16.call(STATION, "UnlockConnector", {"connectorId": 1})
    assert answer["status"] == "Unlocked"
    stop = await csms16.wait_for(STATION, "StopTransaction")
    assert stop["transactionId"] == tx_id and stop["reason"] == "UnlockCommand"


async def test_clear_cache_data_transfer_and_profiles_not_built(
    csms16: DevCsms, station_factory: Any
) -> None:
    await start16(csms16, station_factory)
    # Errata 3.23: no Authorization Cache -> Rejected.
    assert (await csms16.call(STATION, "ClearCache", {}))["status"] == "Rejected"
    # §5.6: no handler for the vendor.
    answer = await csms16.call(STATION, "DataTransfer", {"vendorId": "com.example", "data": "x"})
    assert answer == {"status": "UnknownVendorId"}
    not_built = {
        "ReserveNow": {"connectorId": 1, "expiryDate": "2030-01-01T00:00:00Z",
                       "idTag": "X", "reservationId": 1},
        "CancelReservation": {"reservationId": 1},
        "SendLocalList": {"listVersion": 1, "updateType": "Full"},
        "GetLocalListVersion": {},
        "ClearChargingProfile": {},
        "GetCompositeSchedule": {"connectorId": 1, "duration": 60},
    }
    for action, payload in not_built.items():
        with pytest.raises(StationCallError) as refused:
            await csms16.call(STATION, action, payload)
        assert refused.value.error == "NotImplemented", action
    with pytest.raises(StationCallError) as refused:  # errata 3.39
        await csms16.call(STATION, "SetChargingProfile", {"connectorId": 1, "csChargingProfiles": {
            "chargingProfileId": 1, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile",
            "chargingProfileKind": "Absolute", "chargingSchedule": {
                "chargingRateUnit": "A", "chargingSchedulePeriod": [{"startPeriod": 0,
                                                                     "limit": 8}]}}})
    assert refused.value.error == "NotSupported"


# -- malformed input ----------------------------------------------------------------------
async def test_malformed_frames_get_1_6_error_codes_and_the_station_carries_on(
    csms16: DevCsms, station_factory: Any
) -> None:
    """OCPP-J 1.6 §4.2.3 with the spellings its errata keeps (5.1, 5.2: "do not fix"):
    FormationViolation and OccurenceConstraintViolation; an unknown action
    NotImplemented."""
    await start16(csms16, station_factory)
    link = csms16.stations[STATION]._connection
    frames = {
        "not json": ("-1", "FormationViolation"),
        '[2, "m1", "Reset", {"type": "Sometimes"}]': ("m1", "PropertyConstraintViolation"),
        '[2, "m2", "Reset", {}]': ("m2", "OccurenceConstraintViolation"),
        '[2, "m3", "Reset", {"type": 5}]': ("m3", "TypeConstraintViolation"),
        '[2, "m4", "Reset", {"type": "Soft", "extra": 1}]': ("m4", "FormationViolation"),
        '[2, "m5", "FlyToTheMoon", {}]': ("m5", "NotImplemented"),
        '[2, "m6", "RequestStartTransaction", {}]': ("m6", "NotImplemented"),  # 2.0.1 only
        '[7, "m7", {}]': ("m7", "ProtocolError"),
        '[2, "m8", "Reset"]': ("m8", "ProtocolError"),
        '[2, "m9", "ChangeConfiguration", {"key": "HeartbeatInterval"}]':
            ("m9", "OccurenceConstraintViolation"),
    }
    for raw in frames:
        await link.send(raw)
    expected = {message_id: code for message_id, code in frames.values()}
    for _ in range(50):
        errors = {m[1]: m[2] for d, m in csms16.checker.frames if d == "<-" and m[0] == 4}
        if len(errors) >= len(expected):
            break
        await asyncio.sleep(0.1)
    assert errors == expected
    answer = await csms16.call(STATION, "GetConfiguration", {"key": ["HeartbeatInterval"]})
    assert answer["configurationKey"][0]["key"] == "HeartbeatInterval"  # carries on


async def test_boot_pending_then_accepted(csms16: DevCsms, station_factory: Any) -> None:
    """§4.2: while Pending the CSMS may configure the station and trigger messages;
    the station sends nothing else until Accepted, then statuses (errata 3.22)."""
    csms16.boot_status = "Pending"
    csms16.boot_interval = 1
    st = station_factory(version="1.6")
    st.start()
    await csms16.wait_for(STATION, "BootNotification")
    await asyncio.sleep(0.3)
    answer = await csms16.call(STATION, "ChangeConfiguration",
                               {"key": "MeterValueSampleInterval", "value": "5"})
    assert answer["status"] == "Accepted"
    start = await csms16.call(STATION, "RemoteStartTransaction", {"idTag": "X"})
    assert start["status"] == "Rejected"
    mark = len(csms16.received)
    answer = await csms16.call(STATION, "TriggerMessage", {"requestedMessage": "Heartbeat"})
    assert answer["status"] == "Accepted"
    await csms16.wait_for(STATION, "Heartbeat", since=mark, timeout=5)
    assert {r.action for r in csms16.received} <= {"BootNotification", "Heartbeat"}
    state = await st.state()
    assert state["ocpp"]["registration"] == "Pending"
    csms16.boot_status = "Accepted"
    await booted16(csms16, since=mark)
