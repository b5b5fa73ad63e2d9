"""Remote control by the CSMS, end to end: TriggerMessage (F06), ChangeAvailability
(G03), Reset (B11, B12), UnlockConnector (F05), heartbeats (G02) and the GetVariables
item limit (B06). Requirement ids: OCPP 2.0.1 Part 2; test cases: Part 6 (TC_..._CS)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from e2e_support import STATION, tx_events

from evse_agent.csms import DevCsms, StationCallError

CARD = "CARD-RC"
ENERGY = "Energy.Active.Import.Register"


def ended(p: dict[str, Any]) -> bool:
    return p["eventType"] == "Ended"


def charging(p: dict[str, Any]) -> bool:
    return p["transactionInfo"].get("chargingState") == "Charging"


def status_of(evse_id: int, status: str | None = None) -> Any:
    return lambda p: p["evseId"] == evse_id and status in (None, p["connectorStatus"])


async def booted(csms: DevCsms, since: int = 0) -> None:
    """Registered and every connector reported (B01.FR.05)."""
    await csms.wait_for(STATION, "BootNotification", since=since, timeout=15)
    await csms.wait_for(STATION, "StatusNotification", status_of(2), since=since)


async def start_station(csms: DevCsms, station_factory: Any) -> Any:
    st = station_factory()
    st.start()
    await booted(csms)
    # the last message of a boot (TC_B_21_CS step 11): later ones are the test's own
    await csms.wait_for(STATION, "SecurityEventNotification")
    return st


async def start_charging(csms: DevCsms, st: Any, evse: int = 1) -> str:
    """Reusable state EnergyTransferStarted (Part 6) on `evse`: plug, tap, charging."""
    mark = len(csms.received)
    await st.plug(evse)
    await st.tap(CARD)
    started = await csms.wait_for(STATION, "TransactionEvent", since=mark)
    await csms.wait_for(STATION, "TransactionEvent", charging, since=mark)
    return str(started["transactionInfo"]["transactionId"])


def index_of(csms: DevCsms, action: str, predicate: Any = None, since: int = 0) -> int:
    """Position in csms.received of the first matching station CALL at or after `since`."""
    for i in range(since, len(csms.received)):
        r = csms.received[i]
        if r.action == action and (predicate is None or predicate(r.payload)):
            return i
    raise AssertionError(f"no {action} in csms.received[{since}:]")


def calls_since(csms: DevCsms, action: str, since: int) -> list[dict[str, Any]]:
    return [r.payload for r in csms.received[since:] if r.action == action]


def response_frame_index(csms: DevCsms, action: str) -> int:
    """Position in the frame log of the station's CALLRESULT to the CSMS's last `action`."""
    frames = csms.checker.frames  # type: ignore[attr-defined]
    call = max(
        i for i, (d, msg) in enumerate(frames) if d == "->" and msg[0] == 2 and msg[2] == action
    )
    message_id = frames[call][1][1]
    return next(
        i for i, (d, msg) in enumerate(frames)
        if i > call and d == "<-" and msg[0] == 3 and msg[1] == message_id
    )


async def settle(csms: DevCsms) -> None:
    """Every CALL the station sent is answered and the station has read the answers: the
    CSMS's frames go out in order, so a round trip after them is a barrier."""
    for _ in range(50):
        if not csms.checker.pending:  # type: ignore[attr-defined]
            break
        await asyncio.sleep(0.05)
    await csms.call(STATION, "GetVariables", {"getVariableData": [
        {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}]})


async def trigger(csms: DevCsms, message: str, evse: dict[str, int] | None = None) -> str:
    payload: dict[str, Any] = {"requestedMessage": message}
    if evse is not None:
        payload["evse"] = evse
    answer = await csms.call(STATION, "TriggerMessage", payload)
    return str(answer["status"])


# -- TriggerMessage (F06) ---------------------------------------------------------------


