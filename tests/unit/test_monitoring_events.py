"""Monitoring events (OCPP 2.0.1 N07, N08): thresholds that trip and clear, delta,
periodic with a fake clock, hard-wired monitors for HAL faults, severity level,
offline queuing, NotifyEvent paging and durability across restarts. Every
NotifyEventRequest is checked against the official schema."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from test_monitoring import NOW, data, model, set_monitors, valid

from evse_agent.device_model.model import DeviceModel, Variable, VariableKey
from evse_agent.monitoring import MonitoringEngine
from evse_agent.monitoring.hardware import monitor_id

POWER_1 = VariableKey("EVSE", "Power", evse_id=1)


def sent(engine: MonitoringEngine, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events, after checking the NotifyEventRequests they make are schema-valid."""
    for request in engine.notify_event_requests(events, NOW, online=True):
        valid("NotifyEvent", request, 2)
        assert request["generatedAt"].endswith("Z")
    return events


def csms_sets(dm: DeviceModel, key: VariableKey, text: str) -> None:
    assert dm.set_from_csms(key, text) in ("Accepted", "RebootRequired")


def test_thresholds_trip_and_clear() -> None:
    dm = model()
    engine = MonitoringEngine(dm, transactions=lambda: {1: "tx-1"})
    (upper, lower) = [r["id"] for r in set_monitors(
        engine, data("EVSE", "Power", "UpperThreshold", 11000, 4, evse=1),
        data("EVSE", "Power", "LowerThreshold", 100, 4, evse=1))]
    assert sent(engine, engine.drain_events(NOW))[0]["cleared"] is False  # 0 W < 100 W now
    dm.set_live(POWER_1, 11000.0)  # on the threshold: nothing (N07.FR.16); above the lower one
    (back,) = sent(engine, engine.drain_events(NOW))
    assert (back["variableMonitoringId"], back["cleared"]) == (lower, True)  # N07.FR.02
    dm.set_live(POWER_1, 11000.5)
    (event,) = sent(engine, engine.drain_events(NOW))
    # N07.FR.06 / 16, TC_N_20: trigger Alerting, component, variable, monitor id, tx id.
    assert event == {
        "eventId": event["eventId"], "timestamp": "2025-01-06T10:07:30.000Z",
        "trigger": "Alerting", "actualValue": "11000.5", "cleared": False,
        "eventNotificationType": "CustomMonitor", "component": {"name": "EVSE", "evse": {"id": 1}},
        "variable": {"name": "Power"}, "variableMonitoringId": upper, "transactionId": "tx-1",
    }
    dm.set_live(POWER_1, 12000.0)
    assert engine.drain_events(NOW) == []  # still above: no repeat
    dm.set_live(POWER_1, 50.0)  # back below the upper one, and below the lower one (N07.FR.17)
    events = sent(engine, engine.drain_events(NOW))
    assert [(e["variableMonitoringId"], e["cleared"]) for e in events] == [
        (upper, True), (lower, False)]
    ids = [event["eventId"]] + [e["eventId"] for e in events]
    assert ids == sorted(ids) and len(set(ids)) == 3  # unique and increasing


def test_changing_or_removing_a_threshold() -> None:
    dm = model()
    engine = MonitoringEngine(dm)
    dm.set_live(POWER_1, 12000.0)
    (result,) = set_monitors(engine, data("EVSE", "Power", "UpperThreshold", 11000, 4, evse=1))
    (tripped,) = engine.drain_events(NOW)  # a new monitor is checked at once
    assert tripped["cleared"] is False
    # N07.FR.11, TC_N_51: the changed threshold is checked against the value now.
    set_monitors(engine, data("EVSE", "Power", "UpperThreshold", 13000, 4, evse=1,
                              id=result["id"]))
    (cleared,) = engine.drain_events(NOW)
    assert (cleared["cleared"], cleared["variableMonitoringId"]) == (True, result["id"])
    set_monitors(engine, data("EVSE", "Power", "UpperThreshold", 10000, 4, evse=1,
                              id=result["id"]))
    assert engine.drain_events(NOW)[0]["cleared"] is False
    # N07.FR.12, TC_N_52: removing a tripped monitor sends no cleared event, and no more.
    engine.clear_variable_monitoring({"id": [result["id"]]})
    dm.set_live(POWER_1, 0.0)
    assert engine.drain_events(NOW) == []


