"""A mock station process against the development CSMS over a real websocket.
Requirement ids: OCPP 2.0.1 Part 2."""

from __future__ import annotations

import asyncio
from typing import Any

from e2e_support import STATION, tx_events

from evse_agent.csms import DevCsms


def ended(p: dict[str, Any]) -> bool:
    return p["eventType"] == "Ended"


def charging(p: dict[str, Any]) -> bool:
    return p["transactionInfo"].get("chargingState") == "Charging"


def assert_one_transaction_in_order(events: list[dict[str, Any]]) -> None:
    ids = {e["transactionInfo"]["transactionId"] for e in events}
    assert len(ids) == 1, ids
    assert [e["seqNo"] for e in events] == list(range(len(events)))  # E01.FR.07, no gap/dupe
    assert events[0]["eventType"] == "Started" and events[-1]["eventType"] == "Ended"
    assert all(e["eventType"] == "Updated" for e in events[1:-1])


async def test_boot_status_and_local_session(csms: DevCsms, station_factory: Any) -> None:
    st = station_factory()
    st.start()
    boot = await csms.wait_for(STATION, "BootNotification")
    assert boot["reason"] == "PowerUp"
    assert boot["chargingStation"]["serialNumber"] == STATION
    await csms.wait_for(STATION, "StatusNotification", lambda p: p["evseId"] == 2)  # B01.FR.05
    state = await st.state()
    assert state["ocpp"] == {"connected": True, "version": "2.0.1", "registration": "Accepted"}

    await st.plug(1, max_current_a=16)
    await st.tap("AABBCCDD")
    auth = await csms.wait_for(STATION, "Authorize")
    assert auth["idToken"] == {"idToken": "AABBCCDD", "type": "ISO14443"}
    started = await csms.wait_for(STATION, "TransactionEvent")
    assert started["eventType"] == "Started" and started["evse"] == {"id": 1, "connectorId": 1}
    assert started["idToken"]["idToken"] == "AABBCCDD"
    await csms.wait_for(STATION, "TransactionEvent", charging)
    await csms.wait_for(STATION, "TransactionEvent", lambda p: p["triggerReason"] ==
                        "MeterValuePeriodic")
    state = await st.state()
    evse1 = state["evses"][0]
    assert evse1["contactor_closed"] is True and evse1["power_w"] == 16 * 230 * 3
    assert evse1["transaction_id"] == started["transactionInfo"]["transactionId"]
    await st.tap("AABBCCDD")  # E07: the same card ends it
    end = await csms.wait_for(STATION, "TransactionEvent", ended)
    assert end["transactionInfo"]["stoppedReason"] == "Local"
    await st.unplug(1)
    await csms.wait_for(STATION, "StatusNotification",
                        lambda p: p["evseId"] == 1 and p["connectorStatus"] == "Available")
    events = tx_events(csms)
    assert_one_transaction_in_order(events)
    energy = [
        s["value"] for e in events for mv in e.get("meterValue", []) for s in mv["sampledValue"]
        if s.get("measurand") == "Energy.Active.Import.Register"
    ]
    assert energy == sorted(energy) and energy[-1] > energy[0]
    assert await st.terminate() == 0  # SIGTERM: a clean stop


async def test_remote_start_and_stop(csms: DevCsms, station_factory: Any) -> None:
    st = station_factory()
    st.start()
    await csms.wait_for(STATION, "StatusNotification", lambda p: p["evseId"] == 2)
    answer = await csms.call(
        STATION,
        "RequestStartTransaction",
        {"idToken": {"idToken": "REMOTE1", "type": "Central"}, "remoteStartId": 7, "evseId": 2},
    )
    assert answer["status"] == "Accepted"
    await st.plug(2)
    started = await csms.wait_for(STATION, "TransactionEvent")
    assert started["triggerReason"] == "RemoteStart"
    assert started["transactionInfo"]["remoteStartId"] == 7
    await csms.wait_for(STATION, "TransactionEvent", charging)
    tx_id = started["transactionInfo"]["transactionId"]
    unknown = await csms.call(STATION, "RequestStopTransaction", {"transactionId": "nope"})
    assert unknown["status"] == "Rejected"
    stop = await csms.call(STATION, "RequestStopTransaction", {"transactionId": tx_id})
    assert stop["status"] == "Accepted"
    end = await csms.wait_for(STATION, "TransactionEvent", ended)
    assert end["triggerReason"] == "RemoteStop"
    assert end["transactionInfo"]["stoppedReason"] == "Remote"
    state = await st.state()
    assert state["evses"][1]["contactor_closed"] is False
    assert_one_transaction_in_order(tx_events(csms))


async def test_get_and_set_variables_persist_across_restart(
    csms: DevCsms, station_factory: Any
) -> None:
    st = station_factory()
    st.start()
    await csms.wait_for(STATION, "StatusNotification", lambda p: p["evseId"] == 2)
    component = {"name": "SampledDataCtrlr"}
    result = await csms.call(STATION, "SetVariables", {"setVariableData": [
        {"component": component, "variable": {"name": "TxUpdatedInterval"},
         "attributeValue": "17"},
        {"component": component, "variable": {"name": "NoSuchVariable"}, "attributeValue": "1"},
        {"component": {"name": "NoSuchCtrlr"}, "variable": {"name": "X"}, "attributeValue": "1"},
        {"component": {"name": "SecurityCtrlr"}, "variable": {"name": "SecurityProfile"},
         "attributeValue": "3"},
        {"component": component, "variable": {"name": "TxUpdatedInterval"},
         "attributeValue": "x"},
        {"component": component, "variable": {"name": "TxUpdatedInterval"},
         "attributeType": "Target", "attributeValue": "5"},
    ]})
    statuses = [r["attributeStatus"] for r in result["setVariableResult"]]
    assert statuses == [
        "Accepted", "UnknownVariable", "UnknownComponent", "Rejected", "Rejected",
        "NotSupportedAttributeType",
    ]
    assert await st.terminate() == 0
    st.start()
    await csms.wait_for(STATION, "BootNotification", since=len(csms.received))
    await asyncio.sleep(0.3)
    got = await csms.call(STATION, "GetVariables", {"getVariableData": [
        {"component": component, "variable": {"name": "TxUpdatedInterval"}},
        {"component": {"name": "SecurityCtrlr"}, "variable": {"name": "BasicAuthPassword"}},
    ]})
    first, password = got["getVariableResult"]
    assert first["attributeStatus"] == "Accepted" and first["attributeValue"] == "17"
    assert password["attributeStatus"] == "Rejected"  # WriteOnly is never reported
    assert "attributeValue" not in password
