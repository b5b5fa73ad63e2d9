"""GetVariables / SetVariables over the whole device model (B05, B06): every status,
attribute types, limits, every answer valid against the official schema, and a
property test that arbitrary SetVariables never corrupt the store."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ocpp.messages import get_validator

from evse_agent.device_model.model import (
    DeviceModel,
    Variable,
    VariableKey,
    format_value,
    parse_value,
)
from evse_agent.device_model.physical import add_physical_components
from evse_agent.ocpp import rpc
from evse_agent.ocpp.provisioning import get_variables, set_variables

SET_REQUEST = get_validator(2, "SetVariables", "2.0.1")
SET_RESPONSE = get_validator(3, "SetVariables", "2.0.1")
GET_RESPONSE = get_validator(3, "GetVariables", "2.0.1")


def station() -> DeviceModel:
    dm = DeviceModel()
    dm.load_standard()
    add_physical_components(dm, 2)
    return dm


def item(component: str, variable: str, value: str | None = None, *, evse: dict | None = None,
         instance: str | None = None, **extra: Any) -> dict[str, Any]:
    comp: dict[str, Any] = {"name": component}
    if evse is not None:
        comp["evse"] = evse
    var: dict[str, Any] = {"name": variable}
    if instance is not None:
        var["instance"] = instance
    out: dict[str, Any] = {"component": comp, "variable": var, **extra}
    if value is not None:
        out["attributeValue"] = value
    return out


def get(dm: DeviceModel, *items: dict[str, Any]) -> list[dict[str, Any]]:
    results = get_variables(dm, list(items))
    GET_RESPONSE.validate({"getVariableResult": results})
    return results


def put(dm: DeviceModel, *items: dict[str, Any]) -> list[dict[str, Any]]:
    results = set_variables(dm, list(items))
    SET_RESPONSE.validate({"setVariableResult": results})
    return results


def test_get_variables_statuses() -> None:
    """B06.FR.01-11, B06.FR.13/14/15."""
    dm = station()
    results = get(
        dm,
        item("OCPPCommCtrlr", "OfflineThreshold"),                      # B06.FR.10/11
        item("NoSuchCtrlr", "OfflineThreshold"),                        # B06.FR.06
        item("OCPPCommCtrlr", "NoSuch"),                                # B06.FR.07
        item("OCPPCommCtrlr", "OfflineThreshold", attributeType="Target"),  # B06.FR.08
        item("SecurityCtrlr", "BasicAuthPassword"),                     # B06.FR.09
        item("ConnectedEV", "StateOfCharge", evse={"id": 1}),           # B06.FR.13: unset
        item("EVSE", "AvailabilityState", evse={"id": 2}),              # B06.FR.14
        item("EVSE", "AvailabilityState", evse={"id": 3}),              # no EVSE 3
        item("OCPPCommCtrlr", "MessageTimeout"),                        # B06.FR.15
        item("DeviceDataCtrlr", "ItemsPerMessage", instance="GetReport", attributeType="Actual"),
        item("ConnectedEV", "ACCurrent", evse={"id": 1}, attributeType="MaxSet"),
    )
    assert [(r["attributeStatus"], r.get("attributeValue")) for r in results] == [
        ("Accepted", "60"), ("UnknownComponent", None), ("UnknownVariable", None),
        ("NotSupportedAttributeType", None), ("Rejected", None), ("Accepted", ""),
        ("Accepted", "Available"), ("UnknownComponent", None), ("UnknownVariable", None),
        ("Accepted", "50"), ("Accepted", ""),
    ]
    assert all(r["attributeType"] in ("Actual", "Target", "MaxSet") for r in results)
    assert results[0]["attributeType"] == "Actual"  # B06.FR.11
    assert results[4]["attributeStatusInfo"]["reasonCode"] == "WriteOnly"
    assert results[6]["component"] == {"name": "EVSE", "evse": {"id": 2}}  # B06.FR.02


def test_set_variables_statuses_and_reason_codes() -> None:
    """B05.FR.01-12: every status SetVariables can give."""
    dm = station()
    results = put(
        dm,
        item("OCPPCommCtrlr", "OfflineThreshold", "300"),
        item("AuthCtrlr", "LocalAuthorizeOffline", "true", attributeType="Actual"),
        item("UnknownComponent", "OfflineThreshold", "1"),
        item("OCPPCommCtrlr", "UnknownVariable", "1"),
        item("OCPPCommCtrlr", "OfflineThreshold", "1", attributeType="MinSet"),
        item("ClockCtrlr", "NextTimeOffsetTransitionDateTime", "tomorrow"),
        item("OCPPCommCtrlr", "HeartbeatInterval", "0"),
        item("OCPPCommCtrlr", "ActiveNetworkProfile", "2"),
        item("OCPPCommCtrlr", "NetworkConfigurationPriority", "1"),
        item("EVSE", "AvailabilityState", "Faulted", evse={"id": 1}),
    )
    assert [r["attributeStatus"] for r in results] == [
        "Accepted", "Accepted", "UnknownComponent", "UnknownVariable",
        "NotSupportedAttributeType", "Rejected", "Rejected", "Rejected", "RebootRequired",
        "Rejected",
    ]
    reasons = [r.get("attributeStatusInfo", {}).get("reasonCode") for r in results]
    assert reasons[5:8] == ["InvalidValue", "ValueTooLow", "ReadOnly"]
    assert results[0]["attributeType"] == "Actual"  # B05.FR.12
    assert dm.get("OCPPCommCtrlr", "OfflineThreshold") == 300


def test_items_and_bytes_per_message() -> None:
    """B06.FR.16/17, B05.FR.11: CALLERRORs beyond DeviceDataCtrlr's limits."""
    dm = station()
    one = item("OCPPCommCtrlr", "HeartbeatInterval")
    assert len(get_variables(dm, [one] * 50)) == 50
    with pytest.raises(rpc.RpcError) as many:
        get_variables(dm, [one] * 51)
    assert many.value.code == "OccurrenceConstraintViolation"
    dm.set_factory(VariableKey("DeviceDataCtrlr", "BytesPerMessage", variable_instance="SetVariables"),
                   200)
    with pytest.raises(rpc.RpcError) as big:
        set_variables(dm, [item("SecurityCtrlr", "OrganizationName", "x" * 300)])
    assert big.value.code == "FormatViolation"