def test_delta_monitors() -> None:
    dm = model()
    password = VariableKey("SecurityCtrlr", "BasicAuthPassword")
    (unmonitored,) = set_monitors(MonitoringEngine(dm), data("SecurityCtrlr", "BasicAuthPassword",
                                                             "Delta", 1, 6))
    assert unmonitored["status"] == "Rejected"  # write-only: supportsMonitoring false here
    # TC_N_48 is for stations that monitor the password: one that does.
    dm.define(Variable(password, "string", "WriteOnly", "", max_limit=40))
    engine = MonitoringEngine(dm)
    threshold = VariableKey("OCPPCommCtrlr", "OfflineThreshold")
    start = int(dm.get("OCPPCommCtrlr", "OfflineThreshold"))
    (numeric, state, secret) = [r["id"] for r in set_monitors(
        engine, data("OCPPCommCtrlr", "OfflineThreshold", "Delta", 2, 6),
        data("EVSE", "AvailabilityState", "Delta", 1, 6, evse=1),
        data("SecurityCtrlr", "BasicAuthPassword", "Delta", 1, 6))]
    csms_sets(dm, threshold, str(start + 1))
    assert engine.drain_events(NOW) == []  # TC_N_61: +1 does not reach 2
    csms_sets(dm, threshold, str(start + 2))
    (event,) = sent(engine, engine.drain_events(NOW))  # N07.FR.18
    assert (event["trigger"], event["actualValue"], event["variableMonitoringId"]) == (
        "Delta", str(start + 2), numeric)
    csms_sets(dm, threshold, str(start + 3))  # the reference moved to start + 2
    assert engine.drain_events(NOW) == []
    csms_sets(dm, threshold, str(start))
    assert len(engine.drain_events(NOW)) == 1  # -3 from the reference: both directions
    # N07.FR.19, TC_N_56: any change of a non-numeric variable.
    dm.set_live(VariableKey("EVSE", "AvailabilityState", evse_id=1), "Occupied")
    (event,) = sent(engine, engine.drain_events(NOW))
    assert (event["actualValue"], event["variableMonitoringId"]) == ("Occupied", state)
    # N07.FR.10, TC_N_48: a write-only variable is reported with an empty actualValue.
    csms_sets(dm, password, "s3cret-s3cret-s3cret")
    (event,) = sent(engine, engine.drain_events(NOW))
    assert (event["actualValue"], event["variableMonitoringId"]) == ("", secret)


def test_severity_level_enabled_and_transaction_flag() -> None:
    dm = model(Enabled=True)
    txs: dict[int, str] = {}
    engine = MonitoringEngine(dm, transactions=lambda: txs)
    low, high, tx_only = [r["id"] for r in set_monitors(
        engine, data("EVSE", "Power", "Delta", 100, 8, evse=1),
        data("EVSE", "Power", "Delta", 100, 5, evse=1),
        data("EVSE", "Power", "UpperThreshold", 1000, 5, evse=1, transaction=True))]
    engine.set_monitoring_level({"severity": 7})
    dm.set_live(POWER_1, 200.0)
    # N07.FR.15, N05.FR.03, TC_N_16: severity 8 > level 7 stays silent.
    assert [e["variableMonitoringId"] for e in engine.drain_events(NOW)] == [high]
    dm.set_live(POWER_1, 2000.0)  # no transaction: the transaction monitor does not watch
    assert [e["variableMonitoringId"] for e in engine.drain_events(NOW)] == [high]
    txs[1] = "tx-9"
    dm.set_live(POWER_1, 2050.0)
    (event,) = engine.drain_events(NOW)
    assert (event["variableMonitoringId"], event["transactionId"]) == (tx_only, "tx-9")
    csms_sets(dm, VariableKey("MonitoringCtrlr", "Enabled"), "false")  # monitoring off
    dm.set_live(POWER_1, 5000.0)
    assert engine.drain_events(NOW) == []
    # Hardware faults are still reported while variable monitoring is off.
    assert len(engine.device_fault("contactor", 1, "stuck_open", True, NOW)) == 1
    assert low  # accepted, just never reported at this level


