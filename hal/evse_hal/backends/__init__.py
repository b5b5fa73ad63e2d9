"""Real device backends, one module per device family. Each module is imported only
when a config section names its driver, so a station without CAN never imports
python-can.

Every backend module exposes

    def create(options: Mapping[str, Any], evse_id: int, clock: Clock) -> Device

which checks its options (raising OptionError naming the option) and returns a device
that is opened by `start()`. A device also offers `async probe() -> str`: open, read
once, close, and return what it saw ("PN532 firmware 1.6"), or raise DeviceError with
the exact problem; `evse-agent hal check` prints that line.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

T = TypeVar("T")


class OptionError(ValueError):
    """A device option is missing, unknown or of the wrong type. `key` is the option's
    name inside the device's config section."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem


def option(options: Mapping[str, Any], key: str, kind: type[T], default: T | None = None) -> T:
    """`options[key]` checked against `kind`; `default` when absent (None: required).
    An int is accepted where a float is expected, as TOML writers expect."""
    if key not in options:
        if default is None:
            raise OptionError(key, "missing")
        return default
    value = options[key]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)  # type: ignore[return-value]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise OptionError(key, f"expected {kind.__name__}, got {type(value).__name__}")
    return value


def reject_unknown(options: Mapping[str, Any], known: set[str]) -> None:
    """Typos in option names are errors, as everywhere else in the config."""
    for key in options:
        if key not in known:
            raise OptionError(key, "unknown option")
