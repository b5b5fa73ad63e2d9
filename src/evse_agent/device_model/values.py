"""OCPP 2.0.1 variable values: the text on the wire <-> typed Python values.

Strict on purpose: a value the CSMS sets must mean one thing, so Python's lenient
parsers (int("1_000"), float("nan"), fromisoformat("2024-01-01")) are not trusted
alone. Every rejection carries a reasonCode for attributeStatusInfo (B05.FR.07/08).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Protocol

Value = int | float | bool | str

# OCPP integers are 32-bit in every CSMS we know; bigger ones would also overflow the
# timers the values feed.
INT32 = (-(2**31), 2**31 - 1)
_INTEGER = re.compile(r"[+-]?[0-9]+")
_DECIMAL = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")
_DATETIME = re.compile(
    r"([0-9]{4}-[0-9]{2}-[0-9]{2})T([0-9]{2}:[0-9]{2}:[0-9]{2})(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})"
)
LIST_TYPES = ("OptionList", "SequenceList", "MemberList")


class InvalidValue(ValueError):
    """A value that does not fit its variable; `reason` is an OCPP reasonCode."""

    def __init__(self, reason: str, text: str) -> None:
        super().__init__(text)
        self.reason = reason


class Characteristics(Protocol):
    data_type: str
    min_limit: float | None
    max_limit: float | None
    values_list: str | None


def parse_value(var: Characteristics, text: str) -> Value:
    """Parse an OCPP string value into the variable's type; InvalidValue (a ValueError)
    when it does not fit the type or the characteristics."""
    t = var.data_type
    if t == "integer":
        return _in_range(var, _integer(text))
    if t == "decimal":
        return _in_range(var, _decimal(text))
    if t == "boolean":
        low = text.strip().lower()
        if low not in ("true", "false"):
            raise InvalidValue("InvalidValue", "not a boolean (true or false)")
        return low == "true"
    if t == "dateTime":
        return _datetime(text)
    if t in LIST_TYPES:
        return _length(var, _list(var, text))
    return _length(var, text)


def format_value(value: Value | None) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))  # "22080", not "22080.0": what a CSMS expects to see
    return str(value)


def _integer(text: str) -> int:
    if not _INTEGER.fullmatch(text.strip()):
        raise InvalidValue("InvalidValue", "not an integer")
    value = int(text.strip())
    if not INT32[0] <= value <= INT32[1]:
        raise InvalidValue("ValueOutOfRange", "outside the 32-bit integer range")
    return value


def _decimal(text: str) -> float:
    if not _DECIMAL.fullmatch(text.strip()):
        raise InvalidValue("InvalidValue", "not a decimal number")
    value = float(text.strip())
    if value in (float("inf"), float("-inf")):
        raise InvalidValue("ValueOutOfRange", "too large")
    return value


def _datetime(text: str) -> str:
    text = text.strip()
    match = _DATETIME.fullmatch(text.upper())
    if not match:
        raise InvalidValue("InvalidValue", "not an RFC 3339 date-time (e.g. 2025-01-31T12:00:00Z)")
    date, clock, fraction, zone = match.groups()
    try:  # the pattern checks the form; this checks month 13, hour 25 and the like
        datetime.fromisoformat(f"{date}T{clock}{(fraction or '')[:7]}{zone.replace('Z', '+00:00')}")
    except ValueError:
        raise InvalidValue("InvalidValue", "not a valid date-time") from None
    return text


def _list(var: Characteristics, text: str) -> str:
    allowed = [m for m in (var.values_list or "").split(",") if m]
    members = [m.strip() for m in text.split(",")] if text.strip() else []
    if any(not m for m in members):
        raise InvalidValue("InvalidValue", "empty list member")
    if len(set(members)) != len(members):
        raise InvalidValue("InvalidValue", "list member repeated")
    if var.data_type == "OptionList" and len(members) != 1:
        raise InvalidValue("InvalidValue", "exactly one option expected")
    if allowed and any(m not in allowed for m in members):
        raise InvalidValue("InvalidValue", f"not in valuesList ({','.join(allowed)})")
    return ",".join(members)


def _in_range(var: Characteristics, value: int | float) -> int | float:
    if var.min_limit is not None and value < var.min_limit:
        raise InvalidValue("ValueTooLow", f"below minLimit {format_value(var.min_limit)}")
    if var.max_limit is not None and value > var.max_limit:
        raise InvalidValue("ValueTooHigh", f"above maxLimit {format_value(var.max_limit)}")
    return value


def _length(var: Characteristics, text: str) -> str:
    # For strings and lists the limits are lengths of the (CSV) string (Part 2,
    # VariableCharacteristicsType.maxLimit).
    if var.min_limit is not None and len(text) < var.min_limit:
        raise InvalidValue("ValueTooLow", f"shorter than {format_value(var.min_limit)} characters")
    if var.max_limit is not None and len(text) > var.max_limit:
        raise InvalidValue("ValueTooHigh", f"longer than {format_value(var.max_limit)} characters")
    return text