def test_periodic_with_a_fake_clock() -> None:
    engine = MonitoringEngine(model())
    assert engine.next_wakeup(NOW) is None
    # N08.FR.06, TC_N_24: every `value` seconds from the moment it was set.
    (periodic,) = [r["id"] for r in set_monitors(
        engine, data("EVSE", "AvailabilityState", "Periodic", 60, 8, evse=1))]
    assert engine.next_wakeup(NOW) == NOW + timedelta(seconds=60)
    assert engine.tick(NOW + timedelta(seconds=30)) == []
    (event,) = sent(engine, engine.tick(NOW + timedelta(seconds=60)))
    assert (event["trigger"], event["actualValue"], event["variableMonitoringId"]) == (
        "Periodic", "Available", periodic)  # N08.FR.05
    assert engine.next_wakeup(NOW) == NOW + timedelta(seconds=120)
    assert len(engine.tick(NOW + timedelta(seconds=250))) == 1  # missed periods: one event
    assert engine.next_wakeup(NOW) == NOW + timedelta(seconds=300)
    engine.clear_variable_monitoring({"id": [periodic]})
    assert engine.next_wakeup(NOW) is None
    # N08.FR.07: clock-aligned, 900 s -> at :00, :15, :30, :45 (set at 10:07:30).
    (aligned,) = [r["id"] for r in set_monitors(
        engine, data("ChargingStation", "AvailabilityState", "PeriodicClockAligned", 900, 8))]
    quarter = datetime(2025, 1, 6, 10, 15, tzinfo=UTC)
    assert engine.next_wakeup(NOW) == quarter
    assert [e["variableMonitoringId"] for e in engine.tick(quarter)] == [aligned]
    assert engine.next_wakeup(quarter) == datetime(2025, 1, 6, 10, 30, tzinfo=UTC)
    half_past = datetime(2025, 1, 6, 10, 31, 2, tzinfo=UTC)  # woke up late
    assert len(engine.tick(half_past)) == 1
    assert engine.next_wakeup(half_past) == datetime(2025, 1, 6, 10, 45, tzinfo=UTC)


def test_hard_wired_monitors_for_device_faults() -> None:
    engine = MonitoringEngine(model())
    problem = monitor_id("contactor", VariableKey("PowerContactor", "Problem", evse_id=1))
    tripped = monitor_id("contactor", VariableKey("PowerContactor", "Tripped", evse_id=1))
    # A welded contactor: Problem (severity 1) and Tripped (severity 0, needs a person).
    events = sent(engine, engine.device_fault("contactor", 1, "welded", True, NOW))
    assert [(e["variable"]["name"], e["variableMonitoringId"]) for e in events] == [
        ("Problem", problem), ("Tripped", tripped)]
    assert events[1] == {
        "eventId": events[1]["eventId"], "timestamp": "2025-01-06T10:07:30.000Z",
        "trigger": "Alerting", "actualValue": "true", "cleared": False,
        "eventNotificationType": "HardWiredMonitor",
        "component": {"name": "PowerContactor", "evse": {"id": 1}},
        "variable": {"name": "Tripped"}, "variableMonitoringId": tripped,
        "techCode": "welded", "techInfo": "contactor welded on EVSE 1: active",
    }
    assert engine.device_fault("contactor", 1, "welded", True, NOW) == []  # repeated report
    cleared = sent(engine, engine.device_fault("contactor", 1, "welded", False, NOW))
    assert [(e["cleared"], e["actualValue"]) for e in cleared] == [(True, "false")] * 2
    # Each device on the component the device model gives it.
    (meter,) = engine.device_fault("meter", 2, "offline", True, NOW)
    assert (meter["component"], meter["variable"]) == (
        {"name": "FiscalMetering", "evse": {"id": 2}}, {"name": "Problem"})
    (reader,) = engine.device_fault("rfid", 0, "gone", True, NOW)
    assert reader["component"] == {"name": "TokenReader"}
    (lock,) = engine.device_fault("lock", 1, "jammed", True, NOW)  # G05.FR.02
    assert lock["component"] == {"name": "ConnectorPlugRetentionLock",
                                 "evse": {"id": 1, "connectorId": 1}}
    (other,) = engine.device_fault("fan", 0, "stalled", True, NOW)
    assert other["component"] == {"name": "ChargingStation"}
    # Two faults on one variable: each is reported; it clears when the last one does.
    assert len(engine.device_fault("contactor", 2, "stuck_open", True, NOW)) == 1
    assert len(engine.device_fault("contactor", 2, "coil_open", True, NOW)) == 1
    assert engine.device_fault("contactor", 2, "stuck_open", False, NOW) == []
    assert engine.device_fault("contactor", 2, "coil_open", False, NOW)[0]["cleared"] is True
    engine.set_monitoring_level({"severity": 0})  # N07.FR.15: only Danger now
    assert engine.device_fault("rfid", 0, "gone", False, NOW) == []
    (danger,) = engine.device_fault("contactor", 2, "welded", True, NOW)
    assert danger["variable"] == {"name": "Tripped"}


