"""The device model end to end (OCPP 2.0.1 Part 2 B05-B08; issue 4 items 2, 3 and 5):
reports (GetBaseReport, GetReport) followed by NotifyReport pages, attribute types,
and settings that change the station's behaviour when the CSMS sets them. A real
`evse-agent run` process and the development CSMS over a websocket, every frame
checked against the official schemas by the `csms` fixture. Test cases: Part 6
(TC_B_xx_CS)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from e2e_support import STATION, tx_events

from evse_agent.csms import DevCsms

LISTS = ("OptionList", "SequenceList", "MemberList")
CONTROLLERS = (
    # CustomizationCtrlr is left out: evse-agent has no vendor extension, so it has no
    # variables, and a report lists variables.
    "AlignedDataCtrlr", "AuthCacheCtrlr", "AuthCtrlr", "ClockCtrlr",
    "DeviceDataCtrlr", "DisplayMessageCtrlr", "ISO15118Ctrlr", "LocalAuthListCtrlr",
    "MonitoringCtrlr", "OCPPCommCtrlr", "ReservationCtrlr", "SampledDataCtrlr",
    "SecurityCtrlr", "SmartChargingCtrlr", "TariffCostCtrlr", "TxCtrlr",
)
ENERGY = "Energy.Active.Import.Register"


# -- helpers -------------------------------------------------------------------------
def status_of(evse_id: int, status: str | None = None) -> Any:
    return lambda p: p["evseId"] == evse_id and status in (None, p["connectorStatus"])


async def start_station(csms: DevCsms, station_factory: Any, **settings: Any) -> Any:
    st = station_factory(settings or None)
    st.start()
    await csms.wait_for(STATION, "BootNotification", timeout=15)
    await csms.wait_for(STATION, "StatusNotification", status_of(2))  # B01.FR.05
    return st


async def ask(csms: DevCsms, action: str, payload: dict[str, Any]) -> dict[str, Any]:
    """A report request, asked again while the station answers Rejected: it runs one
    report at a time, and the previous one ends only when the station has processed
    the answer to its last page (B07.FR.13 / B08.FR.16 allow Rejected for that)."""
    for _ in range(30):
        answer = await csms.call(STATION, action, payload)
        if answer["status"] != "Rejected":
            break
        await asyncio.sleep(0.1)
    return answer


async def report(
    csms: DevCsms, action: str, payload: dict[str, Any], page_action: str = "NotifyReport"
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Send a report request; return its answer and, when Accepted, every page of the
    report after checking the paging rules (B07.FR.04/10, B08.FR.04/14)."""
    mark = len(csms.received)
    rid = payload["requestId"]
    answer = await ask(csms, action, payload)
    if answer["status"] != "Accepted":
        return answer, []
    await csms.wait_for(
        STATION, page_action, lambda p: p["requestId"] == rid and not p.get("tbc", False),
        since=mark,
    )
    pages = [r.payload for r in csms.received[mark:]
             if r.station_id == STATION and r.action == page_action
             and r.payload["requestId"] == rid]
    assert [p["seqNo"] for p in pages] == list(range(len(pages)))  # 0.., contiguous
    assert all(p["tbc"] is True for p in pages[:-1]), [p.get("tbc") for p in pages]
    assert pages[-1].get("tbc", False) is False
    return answer, pages


def entries(pages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for p in pages for d in p.get("reportData", [])]


def find(data: list[dict[str, Any]], component: str, variable: str,
         evse: dict[str, int] | None = None, instance: str | None = None) -> list[dict[str, Any]]:
    return [
        d for d in data
        if d["component"]["name"] == component and d["variable"]["name"] == variable
        and (evse is None or d["component"].get("evse") == evse)
        and (instance is None or d["variable"].get("instance") == instance)
    ]


def attribute(entry: dict[str, Any], kind: str = "Actual") -> dict[str, Any]:
    return next(a for a in entry["variableAttribute"] if a.get("type", "Actual") == kind)


def cv(component: str, variable: str | None = None, evse: dict[str, int] | None = None,
       **extra: Any) -> dict[str, Any]:
    comp: dict[str, Any] = {"name": component}
    if evse is not None:
        comp["evse"] = evse
    out: dict[str, Any] = {"component": comp}
    if variable is not None:
        out["variable"] = {"name": variable}
    out.update(extra)
    return out