async def test_trigger_boot_notification_after_accepted_is_rejected(
    csms: DevCsms, station_factory: Any
) -> None:
    """TC_F_26_CS / F06.FR.17: no BootNotification on request once Accepted."""
    await start_station(csms, station_factory)
    mark = len(csms.received)
    assert await trigger(csms, "BootNotification") == "Rejected"
    await asyncio.sleep(0.5)
    assert calls_since(csms, "BootNotification", mark) == []


async def test_trigger_heartbeat_is_sent_after_the_response(
    csms: DevCsms, station_factory: Any
) -> None:
    """TC_F_20_CS / F06.FR.04, F06.FR.05, F06.FR.10: Accepted, then the Heartbeat, in
    that order on the wire."""
    await start_station(csms, station_factory)
    mark = len(csms.received)
    assert await trigger(csms, "Heartbeat") == "Accepted"
    await csms.wait_for(STATION, "Heartbeat", since=mark, timeout=5)  # F06.FR.10
    frames = csms.checker.frames  # type: ignore[attr-defined]
    response = response_frame_index(csms, "TriggerMessage")
    trigger_call = max(
        i for i, (d, msg) in enumerate(frames)
        if d == "->" and msg[0] == 2 and msg[2] == "TriggerMessage"
    )
    heartbeats = [
        i for i, (d, msg) in enumerate(frames)
        if i > trigger_call and d == "<-" and msg[0] == 2 and msg[2] == "Heartbeat"
    ]
    assert heartbeats, "no Heartbeat after the TriggerMessage"
    assert heartbeats[0] > response, "F06.FR.04: Heartbeat sent before the TriggerMessage response"
    await settle(csms)  # the stop below is not about a Heartbeat in flight (see next test)


async def test_stop_while_a_triggered_heartbeat_is_unanswered(
    csms: DevCsms, station_factory: Any
) -> None:
    """F06.FR.10 sends the triggered Heartbeat; the connection going away before its
    answer is an expected failure: DESIGN.md wants SIGTERM to stop cleanly (exit 0) and
    never a traceback for an expected failure."""
    st = await start_station(csms, station_factory)

    async def slow(_: dict[str, Any]) -> None:
        await asyncio.sleep(2)  # then the built-in answer

    csms.responses["Heartbeat"] = slow
    mark = len(csms.received)
    assert await trigger(csms, "Heartbeat") == "Accepted"
    await csms.wait_for(STATION, "Heartbeat", since=mark, timeout=5)
    assert await st.terminate() == 0
    out = st.output()
    assert "Traceback" not in out, out[out.find("Traceback") - 300:][:2500]


async def test_trigger_status_notification_for_one_connector(
    csms: DevCsms, station_factory: Any
) -> None:
    """TC_F_23_CS / F06.FR.02, F06.FR.04, F06.FR.10: exactly the requested connector's
    StatusNotification, after the response."""
    await start_station(csms, station_factory)
    mark = len(csms.received)
    assert await trigger(csms, "StatusNotification", {"id": 1, "connectorId": 1}) == "Accepted"
    got = await csms.wait_for(STATION, "StatusNotification", since=mark, timeout=5)
    assert (got["evseId"], got["connectorId"], got["connectorStatus"]) == (1, 1, "Available")
    await asyncio.sleep(0.5)
    assert len(calls_since(csms, "StatusNotification", mark)) == 1
    frames = csms.checker.frames  # type: ignore[attr-defined]
    response = response_frame_index(csms, "TriggerMessage")
    last_status = max(
        i for i, (d, msg) in enumerate(frames)
        if d == "<-" and msg[0] == 2 and msg[2] == "StatusNotification"
    )
    assert last_status > response  # F06.FR.04