def test_defaults_without_monitoring_variables() -> None:
    """A device model without MonitoringCtrlr or physical components still works: no
    message limits, level 9, OfflineQueuingSeverity 4, hard-wired monitors on demand."""
    dm = DeviceModel()
    dm.define(Variable(VariableKey("Fan", "Speed"), "integer", "ReadWrite", 0))
    engine = MonitoringEngine(dm)
    many = [data("Fan", "Speed", "Delta", 1, s) for s in range(10)] * 10
    results = engine.set_variable_monitoring({"setMonitoringData": many}, NOW)
    assert sum(r["status"] == "Accepted" for r in results["setMonitoringResult"]) == 10
    (fault,) = engine.device_fault("contactor", 1, "stuck_open", True, NOW)
    assert fault["component"] == {"name": "PowerContactor", "evse": {"id": 1}}
    dm.set_from_csms(VariableKey("Fan", "Speed"), "5")
    events = engine.drain_events(NOW)
    assert len(events) == 10  # every severity reported at the default level 9
    engine.queue_offline(events + [fault])
    (request,) = engine.flush(NOW)
    assert len(request["eventData"]) == 6  # severities 0..4, and the contactor (1)


def test_offline_queuing_severity() -> None:
    dm = model(OfflineQueuingSeverity=5)
    engine = MonitoringEngine(dm)
    set_monitors(engine, data("EVSE", "AvailabilityState", "Delta", 1, 5, evse=1),
                 data("EVSE", "AvailabilityState", "Delta", 1, 6, evse=2))
    dm.set_live(VariableKey("EVSE", "AvailabilityState", evse_id=1), "Occupied")
    dm.set_live(VariableKey("EVSE", "AvailabilityState", evse_id=2), "Occupied")
    events = engine.drain_events(NOW)
    assert len(events) == 2
    # N07.FR.04, TC_N_22 / 23: offline, severity 5 <= 5 is kept, 6 is not.
    assert engine.notify_event_requests(events, NOW, online=False) == []
    later = NOW + timedelta(minutes=5)
    (request,) = engine.flush(later)
    valid("NotifyEvent", request, 2)
    assert request["seqNo"] == 0 and request["tbc"] is False
    assert [e["component"]["evse"]["id"] for e in request["eventData"]] == [1]
    assert request["eventData"][0]["timestamp"] == "2025-01-06T10:07:30.000Z"  # when it happened
    assert engine.flush(later) == []


def test_notify_event_paging() -> None:
    dm = model()
    engine = MonitoringEngine(dm, items_per_message=20)
    set_monitors(engine, data("EVSE", "Power", "Delta", 0, 9, evse=1))
    for watts in range(1, 46):
        dm.set_live(POWER_1, float(watts))
    events = engine.drain_events(NOW)
    requests = engine.notify_event_requests(events, NOW, online=True)
    for request in requests:
        valid("NotifyEvent", request, 2)
    # N07.FR.07, N08.FR.04: seqNo from 0 per batch; tbc until the last message.
    assert [(r["seqNo"], r["tbc"], len(r["eventData"])) for r in requests] == [
        (0, True, 20), (1, True, 20), (2, False, 5)]
    ids = [e["eventId"] for r in requests for e in r["eventData"]]
    assert ids == sorted(set(ids))
    assert engine.notify_event_requests([], NOW, online=True) == []


def test_durable_across_restart() -> None:
    stored: list[list[dict[str, Any]]] = []
    dm = model()
    engine = MonitoringEngine(dm, persist=stored.append)
    (monitor,) = [r["id"] for r in set_monitors(
        engine, data("EVSE", "Power", "UpperThreshold", 11000, 4, evse=1))]
    engine.set_monitoring_level({"severity": 6})
    dm.set_live(POWER_1, 12000.0)
    (tripped,) = engine.drain_events(NOW)
    # N07.FR.13, TC_N_53: the monitors, the trip, the level survive a restart.
    dm2 = model()
    dm2.set_live(POWER_1, 5000.0)  # back to normal while the station was down
    engine2 = MonitoringEngine(dm2, persist=stored.append, load=stored[-1])
    assert dm2.get("MonitoringCtrlr", "ActiveMonitoringLevel") == 6
    _, pages = engine2.monitoring_report({"requestId": 1,
                                          "monitoringCriteria": ["ThresholdMonitoring"]}, NOW)
    assert [vm["id"] for p in pages for m in p["monitor"] for vm in m["variableMonitoring"]] == [
        monitor]
    (cleared,) = engine2.drain_events(NOW)  # N07.FR.14
    assert (cleared["cleared"], cleared["variableMonitoringId"]) == (True, monitor)
    assert cleared["eventId"] > tripped["eventId"]  # event ids stay unique over restarts
    (new,) = [r["id"] for r in set_monitors(engine2, data("EVSE", "Power", "Delta", 5, 4, evse=1))]
    assert new != monitor