async def set_one(csms: DevCsms, component: str, variable: str, value: str) -> str:
    result = await csms.call(STATION, "SetVariables", {"setVariableData": [
        cv(component, variable, attributeValue=value)]})
    return str(result["setVariableResult"][0]["attributeStatus"])


def charging(p: dict[str, Any]) -> bool:
    return p["transactionInfo"].get("chargingState") == "Charging"


def periodic(p: dict[str, Any]) -> bool:
    return p["triggerReason"] == "MeterValuePeriodic"


def when(p: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(p["timestamp"].replace("Z", "+00:00"))


async def start_charging(csms: DevCsms, st: Any, evse: int = 1, card: str = "CARD-DM") -> str:
    mark = len(csms.received)
    await st.plug(evse)
    await st.tap(card)
    started = await csms.wait_for(STATION, "TransactionEvent", since=mark)
    await csms.wait_for(STATION, "TransactionEvent", charging, since=mark)
    return str(started["transactionInfo"]["transactionId"])


# -- B07 GetBaseReport -----------------------------------------------------------------
async def test_full_inventory_reports_every_component_and_variable(
    csms: DevCsms, station_factory: Any
) -> None:
    """TC_B_13_CS, TC_B_53_CS: B07.FR.01/03/04/08/10/11/12; B08 errata: WriteOnly values
    are not reported."""
    await start_station(csms, station_factory)
    answer, pages = await report(csms, "GetBaseReport",
                                 {"requestId": 41, "reportBase": "FullInventory"})
    assert answer["status"] == "Accepted"  # B07.FR.01
    assert len(pages) > 1  # a full model does not fit one page: paging is exercised
    data = entries(pages)
    assert all("variableCharacteristics" in d for d in data)  # B07.FR.08
    for d in data:  # TC_B_12/13: a list type carries its valuesList
        if d["variableCharacteristics"]["dataType"] in LISTS:
            assert d["variableCharacteristics"].get("valuesList"), d

    names = {d["component"]["name"] for d in data}
    assert set(CONTROLLERS) <= names, set(CONTROLLERS) - names

    (heartbeat,) = find(data, "OCPPCommCtrlr", "HeartbeatInterval")
    actual = attribute(heartbeat)
    assert actual["value"] == "300"  # the BootNotification interval of the dev CSMS
    assert actual.get("mutability", "ReadWrite") == "ReadWrite"
    chars = heartbeat["variableCharacteristics"]
    assert chars["dataType"] == "integer" and chars["unit"] == "s"
    assert chars["supportsMonitoring"] is True and chars.get("minLimit") == 1

    for evse_id in (1, 2):
        assert find(data, "EVSE", "AvailabilityState", {"id": evse_id})
        (power,) = find(data, "EVSE", "Power", {"id": evse_id})
        assert "maxLimit" in power["variableCharacteristics"]  # required for EVSE Power
        assert find(data, "Connector", "AvailabilityState", {"id": evse_id, "connectorId": 1})
        assert find(data, "Connector", "ConnectorType", {"id": evse_id, "connectorId": 1})
    assert not find(data, "EVSE", "AvailabilityState", {"id": 3})

    (password,) = find(data, "SecurityCtrlr", "BasicAuthPassword")
    for attr in password["variableAttribute"]:  # WriteOnly: never its value
        assert attr["mutability"] == "WriteOnly" and "value" not in attr

    # B07.FR.11: attribute types other than Actual are listed even while unset.
    (ac_current,) = find(data, "ConnectedEV", "ACCurrent", {"id": 1})
    assert [a["type"] for a in ac_current["variableAttribute"]] == ["MaxSet"]


async def test_configuration_and_summary_inventory(csms: DevCsms, station_factory: Any) -> None:
    """TC_B_12_CS (B07.FR.07) and TC_B_14_CS (B07.FR.09): ConfigurationInventory holds
    only what the operator can set; SummaryInventory the availability of station,
    EVSEs and connectors, and every component in an abnormal state."""
    st = await start_station(csms, station_factory)
    answer, pages = await report(csms, "GetBaseReport",
                                 {"requestId": 42, "reportBase": "ConfigurationInventory"})
    assert answer["status"] == "Accepted"
    data = entries(pages)
    for d in data:
        assert "variableCharacteristics" in d
        for attr in d["variableAttribute"]:
            assert attr.get("mutability", "ReadWrite") in ("ReadWrite", "WriteOnly"), d
    (heartbeat,) = find(data, "OCPPCommCtrlr", "HeartbeatInterval")
    assert attribute(heartbeat)["value"] == "300"
    assert find(data, "SampledDataCtrlr", "TxUpdatedInterval")
    (password,) = find(data, "SecurityCtrlr", "BasicAuthPassword")
    assert all("value" not in a for a in password["variableAttribute"])
    assert not find(data, "EVSE", "AvailabilityState")  # ReadOnly: not configuration
    assert not find(data, "ChargingStation", "SerialNumber")

    answer, pages = await report(csms, "GetBaseReport",
                                 {"requestId": 43, "reportBase": "SummaryInventory"})
    assert answer["status"] == "Accepted"
    data = entries(pages)
    assert attribute(find(data, "ChargingStation", "AvailabilityState")[0])["value"] == \
        "Available"
    for evse_id in (1, 2):
        (state,) = find(data, "EVSE", "AvailabilityState", {"id": evse_id})
        assert attribute(state)["value"] == "Available"
    assert not [d for d in data if d["variable"]["name"] == "Problem"]  # nothing is wrong
    assert not find(data, "OCPPCommCtrlr", "HeartbeatInterval")

    await st.api("POST", "/api/fault", {"device": "meter", "fault": "offline", "evse": 2})
    await asyncio.sleep(0.3)
    _, pages = await report(csms, "GetBaseReport",
                            {"requestId": 44, "reportBase": "SummaryInventory"})
    data = entries(pages)
    (meter,) = find(data, "FiscalMetering", "Problem", {"id": 2})
    assert attribute(meter)["value"] == "true"
    assert attribute(find(data, "EVSE", "Problem", {"id": 2})[0])["value"] == "true"
    assert not find(data, "EVSE", "Problem", {"id": 1})


# -- B08 GetReport ---------------------------------------------------------------------
async def test_get_report_problem_criteria(csms: DevCsms, station_factory: Any) -> None:
    """TC_B_16_CS / TC_B_18_CS: B08.FR.10 (Problem: only components whose Problem is
    true), B08.FR.15 (EmptyResultSet, and no NotifyReport), B08.FR.05/13."""
    st = await start_station(csms, station_factory)
    mark = len(csms.received)
    answer = await ask(csms, "GetReport",
                             {"requestId": 51, "componentCriteria": ["Problem"]})
    assert answer["status"] == "EmptyResultSet"  # B08.FR.15
    # TC_B_18: EVSE 1 AvailabilityState from Available components: exactly that one.
    answer, pages = await report(csms, "GetReport", {
        "requestId": 52, "componentCriteria": ["Available"],
        "componentVariable": [cv("EVSE", "AvailabilityState", {"id": 1})]})
    assert answer["status"] == "Accepted"
    (only,) = entries(pages)
    assert only["component"] == {"name": "EVSE", "evse": {"id": 1}}
    assert only["variable"] == {"name": "AvailabilityState"}
    answer = await ask(csms, "GetReport", {
        "requestId": 53, "componentCriteria": ["Problem"],
        "componentVariable": [cv("EVSE", "AvailabilityState", {"id": 1})]})
    assert answer["status"] == "EmptyResultSet"
    assert not [r for r in csms.received[mark:] if r.action == "NotifyReport"
                and r.payload["requestId"] in (51, 53)]

    await st.api("POST", "/api/fault", {"device": "meter", "fault": "offline", "evse": 1})
    await csms.wait_for(STATION, "NotifyEvent", since=mark)  # the fault has been seen
    answer, pages = await report(csms, "GetReport",
                                 {"requestId": 54, "componentCriteria": ["Problem"]})
    assert answer["status"] == "Accepted"  # B08.FR.01
    data = entries(pages)
    assert all("variableCharacteristics" in d for d in data)  # B08.FR.12
    places = {(d["component"]["name"], d["component"].get("evse", {}).get("id")) for d in data}
    assert ("FiscalMetering", 1) in places and ("EVSE", 1) in places
    assert ("EVSE", 2) not in places and ("FiscalMetering", 2) not in places
    assert attribute(find(data, "FiscalMetering", "Problem", {"id": 1})[0])["value"] == "true"
    assert not find(data, "OCPPCommCtrlr", "HeartbeatInterval")  # no Problem variable

    await st.api("POST", "/api/fault", {"clear": True})
    await csms.wait_for(STATION, "NotifyEvent",
                        lambda p: any(e["cleared"] for e in p["eventData"]), since=mark)
    answer = await ask(csms, "GetReport",
                             {"requestId": 55, "componentCriteria": ["Problem"]})
    assert answer["status"] == "EmptyResultSet"


async def test_get_report_component_variable_filters(csms: DevCsms, station_factory: Any) -> None:
    """TC_B_17_CS (B08.FR.11: exactly the variables asked for), TC_B_54_CS (B08.FR.21: no
    variable instance -> every instance), TC_B_56_CS (B08.FR.23: no evse -> every
    EVSE), B08.FR.20 (no variable -> every variable of the component)."""
    await start_station(csms, station_factory)
    answer, pages = await report(csms, "GetReport", {
        "requestId": 61, "componentVariable": [cv("OCPPCommCtrlr", "HeartbeatInterval")]})
    assert answer["status"] == "Accepted"
    (only,) = entries(pages)
    assert only["component"] == {"name": "OCPPCommCtrlr"}
    assert only["variable"] == {"name": "HeartbeatInterval"}
    assert attribute(only)["value"] == "300"
    assert only["variableCharacteristics"]["dataType"] == "integer"  # B08.FR.12

    _, pages = await report(csms, "GetReport", {
        "requestId": 62, "componentVariable": [cv("EVSE", "AvailabilityState")]})
    data = entries(pages)
    assert sorted(d["component"]["evse"]["id"] for d in data) == [1, 2]
    assert {d["variable"]["name"] for d in data} == {"AvailabilityState"}

    _, pages = await report(csms, "GetReport", {
        "requestId": 63, "componentVariable": [cv("OCPPCommCtrlr", "MessageTimeout")]})
    data = entries(pages)
    assert data and {d["variable"]["name"] for d in data} == {"MessageTimeout"}
    assert "Default" in {d["variable"].get("instance") for d in data}

    _, pages = await report(csms, "GetReport", {
        "requestId": 64, "componentVariable": [cv("Connector", evse={"id": 2})]})
    data = entries(pages)
    assert {d["component"]["name"] for d in data} == {"Connector"}
    assert {d["component"]["evse"]["id"] for d in data} == {2}
    assert {"AvailabilityState", "ConnectorType"} <= {d["variable"]["name"] for d in data}


# -- B05 / B06 attribute types ---------------------------------------------------------
async def test_set_and_get_variables_with_attribute_types(
    csms: DevCsms, station_factory: Any
) -> None:
    """TC_B_10_CS (B05.FR.01/02, B06.FR.01/10: several values set, then read back),
    TC_B_37_CS (B05.FR.06) and TC_B_34_CS (B06.FR.08): an attributeType the variable
    does not have is NotSupportedAttributeType, with no attributeValue."""
    await start_station(csms, station_factory)
    result = await csms.call(STATION, "SetVariables", {"setVariableData": [
        cv("OCPPCommCtrlr", "OfflineThreshold", attributeValue="123"),
        cv("TxCtrlr", "EVConnectionTimeOut", attributeType="Actual", attributeValue="45"),
        cv("OCPPCommCtrlr", "OfflineThreshold", attributeType="Target", attributeValue="5"),
        cv("OCPPCommCtrlr", "HeartbeatInterval", attributeType="MaxSet",
           attributeValue="600"),
        cv("ConnectedEV", "ACCurrent", {"id": 1}, attributeType="MinSet",
           attributeValue="6"),
    ]})
    results = result["setVariableResult"]
    assert [r["attributeStatus"] for r in results] == [
        "Accepted", "Accepted", "NotSupportedAttributeType", "NotSupportedAttributeType",
        "NotSupportedAttributeType",
    ]
    assert [r.get("attributeType", "Actual") for r in results] == [
        "Actual", "Actual", "Target", "MaxSet", "MinSet"]
    assert results[2]["component"] == {"name": "OCPPCommCtrlr"}
    assert results[2]["variable"] == {"name": "OfflineThreshold"}

    got = await csms.call(STATION, "GetVariables", {"getVariableData": [
        cv("OCPPCommCtrlr", "OfflineThreshold"),
        cv("TxCtrlr", "EVConnectionTimeOut", attributeType="Actual"),
        cv("OCPPCommCtrlr", "OfflineThreshold", attributeType="Target"),
        cv("OCPPCommCtrlr", "HeartbeatInterval", attributeType="MaxSet"),
        cv("ConnectedEV", "ACCurrent", {"id": 1}),  # has MaxSet only, no Actual
        cv("ConnectedEV", "ACCurrent", {"id": 1}, attributeType="MaxSet"),
    ]})
    results = got["getVariableResult"]
    assert [r["attributeStatus"] for r in results] == [
        "Accepted", "Accepted", "NotSupportedAttributeType", "NotSupportedAttributeType",
        "NotSupportedAttributeType", "Accepted",
    ]
    assert results[0]["attributeValue"] == "123" and results[1]["attributeValue"] == "45"
    for r in results[2:5]:
        assert "attributeValue" not in r  # B06.FR.08: SHALL omit the value
    assert results[5]["attributeValue"] == ""  # unset without an EV (B06.FR.13)
    # The refused attribute types changed nothing.
    got = await csms.call(STATION, "GetVariables", {"getVariableData": [
        cv("OCPPCommCtrlr", "HeartbeatInterval")]})
    assert got["getVariableResult"][0]["attributeValue"] == "300"


# -- issue item 5: settings that take effect -----------------------------------------------
async def test_heartbeat_interval_applies_at_once(csms: DevCsms, station_factory: Any) -> None:
    """B05 / G02.FR.02: a new HeartbeatInterval from SetVariables sets the heartbeat
    period without a restart."""
    await start_station(csms, station_factory)
    assert await set_one(csms, "OCPPCommCtrlr", "HeartbeatInterval", "1") == "Accepted"
    mark = len(csms.received)
    for _ in range(3):
        await csms.wait_for(STATION, "Heartbeat", since=len(csms.received), timeout=3)
    beats = [r for r in csms.received[mark:] if r.action == "Heartbeat"]
    assert len(beats) >= 3


async def test_tx_updated_interval_changed_during_a_session(
    csms: DevCsms, station_factory: Any
) -> None:
    """SampledDataCtrlr.TxUpdatedInterval (J02.FR.01 via E02): changed in a running
    transaction, the MeterValuePeriodic spacing follows it."""
    st = await start_station(csms, station_factory)  # TxUpdatedInterval = 1 (fixture)
    await start_charging(csms, st)
    mark = len(csms.received)
    for _ in range(2):
        await csms.wait_for(STATION, "TransactionEvent", periodic, since=len(csms.received))
    assert await set_one(csms, "SampledDataCtrlr", "TxUpdatedInterval", "3") == "Accepted"
    changed = len(csms.received)
    # the sample already scheduled at 1 s comes first; the ones after it are 3 s apart
    for _ in range(3):
        await csms.wait_for(STATION, "TransactionEvent", periodic, since=len(csms.received),
                            timeout=5)
    slow = [r.payload for r in csms.received[changed:]
            if r.action == "TransactionEvent" and periodic(r.payload)]
    gaps = [(when(b) - when(a)).total_seconds() for a, b in zip(slow, slow[1:], strict=False)]
    assert gaps[-1] >= 2.5, gaps
    assert all(g >= 2.5 for g in gaps[1:]), gaps
    before = [r.payload for r in csms.received[mark:changed]
              if r.action == "TransactionEvent" and periodic(r.payload)]
    assert len(before) >= 2
    assert (when(before[-1]) - when(before[-2])).total_seconds() < 1.6


async def test_tx_updated_measurands_changed_during_a_session(
    csms: DevCsms, station_factory: Any
) -> None:
    """SampledDataCtrlr.TxUpdatedMeasurands (J02.FR.10): later periodic samples carry
    only the measurands now configured."""
    st = await start_station(csms, station_factory)
    await start_charging(csms, st)
    first = await csms.wait_for(STATION, "TransactionEvent", periodic,
                                since=len(csms.received))
    measurands = {s.get("measurand", ENERGY) for mv in first["meterValue"]
                  for s in mv["sampledValue"]}
    assert len(measurands) > 1, measurands  # factory: energy, power, current
    assert await set_one(csms, "SampledDataCtrlr", "TxUpdatedMeasurands", ENERGY) == "Accepted"
    await asyncio.sleep(1.2)  # a sample built before the change may still be in flight
    later = await csms.wait_for(STATION, "TransactionEvent", periodic,
                                since=len(csms.received))
    measurands = {s.get("measurand", ENERGY) for mv in later["meterValue"]
                  for s in mv["sampledValue"]}
    assert measurands == {ENERGY}


async def test_ev_connection_timeout_expires_the_authorization(
    csms: DevCsms, station_factory: Any
) -> None:
    """TxCtrlr.EVConnectionTimeOut (E03.FR.05, C01): a driver who taps and does not
    plug in within the timeout loses the authorization; plugging in afterwards starts
    no transaction until a new tap."""
    st = await start_station(csms, station_factory)
    assert await set_one(csms, "TxCtrlr", "EVConnectionTimeOut", "2") == "Accepted"
    mark = len(csms.received)
    await st.tap("CARD-LATE")
    await csms.wait_for(STATION, "Authorize", since=mark)
    await asyncio.sleep(2.8)  # the timeout, with a margin for the timer
    await st.plug(1)
    await csms.wait_for(STATION, "StatusNotification", status_of(1, "Occupied"), since=mark)
    await asyncio.sleep(1.0)
    assert tx_events(csms) == []
    state = await st.state()
    assert state["evses"][0]["transaction_id"] is None
    assert state["evses"][0]["contactor_closed"] is False
    await st.tap("CARD-LATE")  # a new tap with the EV plugged: now it charges
    started = await csms.wait_for(STATION, "TransactionEvent", since=mark)
    assert started["eventType"] == "Started"


async def test_authorize_remote_start(csms: DevCsms, station_factory: Any) -> None:
    """AuthCtrlr.AuthorizeRemoteStart = true (F01.FR.01): the station sends an
    AuthorizeRequest for a RequestStartTransaction's idToken before starting."""
    st = await start_station(csms, station_factory)
    assert await set_one(csms, "AuthCtrlr", "AuthorizeRemoteStart", "true") == "Accepted"
    mark = len(csms.received)
    answer = await csms.call(STATION, "RequestStartTransaction", {
        "idToken": {"idToken": "REMOTE-AUTH", "type": "Central"}, "remoteStartId": 11,
        "evseId": 1})
    assert answer["status"] == "Accepted"
    auth = await csms.wait_for(STATION, "Authorize", since=mark)
    assert auth["idToken"] == {"idToken": "REMOTE-AUTH", "type": "Central"}
    await st.plug(1)
    started = await csms.wait_for(STATION, "TransactionEvent", since=mark)
    assert started["triggerReason"] == "RemoteStart"
    assert started["transactionInfo"]["remoteStartId"] == 11
    actions = [r.action for r in csms.received[mark:]]
    assert actions.index("Authorize") < actions.index("TransactionEvent")


async def test_remote_start_without_authorize_by_default(
    csms: DevCsms, station_factory: Any
) -> None:
    """AuthorizeRemoteStart = false (factory, F01.FR.02): no AuthorizeRequest."""
    st = await start_station(csms, station_factory)
    mark = len(csms.received)
    answer = await csms.call(STATION, "RequestStartTransaction", {
        "idToken": {"idToken": "REMOTE-NOAUTH", "type": "Central"}, "remoteStartId": 12,
        "evseId": 1})
    assert answer["status"] == "Accepted"
    await st.plug(1)
    await csms.wait_for(STATION, "TransactionEvent", since=mark)
    assert "Authorize" not in [r.action for r in csms.received[mark:]]


async def test_tx_start_point_ev_connected(csms: DevCsms, station_factory: Any) -> None:
    """TxCtrlr.TxStartPoint = EVConnected (E01.FR.01, E02): plugging in alone starts a
    transaction, with trigger CablePluggedIn and no idToken yet."""
    st = await start_station(csms, station_factory)
    assert await set_one(csms, "TxCtrlr", "TxStartPoint", "EVConnected") == "Accepted"
    mark = len(csms.received)
    await st.plug(2)
    started = await csms.wait_for(STATION, "TransactionEvent", since=mark)
    assert started["eventType"] == "Started"
    assert started["triggerReason"] == "CablePluggedIn"
    assert started["evse"]["id"] == 2
    assert "idToken" not in started
    state = await st.state()
    assert state["evses"][1]["transaction_id"] == started["transactionInfo"]["transactionId"]
    assert state["evses"][1]["contactor_closed"] is False  # not authorized: no energy