async def test_trigger_meter_values_for_one_evse(csms: DevCsms, station_factory: Any) -> None:
    """TC_F_11_CS / F06.FR.02, F06.FR.04, F06.FR.06: a MeterValues for that EVSE with the
    AlignedDataCtrlr.Measurands (default Energy.Active.Import.Register), context Trigger."""
    await start_station(csms, station_factory)
    mark = len(csms.received)
    assert await trigger(csms, "MeterValues", {"id": 1}) == "Accepted"
    mv = await csms.wait_for(STATION, "MeterValues", since=mark, timeout=5)
    assert mv["evseId"] == 1
    sampled = mv["meterValue"][0]["sampledValue"]
    assert sampled and sampled[0].get("context") == "Trigger"
    assert ENERGY in {s.get("measurand", ENERGY) for s in sampled}
    await asyncio.sleep(0.5)
    assert [p["evseId"] for p in calls_since(csms, "MeterValues", mark)] == [1]  # only EVSE 1


async def test_trigger_transaction_event(csms: DevCsms, station_factory: Any) -> None:
    """Without a transaction: Rejected (F06.FR.05). During one: TC_F_13_CS / F06.FR.07,
    an Updated event with triggerReason Trigger, chargingState and meter values."""
    st = await start_station(csms, station_factory)
    mark = len(csms.received)
    assert await trigger(csms, "TransactionEvent") == "Rejected"
    assert await trigger(csms, "TransactionEvent", {"id": 1}) == "Rejected"
    await asyncio.sleep(0.3)
    assert calls_since(csms, "TransactionEvent", mark) == []

    tx_id = await start_charging(csms, st)
    mark = len(csms.received)
    assert await trigger(csms, "TransactionEvent", {"id": 1}) == "Accepted"
    event = await csms.wait_for(
        STATION, "TransactionEvent", lambda p: p["triggerReason"] == "Trigger", since=mark
    )
    assert event["eventType"] == "Updated"
    assert event["transactionInfo"]["transactionId"] == tx_id
    assert event["transactionInfo"]["chargingState"] == "Charging"
    assert event.get("evse", {"id": 1})["id"] == 1
    assert event["meterValue"], "F06.FR.07: meterValue missing"
    assert event["meterValue"][0]["sampledValue"][0].get("context") == "Trigger"


async def test_trigger_unimplemented_message_is_not_implemented(
    csms: DevCsms, station_factory: Any
) -> None:
    """TC_F_27_CS / F06.FR.08: NotImplemented for a message the station cannot send."""
    await start_station(csms, station_factory)
    mark = len(csms.received)
    for message in ("SignCombinedCertificate",):  # LogStatusNotification: test_logs_v201
        assert await trigger(csms, message) == "NotImplemented", message
    await asyncio.sleep(0.3)
    assert csms.received[mark:] == []


# -- ChangeAvailability (G03) -----------------------------------------------------------


async def change_availability(csms: DevCsms, status: str, evse_id: int | None) -> str:
    payload: dict[str, Any] = {"operationalStatus": status}
    if evse_id is not None:
        payload["evse"] = {"id": evse_id}
    answer = await csms.call(STATION, "ChangeAvailability", payload)
    return str(answer["status"])


async def test_inoperative_evse_persists_across_restart_then_operative(
    csms: DevCsms, station_factory: Any
) -> None:
    """TC_G_03_CS, TC_G_04_CS: G03.FR.04/06 Unavailable; G03.FR.08 / B11.FR.02 still
    Unavailable after a restart; G03.FR.07 back to Available when Operative again."""
    st = await start_station(csms, station_factory)
    mark = len(csms.received)
    assert await change_availability(csms, "Inoperative", 2) == "Accepted"
    await csms.wait_for(STATION, "StatusNotification", status_of(2, "Unavailable"), since=mark)
    assert all(p["evseId"] == 2 for p in calls_since(csms, "StatusNotification", mark))
    assert await change_availability(csms, "Inoperative", 2) == "Accepted"  # G03.FR.03
    state = await st.state()
    assert [e["connector_status"] for e in state["evses"]] == ["Available", "Unavailable"]

    assert await st.terminate() == 0
    mark = len(csms.received)
    st.start()
    await booted(csms, since=mark)
    statuses = {p["evseId"]: p["connectorStatus"]
                for p in calls_since(csms, "StatusNotification", mark)}
    assert statuses == {1: "Available", 2: "Unavailable"}

    mark = len(csms.received)
    assert await change_availability(csms, "Operative", 2) == "Accepted"
    await csms.wait_for(STATION, "StatusNotification", status_of(2, "Available"), since=mark)


