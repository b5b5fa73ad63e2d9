"""Monitoring end to end (OCPP 2.0.1 Part 2 functional block N, N02-N08; issue 4 item 4):
SetVariableMonitoring, ClearVariableMonitoring, SetMonitoringBase, SetMonitoringLevel,
GetMonitoringReport and the NotifyEvents of custom and hard-wired monitors, online and
queued while offline. A real `evse-agent run` process and the development CSMS over a
websocket, every frame checked against the official schemas by the `csms` fixture.
Test cases: Part 6 (TC_N_xx_CS)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Any

from e2e_support import STATION, FrameChecker

from evse_agent.csms import DevCsms

Event = dict[str, Any]


# -- helpers -------------------------------------------------------------------------
def status_of(evse_id: int, status: str | None = None) -> Any:
    return lambda p: p["evseId"] == evse_id and status in (None, p["connectorStatus"])


async def start_station(csms: DevCsms, station_factory: Any) -> Any:
    st = station_factory()
    st.start()
    await csms.wait_for(STATION, "BootNotification", timeout=15)
    await csms.wait_for(STATION, "StatusNotification", status_of(2))  # B01.FR.05
    return st


def cv(component: str, variable: str, evse: dict[str, int] | None = None) -> dict[str, Any]:
    comp: dict[str, Any] = {"name": component}
    if evse is not None:
        comp["evse"] = evse
    return {"component": comp, "variable": {"name": variable}}


async def set_monitor(
    csms: DevCsms, kind: str, value: float, severity: int, component: str, variable: str,
    evse: dict[str, int] | None = None,
) -> int:
    """One SetMonitoringData, which must be Accepted (N04.FR.01); its id (N04.FR.11)."""
    answer = await csms.call(STATION, "SetVariableMonitoring", {"setMonitoringData": [
        {"value": value, "type": kind, "severity": severity, **cv(component, variable, evse)}]})
    (result,) = answer["setMonitoringResult"]
    assert result["status"] == "Accepted", result
    assert result["type"] == kind and result["severity"] == severity  # N04.FR.02
    assert result["component"]["name"] == component
    assert result["variable"] == {"name": variable}
    return int(result["id"])


def events(csms: DevCsms, since: int = 0) -> list[Event]:
    return [e for r in csms.received[since:]
            if r.station_id == STATION and r.action == "NotifyEvent"
            for e in r.payload["eventData"]]


async def wait_event(
    csms: DevCsms, match: Callable[[Event], bool], since: int = 0, timeout: float = 10
) -> Event:
    """The first eventData matching, in a NotifyEvent that keeps the paging rules."""
    payload = await csms.wait_for(
        STATION, "NotifyEvent", lambda p: any(match(e) for e in p["eventData"]),
        since=since, timeout=timeout)
    return next(e for e in payload["eventData"] if match(e))


def by_monitor(monitor_id: int, **fields: Any) -> Callable[[Event], bool]:
    return lambda e: e.get("variableMonitoringId") == monitor_id and all(
        e.get(k) == v for k, v in fields.items())


def hard_wired(component: str, variable: str, evse_id: int, cleared: bool) -> Any:
    return lambda e: (
        e["eventNotificationType"] == "HardWiredMonitor" and e["cleared"] is cleared
        and e["component"]["name"] == component and e["variable"]["name"] == variable
        and e["component"].get("evse", {}).get("id") == evse_id)


def when(e: Event) -> datetime:
    return datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00"))


def notify_event_pages_start_at_zero(csms: DevCsms) -> None:
    """N07.FR.07 / N08.FR.04: every NotifyEvent batch starts at seqNo 0, and its pages
    follow without a gap."""
    expected = 0
    for r in csms.received:
        if r.action != "NotifyEvent":
            continue
        assert r.payload["seqNo"] == expected, r.payload
        expected = expected + 1 if r.payload.get("tbc", False) else 0


async def ask_monitoring_report(csms: DevCsms, payload: dict[str, Any]) -> dict[str, Any]:
    """GetMonitoringReport, asked again while the station is busy with a previous
    report (Rejected is allowed for that)."""
    for _ in range(30):
        answer = await csms.call(STATION, "GetMonitoringReport", payload)
        if answer["status"] != "Rejected":
            return answer
        await asyncio.sleep(0.1)
    return answer


async def monitoring_report(
    csms: DevCsms, request_id: int, component_variable: list[dict[str, Any]] | None = None,
) -> tuple[str, list[dict[str, Any]]]:
    """GetMonitoringReport; its status and the monitor entries of its pages, checking
    the paging (N02.FR.03/04/05)."""
    payload: dict[str, Any] = {"requestId": request_id}
    if component_variable:
        payload["componentVariable"] = component_variable
    mark = len(csms.received)
    answer = await ask_monitoring_report(csms, payload)
    if answer["status"] != "Accepted":
        assert not [r for r in csms.received[mark:] if r.action == "NotifyMonitoringReport"]
        return answer["status"], []
    await csms.wait_for(
        STATION, "NotifyMonitoringReport",
        lambda p: p["requestId"] == request_id and not p.get("tbc", False), since=mark)
    pages = [r.payload for r in csms.received[mark:] if r.action == "NotifyMonitoringReport"
             and r.payload["requestId"] == request_id]
    assert [p["seqNo"] for p in pages] == list(range(len(pages)))
    assert all(p["tbc"] is True for p in pages[:-1])
    return answer["status"], [m for p in pages for m in p.get("monitor", [])]


def monitor_ids(entries: list[dict[str, Any]]) -> set[int]:
    return {vm["id"] for m in entries for vm in m["variableMonitoring"]}


def charging(p: dict[str, Any]) -> bool:
    return p["transactionInfo"].get("chargingState") == "Charging"


# -- N04 / N07 custom monitors -------------------------------------------------------------
async def test_upper_threshold_on_evse_power_trips_and_clears(
    csms: DevCsms, station_factory: Any
) -> None:
    """N04.FR.01/02/11, N07.FR.06/07/16 (trigger Alerting on exceeding), N07.FR.02
    (cleared = true when the value returns), N06.FR.01/02 (TC_N_18_CS, TC_N_19_CS)."""
    st = await start_station(csms, station_factory)
    mid = await set_monitor(csms, "UpperThreshold", 1000, 5, "EVSE", "Power", {"id": 1})
    mark = len(csms.received)
    await st.plug(1)
    await st.tap("CARD-MON")
    started = await csms.wait_for(STATION, "TransactionEvent", since=mark)
    await csms.wait_for(STATION, "TransactionEvent", charging, since=mark)
    tripped = await wait_event(csms, by_monitor(mid, cleared=False), since=mark)
    assert tripped["trigger"] == "Alerting"
    assert tripped["eventNotificationType"] == "CustomMonitor"
    assert tripped["component"] == {"name": "EVSE", "evse": {"id": 1}}
    assert tripped["variable"] == {"name": "Power"}
    assert float(tripped["actualValue"]) > 1000
    assert tripped.get("transactionId") == started["transactionInfo"]["transactionId"]

    await st.tap("CARD-MON")  # E07: ends the session; the power drops to 0
    back = await wait_event(csms, by_monitor(mid, cleared=True), since=mark)
    assert back["trigger"] == "Alerting" and float(back["actualValue"]) <= 1000
    assert back["eventId"] != tripped["eventId"]
    assert len([e for e in events(csms) if e.get("variableMonitoringId") == mid]) == 2
    notify_event_pages_start_at_zero(csms)

    answer = await csms.call(STATION, "ClearVariableMonitoring", {"id": [mid]})
    assert answer["clearMonitoringResult"] == [{"id": mid, "status": "Accepted"}]
    answer = await csms.call(STATION, "ClearVariableMonitoring", {"id": [mid]})
    (result,) = answer["clearMonitoringResult"]
    assert result["id"] == mid and result["status"] == "NotFound"  # N06.FR.02
    status, _ = await monitoring_report(csms, 71, [cv("EVSE", "Power", {"id": 1})])
    assert status == "EmptyResultSet"  # TC_N_18 step 4


async def test_delta_monitor_on_availability_state_and_monitoring_level(
    csms: DevCsms, station_factory: Any
) -> None:
    """TC_N_08_CS (N04.FR.01/02/08/11, the monitor listed by GetMonitoringReport), TC_N_56
    (N07.FR.06/19: a non-numeric Delta fires on every change), TC_N_16_CS (N05.FR.01/03:
    above the monitoring level nothing is reported), Connector AvailabilityState too."""
    st = await start_station(csms, station_factory)
    evse1 = {"id": 1}
    debug = await set_monitor(csms, "Delta", 1, 8, "EVSE", "AvailabilityState", evse1)
    alert = await set_monitor(csms, "Delta", 1, 2, "EVSE", "AvailabilityState", evse1)
    connector = await set_monitor(csms, "Delta", 1, 8, "Connector", "AvailabilityState",
                                  {"id": 1, "connectorId": 1})
    assert len({debug, alert, connector}) == 3

    status, listed = await monitoring_report(csms, 81, [cv("EVSE", "AvailabilityState", evse1)])
    assert status == "Accepted"
    (entry,) = listed
    assert entry["component"] == {"name": "EVSE", "evse": evse1}
    assert entry["variable"] == {"name": "AvailabilityState"}
    by_id = {vm["id"]: vm for vm in entry["variableMonitoring"]}
    assert by_id[debug] == {"id": debug, "transaction": False, "value": 1, "type": "Delta",
                            "severity": 8}
    assert by_id[alert]["severity"] == 2

    answer = await csms.call(STATION, "SetVariableMonitoring", {"setMonitoringData": [
        {"value": 1, "type": "Delta", "severity": 8, **cv("EVSE", "AvailabilityState", evse1)}]})
    assert answer["setMonitoringResult"][0]["status"] == "Duplicate"  # N04.FR.10, TC_N_15

    answer = await csms.call(STATION, "SetMonitoringLevel", {"severity": 9})
    assert answer["status"] == "Accepted"  # N05.FR.01
    mark = len(csms.received)
    await st.plug(1)
    first = await wait_event(csms, by_monitor(debug), since=mark)
    assert first["trigger"] == "Delta" and first["actualValue"] == "Occupied"
    assert first["eventNotificationType"] == "CustomMonitor"
    assert first["component"] == {"name": "EVSE", "evse": evse1}
    assert first["variable"] == {"name": "AvailabilityState"}
    await wait_event(csms, by_monitor(alert, actualValue="Occupied"), since=mark)
    plugged = await wait_event(csms, by_monitor(connector), since=mark)
    assert plugged["component"] == {"name": "Connector", "evse": {"id": 1, "connectorId": 1}}
    assert plugged["actualValue"] == "Occupied"

    answer = await csms.call(STATION, "SetMonitoringLevel", {"severity": 7})
    assert answer["status"] == "Accepted"
    mark = len(csms.received)
    await st.unplug(1)
    await wait_event(csms, by_monitor(alert, actualValue="Available"), since=mark)
    await asyncio.sleep(0.5)  # anything of the same change has been sent by now
    suppressed = [e for e in events(csms, mark)
                  if e.get("variableMonitoringId") in (debug, connector)]
    assert suppressed == []  # N05.FR.03 / N07.FR.15: severity 8 > level 7
    notify_event_pages_start_at_zero(csms)


async def test_periodic_monitor(csms: DevCsms, station_factory: Any) -> None:
    """TC_N_24_CS: N08.FR.01/05/06 (trigger Periodic every monitorValue seconds),
    N07.FR.20; cleared, it stops."""
    await start_station(csms, station_factory)
    mark = len(csms.received)
    mid = await set_monitor(csms, "Periodic", 2, 6, "EVSE", "AvailabilityState", {"id": 1})
    for _ in range(3):
        await wait_event(csms, by_monitor(mid), since=len(csms.received), timeout=4)
    ticks = [e for e in events(csms, mark) if e.get("variableMonitoringId") == mid]
    assert all(e["trigger"] == "Periodic" for e in ticks)
    assert all(e["actualValue"] == "Available" for e in ticks)
    assert all(e["component"] == {"name": "EVSE", "evse": {"id": 1}} for e in ticks)
    gaps = [(when(b) - when(a)).total_seconds() for a, b in zip(ticks, ticks[1:], strict=False)]
    assert all(1.5 <= g <= 2.6 for g in gaps), gaps
    answer = await csms.call(STATION, "ClearVariableMonitoring", {"id": [mid]})
    assert answer["clearMonitoringResult"][0]["status"] == "Accepted"
    after = len(csms.received)
    await asyncio.sleep(2.5)
    assert [e for e in events(csms, after) if e.get("variableMonitoringId") == mid] == []
    notify_event_pages_start_at_zero(csms)


# -- N02 / N03 reports and bases ---------------------------------------------------------
async def test_monitoring_report_and_hard_wired_only_base(
    csms: DevCsms, station_factory: Any
) -> None:
    """TC_N_47_CS (N02.FR.01/03/11: everything reported), TC_N_06_CS (N03.FR.01/05:
    HardWiredOnly removes custom monitors), TC_N_44_CS (N06.FR.03: a hard-wired monitor
    cannot be cleared)."""
    await start_station(csms, station_factory)
    station_delta = await set_monitor(csms, "Delta", 1, 7, "ChargingStation",
                                      "AvailabilityState")
    evse_delta = await set_monitor(csms, "Delta", 1, 7, "EVSE", "AvailabilityState", {"id": 2})

    status, everything = await monitoring_report(csms, 91)
    assert status == "Accepted"
    assert {station_delta, evse_delta} <= monitor_ids(everything)
    problems = [m for m in everything if m["variable"]["name"] == "Problem"
                and m["component"]["name"] == "FiscalMetering"]
    assert problems, "the meters' hard-wired Problem monitors are listed too"
    hard_wired_id = problems[0]["variableMonitoring"][0]["id"]

    status, listed = await monitoring_report(csms, 92, [cv("ChargingStation",
                                                           "AvailabilityState")])
    assert status == "Accepted" and monitor_ids(listed) == {station_delta}

    answer = await csms.call(STATION, "ClearVariableMonitoring", {"id": [hard_wired_id]})
    assert answer["clearMonitoringResult"][0]["status"] == "Rejected"  # N06.FR.03

    answer = await csms.call(STATION, "SetMonitoringBase", {"monitoringBase": "HardWiredOnly"})
    assert answer["status"] == "Accepted"
    status, listed = await monitoring_report(csms, 93, [cv("ChargingStation",
                                                           "AvailabilityState")])
    assert status == "EmptyResultSet"  # TC_N_06 step 8
    status, everything = await monitoring_report(csms, 94)
    assert status == "Accepted"
    ids = monitor_ids(everything)
    assert station_delta not in ids and evse_delta not in ids
    assert hard_wired_id in ids  # only hard-wired monitors remain
    got = await csms.call(STATION, "GetVariables", {"getVariableData": [
        cv("MonitoringCtrlr", "ActiveMonitoringBase")]})
    assert got["getVariableResult"][0]["attributeValue"] == "HardWiredOnly"


# -- N07 hard-wired monitors (HAL faults) ---------------------------------------------------
async def test_hardware_faults_are_hard_wired_events(csms: DevCsms, station_factory: Any) -> None:
    """TC_N_21_CS (N07: eventNotificationType HardWiredMonitor), N07.FR.06/07 and the
    return to normal with cleared = true (N07.FR.02): meter offline on EVSE 1 and a
    welded contactor on EVSE 2 (Problem and Tripped)."""
    st = await start_station(csms, station_factory)
    mark = len(csms.received)
    await st.api("POST", "/api/fault", {"device": "meter", "fault": "offline", "evse": 1})
    meter = await wait_event(csms, hard_wired("FiscalMetering", "Problem", 1, False), mark)
    assert meter["trigger"] == "Alerting" and meter["actualValue"] == "true"
    assert isinstance(meter["variableMonitoringId"], int)
    assert meter.get("techCode") == "offline"

    await st.api("POST", "/api/fault", {"device": "contactor", "fault": "welded", "evse": 2})
    welded = await wait_event(csms, hard_wired("PowerContactor", "Problem", 2, False), mark)
    assert welded["trigger"] == "Alerting"
    tripped = await wait_event(csms, hard_wired("PowerContactor", "Tripped", 2, False), mark)
    assert tripped["actualValue"] == "true"
    assert tripped["variableMonitoringId"] != welded["variableMonitoringId"]

    cleared_mark = len(csms.received)
    await st.api("POST", "/api/fault", {"clear": True})
    for component, variable, evse_id in (("FiscalMetering", "Problem", 1),
                                         ("PowerContactor", "Problem", 2),
                                         ("PowerContactor", "Tripped", 2)):
        back = await wait_event(csms, hard_wired(component, variable, evse_id, True),
                                cleared_mark)
        assert back["trigger"] == "Alerting" and back["actualValue"] == "false"
    ids = [e["eventId"] for e in events(csms)]
    assert len(ids) == len(set(ids))  # every event its own id
    notify_event_pages_start_at_zero(csms)


async def test_monitoring_level_filters_hard_wired_events(
    csms: DevCsms, station_factory: Any
) -> None:
    """SetMonitoringLevel 0 (N05.FR.03, N07.FR.15) also filters hard-wired events of a
    lower severity; a reader gone (severity 2) is then not reported."""
    st = await start_station(csms, station_factory)
    answer = await csms.call(STATION, "SetMonitoringLevel", {"severity": 0})
    assert answer["status"] == "Accepted"
    mark = len(csms.received)
    await st.api("POST", "/api/fault", {"device": "rfid", "fault": "gone"})
    await st.api("POST", "/api/fault", {"device": "contactor", "fault": "welded", "evse": 1})
    tripped = await wait_event(csms, hard_wired("PowerContactor", "Tripped", 1, False), mark)
    assert tripped["eventNotificationType"] == "HardWiredMonitor"
    await asyncio.sleep(0.5)
    names = {(e["component"]["name"], e["variable"]["name"]) for e in events(csms, mark)}
    assert ("TokenReader", "Problem") not in names
    assert ("PowerContactor", "Problem") not in names  # severity 1 > level 0


# -- N07.FR.04 / N08.FR.03 offline queuing ----------------------------------------------------
async def test_events_queued_while_offline_per_offline_queuing_severity(
    csms: DevCsms, station_factory: Any
) -> None:
    """TC_N_22_CS / TC_N_23_CS, N07.FR.04: while offline, events of monitors with a
    severity <= MonitoringCtrlr.OfflineQueuingSeverity (factory 4) are kept and sent
    after the reconnect; the others are dropped. A meter fault (hard-wired, severity
    1) and a Delta monitor of severity 2 are kept, a Delta monitor of severity 8 not."""
    st = await start_station(csms, station_factory)
    got = await csms.call(STATION, "GetVariables", {"getVariableData": [
        cv("MonitoringCtrlr", "OfflineQueuingSeverity")]})
    assert got["getVariableResult"][0]["attributeValue"] == "4"
    kept = await set_monitor(csms, "Delta", 1, 2, "EVSE", "AvailabilityState", {"id": 1})
    dropped = await set_monitor(csms, "Delta", 1, 8, "EVSE", "AvailabilityState", {"id": 1})

    port = csms.port
    await csms.stop()  # the network is gone
    for _ in range(50):
        if (await st.state())["ocpp"]["connected"] is False:
            break
        await asyncio.sleep(0.1)
    assert (await st.state())["ocpp"]["connected"] is False
    await st.api("POST", "/api/fault", {"device": "meter", "fault": "offline", "evse": 2})
    await st.plug(1)  # EVSE 1 AvailabilityState -> Occupied
    await asyncio.sleep(0.3)

    back = DevCsms()
    checker = FrameChecker()
    back.on_frame.append(checker)
    await back.start("127.0.0.1", port)
    try:
        meter = await wait_event(back, hard_wired("FiscalMetering", "Problem", 2, False),
                                 timeout=15)
        assert meter["actualValue"] == "true"
        occupied = await wait_event(back, by_monitor(kept), timeout=5)
        assert occupied["trigger"] == "Delta" and occupied["actualValue"] == "Occupied"
        assert occupied["component"] == {"name": "EVSE", "evse": {"id": 1}}
        await asyncio.sleep(0.5)
        assert [e for e in events(back) if e.get("variableMonitoringId") == dropped] == []
        assert all(r.action != "BootNotification" for r in back.received)  # not a reboot
        notify_event_pages_start_at_zero(back)
        assert checker.problems == []
    finally:
        await back.stop()
