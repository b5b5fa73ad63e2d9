"""Outgoing monitoring messages: GetMonitoringReport's selection and its
NotifyMonitoringReport pages (N02), NotifyEvent pages (N07, N08), and the queue that
keeps events while the station is offline (N07.FR.04, N08.FR.03).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from ..ocpp import rpc
from .monitors import DELTA, PERIODICS, THRESHOLDS, Monitor

# N02.FR.12 - 14: which monitor types each monitoringCriteria value selects.
CRITERIA: dict[str, tuple[str, ...]] = {
    "ThresholdMonitoring": THRESHOLDS,
    "DeltaMonitoring": (DELTA,),
    "PeriodicMonitoring": PERIODICS,
}


def _matches_component_variable(m: Monitor, cv: dict[str, Any]) -> bool:
    """One componentVariable entry of GetMonitoringReportRequest (N02.FR.16 - 21): an
    absent instance, evse, connectorId or variable matches every one."""
    comp = cv["component"]
    k = m.key
    if _fold(comp["name"]) != _fold(k.component):
        return False
    if "instance" in comp and _fold(comp["instance"]) != _fold(k.component_instance):
        return False
    evse = comp.get("evse")
    if evse is not None:
        if evse["id"] != k.evse_id:
            return False
        if "connectorId" in evse and evse["connectorId"] != k.connector_id:
            return False
    var = cv.get("variable")
    if var is not None:
        if _fold(var["name"]) != _fold(k.variable):
            return False
        if "instance" in var and _fold(var["instance"]) != _fold(k.variable_instance):
            return False
    return True


def _fold(text: str | None) -> str:
    # Names are case-insensitive, and an empty instance is an absent one (as the
    # device model compares them).
    return (text or "").casefold()


def select(
    monitors: Iterable[Monitor],
    criteria: list[str] | None,
    component_variables: list[dict[str, Any]] | None,
) -> list[Monitor]:
    """N02.FR.05 / 06 / 08 / 11: both filters apply when given; none means all."""
    types = None if not criteria else {t for c in criteria for t in CRITERIA.get(c, ())}
    out = []
    for m in monitors:
        if types is not None and m.type not in types:
            continue
        if component_variables and not any(
            _matches_component_variable(m, cv) for cv in component_variables
        ):
            continue
        out.append(m)
    return out


def monitoring_report_pages(
    request_id: int, monitors: list[Monitor], now: datetime, per_message: int
) -> list[dict[str, Any]]:
    """NotifyMonitoringReportRequest payloads: one MonitoringDataType per component /
    variable with its monitors, `per_message` of them a message, seqNo from 0
    (N02.FR.09), the same requestId in each (N02.FR.04), tbc on all but the last."""
    grouped: dict[Any, list[Monitor]] = {}
    for m in sorted(monitors, key=lambda m: (_sort_key(m), m.id)):
        grouped.setdefault(m.key, []).append(m)
    data = [
        {
            "component": key.component_ocpp(),
            "variable": key.variable_ocpp(),
            "variableMonitoring": [m.variable_monitoring() for m in group],
        }
        for key, group in grouped.items()
    ]
    pages = _chunks(data, per_message)
    generated = rpc.timestamp(now)
    return [
        {
            "requestId": request_id,
            "generatedAt": generated,
            "seqNo": seq,
            "tbc": seq < len(pages) - 1,
            "monitor": page,
        }
        for seq, page in enumerate(pages)
    ]


def notify_event_pages(
    event_data: list[dict[str, Any]], now: datetime, per_message: int
) -> list[dict[str, Any]]:
    """NotifyEventRequest payloads for one batch of events: seqNo from 0 (N07.FR.07,
    N08.FR.04), tbc on all but the last."""
    pages = _chunks(event_data, per_message)
    generated = rpc.timestamp(now)
    return [
        {"generatedAt": generated, "seqNo": seq, "tbc": seq < len(pages) - 1, "eventData": page}
        for seq, page in enumerate(pages)
        if page
    ]


class OfflineQueue:
    """Events kept while offline. Bounded: when full, the oldest event goes first,
    so a long outage ends with the most recent picture of the station."""

    def __init__(self, limit: int = 1000) -> None:
        self._events: deque[dict[str, Any]] = deque(maxlen=limit)

    def add(self, events: Iterable[dict[str, Any]]) -> None:
        self._events.extend(events)

    def take(self) -> list[dict[str, Any]]:
        out = list(self._events)
        self._events.clear()
        return out

    def __len__(self) -> int:
        return len(self._events)


def _chunks(items: list[Any], size: int) -> list[list[Any]]:
    size = max(1, size)
    return [items[i : i + size] for i in range(0, len(items), size)] or [[]]


def _sort_key(m: Monitor) -> tuple[Any, ...]:
    k = m.key
    return (
        k.component, k.component_instance or "", k.evse_id or 0, k.connector_id or 0,
        k.variable, k.variable_instance or "",
    )