async def test_inoperative_during_transaction_is_scheduled(
    csms: DevCsms, station_factory: Any
) -> None:
    """TC_G_11_CS / G03.FR.05: Scheduled; the EVSE becomes Unavailable only once the
    transaction has ended."""
    st = await start_station(csms, station_factory)
    await start_charging(csms, st)
    mark = len(csms.received)
    assert await change_availability(csms, "Inoperative", 1) == "Scheduled"
    await asyncio.sleep(1.2)  # TxUpdatedInterval = 1: the transaction carries on meanwhile
    assert not any(p["connectorStatus"] == "Unavailable"
                   for p in calls_since(csms, "StatusNotification", mark))
    assert not any(ended(p) for p in calls_since(csms, "TransactionEvent", mark))
    assert (await st.state())["evses"][0]["contactor_closed"] is True

    await st.tap(CARD)  # StopAuthorized
    await csms.wait_for(STATION, "TransactionEvent", ended, since=mark)
    await csms.wait_for(STATION, "StatusNotification", status_of(1, "Unavailable"), since=mark)
    assert index_of(csms, "TransactionEvent", ended, mark) < index_of(
        csms, "StatusNotification", status_of(1, "Unavailable"), mark
    )
    assert (await st.state())["evses"][0]["connector_status"] == "Unavailable"


async def test_change_availability_of_unknown_evse_is_rejected(
    csms: DevCsms, station_factory: Any
) -> None:
    """G03.FR.01/02: the response says the station cannot make the change."""
    await start_station(csms, station_factory)
    mark = len(csms.received)
    assert await change_availability(csms, "Inoperative", 99) == "Rejected"
    await asyncio.sleep(0.3)
    assert calls_since(csms, "StatusNotification", mark) == []


# -- Reset (B11, B12) -------------------------------------------------------------------


async def test_reset_immediate_when_idle_restarts_in_place(
    csms: DevCsms, station_factory: Any
) -> None:
    """B11.FR.01/03/04: Accepted, a reboot (re-exec: same pid, no exit), then B01 again
    with BootNotification reason RemoteReset and every connector reported."""
    st = await start_station(csms, station_factory)
    pid = st.proc.pid
    mark = len(csms.received)
    answer = await csms.call(STATION, "Reset", {"type": "Immediate"})
    assert answer == {"status": "Accepted"}
    boot = await csms.wait_for(STATION, "BootNotification", since=mark, timeout=15)
    assert boot["reason"] == "RemoteReset"
    await csms.wait_for(STATION, "StatusNotification", status_of(2), since=mark)
    assert st.proc.poll() is None, "the agent exited instead of restarting in place"
    assert st.proc.pid == pid
    assert "restarting" in st.output()


