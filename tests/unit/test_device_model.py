"""The device model store: typed values, mutability, attribute types, persistence,
change notification, SetVariables statuses (B05)."""

from __future__ import annotations

import pytest

from evse_agent.device_model.model import (
    Attribute,
    DeviceModel,
    InvalidValue,
    Variable,
    VariableKey,
    format_value,
    parse_value,
)
from evse_agent.ocpp.provisioning import get_variables, set_variables

Stored = list[tuple[object, ...]]


def model() -> tuple[DeviceModel, Stored]:
    stored: Stored = []
    dm = DeviceModel(persist=lambda *args: stored.append(args))
    dm.load_standard()
    return dm, stored


def item(component: str, variable: str, value: str | None = None, **extra: str) -> dict:
    out: dict = {"component": {"name": component}, "variable": {"name": variable}}
    if value is not None:
        out["attributeValue"] = value
    out.update(extra)
    return out


def test_set_variables_statuses_and_persistence() -> None:
    """B05.FR.04/05/06/07/09/10."""
    dm, stored = model()
    results = set_variables(dm, [
        item("TxCtrlr", "EVConnectionTimeOut", "90"),
        item("TxCtrlr", "EVConnectionTimeOut", "ninety"),
        item("TxCtrlr", "TxStartPoint", "Authorized,Teleport"),
        item("TxCtrlr", "Nope", "1"),
        item("NopeCtrlr", "Nope", "1"),
        item("SecurityCtrlr", "Identity", "X"),
        item("TxCtrlr", "EVConnectionTimeOut", "5", attributeType="MaxSet"),
    ])
    assert [r["attributeStatus"] for r in results] == [
        "Accepted", "Rejected", "Rejected", "UnknownVariable", "UnknownComponent",
        "Rejected", "NotSupportedAttributeType",
    ]
    assert dm.get("TxCtrlr", "EVConnectionTimeOut") == 90
    assert stored == [(VariableKey("TxCtrlr", "EVConnectionTimeOut"), "90")]


def test_write_only_is_never_reported_and_listeners_hear_changes() -> None:
    """B06.FR.09: a WriteOnly variable is Rejected by GetVariables, without value."""
    dm, _ = model()
    heard: list[object] = []
    dm.subscribe(lambda k, v: heard.append(v), VariableKey("OCPPCommCtrlr", "HeartbeatInterval"))
    set_variables(dm, [item("SecurityCtrlr", "BasicAuthPassword", "0123456789abcdef"),
                       item("OCPPCommCtrlr", "HeartbeatInterval", "42")])
    got = get_variables(dm, [item("SecurityCtrlr", "BasicAuthPassword"),
                             item("OCPPCommCtrlr", "HeartbeatInterval")])
    assert got[0]["attributeStatus"] == "Rejected" and "attributeValue" not in got[0]
    assert got[1]["attributeValue"] == "42"
    assert heard == [42]


def test_the_values_the_core_depends_on() -> None:
    dm, _ = model()
    assert dm.members("TxCtrlr", "TxStartPoint") == ["PowerPathClosed"]
    assert dm.members("TxCtrlr", "TxStopPoint") == ["EVConnected", "Authorized"]
    assert dm.get("SampledDataCtrlr", "TxUpdatedInterval") == 60
    assert dm.get("AlignedDataCtrlr", "Interval") == 900
    assert dm.get("OCPPCommCtrlr", "HeartbeatInterval") == 300
    assert dm.get("OCPPCommCtrlr", "MessageTimeout", "Default") == 30
    assert dm.get("OCPPCommCtrlr", "MessageAttempts", "TransactionEvent") == 5
    assert dm.get("OCPPCommCtrlr", "MessageAttemptInterval", "TransactionEvent") == 10
    assert dm.get("DeviceDataCtrlr", "ItemsPerMessage", "GetVariables") == 50
    assert dm.get("DeviceDataCtrlr", "BytesPerMessage", "SetVariables") == 65000
    assert dm.find(VariableKey("SecurityCtrlr", "BasicAuthPassword")).mutability == "WriteOnly"


@pytest.mark.parametrize("data_type, text", [
    ("integer", "1_000"), ("integer", "1.0"), ("integer", " "), ("integer", "١٢"),
    ("integer", "99999999999"), ("decimal", "nan"), ("decimal", "inf"), ("decimal", "1e999"),
    ("decimal", "0x10"), ("boolean", "yes"), ("boolean", "1"), ("dateTime", "2025-01-01"),
    ("dateTime", "2025-13-01T00:00:00Z"), ("dateTime", "2025-01-01T00:00:00"),
])
def test_parse_is_strict(data_type: str, text: str) -> None:
    """B05.FR.07: a value incorrectly formatted for the type is rejected."""
    with pytest.raises(InvalidValue):
        parse_value(Variable(VariableKey("C", "V"), data_type), text)


@pytest.mark.parametrize("data_type, text, value", [
    ("integer", " +42 ", 42), ("decimal", "-1.5e2", -150.0), ("boolean", "TRUE", True),
    ("dateTime", "2025-01-31T12:00:00.123456789+01:00", "2025-01-31T12:00:00.123456789+01:00"),
    ("string", "", ""),
])
def test_parse_accepts_the_wire_forms(data_type: str, text: str, value: object) -> None:
    assert parse_value(Variable(VariableKey("C", "V"), data_type), text) == value


