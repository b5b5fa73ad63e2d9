"""GetBaseReport (B07) and GetReport (B08) over the device model, as pure functions:
each returns the response payload and the NotifyReport request payloads that follow
it, in order. The adapter sends the response, then the pages one CALL at a time.

Pages: seqNo from 0, contiguous; tbc true on all but the last (B07.FR.10, B08.FR.14);
at most `page_items` reportData entries, and never more bytes (as an OCPP-J frame)
than BytesPerMessage[GetReport]: the station does not send what it would refuse.
WriteOnly attributes are reported without their value (B07.FR.03 / B08.FR.03 errata).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from ..device_model.model import DeviceModel, Variable, VariableKey, format_value
from . import rpc
from .provisioning import check_limits, reporting_size

DEFAULT_PAGE_ITEMS = 100
DEFAULT_MAX_BYTES = 65000
# [2,"<message id up to 36>","NotifyReport",<payload>]: what the frame adds to a payload.
FRAME_OVERHEAD = 64
BASES = ("ConfigurationInventory", "FullInventory", "SummaryInventory")
SUPPORTED_CRITERIA = frozenset({"Active", "Available", "Enabled", "Problem"})
ABNORMAL = ("Problem", "Tripped", "Overload", "Fallback")  # B07.FR.09 note
WRITABLE = ("ReadWrite", "WriteOnly")

Selection = list[tuple[Variable, list[str]]]  # variables and the attribute types to report


# -- the two requests ---------------------------------------------------------------
def base_report(
    dm: DeviceModel,
    request_id: int,
    report_base: str,
    now: datetime,
    *,
    page_items: int = DEFAULT_PAGE_ITEMS,
    max_bytes: int | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """GetBaseReportResponse and the NotifyReportRequests for it (B07)."""
    if report_base not in BASES:  # B07.FR.02, B07.FR.05: no NotifyReport
        return {"status": "NotSupported", "statusInfo": {"reasonCode": "UnsupportedParam"}}, []
    if report_base == "ConfigurationInventory":
        selection = configuration_inventory(dm)
    elif report_base == "FullInventory":
        selection = full_inventory(dm)
    else:
        selection = summary_inventory(dm)
    return _answer(dm, request_id, selection, now, page_items, max_bytes)


def custom_report(
    dm: DeviceModel,
    payload: dict[str, Any],
    now: datetime,
    *,
    page_items: int = DEFAULT_PAGE_ITEMS,
    max_bytes: int | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """GetReportResponse and the NotifyReportRequests for a GetReportRequest (B08).
    Raises rpc.RpcError beyond ItemsPerMessage / BytesPerMessage[GetReport]
    (B08.FR.17/18)."""
    wanted = payload.get("componentVariable") or []
    check_limits(dm, wanted, "GetReport", "componentVariable")
    criteria = payload.get("componentCriteria") or []
    if not set(criteria) <= SUPPORTED_CRITERIA:  # B08.FR.02
        return {"status": "NotSupported", "statusInfo": {"reasonCode": "UnsupportedParam"}}, []
    return _answer(dm, payload["requestId"], select(dm, criteria, wanted), now, page_items,
                   max_bytes)


def _answer(
    dm: DeviceModel, request_id: int, selection: Selection, now: datetime, page_items: int,
    max_bytes: int | None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    if not selection:  # B08.FR.15
        return {"status": "EmptyResultSet"}, []
    size = reporting_size(dm)
    entries = [report_data(var, attributes, size) for var, attributes in selection]
    limit = max_bytes if max_bytes is not None else _bytes_per_message(dm)
    return {"status": "Accepted"}, paginate(entries, request_id, now, page_items, limit)


# -- what each report holds ---------------------------------------------------------
def configuration_inventory(dm: DeviceModel) -> Selection:
    """Every variable the operator can set, with its settable attributes (B07.FR.07)."""
    out: Selection = []
    for var in dm.variables():
        writable = [t for t in var.attribute_types() if var.mutability_of(t) in WRITABLE]
        if writable:
            out.append((var, writable))
    return out


def full_inventory(dm: DeviceModel) -> Selection:
    """Every variable with every attribute type it supports, set or not (B07.FR.08/11)."""
    return [(var, var.attribute_types()) for var in dm.variables() if var.attribute_types()]


def summary_inventory(dm: DeviceModel) -> Selection:
    """AvailabilityState of the station, every EVSE, every connector whose state
    differs from its EVSE's, and every Problem / Tripped / Overload / Fallback that is
    true anywhere (B07.FR.09)."""
    evse_state = {
        var.key.evse_id: var.value_of()
        for var in dm.variables()
        if var.key.component == "EVSE" and var.key.variable == "AvailabilityState"
    }
    out: Selection = []
    for var in dm.variables():
        k = var.key
        if k.variable == "AvailabilityState" and (
            k.component in ("ChargingStation", "EVSE")
            or (k.component == "Connector" and var.value_of() != evse_state.get(k.evse_id))
        ):
            out.append((var, var.attribute_types()))
        elif k.variable in ABNORMAL and var.value_of() is True:
            out.append((var, var.attribute_types()))
    return out


def select(dm: DeviceModel, criteria: Sequence[str], wanted: Sequence[dict[str, Any]]) -> Selection:
    """The variables of a GetReport: those of components meeting any of the criteria
    (B08.FR.07-10, B08.FR.13), limited to the componentVariable entries (B08.FR.05,
    B08.FR.11), each entry's absent parts matching everything (B08.FR.20-25)."""
    out: Selection = []
    for variables in dm.components().values():
        if criteria and not any(_meets(variables, c) for c in criteria):
            continue
        for var in variables:
            if wanted and not any(_wanted(entry, var.key) for entry in wanted):
                continue
            if var.attribute_types():
                out.append((var, var.attribute_types()))
    return out