async def test_reset_on_idle_during_transaction_waits_for_its_end(
    csms: DevCsms, station_factory: Any
) -> None:
    """TC_B_21_CS / B12.FR.01: Scheduled; B12.FR.03: the transaction ends normally first,
    then the reboot, with BootNotification reason ScheduledReset (TC_B_21_CS step 7)."""
    st = await start_charging_station(csms, station_factory)
    pid = st.proc.pid
    mark = len(csms.received)
    answer = await csms.call(STATION, "Reset", {"type": "OnIdle"})
    assert answer == {"status": "Scheduled"}
    await csms.wait_for(  # still charging: the reset waits
        STATION, "TransactionEvent", lambda p: p["triggerReason"] == "MeterValuePeriodic",
        since=mark,
    )
    assert calls_since(csms, "BootNotification", mark) == []
    assert not any(ended(p) for p in calls_since(csms, "TransactionEvent", mark))

    await st.tap(CARD)  # reusable state StopAuthorized
    end = await csms.wait_for(STATION, "TransactionEvent", ended, since=mark)
    assert end["triggerReason"] == "StopAuthorized"
    assert end["transactionInfo"]["stoppedReason"] == "Local"
    boot = await csms.wait_for(STATION, "BootNotification", since=mark, timeout=15)
    assert index_of(csms, "TransactionEvent", ended, mark) < index_of(
        csms, "BootNotification", since=mark
    )
    assert st.proc.poll() is None and st.proc.pid == pid
    assert boot["reason"] == "ScheduledReset", (
        f"TC_B_21_CS step 7 wants ScheduledReset after a Scheduled OnIdle reset, got "
        f"{boot['reason']}"
    )


async def start_charging_station(csms: DevCsms, station_factory: Any) -> Any:
    st = await start_station(csms, station_factory)
    await start_charging(csms, st)
    return st


async def test_reset_immediate_during_transaction_ends_it_before_reboot(
    csms: DevCsms, station_factory: Any
) -> None:
    """TC_B_22_CS / B12.FR.02: Accepted; B12.FR.04: TransactionEvent Ended (ResetCommand,
    ImmediateReset, chargingState EVConnected, no idToken) before the new BootNotification
    (reason RemoteReset)."""
    st = await start_charging_station(csms, station_factory)
    tx_id = tx_events(csms)[0]["transactionInfo"]["transactionId"]
    pid = st.proc.pid
    mark = len(csms.received)
    answer = await csms.call(STATION, "Reset", {"type": "Immediate"})
    assert answer == {"status": "Accepted"}
    boot = await csms.wait_for(STATION, "BootNotification", since=mark, timeout=15)
    assert boot["reason"] == "RemoteReset"
    end = await csms.wait_for(STATION, "TransactionEvent", ended, since=mark)
    assert index_of(csms, "TransactionEvent", ended, mark) < index_of(
        csms, "BootNotification", since=mark
    ), "B12.FR.04: the transaction must end before the reboot"
    assert end["transactionInfo"]["transactionId"] == tx_id
    assert end["triggerReason"] == "ResetCommand"
    assert end["transactionInfo"]["stoppedReason"] == "ImmediateReset"
    assert end["transactionInfo"]["chargingState"] == "EVConnected"
    assert "idToken" not in end
    assert st.proc.poll() is None and st.proc.pid == pid

    after_boot = index_of(csms, "BootNotification", since=mark)
    await csms.wait_for(STATION, "StatusNotification", status_of(2), since=after_boot)
    await asyncio.sleep(0.5)
    # Answered before the reboot: not ended a second time (PowerLoss) after it.
    assert not any(ended(p) for p in calls_since(csms, "TransactionEvent", after_boot))
    assert (await st.state())["evses"][0]["transaction_id"] is None


async def test_reset_of_one_evse_is_rejected(csms: DevCsms, station_factory: Any) -> None:
    """TC_B_28_CS / B11.FR.09, B12.FR.09: no per-EVSE reset, so Rejected and no reboot."""
    st = await start_station(csms, station_factory)
    mark = len(csms.received)
    for kind in ("OnIdle", "Immediate"):
        answer = await csms.call(STATION, "Reset", {"type": kind, "evseId": 1})
        assert answer == {"status": "Rejected"}, kind
    await asyncio.sleep(1.5)  # a reboot would have sent a BootNotification by now
    assert calls_since(csms, "BootNotification", mark) == []
    assert "restarting" not in st.output()


# -- UnlockConnector (F05) --------------------------------------------------------------