def test_limits_and_lists() -> None:
    """B05.FR.08: out of range is rejected, with a reasonCode."""
    var = Variable(VariableKey("C", "V"), "integer", min_limit=1, max_limit=10)
    with pytest.raises(InvalidValue) as low:
        parse_value(var, "0")
    assert low.value.reason == "ValueTooLow"
    members = Variable(VariableKey("C", "L"), "MemberList", values_list="A,B,C")
    assert parse_value(members, " B , A ") == "B,A"
    for bad in ("A,A", "A,,B", "D"):
        with pytest.raises(InvalidValue):
            parse_value(members, bad)
    option = Variable(VariableKey("C", "O"), "OptionList", values_list="A,B")
    with pytest.raises(InvalidValue):
        parse_value(option, "A,B")
    text = Variable(VariableKey("C", "S"), "string", min_limit=2, max_limit=3)
    for bad in ("a", "abcd"):
        with pytest.raises(InvalidValue):
            parse_value(text, bad)
    assert format_value(22080.0) == "22080" and format_value(False) == "false"


def test_names_are_case_insensitive_and_empty_instance_is_none() -> None:
    """Part 2 ComponentType/VariableType: names are case-insensitive; B06.FR.15."""
    dm, _ = model()
    var = dm.find(VariableKey("ocppcommctrlr", "heartbeatinterval", variable_instance=""))
    assert var is not None and var.key == VariableKey("OCPPCommCtrlr", "HeartbeatInterval")
    assert dm.has_component("txctrlr", "", None, None)


def test_attribute_types_are_separate_values_with_their_own_mutability() -> None:
    """B05.FR.06 / B06.FR.08 with a variable that has Actual, MinSet and MaxSet."""
    dm, stored = model()
    key = VariableKey("TestCtrlr", "Limit")
    dm.define(Variable(key, "integer", value=5, min_limit=0, max_limit=100,
                       others={"MinSet": Attribute("ReadWrite", 1), "MaxSet": Attribute()}))
    assert dm.set_from_csms(key, "10", "MinSet") == "Accepted"
    assert dm.set_from_csms(key, "10", "MaxSet") == "Rejected"  # ReadOnly attribute
    assert dm.set_from_csms(key, "10", "Target") == "NotSupportedAttributeType"
    assert dm.value(key, "MinSet") == 10 and dm.value(key) == 5
    assert stored == [(key, "10", "MinSet")]
    dm.load_persisted(key, "7", "MinSet")
    assert dm.value(key, "MinSet") == 7


def test_factory_values_are_checked_and_persisted_values_win() -> None:
    dm, _ = model()
    key = VariableKey("SampledDataCtrlr", "TxUpdatedInterval")
    dm.set_factory(key, 30)
    dm.load_persisted(key, "17")
    assert dm.get("SampledDataCtrlr", "TxUpdatedInterval") == 17
    dm.load_persisted(key, "garbage")  # a stored value that no longer fits: ignored
    assert dm.get("SampledDataCtrlr", "TxUpdatedInterval") == 17
    with pytest.raises(ValueError, match="TxUpdatedInterval"):
        dm.set_factory(key, "often")
    dm.set_factory(VariableKey("SecurityCtrlr", "BasicAuthPassword"), "")  # "" = none set
    with pytest.raises(ValueError, match="BasicAuthPassword"):
        dm.set_factory(VariableKey("SecurityCtrlr", "BasicAuthPassword"), "short")


def test_set_live_notifies_only_on_change_and_can_persist() -> None:
    dm, stored = model()
    key = VariableKey("MonitoringCtrlr", "ActiveMonitoringLevel")
    heard: list[object] = []
    unsubscribe = dm.subscribe(lambda k, v: heard.append((k.variable, v)))
    assert dm.set_live(key, 3, persist=True) is True
    assert dm.set_live(key, 3) is False
    unsubscribe()
    dm.set_live(key, 4)
    assert heard == [("ActiveMonitoringLevel", 3)]
    assert stored == [(key, "3")]
    assert dm.set_from_csms(key, "5") == "Rejected"  # still ReadOnly to the CSMS


def test_reboot_required_for_network_configuration_priority() -> None:
    """B10.FR.01: a new NetworkConfigurationPriority applies after a reboot."""
    dm, _ = model()
    key = VariableKey("OCPPCommCtrlr", "NetworkConfigurationPriority")
    assert dm.set_from_csms(key, "1") == "RebootRequired"
    assert dm.set_from_csms(key, "4") == "Rejected"  # not in valuesList "1,2,3"
    # B10.FR.02 (a slot without a stored profile) is checked with the network profiles
    # (ocpp/network_profiles.py; tests/e2e/test_network_profiles.py).


def test_getter_feeds_the_actual_value() -> None:
    dm, _ = model()
    dm.set_getter(VariableKey("ClockCtrlr", "DateTime"), lambda: "2025-01-31T12:00:00.000Z")
    assert dm.get("ClockCtrlr", "DateTime") == "2025-01-31T12:00:00.000Z"