def _meets(variables: Iterable[Variable], criterion: str) -> bool:
    values = [v.value_of() for v in variables if v.key.variable == criterion]
    if criterion == "Problem":  # B08.FR.10: only components with a Problem that is true
        return any(value is True for value in values)
    # B08.FR.07-09: the variable true, or the component does not have it
    return not values or any(value is True for value in values)


def _same(a: str | None, b: str | None) -> bool:
    return (a or "").casefold() == (b or "").casefold()  # names are case-insensitive


def _wanted(entry: dict[str, Any], key: VariableKey) -> bool:
    component = entry["component"]
    if not _same(component["name"], key.component):
        return False
    if component.get("instance") and not _same(component["instance"], key.component_instance):
        return False  # B08.FR.24/25: an absent instance matches every instance
    evse = component.get("evse")
    if evse is not None:  # B08.FR.22/23: an absent evse / connectorId matches all
        if evse["id"] != key.evse_id:
            return False
        if "connectorId" in evse and evse["connectorId"] != key.connector_id:
            return False
    variable = entry.get("variable")
    if variable is None:  # B08.FR.20: every variable of the component
        return True
    if not _same(variable["name"], key.variable):
        return False
    return not variable.get("instance") or _same(variable["instance"], key.variable_instance)


# -- entries and pages --------------------------------------------------------------
def report_data(var: Variable, attributes: Sequence[str], size: int = 2500) -> dict[str, Any]:
    """One ReportDataType entry: component, variable, the given attributes and the
    characteristics (B08.FR.12)."""
    return {
        "component": var.key.component_ocpp(),
        "variable": var.key.variable_ocpp(),
        "variableAttribute": [_attribute(var, t, size) for t in attributes],
        "variableCharacteristics": characteristics(var),
    }


def _attribute(var: Variable, attribute: str, size: int) -> dict[str, Any]:
    mutability = var.mutability_of(attribute)
    out: dict[str, Any] = {"type": attribute, "mutability": mutability}
    if mutability != "WriteOnly":  # an unset value is "": value may only be absent if WO
        out["value"] = format_value(var.value_of(attribute))[:size]
    # CSMS-set and configured values survive restarts; live hardware values do not.
    out["persistent"] = not var.live
    return out


def characteristics(var: Variable) -> dict[str, Any]:
    out: dict[str, Any] = {"dataType": var.data_type, "supportsMonitoring": var.supports_monitoring}
    if var.unit:
        out["unit"] = var.unit
    if var.min_limit is not None:
        out["minLimit"] = var.min_limit
    if var.max_limit is not None:
        out["maxLimit"] = var.max_limit
    if var.values_list:
        out["valuesList"] = var.values_list
    return out


def paginate(
    entries: Sequence[dict[str, Any]],
    request_id: int,
    now: datetime,
    page_items: int = DEFAULT_PAGE_ITEMS,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> list[dict[str, Any]]:
    """NotifyReportRequest payloads holding `entries` in order. A page closes at
    `page_items` entries or before `max_bytes`; an entry too big for any page still
    gets one of its own (it cannot be split)."""
    generated_at = rpc.timestamp(now)
    envelope = len(_compact({"requestId": request_id, "generatedAt": generated_at,
                             "seqNo": 2**31, "tbc": False, "reportData": []}))
    pages: list[list[dict[str, Any]]] = [[]]
    used = FRAME_OVERHEAD + envelope
    for entry in entries:
        size = len(_compact(entry)) + 1  # and its comma
        page = pages[-1]
        if page and (len(page) >= page_items or used + size > max_bytes):
            pages.append([])
            used = FRAME_OVERHEAD + envelope
        pages[-1].append(entry)
        used += size
    return [
        {"requestId": request_id, "generatedAt": generated_at, "seqNo": n,
         "tbc": n < len(pages) - 1, "reportData": page}
        for n, page in enumerate(pages) if page
    ]


def _compact(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def _bytes_per_message(dm: DeviceModel) -> int:
    var = dm.find(VariableKey("DeviceDataCtrlr", "BytesPerMessage", variable_instance="GetReport"))
    value = var.value_of() if var is not None else None
    return value if isinstance(value, int) and value > 0 else DEFAULT_MAX_BYTES
