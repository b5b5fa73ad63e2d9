"""The device model store: typed values, mutability, SetVariables statuses (B05)."""

from __future__ import annotations

from evse_agent.device_model.model import DeviceModel, VariableKey
from evse_agent.ocpp.provisioning import get_variables, set_variables


def model() -> tuple[DeviceModel, list[tuple[VariableKey, str]]]:
    stored: list[tuple[VariableKey, str]] = []
    dm = DeviceModel(persist=lambda k, v: stored.append((k, v)))
    dm.load_standard()
    return dm, stored


def item(component: str, variable: str, value: str | None = None, **extra: str) -> dict:
    out: dict = {"component": {"name": component}, "variable": {"name": variable}}
    if value is not None:
        out["attributeValue"] = value
    out.update(extra)
    return out


def test_set_variables_statuses_and_persistence() -> None:
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
