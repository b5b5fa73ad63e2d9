"""OCPP 1.6 configuration keys as a view onto the 2.0.1 device model.

The mapping is data (config/device_model/ocpp16_keys.toml). GetConfiguration reads
and ChangeConfiguration writes the very variables SetVariables does (same parsing,
limits, persistence and change notification), so a 1.6 station and a 2.0.1 station
share one store and one truth.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from typing import Any

from .loader import data_dir
from .model import DeviceModel, SetResult, Variable, VariableKey, format_value

MAX_VALUE = 500  # GetConfigurationResponse configurationKey.value maxLength
CONVERSIONS = ("same", "max_limit", "values_count", "rate_unit", "connectors", "profiles",
               "phase_rotation")
WRITABLE_CONVERSIONS = ("same", "rate_unit")
# The 1.6 feature profiles that exist exactly when a 2.0.1 controller says Available.
PROFILE_CONTROLLERS = {
    "LocalAuthListManagement": "LocalAuthListCtrlr",
    "Reservation": "ReservationCtrlr",
    "SmartCharging": "SmartChargingCtrlr",
}
RATE_UNITS = {"A": "Current", "W": "Power"}


@dataclass(frozen=True)
class KeyMapping:
    key: str
    component: str | None = None
    variable: str | None = None
    instance: str | None = None
    convert: str = "same"
    access: str = "RW"
    base: str = ""

    @property
    def variable_key(self) -> VariableKey | None:
        if self.component is None or self.variable is None:
            return None
        return VariableKey(self.component, self.variable, variable_instance=self.instance)


@cache
def mappings() -> dict[str, KeyMapping]:
    """The 1.6 keys in table order, by case-folded key (CiString50Type)."""
    raw = tomllib.loads(data_dir().joinpath("ocpp16_keys.toml").read_text(encoding="utf-8"))
    out: dict[str, KeyMapping] = {}
    for key, row in raw.items():
        if key == "unsupported":
            continue
        mapping = KeyMapping(key, **row)
        if mapping.convert not in CONVERSIONS or mapping.access not in ("R", "RW"):
            raise ValueError(f"ocpp16_keys.toml: {key}: bad convert or access")
        out[key.casefold()] = mapping
    return out


@cache
def unsupported() -> dict[str, str]:
    """1.6 keys with no 2.0.1 counterpart, and why."""
    raw = tomllib.loads(data_dir().joinpath("ocpp16_keys.toml").read_text(encoding="utf-8"))
    return dict(raw.get("unsupported", {}))


def get_configuration(
    dm: DeviceModel, keys: list[str] | None = None
) -> tuple[list[dict[str, Any]], list[str]]:
    """GetConfiguration.conf fields: (configurationKey, unknownKey). No keys: every
    key this station has."""
    found: list[dict[str, Any]] = []
    unknown: list[str] = []
    wanted = keys if keys else [m.key for m in mappings().values()]
    for key in wanted:
        mapping = mappings().get(key.casefold())
        if mapping is None or not _available(dm, mapping):
            unknown.append(key)
            continue
        entry: dict[str, Any] = {"key": mapping.key, "readonly": _readonly(dm, mapping)}
        var = _variable(dm, mapping)
        if var is None or var.mutability != "WriteOnly":  # AuthorizationKey: never shown
            entry["value"] = _read(dm, mapping, var)[:MAX_VALUE]
        found.append(entry)
    return found, unknown


def change_configuration(dm: DeviceModel, key: str, value: str) -> str:
    """ChangeConfiguration.conf status: Accepted, Rejected, RebootRequired or
    NotSupported (an unknown key, OCPP 1.6 §5.3)."""
    mapping = mappings().get(key.casefold())
    if mapping is None or not _available(dm, mapping):
        return "NotSupported"
    var = _variable(dm, mapping)
    if var is None or _readonly(dm, mapping):
        return "Rejected"
    if mapping.convert == "rate_unit":
        back = {v.casefold(): k for k, v in RATE_UNITS.items()}
        members = [back.get(m.strip().casefold(), m.strip()) for m in value.split(",")]
        value = ",".join(members)
    status = dm.set_attribute(var.key, value).status
    if status in (SetResult.ACCEPTED, SetResult.REBOOT_REQUIRED, SetResult.REJECTED):
        return status
    return "NotSupported"


def _variable(dm: DeviceModel, mapping: KeyMapping) -> Variable | None:
    key = mapping.variable_key
    return dm.find(key) if key is not None else None


def _available(dm: DeviceModel, mapping: KeyMapping) -> bool:
    return mapping.variable_key is None or _variable(dm, mapping) is not None


def _readonly(dm: DeviceModel, mapping: KeyMapping) -> bool:
    var = _variable(dm, mapping)
    return (
        mapping.access == "R"
        or mapping.convert not in WRITABLE_CONVERSIONS
        or var is None
        or var.mutability == "ReadOnly"
    )


def _read(dm: DeviceModel, mapping: KeyMapping, var: Variable | None) -> str:
    kind = mapping.convert
    if kind == "connectors":
        return str(sum(1 for (name, *_rest) in dm.components() if name == "Connector"))
    if kind == "profiles":
        profiles = [p for p in mapping.base.split(",") if p]
        for profile, controller in PROFILE_CONTROLLERS.items():
            available = dm.find(VariableKey(controller, "Available"))
            if available is not None and available.value_of() is True:
                profiles.append(profile)
        return ",".join(profiles)
    if kind == "phase_rotation":
        rotation = dm.find(VariableKey("ChargingStation", "PhaseRotation"))
        text = format_value(rotation.value_of()) if rotation is not None else ""
        return f"0.{text or 'Unknown'}"
    assert var is not None
    if kind == "max_limit":
        return format_value(var.max_limit) if var.max_limit is not None else "0"
    if kind == "values_count":
        return str(len([v for v in (var.values_list or "").split(",") if v]))
    text = format_value(var.value_of())
    if kind == "rate_unit":
        return ",".join(RATE_UNITS.get(m, m) for m in text.split(",") if m)
    return text
