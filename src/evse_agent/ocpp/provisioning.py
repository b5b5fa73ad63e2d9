"""GetVariables / SetVariables over the device model (OCPP 2.0.1 B05, B06), with
DeviceDataCtrlr ItemsPerMessage / BytesPerMessage enforced."""

from __future__ import annotations

import json
from typing import Any

from ..device_model.model import DeviceModel, SetResult, VariableKey, format_value
from . import rpc


def _limits(dm: DeviceModel, items: list[Any], instance: str) -> None:
    max_items = int(dm.get("DeviceDataCtrlr", "ItemsPerMessage", instance))
    if len(items) > max_items:
        raise rpc.RpcError(
            "OccurrenceConstraintViolation",
            f"{len(items)} items, ItemsPerMessage{instance} is {max_items}",
        )
    max_bytes = int(dm.get("DeviceDataCtrlr", "BytesPerMessage", instance))
    size = len(json.dumps(items, separators=(",", ":")))
    if size > max_bytes:
        raise rpc.RpcError(
            "FormatViolation", f"{size} bytes, BytesPerMessage{instance} is {max_bytes}"
        )


def _key(item: dict[str, Any]) -> VariableKey:
    comp, var = item["component"], item["variable"]
    evse = comp.get("evse") or {}
    return VariableKey(
        component=comp["name"],
        variable=var["name"],
        component_instance=comp.get("instance"),
        variable_instance=var.get("instance"),
        evse_id=evse.get("id"),
        connector_id=evse.get("connectorId"),
    )


def _echo(item: dict[str, Any], status: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "attributeStatus": status,
        "component": item["component"],
        "variable": item["variable"],
    }
    if "attributeType" in item:
        out["attributeType"] = item["attributeType"]
    return out


def _unknown(dm: DeviceModel, key: VariableKey) -> str:
    known = dm.has_component(key.component, key.component_instance, key.evse_id, key.connector_id)
    return SetResult.UNKNOWN_VARIABLE if known else SetResult.UNKNOWN_COMPONENT


def get_variables(dm: DeviceModel, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    _limits(dm, items, "GetVariables")
    results = []
    for item in items:
        key = _key(item)
        var = dm.find(key)
        if var is None:
            results.append(_echo(item, _unknown(dm, key)))
        elif item.get("attributeType", "Actual") != "Actual":
            results.append(_echo(item, SetResult.NOT_SUPPORTED_ATTRIBUTE))
        elif var.mutability == "WriteOnly":
            results.append(_echo(item, SetResult.REJECTED))  # never reported
        else:
            value = var.getter() if var.getter else var.value
            result = _echo(item, SetResult.ACCEPTED)
            result["attributeValue"] = format_value(value)[:2500]
            results.append(result)
    return results


def set_variables(dm: DeviceModel, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    _limits(dm, items, "SetVariables")
    results = []
    for item in items:
        key = _key(item)
        if dm.find(key) is not None and item.get("attributeType", "Actual") != "Actual":
            results.append(_echo(item, SetResult.NOT_SUPPORTED_ATTRIBUTE))
            continue
        if dm.find(key) is None:
            results.append(_echo(item, _unknown(dm, key)))
            continue
        results.append(_echo(item, dm.set_from_csms(key, item["attributeValue"])))
    return results
