"""GetBaseReport (B07) and GetReport (B08): what each report holds, the statuses,
and the NotifyReport pages (seqNo, tbc, size limits), all valid against the official
schemas."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from ocpp.messages import get_validator

from evse_agent.device_model.live import LiveFeed
from evse_agent.device_model.model import DeviceModel, VariableKey
from evse_agent.device_model.physical import add_physical_components
from evse_agent.ocpp import rpc
from evse_agent.ocpp.reports import base_report, custom_report, paginate, report_data

NOW = datetime(2025, 1, 31, 12, 0, tzinfo=UTC)
NOTIFY = get_validator(2, "NotifyReport", "2.0.1")
BASE_RESPONSE = get_validator(3, "GetBaseReport", "2.0.1")
REPORT_REQUEST = get_validator(2, "GetReport", "2.0.1")
REPORT_RESPONSE = get_validator(3, "GetReport", "2.0.1")
Entry = tuple[str, int | None, int | None, str, str | None]


def station() -> DeviceModel:
    dm = DeviceModel()
    dm.load_standard()
    add_physical_components(dm, 2, {1: 1, 2: 2})
    return dm


def check_pages(pages: list[dict[str, Any]], request_id: int) -> list[dict[str, Any]]:
    """B07.FR.04/10, B08.FR.04/14: same requestId, seqNo 0.. contiguous, tbc on all but
    the last; every page schema-valid. Returns all reportData entries."""
    for n, page in enumerate(pages):
        NOTIFY.validate(page)
        assert page["requestId"] == request_id and page["seqNo"] == n
        assert page["tbc"] is (n < len(pages) - 1)
        assert page["generatedAt"] == "2025-01-31T12:00:00.000Z"
    return [entry for page in pages for entry in page["reportData"]]


def base(dm: DeviceModel, report_base: str, **kw: Any) -> tuple[str, list[dict[str, Any]]]:
    response, pages = base_report(dm, 42, report_base, NOW, **kw)
    BASE_RESPONSE.validate(response)
    return response["status"], check_pages(pages, 42)


def custom(dm: DeviceModel, **request: Any) -> tuple[str, list[dict[str, Any]]]:
    payload = {"requestId": 7, **request}
    REPORT_REQUEST.validate(payload)
    response, pages = custom_report(dm, payload, NOW)
    REPORT_RESPONSE.validate(response)
    if response["status"] != "Accepted":
        assert pages == []  # B07.FR.05 likewise: no NotifyReport without Accepted
    return response["status"], check_pages(pages, 7)


def ident(entry: dict[str, Any]) -> Entry:
    evse = entry["component"].get("evse", {})
    return (entry["component"]["name"], evse.get("id"), evse.get("connectorId"),
            entry["variable"]["name"], entry["variable"].get("instance"))


def test_full_inventory_reports_everything_with_characteristics() -> None:
    """B07.FR.01/03/08/11/12, TC_B_13 / TC_B_53: every variable, every attribute type
    (unset ones with ""), characteristics, valuesList for list types, no WriteOnly
    value."""
    dm = station()
    status, entries = base(dm, "FullInventory")
    assert status == "Accepted"
    assert len(entries) == len(list(dm.variables()))
    by_ident = {ident(e): e for e in entries}
    password = by_ident[("SecurityCtrlr", None, None, "BasicAuthPassword", None)]
    assert password["variableAttribute"] == [
        {"type": "Actual", "mutability": "WriteOnly", "persistent": True}]
    current = by_ident[("ConnectedEV", 1, None, "ACCurrent", None)]
    assert [a["type"] for a in current["variableAttribute"]] == ["MaxSet"]
    assert current["variableAttribute"][0]["value"] == ""
    power = by_ident[("EVSE", 1, None, "Power", None)]["variableCharacteristics"]
    assert power["maxLimit"] == 22080 and power["unit"] == "W"
    for entry in entries:
        chars = entry["variableCharacteristics"]
        if chars["dataType"] in ("OptionList", "SequenceList", "MemberList"):
            assert chars["valuesList"]
            allowed = set(chars["valuesList"].split(","))
            for attribute in entry["variableAttribute"]:
                value = attribute.get("value", "")
                assert not value or set(value.split(",")) <= allowed, ident(entry)


def test_configuration_inventory_only_what_the_operator_can_set() -> None:
    """B07.FR.07, TC_B_12: mutability ReadWrite or WriteOnly only."""
    dm = station()
    status, entries = base(dm, "ConfigurationInventory")
    assert status == "Accepted"
    idents = {ident(e) for e in entries}
    assert ("OCPPCommCtrlr", None, None, "HeartbeatInterval", None) in idents
    assert ("SecurityCtrlr", None, None, "BasicAuthPassword", None) in idents
    assert ("OCPPCommCtrlr", None, None, "MessageTimeout", "Default") not in idents
    assert all(a["mutability"] in ("ReadWrite", "WriteOnly")
               for e in entries for a in e["variableAttribute"])


def test_summary_inventory_availability_and_problems() -> None:
    """B07.FR.09, TC_B_14: station, EVSE and differing connector AvailabilityState, and
    every Problem / Tripped that is true."""
    dm = station()
    feed = LiveFeed(dm)
    feed.connector_status(2, 2, "Occupied")
    feed.device_fault("meter", 1, "offline")
    status, entries = base(dm, "SummaryInventory")
    assert status == "Accepted"
    assert [ident(e) for e in entries] == [
        ("ChargingStation", None, None, "AvailabilityState", None),
        ("ChargingStation", None, None, "Problem", None),
        ("EVSE", 1, None, "AvailabilityState", None),
        ("EVSE", 1, None, "Problem", None),
        ("FiscalMetering", 1, None, "Problem", None),
        ("EVSE", 2, None, "AvailabilityState", None),
        ("Connector", 2, 1, "AvailabilityState", None),  # Available, EVSE 2 is Occupied
    ]


def test_unknown_report_base_is_not_supported() -> None:
    """B07.FR.02/05."""
    response, pages = base_report(station(), 1, "EverythingInventory", NOW)
    BASE_RESPONSE.validate(response)
    assert response["status"] == "NotSupported" and pages == []


def test_pages_respect_items_and_bytes() -> None:
    """Paging: at most page_items entries and never more than BytesPerMessage bytes
    as an OCPP-J frame."""
    dm = station()
    status, entries = base(dm, "FullInventory", page_items=7)
    response, pages = base_report(dm, 42, "FullInventory", NOW, page_items=7)
    assert all(len(p["reportData"]) <= 7 for p in pages)
    assert len(pages) == -(-len(entries) // 7)
    response, pages = base_report(dm, 42, "FullInventory", NOW, max_bytes=3000)
    check_pages(pages, 42)
    for page in pages:
        frame = json.dumps([2, "x" * 36, "NotifyReport", page], separators=(",", ":"))
        assert len(frame) <= 3000
    dm.set_factory(VariableKey("DeviceDataCtrlr", "BytesPerMessage",
                               variable_instance="GetReport"), 5000)
    response, pages = base_report(dm, 42, "FullInventory", NOW)
    assert all(len(json.dumps(p, separators=(",", ":"))) < 5000 for p in pages)


def test_an_entry_too_big_for_a_page_gets_its_own() -> None:
    dm = station()
    entries = [report_data(var, var.attribute_types()) for var in list(dm.variables())[:3]]
    pages = paginate(entries, 1, NOW, max_bytes=10)
    assert [len(p["reportData"]) for p in pages] == [1, 1, 1]
    assert paginate([], 1, NOW) == []


def test_custom_report_by_component_criteria() -> None:
    """B08.FR.07/08/09/10/13, TC_B_16: components meeting any criterion, whole."""
    dm = station()
    status, entries = custom(dm, componentCriteria=["Enabled"])
    components = {ident(e)[:3] for e in entries}
    assert status == "Accepted"
    assert ("AuthCtrlr", None, None) in components        # Enabled = true
    assert ("OCPPCommCtrlr", None, None) in components    # has no Enabled
    assert ("ReservationCtrlr", None, None) not in components  # Enabled = false
    enabled = [e for e in entries if e["variable"]["name"] == "Enabled"]
    assert all(e["variableAttribute"][0]["value"] == "true" for e in enabled)
    assert custom(dm, componentCriteria=["Problem"])[0] == "EmptyResultSet"  # B08.FR.15
    LiveFeed(dm).device_fault("contactor", 2, "welded")
    status, entries = custom(dm, componentCriteria=["Problem", "Active"])
    components = {ident(e)[:3] for e in entries}
    assert ("PowerContactor", 2, None) in components and ("EVSE", 2, None) in components
    assert ("PowerContactor", 1, None) not in components  # Active false, no Problem


def test_custom_report_by_component_variable() -> None:
    """B08.FR.05/11/20-25, TC_B_17/18/54/55."""
    dm = station()
    status, entries = custom(dm, componentVariable=[
        {"component": {"name": "EVSE", "evse": {"id": 1}},
         "variable": {"name": "AvailabilityState"}}])
    assert status == "Accepted" and [ident(e) for e in entries] == [
        ("EVSE", 1, None, "AvailabilityState", None)]
    assert entries[0]["variableAttribute"] == [
        {"type": "Actual", "mutability": "ReadOnly", "value": "Available", "persistent": False}]
    # TC_B_18: with Available it is there, with Problem it is not.
    evse1 = [{"component": {"name": "EVSE", "evse": {"id": 1}},
              "variable": {"name": "AvailabilityState"}}]
    assert custom(dm, componentCriteria=["Available"], componentVariable=evse1)[0] == "Accepted"
    assert custom(dm, componentCriteria=["Problem"], componentVariable=evse1)[0] == (
        "EmptyResultSet")
    # TC_B_54 / B08.FR.21: every instance when none is given; TC_B_55: just the one.
    _, entries = custom(dm, componentVariable=[
        {"component": {"name": "DeviceDataCtrlr"}, "variable": {"name": "ItemsPerMessage"}}])
    assert {ident(e)[4] for e in entries} == {"GetReport", "GetVariables", "SetVariables"}
    _, entries = custom(dm, componentVariable=[
        {"component": {"name": "devicedatactrlr"},
         "variable": {"name": "ItemsPerMessage", "instance": "GetReport"}}])
    assert [ident(e)[4] for e in entries] == ["GetReport"]
    # B08.FR.20/22/23: no variable = all of them; no connectorId / evse = all places.
    _, entries = custom(dm, componentVariable=[{"component": {"name": "Connector",
                                                              "evse": {"id": 2}}}])
    assert {ident(e)[2] for e in entries} == {1, 2}
    _, entries = custom(dm, componentVariable=[{"component": {"name": "EVSE"},
                                                "variable": {"name": "Power"}}])
    assert [ident(e)[1] for e in entries] == [1, 2]
    assert custom(dm, componentVariable=[{"component": {"name": "Nothing"}}])[0] == (
        "EmptyResultSet")


def test_custom_report_limits() -> None:
    """B08.FR.06/17: more componentVariable entries than ItemsPerMessage[GetReport]."""
    dm = station()
    many = [{"component": {"name": "EVSE"}}] * 51
    with pytest.raises(rpc.RpcError) as err:
        custom_report(dm, {"requestId": 1, "componentVariable": many}, NOW)
    assert err.value.code == "OccurrenceConstraintViolation"


def test_custom_report_without_filters_is_everything() -> None:
    dm = station()
    status, entries = custom(dm)
    assert status == "Accepted" and len(entries) == len(list(dm.variables()))
