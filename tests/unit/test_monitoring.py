"""Monitoring requests (OCPP 2.0.1 N02 - N06): SetVariableMonitoring,
ClearVariableMonitoring, SetMonitoringBase, SetMonitoringLevel, GetMonitoringReport.
Every payload in and out is checked against the official schemas. Requirement ids
are Part 2's, TC_N_xx are Part 6's test cases."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from ocpp.messages import get_validator

from evse_agent.device_model.model import DeviceModel, Variable, VariableKey
from evse_agent.device_model.physical import add_physical_components
from evse_agent.monitoring import MonitoringEngine
from evse_agent.monitoring.hardware import HARD_WIRED_BASE, monitor_id
from evse_agent.ocpp.rpc import RpcError

NOW = datetime(2025, 1, 6, 10, 7, 30, tzinfo=UTC)
TRIPPED_1 = monitor_id("contactor", VariableKey("PowerContactor", "Tripped", evse_id=1))


def model(**ctrlr: int | bool) -> DeviceModel:
    """The standard controllers and a two-EVSE station with every device, as the agent
    builds them; keyword arguments set MonitoringCtrlr factory values
    (ItemsPerMessage_SetVariableMonitoring=2 is ItemsPerMessage[SetVariableMonitoring])."""
    dm = DeviceModel()
    dm.load_standard()
    add_physical_components(dm, 2)
    for name, value in ctrlr.items():
        var, _, inst = name.partition("_")
        dm.set_factory(VariableKey("MonitoringCtrlr", var, variable_instance=inst or None), value)
    return dm


def valid(action: str, payload: dict[str, Any], kind: int) -> dict[str, Any]:
    """Validate against the official 2.0.1 schema: kind 2 request, 3 response."""
    get_validator(kind, action, "2.0.1").validate(payload)
    return payload


def data(comp: str, var: str, type_: str, value: float, severity: int = 5,
         evse: int | None = None, **extra: Any) -> dict[str, Any]:
    component: dict[str, Any] = {"name": comp}
    if evse is not None:
        component["evse"] = {"id": evse}
    return {"component": component, "variable": {"name": var}, "type": type_,
            "value": value, "severity": severity, **extra}


def set_monitors(engine: MonitoringEngine, *items: dict[str, Any]) -> list[dict[str, Any]]:
    request = valid("SetVariableMonitoring", {"setMonitoringData": list(items)}, 2)
    response = valid("SetVariableMonitoring", engine.set_variable_monitoring(request, NOW), 3)
    return response["setMonitoringResult"]


def report(engine: MonitoringEngine, **request: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    request = valid("GetMonitoringReport", {"requestId": 7, **request}, 2)
    response, pages = engine.monitoring_report(request, NOW)
    valid("GetMonitoringReport", response, 3)
    for page in pages:
        valid("NotifyMonitoringReport", page, 2)
    return response, pages


def reported(pages: list[dict[str, Any]]) -> list[tuple[str, str, str, int]]:
    return [(m["component"]["name"], m["variable"]["name"], vm["type"], vm["id"])
            for page in pages for m in page["monitor"] for vm in m["variableMonitoring"]]


def test_set_variable_monitoring_statuses() -> None:
    dm = model()
    dm.define(Variable(VariableKey("EVSE", "Secret", evse_id=1), "integer", "ReadWrite", 1,
                       supports_monitoring=False))
    engine = MonitoringEngine(dm)
    results = set_monitors(
        engine,
        data("EVSE", "Power", "UpperThreshold", 11000, 4, evse=1),  # N04.FR.08
        data("EVSE", "AvailabilityState", "Delta", 1, 8, evse=99),  # TC_N_11: unknown EVSE
        data("NonExistent", "Power", "UpperThreshold", 1234.0),  # N04.FR.03
        data("EVSE", "unknownVariable", "Delta", 1, evse=1),  # N04.FR.04, TC_N_37
        data("EVSE", "AvailabilityState", "UpperThreshold", 1, evse=1),  # N04.FR.05, TC_N_38
        data("EVSE", "Power", "UpperThreshold", 22081, evse=1),  # N04.FR.06, TC_N_13
        data("EVSE", "Power", "LowerThreshold", -1, evse=1),  # N04.FR.06 (minLimit)
        data("EVSE", "AvailabilityState", "Delta", -1, evse=1),  # N04.FR.14, TC_N_12
        data("EVSE", "Power", "Periodic", 0, evse=1),  # a period must be positive
        data("EVSE", "Power", "Delta", 100, 10, evse=1),  # severity 0..9
        data("EVSE", "Secret", "Delta", 1, evse=1),  # supportsMonitoring = false
        data("EVSE", "AvailabilityState", "Delta", 1, 8, evse=1),  # N07.FR.19 non-numeric
        data("EVSE", "AvailabilityState", "Delta", 1, 8, evse=1),  # N04.FR.10, TC_N_15
        data("EVSE", "AvailabilityState", "Delta", 1, 7, evse=1),  # TC_N_10: other severity
    )
    assert [r["status"] for r in results] == [
        "Accepted", "UnknownComponent", "UnknownComponent", "UnknownVariable",
        "UnsupportedMonitorType", "Rejected", "Rejected", "Rejected", "Rejected", "Rejected",
        "Rejected", "Accepted", "Duplicate", "Accepted",
    ]
    # N04.FR.01 / 02: one result per element, echoing component and variable.
    assert results[1]["component"] == {"name": "EVSE", "evse": {"id": 99}}
    assert results[5]["statusInfo"] == {"reasonCode": "ValueOutOfRange"}
    # N04.FR.11: ids only for what was accepted, unique.
    ids = [r.get("id") for r in results]
    assert ids[0] and ids[11] and ids[13] and len({ids[0], ids[11], ids[13]}) == 3
    assert all(i is None for n, i in enumerate(ids) if n not in (0, 11, 13))


def test_replace_a_monitor() -> None:
    engine = MonitoringEngine(model())
    (first,) = set_monitors(engine, data("EVSE", "AvailabilityState", "Delta", 1, 5, evse=1))
    # N04.FR.12, TC_N_40: same id, same variable -> replaced.
    (again,) = set_monitors(
        engine, data("EVSE", "AvailabilityState", "Delta", 1, 4, evse=1, id=first["id"])
    )
    assert (again["status"], again["id"]) == ("Accepted", first["id"])
    _, pages = report(engine, monitoringCriteria=["DeltaMonitoring"])
    assert [vm["severity"] for p in pages for m in p["monitor"] for vm in m["variableMonitoring"]
            if vm["id"] == first["id"]] == [4]
    (other,) = set_monitors(engine, data("ChargingStation", "AvailabilityState", "Delta", 1,
                                         id=first["id"]))
    assert other["status"] == "Rejected"  # N04.FR.16, TC_N_39
    (unknown,) = set_monitors(engine, data("EVSE", "Power", "Delta", 1, evse=1, id=4242))
    assert unknown["status"] == "Rejected"  # N04.FR.13
    (fixed,) = set_monitors(engine, data("PowerContactor", "Tripped", "Delta", 1, 3, evse=1,
                                         id=TRIPPED_1))
    assert fixed["status"] == "Rejected"  # N04.FR.18


def test_message_limits_are_callerrors() -> None:
    dm = model(ItemsPerMessage_SetVariableMonitoring=2, BytesPerMessage_SetVariableMonitoring=400,
               ItemsPerMessage_ClearVariableMonitoring=2, BytesPerMessage_ClearVariableMonitoring=20)
    engine = MonitoringEngine(dm)
    one = data("EVSE", "Power", "Delta", 100, evse=1)
    with pytest.raises(RpcError) as err:  # N04.FR.09
        engine.set_variable_monitoring({"setMonitoringData": [one, one, one]}, NOW)
    assert err.value.code == "OccurrenceConstraintViolation"
    big = data("EVSE", "Power", "Delta", 100, evse=1, customData={"vendorId": "x" * 300})
    with pytest.raises(RpcError) as err:
        engine.set_variable_monitoring({"setMonitoringData": [big]}, NOW)
    assert err.value.code == "FormatViolation"
    with pytest.raises(RpcError) as err:  # N06.FR.06
        engine.clear_variable_monitoring({"id": [1, 2, 3]})
    assert err.value.code == "OccurrenceConstraintViolation"
    with pytest.raises(RpcError) as err:  # N06.FR.07
        engine.clear_variable_monitoring({"id": [1000000, 2000000]})
    assert err.value.code == "FormatViolation"


def test_clear_variable_monitoring() -> None:
    preconfigured = [data("ChargingStation", "AvailabilityState", "Delta", 1, 8)]
    engine = MonitoringEngine(model(), preconfigured=preconfigured)
    ids = [r["id"] for r in set_monitors(
        engine, data("ChargingStation", "AvailabilityState", "Delta", 1, 5),
        data("EVSE", "AvailabilityState", "Delta", 1, 5, evse=1))]
    _, pages = report(engine, monitoringCriteria=["DeltaMonitoring"])
    pre = next(i for _, _, _, i in reported(pages) if i not in ids)
    request = valid("ClearVariableMonitoring", {"id": [*ids, 123456, TRIPPED_1, pre]}, 2)
    response = valid("ClearVariableMonitoring", engine.clear_variable_monitoring(request), 3)
    results = response["clearMonitoringResult"]
    # N06.FR.01 / 05, TC_N_18; N06.FR.02, TC_N_19; N06.FR.03, TC_N_44.
    assert [(r["id"], r["status"]) for r in results] == [
        (ids[0], "Accepted"), (ids[1], "Accepted"), (123456, "NotFound"),
        (TRIPPED_1, "Rejected"), (pre, "Rejected"),
    ]
    cv = [{"component": {"name": "EVSE", "evse": {"id": 1}},
           "variable": {"name": "AvailabilityState"}}]
    assert report(engine, componentVariable=cv)[0]["status"] == "EmptyResultSet"  # TC_N_18


def test_set_monitoring_base() -> None:
    preconfigured = [data("ChargingStation", "AvailabilityState", "Delta", 1, 8),
                     data("EVSE", "AvailabilityState", "Delta", 1, 8, evse=1)]
    dm = model()
    engine = MonitoringEngine(dm, preconfigured=preconfigured)

    def kinds() -> set[tuple[str, int]]:
        _, pages = report(engine, monitoringCriteria=["DeltaMonitoring"])
        return {(m["component"]["name"], vm["severity"]) for p in pages for m in p["monitor"]
                for vm in m["variableMonitoring"] if m["variable"]["name"] == "AvailabilityState"}

    def base(name: str) -> dict[str, Any]:
        request = valid("SetMonitoringBase", {"monitoringBase": name}, 2)
        return valid("SetMonitoringBase", engine.set_monitoring_base(request), 3)

    _, pages = report(engine, monitoringCriteria=["DeltaMonitoring"])
    pre_evse = next(i for c, _, _, i in reported(pages) if c == "EVSE")
    set_monitors(engine, data("EVSE", "AvailabilityState", "Delta", 1, 5, evse=2))
    # N04.FR.15, TC_N_41: overruling a preconfigured monitor makes it custom.
    set_monitors(engine, data("EVSE", "AvailabilityState", "Delta", 1, 9, evse=1, id=pre_evse))
    assert kinds() == {("ChargingStation", 8), ("EVSE", 9), ("EVSE", 5)}
    assert base("All") == {"status": "Accepted"}  # N03.FR.03: customs stay, overrule too
    assert kinds() == {("ChargingStation", 8), ("EVSE", 9), ("EVSE", 5)}
    assert base("FactoryDefault") == {"status": "Accepted"}  # N03.FR.04
    assert kinds() == {("ChargingStation", 8), ("EVSE", 8)}
    assert dm.get("MonitoringCtrlr", "ActiveMonitoringBase") == "FactoryDefault"
    set_monitors(engine, data("EVSE", "AvailabilityState", "Delta", 1, 5, evse=2))
    assert base("HardWiredOnly") == {"status": "Accepted"}  # N03.FR.05, TC_N_06
    assert kinds() == set()
    response, pages = report(engine)
    assert response["status"] == "Accepted"
    assert all(i >= HARD_WIRED_BASE for *_, i in reported(pages))  # only hard-wired remain
    assert base("All") == {"status": "Accepted"}  # preconfigured ones come back
    assert kinds() == {("ChargingStation", 8), ("EVSE", 8)}
    # N03.FR.02, TC_N_07 (the schema already refuses this; the engine answers anyway).
    assert valid("SetMonitoringBase", engine.set_monitoring_base({"monitoringBase": "Some"}), 3)[
        "status"] == "NotSupported"


def test_set_monitoring_level() -> None:
    dm = model()
    engine = MonitoringEngine(dm)
    for severity, status in ((7, "Accepted"), (10, "Rejected"), (-1, "Rejected"), (0, "Accepted")):
        request = valid("SetMonitoringLevel", {"severity": severity}, 2)
        response = valid("SetMonitoringLevel", engine.set_monitoring_level(request), 3)
        assert response["status"] == status  # N05.FR.01 / 02, TC_N_16 / 17
    assert dm.get("MonitoringCtrlr", "ActiveMonitoringLevel") == 0


def test_monitoring_report_filters() -> None:
    engine = MonitoringEngine(model())
    set_monitors(
        engine,
        data("EVSE", "Power", "UpperThreshold", 11000, 4, evse=1),
        data("EVSE", "Power", "LowerThreshold", 100, 4, evse=1),
        data("EVSE", "AvailabilityState", "Delta", 1, 8, evse=1),
        data("ChargingStation", "AvailabilityState", "Delta", 1, 8),
        data("EVSE", "Power", "Periodic", 60, 8, evse=2),
        data("EVSE", "Power", "PeriodicClockAligned", 900, 8, evse=1),
    )

    def types(**request: Any) -> list[str]:
        response, pages = report(engine, **request)
        assert response["status"] == "Accepted"
        assert {p["requestId"] for p in pages} == {7}  # N02.FR.04
        return sorted(t for _, _, t, i in reported(pages) if i < HARD_WIRED_BASE)

    # N02.FR.12 - 14, TC_N_01
    assert types(monitoringCriteria=["ThresholdMonitoring"]) == ["LowerThreshold", "UpperThreshold"]
    assert types(monitoringCriteria=["PeriodicMonitoring", "DeltaMonitoring"]) == [
        "Delta", "Delta", "Periodic", "PeriodicClockAligned"]
    # N02.FR.08 / 16 / 19, TC_N_02: a component without variable gives all its variables;
    # without evse, every EVSE.
    assert types(componentVariable=[{"component": {"name": "EVSE", "evse": {"id": 1}}}]) == [
        "Delta", "LowerThreshold", "PeriodicClockAligned", "UpperThreshold"]
    assert types(componentVariable=[{"component": {"name": "EVSE"},
                                     "variable": {"name": "Power"}}]) == [
        "LowerThreshold", "Periodic", "PeriodicClockAligned", "UpperThreshold"]
    # N02.FR.05, TC_N_03: both filters at once; nothing left is EmptyResultSet (N02.FR.10).
    cvs = [{"component": {"name": "ChargingStation"}, "variable": {"name": "AvailabilityState"}},
           {"component": {"name": "EVSE", "evse": {"id": 1}},
            "variable": {"name": "AvailabilityState"}}]
    response, pages = report(engine, monitoringCriteria=["ThresholdMonitoring"],
                             componentVariable=cvs)
    assert (response, pages) == ({"status": "EmptyResultSet",
                                  "statusInfo": {"reasonCode": "NotFound"}}, [])
    assert types(monitoringCriteria=["DeltaMonitoring"], componentVariable=cvs) == [
        "Delta", "Delta"]
    # N02.FR.11, TC_N_47: no filter lists everything, hard-wired monitors included.
    _, pages = report(engine)
    hard = {(c, v) for c, v, t, i in reported(pages) if i >= HARD_WIRED_BASE}
    assert ("PowerContactor", "Tripped") in hard and ("TokenReader", "Problem") in hard
    # N02.FR.02, TC_N_04 (the schema refuses it first; the engine still answers).
    response, pages = engine.monitoring_report(
        {"requestId": 8, "monitoringCriteria": ["DeltaMonitoring", "Bogus"]}, NOW)
    assert (valid("GetMonitoringReport", response, 3)["status"], pages) == ("NotSupported", [])


def test_monitoring_report_pages() -> None:
    dm = model(ItemsPerMessage_SetVariableMonitoring=100)
    for n in range(25):
        dm.define(Variable(VariableKey("Fan", "Speed", component_instance=f"F{n:02}"),
                           "integer", "ReadWrite", 0))
    engine = MonitoringEngine(dm, items_per_message=10)
    set_monitors(engine, *[{"component": {"name": "Fan", "instance": f"F{n:02}"},
                            "variable": {"name": "Speed"}, "type": "Delta", "value": 10,
                            "severity": 6} for n in range(25)])
    response, pages = report(engine, componentVariable=[{"component": {"name": "Fan"}}])
    assert response["status"] == "Accepted"
    # N02.FR.09: seqNo from 0, contiguous; tbc until the last page.
    assert [(p["seqNo"], p["tbc"], len(p["monitor"])) for p in pages] == [
        (0, True, 10), (1, True, 10), (2, False, 5)]
    assert all(p["generatedAt"] == "2025-01-06T10:07:30.000Z" for p in pages)


def test_report_request_limits() -> None:
    dm = model()
    dm.set_factory(VariableKey("DeviceDataCtrlr", "ItemsPerMessage", variable_instance="GetReport"), 1)
    engine = MonitoringEngine(dm)
    cvs = [{"component": {"name": "EVSE"}}, {"component": {"name": "ChargingStation"}}]
    with pytest.raises(RpcError) as err:  # N02.FR.07
        engine.monitoring_report({"requestId": 1, "componentVariable": cvs}, NOW)
    assert err.value.code == "OccurrenceConstraintViolation"
