"""GetVariables / SetVariables over the device model (OCPP 2.0.1 B05, B06), with
DeviceDataCtrlr ItemsPerMessage / BytesPerMessage enforced.

Pure functions of the device model and the request items: the adapter (v201.py)
wraps the result lists in the response payloads.
"""

from __future__ import annotations

import json
from typing import Any

from ..device_model.model import ACTUAL, DeviceModel, SetResult, VariableKey, format_value
from . import rpc

MAX_REPORTED = 2500  # GetVariableResult.attributeValue maxLength in the schema


def check_limits(dm: DeviceModel, items: list[Any], instance: str, field: str) -> None:
    """ItemsPerMessage / BytesPerMessage of `instance` (B05.FR.11, B06.FR.16/17,
    B08.FR.17/18): a CALLERROR the adapter sends instead of an answer."""
    max_items = int(dm.get("DeviceDataCtrlr", "ItemsPerMessage", instance))
    if len(items) > max_items:
        raise rpc.RpcError(
            "OccurrenceConstraintViolation",
            f"{len(items)} items, ItemsPerMessage[{instance}] is {max_items}",
        )
    max_bytes = int(dm.get("DeviceDataCtrlr", "BytesPerMessage", instance))
    size = len(json.dumps({field: items}, separators=(",", ":")))
    if size > max_bytes:
        raise rpc.RpcError(
            "FormatViolation", f"{size} bytes, BytesPerMessage[{instance}] is {max_bytes}"
        )


def request_key(item: dict[str, Any]) -> VariableKey:
    return VariableKey.from_ocpp(item["component"], item["variable"])


def reporting_size(dm: DeviceModel) -> int:
    """The longest value the station reports (ReportingValueSize, at most 2500)."""
    var = dm.find(VariableKey("DeviceDataCtrlr", "ReportingValueSize"))
    size = var.value_of() if var is not None else None
    return min(int(size), MAX_REPORTED) if isinstance(size, int) and size > 0 else MAX_REPORTED


def _result(item: dict[str, Any], status: str, reason: str | None = None,
            info: str | None = None) -> dict[str, Any]:
    # B05.FR.02/03/12, B06.FR.02/03/11: the request's component and variable as sent,
    # and its attributeType, Actual when it had none.
    out: dict[str, Any] = {
        "attributeStatus": status,
        "attributeType": item.get("attributeType", ACTUAL),
        "component": item["component"],
        "variable": item["variable"],
    }
    if reason is not None:
        out["attributeStatusInfo"] = {"reasonCode": reason}
        if info:
            out["attributeStatusInfo"]["additionalInfo"] = info[:512]
    return out


def get_variables(dm: DeviceModel, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One GetVariableResult per item, in order (B06.FR.01)."""
    check_limits(dm, items, "GetVariables", "getVariableData")
    size = reporting_size(dm)
    results = []
    for item in items:
        key = request_key(item)
        attribute = item.get("attributeType", ACTUAL)
        var = dm.find(key)
        if var is None:  # B06.FR.06/07/15: no attributeValue
            results.append(_result(item, dm.unknown_status(key)))
        elif not var.has_attribute(attribute):  # B06.FR.08
            results.append(_result(item, SetResult.NOT_SUPPORTED_ATTRIBUTE, "UnsupportedParam"))
        elif var.mutability_of(attribute) == "WriteOnly":  # B06.FR.09: never reported
            results.append(_result(item, SetResult.REJECTED, "WriteOnly"))
        else:  # B06.FR.10; an unset attribute is "" (B06.FR.13)
            result = _result(item, SetResult.ACCEPTED)
            result["attributeValue"] = format_value(var.value_of(attribute))[:size]
            results.append(result)
    return results


def set_variables(dm: DeviceModel, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One SetVariableResult per item, in order (B05.FR.01); each item is applied
    (persisted and announced to subscribers) before the next is looked at."""
    check_limits(dm, items, "SetVariables", "setVariableData")
    max_value = dm.find(VariableKey("DeviceDataCtrlr", "ConfigurationValueSize"))
    limit = max_value.value_of() if max_value is not None else None
    results = []
    for item in items:
        key = request_key(item)
        text, attribute = item["attributeValue"], item.get("attributeType", ACTUAL)
        var = dm.find(key)
        if isinstance(limit, int) and len(text) > limit and var and var.has_attribute(attribute):
            results.append(_result(item, SetResult.REJECTED, "TooLargeElement",
                                   f"longer than ConfigurationValueSize {limit}"))
            continue
        outcome = dm.set_attribute(key, text, attribute)
        results.append(_result(item, outcome.status, outcome.reason, outcome.info))
    return results