async def unlock(csms: DevCsms, evse_id: int, connector_id: int) -> str:
    answer = await csms.call(
        STATION, "UnlockConnector", {"evseId": evse_id, "connectorId": connector_id}
    )
    return str(answer["status"])


async def test_unlock_connector(csms: DevCsms, station_factory: Any) -> None:
    """TC_F_06_CS/TC_F_07_CS F05.FR.04/06: idle, no cable -> Unlocked; TC_F_10_CS F05.FR.03:
    unknown connector; TC_F_05_CS F05.FR.02: a transaction -> OngoingAuthorizedTransaction,
    and neither unlock nor stop it."""
    st = await start_station(csms, station_factory)
    assert await unlock(csms, 1, 1) == "Unlocked"
    assert await unlock(csms, 1, 999) == "UnknownConnector"
    assert await unlock(csms, 99, 1) == "UnknownConnector"

    tx_id = await start_charging(csms, st)
    mark = len(csms.received)
    assert await unlock(csms, 1, 1) == "OngoingAuthorizedTransaction"
    await asyncio.sleep(0.5)
    assert not any(ended(p) for p in calls_since(csms, "TransactionEvent", mark))
    evse1 = (await st.state())["evses"][0]
    assert evse1["transaction_id"] == tx_id and evse1["contactor_closed"] is True
    assert await unlock(csms, 2, 1) == "Unlocked"  # the other EVSE is idle


# -- Heartbeat (G02) --------------------------------------------------------------------


async def test_heartbeat_interval_set_by_csms(csms: DevCsms, station_factory: Any) -> None:
    """B05 SetVariables OCPPCommCtrlr.HeartbeatInterval = 2 -> Accepted; G02.FR.02: while
    idle, heartbeats then come at that interval."""
    # No clock-aligned MeterValues in the middle: any message restarts the idle timer.
    st = station_factory(settings={"AlignedDataCtrlr": {"Interval": 0}})
    st.start()
    await booted(csms)
    result = await csms.call(STATION, "SetVariables", {"setVariableData": [
        {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"},
         "attributeValue": "2"}]})
    assert result["setVariableResult"][0]["attributeStatus"] == "Accepted"
    loop = asyncio.get_running_loop()
    times = [loop.time()]
    since = len(csms.received)
    for _ in range(3):
        await csms.wait_for(STATION, "Heartbeat", since=since, timeout=5)
        times.append(loop.time())
        since = len(csms.received)
    first, *gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert first <= 3.0, f"first heartbeat {first:.1f} s after the change"
    assert all(1.5 <= g <= 3.0 for g in gaps), gaps


# -- GetVariables limits (B06) ----------------------------------------------------------


async def test_get_variables_over_items_per_message_is_occurrence_violation(
    csms: DevCsms, station_factory: Any
) -> None:
    """DeviceDataCtrlr.ItemsPerMessage[GetVariables] = 50 (B06.FR.05 on the CSMS side):
    50 items are answered, 51 get CALLERROR OccurrenceConstraintViolation."""
    await start_station(csms, station_factory)
    item = {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}
    limit = await csms.call(STATION, "GetVariables", {"getVariableData": [
        {"component": {"name": "DeviceDataCtrlr"},
         "variable": {"name": "ItemsPerMessage", "instance": "GetVariables"}}]})
    assert limit["getVariableResult"][0]["attributeValue"] == "50"
    answer = await csms.call(STATION, "GetVariables", {"getVariableData": [item] * 50})
    assert len(answer["getVariableResult"]) == 50
    with pytest.raises(StationCallError) as refused:
        await csms.call(STATION, "GetVariables", {"getVariableData": [item] * 51})
    assert refused.value.error == "OccurrenceConstraintViolation"
    # ... and carries on.
    answer = await csms.call(STATION, "GetVariables", {"getVariableData": [item]})
    assert answer["getVariableResult"][0]["attributeStatus"] == "Accepted"
