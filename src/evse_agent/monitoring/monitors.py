"""Variable monitors (OCPP 2.0.1 N04, N07, N08): the data, its durable form, and the
pure rules that decide whether a monitor may be set and when it fires.

No I/O and no clock here: the engine passes values and times in. Requirement ids
refer to OCPP 2.0.1 Part 2 (edition 3 with the 2025 errata), "Part 1 §4.4" to the
monitor-type / dataType table of the architecture part.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ..device_model.model import Value, Variable, VariableKey

UPPER = "UpperThreshold"
LOWER = "LowerThreshold"
DELTA = "Delta"
PERIODIC = "Periodic"
CLOCK_ALIGNED = "PeriodicClockAligned"
MONITOR_TYPES = (UPPER, LOWER, DELTA, PERIODIC, CLOCK_ALIGNED)
THRESHOLDS = (UPPER, LOWER)
PERIODICS = (PERIODIC, CLOCK_ALIGNED)

# Where a monitor comes from; the names are the eventNotificationType values.
HARD_WIRED = "HardWiredMonitor"
PRECONFIGURED = "PreconfiguredMonitor"
CUSTOM = "CustomMonitor"

NUMERIC = ("integer", "decimal")
_ALL_TYPES = (
    "string", "decimal", "integer", "dateTime", "boolean", "OptionList", "SequenceList",
    "MemberList",
)
# Part 1 §4.4: which monitor types each dataType allows. Thresholds need an order,
# periodic reporting of a dateTime is not in the table.
_ALLOWED: dict[str, tuple[str, ...]] = {
    UPPER: NUMERIC,
    LOWER: NUMERIC,
    DELTA: _ALL_TYPES,
    PERIODIC: tuple(t for t in _ALL_TYPES if t != "dateTime"),
    CLOCK_ALIGNED: tuple(t for t in _ALL_TYPES if t != "dateTime"),
}


@dataclass
class Monitor:
    id: int
    key: VariableKey
    type: str
    value: float  # int or float as the CSMS sent it; thresholds, delta, or seconds
    severity: int
    transaction: bool = False
    origin: str = CUSTOM
    # -- run-time state ------------------------------------------------------------
    # A threshold that is exceeded now. Durable, so that a value that returned within
    # the threshold during a reboot is still reported as cleared (N07.FR.14).
    tripped: bool = False
    # The Delta reference. Not durable: Part 1 §4.4 takes a new momentary value at
    # boot. `has_reference` tells "no reference yet" from "the value was None".
    reference: Value | None = None
    has_reference: bool = False
    # The next Periodic event. Not durable: the period restarts at boot (N08.FR.06).
    next_due: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        """The durable form handed to the agent's `persist` callback."""
        return {
            "kind": "monitor",
            "id": self.id,
            "origin": self.origin,
            "component": self.key.component_ocpp(),
            "variable": self.key.variable_ocpp(),
            "type": self.type,
            "value": self.value,
            "severity": self.severity,
            "transaction": self.transaction,
            "tripped": self.tripped,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Monitor:
        return cls(
            id=int(d["id"]),
            key=VariableKey.from_ocpp(d["component"], d["variable"]),
            type=str(d["type"]),
            value=d["value"],
            severity=int(d["severity"]),
            transaction=bool(d.get("transaction", False)),
            origin=str(d.get("origin", CUSTOM)),
            tripped=bool(d.get("tripped", False)),
        )

    def variable_monitoring(self) -> dict[str, Any]:
        """VariableMonitoringType, as NotifyMonitoringReport lists it."""
        return {
            "id": self.id,
            "transaction": self.transaction,
            "value": self.value,
            "type": self.type,
            "severity": self.severity,
        }


# -- OCPP component / variable <-> VariableKey ---------------------------------------
# -- may this monitor be set? (N04) ------------------------------------------------------
def check(monitor_type: str, value: float, severity: int, var: Variable) -> tuple[str, str] | None:
    """(status, reasonCode) when a SetMonitoringData must not be accepted; None when it
    may. Unknown component / variable, ids and duplicates are the engine's to check."""
    if not 0 <= severity <= 9:
        return "Rejected", "ValueOutOfRange"
    if not var.supports_monitoring:
        return "Rejected", "UnsupportedParam"
    if monitor_type not in _ALLOWED or var.data_type not in _ALLOWED[monitor_type]:
        return "UnsupportedMonitorType", "UnsupportedParam"  # N04.FR.05
    if not math.isfinite(value):
        return "Rejected", "InvalidValue"
    if monitor_type in THRESHOLDS:
        # N04.FR.06 (errata 2.61): the threshold must lie within minLimit..maxLimit.
        if var.min_limit is not None and value < var.min_limit:
            return "Rejected", "ValueOutOfRange"
        if var.max_limit is not None and value > var.max_limit:
            return "Rejected", "ValueOutOfRange"
    elif monitor_type == DELTA:
        if value < 0:
            return "Rejected", "ValueOutOfRange"  # N04.FR.14
    elif value <= 0:
        return "Rejected", "ValuePositiveOnly"  # a period of zero seconds never ends
    return None


def refusal(
    item: dict[str, Any],
    key: VariableKey,
    var: Variable | None,
    unknown: str,
    old: Monitor | None,
    existing: Iterable[Monitor],
) -> tuple[str, str] | None:
    """(status, reasonCode) for a SetMonitoringData element that cannot be set, None
    when it can. `unknown` is the status for a `var` of None (UnknownComponent or
    UnknownVariable); `old` is the monitor with the element's id, if any."""
    if "id" in item and old is None:
        return "Rejected", "NotFound"  # N04.FR.13
    if old is not None and old.origin == HARD_WIRED:
        return "Rejected", "ReadOnly"  # N04.FR.18
    if old is not None and old.key != key:
        return "Rejected", "InvalidValue"  # N04.FR.16: a monitor keeps its variable
    if var is None:  # N04.FR.03 / 04
        return unknown, "NotFound"
    refused = check(item["type"], item["value"], item["severity"], var)
    if refused is not None:
        return refused
    for m in existing:  # N04.FR.10: one monitor per variable, type and severity
        if m.key == key and m.type == item["type"] and m.severity == item["severity"]:
            if m.id != item.get("id"):
                return "Duplicate", "InvalidValue"
    return None


# -- when does it fire? (N07, N08) ---------------------------------------------------------
def as_number(value: Value | None) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(value)
    except ValueError:
        return None


def threshold_exceeded(m: Monitor, value: Value | None) -> bool | None:
    """N07.FR.16 / 17: exceeding or dropping below the threshold, not reaching it.
    None when the value is not a number (the state then stays as it was)."""
    x = as_number(value)
    if x is None:
        return None
    return x > m.value if m.type == UPPER else x < m.value


def delta_reached(m: Monitor, value: Value | None, data_type: str) -> bool:
    """N07.FR.18 / 19 against `m.reference`. Numeric: the absolute difference reaches
    the monitor's value (errata 1.1: "absolute difference to be reached"). dateTime:
    the same in seconds (Part 1 §4.4). Anything else: every change."""
    if value == m.reference:
        return False
    if data_type in NUMERIC:
        a, b = as_number(value), as_number(m.reference)
        if a is None or b is None:
            return False
        return abs(a - b) >= m.value
    if data_type == "dateTime":
        a_t, b_t = _as_time(value), _as_time(m.reference)
        if a_t is None or b_t is None:
            return True
        return abs((a_t - b_t).total_seconds()) >= m.value
    return True


def _as_time(value: Value | None) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def first_due(m: Monitor, now: datetime) -> datetime:
    """The first Periodic event after a monitor is set (or after boot)."""
    if m.type == PERIODIC:
        return now + timedelta(seconds=m.value)  # N08.FR.06
    # N08.FR.07: the clock-aligned grid, counted from midnight as AlignedDataCtrlr does.
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    elapsed = (now - midnight).total_seconds()
    return midnight + timedelta(seconds=(elapsed // m.value + 1) * m.value)


def following_due(m: Monitor, due: datetime, now: datetime) -> datetime:
    """The event after the one due at `due`, strictly after `now`; periods missed while
    the station slept are skipped rather than sent in a burst."""
    if m.type == CLOCK_ALIGNED:
        return first_due(m, now)
    step = timedelta(seconds=m.value)
    missed = math.floor((now - due) / step) + 1 if now >= due else 1
    return due + missed * step