def test_value_sizes() -> None:
    """ConfigurationValueSize limits what may be set, ReportingValueSize what is
    reported."""
    dm = station()
    dm.set_factory(VariableKey("DeviceDataCtrlr", "ConfigurationValueSize"), 10)
    result = put(dm, item("SecurityCtrlr", "OrganizationName", "x" * 11))[0]
    assert result["attributeStatus"] == "Rejected"
    assert result["attributeStatusInfo"]["reasonCode"] == "TooLargeElement"
    dm.set_factory(VariableKey("DeviceDataCtrlr", "ReportingValueSize"), 5)
    assert get(dm, item("SecurityCtrlr", "OrganizationName"))[0]["attributeValue"] == "evse-"


# -- the property: arbitrary SetVariables never corrupt the store ------------------------
MODEL = station()
KEYS = [var.key for var in MODEL.variables()]
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=60)
NAMES = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=50)


def _component(key: VariableKey) -> dict[str, Any]:
    comp: dict[str, Any] = {"name": key.component}
    if key.evse_id is not None:
        comp["evse"] = {"id": key.evse_id}
        if key.connector_id is not None:
            comp["evse"]["connectorId"] = key.connector_id
    return comp


def typed_value(var: Variable) -> st.SearchStrategy[str]:
    """Values of the variable's own type, so that writes get accepted too."""
    if var.data_type == "integer":
        return st.integers(-5, 100_000).map(str)
    if var.data_type == "decimal":
        return st.floats(-1e6, 1e6, allow_nan=False).map(str)
    if var.data_type == "boolean":
        return st.sampled_from(["true", "false", "True"])
    if var.values_list:
        options = var.values_list.split(",")
        return st.lists(st.sampled_from(options), unique=True, max_size=3).map(",".join)
    return TEXT


@st.composite
def set_variable_data(draw: st.DrawFn) -> dict[str, Any]:
    value = draw(st.one_of(
        TEXT, st.integers(-(2**40), 2**40).map(str), st.floats().map(str),
        st.sampled_from(["true", "false", "", "2025-01-31T12:00:00Z", "EVConnected",
                         "Authorized,PowerPathClosed", "Energy.Active.Import.Register",
                         "HTTP", "1", "0", "-1", "x" * 1000]),
    ))
    if draw(st.integers(0, 3)):
        key = draw(st.sampled_from(KEYS))
        var = MODEL.find(key)
        assert var is not None
        if draw(st.booleans()):
            value = draw(typed_value(var))
        component = _component(key)
        variable: dict[str, Any] = {"name": key.variable}
        if key.variable_instance:
            variable["instance"] = key.variable_instance
    else:
        component = {"name": draw(NAMES)}
        if draw(st.booleans()):
            component["evse"] = {"id": draw(st.integers(-1, 4))}
        variable = {"name": draw(NAMES)}
    out: dict[str, Any] = {"component": component, "variable": variable, "attributeValue": value}
    if draw(st.integers(0, 3)) == 0:
        out["attributeType"] = draw(st.sampled_from(["Actual", "Target", "MinSet", "MaxSet"]))
    return out


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(set_variable_data(), min_size=1, max_size=10))
def test_set_variables_never_corrupts_the_store(data: list[dict[str, Any]]) -> None:
    """B05: any schema-valid SetVariablesRequest gets one schema-valid result per item
    (B05.FR.01), and afterwards every value still parses under its own type and
    characteristics; WriteOnly values stay unreadable (B06.FR.09)."""
    SET_REQUEST.validate({"setVariableData": data})
    dm = station()
    results = set_variables(dm, data)
    SET_RESPONSE.validate({"setVariableResult": results})
    assert len(results) == len(data)
    for request, result in zip(data, results, strict=True):
        assert result["component"] == request["component"]  # B05.FR.02
        assert result["attributeType"] == request.get("attributeType", "Actual")  # B05.FR.03/12
    for var in dm.variables():
        for attribute in var.attribute_types():
            value = var.value_of(attribute)
            if value is None or (value == "" and var.data_type == "string"):
                continue
            assert parse_value(var, format_value(value)) == value, var.key.label()
    password = get_variables(dm, [item("SecurityCtrlr", "BasicAuthPassword")])[0]
    assert "attributeValue" not in password
