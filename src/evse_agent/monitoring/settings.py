"""The device-model variables monitoring reads, with the defaults used while a variable
is not (yet) defined, and the message-size limits of N04.FR.09, N06.FR.06/07 and
N02.FR.07 enforced as CALLERRORs, as provisioning.py does for GetVariables.
"""

from __future__ import annotations

import json
from typing import Any

from ..device_model.model import DeviceModel, VariableKey
from ..ocpp import rpc

CTRLR = "MonitoringCtrlr"

# Defaults when the device model does not define the variable. The limits default to
# "no limit": a limit the station does not publish cannot fairly be enforced.
DEFAULT_ENABLED = True
LEVEL = 9  # report everything until SetMonitoringLevel restricts it (N05)
DEFAULT_BASE = "All"
# Queue events of severity 0 (Danger) .. 4 (Error) while offline: every event that says
# "action is required" survives an outage; notices and debug output do not.
DEFAULT_OFFLINE_QUEUING_SEVERITY = 4
MAX_ACTUAL_VALUE = 2500  # EventDataType.actualValue maxLength


def read(
    dm: DeviceModel,
    variable: str,
    instance: str | None = None,
    default: Any = None,
    component: str = CTRLR,
) -> Any:
    var = dm.find(VariableKey(component, variable, variable_instance=instance))
    if var is None:
        return default
    value = var.getter() if var.getter else var.value
    return default if value is None else value


def enabled(dm: DeviceModel) -> bool:
    return bool(read(dm, "Enabled", default=DEFAULT_ENABLED))


def offline_queuing_severity(dm: DeviceModel) -> int:
    return int(read(dm, "OfflineQueuingSeverity", default=DEFAULT_OFFLINE_QUEUING_SEVERITY))


def actual_value_size(dm: DeviceModel) -> int:
    """DeviceDataCtrlr.ReportingValueSize limits reported values, never above 2500."""
    size = read(dm, "ReportingValueSize", default=MAX_ACTUAL_VALUE, component="DeviceDataCtrlr")
    return max(0, min(int(size), MAX_ACTUAL_VALUE))


def enforce_limits(
    dm: DeviceModel, payload: dict[str, Any], items: list[Any], instance: str,
    component: str = CTRLR,
) -> None:
    """Raise the CALLERROR the spec names when a request carries more items than
    ItemsPerMessage<instance> or more bytes than BytesPerMessage<instance>. Bytes are
    counted on the compact JSON of the whole payload: the message the limit is about."""
    max_items = read(dm, "ItemsPerMessage", instance, component=component)
    if max_items is not None and len(items) > int(max_items):
        raise rpc.RpcError(
            "OccurrenceConstraintViolation",
            f"{len(items)} items, {component} ItemsPerMessage[{instance}] is {max_items}",
        )
    max_bytes = read(dm, "BytesPerMessage", instance, component=component)
    if max_bytes is not None:
        size = len(json.dumps(payload, separators=(",", ":")))
        if size > int(max_bytes):
            raise rpc.RpcError(
                "FormatViolation",
                f"{size} bytes, {component} BytesPerMessage[{instance}] is {max_bytes}",
            )
