"""The physical components, generated from the station's configuration.

The templates are data (config/device_model/physical/*.toml, one per component, with
a `scope`: once per station, per EVSE or per connector, and the HAL `device` behind
it). This module places them: ChargingStation once, EVSE per EVSE, Connector per
connector, and the devices the station has. Their live variables (AvailabilityState,
Problem, Active, ...) are then fed by live.LiveFeed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .loader import SCOPES, component_variables, read_components
from .model import DeviceModel, VariableKey

# Which template stands for which HAL device (the `device` of each physical file).
DEVICE_COMPONENTS = {
    "rfid": "TokenReader",
    "display": "Display",
    "controller": "Controller",
    "contactor": "PowerContactor",
    "meter": "FiscalMetering",
    "pilot": "CPPWMController",
    "lock": "ConnectorPlugRetentionLock",
    "ev": "ConnectedEV",
}
ALL_DEVICES = frozenset(DEVICE_COMPONENTS)
ALWAYS = ("ChargingStation", "EVSE", "Connector")


def add_physical_components(
    dm: DeviceModel,
    evse_count: int,
    connectors_per_evse: int | Mapping[int, int] = 1,
    devices: Iterable[str] = ALL_DEVICES,
    *,
    identity: Mapping[str, str] | None = None,
    supply_phases: int = 3,
    max_power_w: float | Mapping[int, float] = 22080.0,
    connector_type: str = "cType2",
) -> None:
    """Define ChargingStation, EVSE 1..evse_count, their connectors and the device
    components named in `devices` (HAL device names: "rfid", "display", "controller",
    "contactor", "meter", "pilot", "lock", "ev").

    `identity` fills the identity strings: "vendor", "model", "serial_number",
    "firmware_version" (as sent in BootNotification). `max_power_w` is the EVSE
    Power maxLimit (the spec requires it), per EVSE when a mapping.
    """
    unknown = set(devices) - ALL_DEVICES
    if unknown:
        raise ValueError(f"unknown devices {sorted(unknown)}; known: {sorted(ALL_DEVICES)}")
    wanted = set(ALWAYS) | {DEVICE_COMPONENTS[d] for d in devices}
    specs = sorted((s for s in read_components("physical") if s.name in wanted),
                   key=lambda s: (s.name not in ALWAYS, s.name))
    scoped = {scope: [s for s in specs if s.scope == scope] for scope in SCOPES}

    def place(scope: str, evse_id: int | None, connector_id: int | None) -> None:
        for spec in scoped[scope]:
            for var in component_variables(spec, evse_id, connector_id):
                dm.define(var)

    # Top-down, like the station itself: reports then read the same way.
    place("station", None, None)
    for evse_id in range(1, evse_count + 1):
        place("evse", evse_id, None)
        for connector_id in range(1, connector_count(connectors_per_evse, evse_id) + 1):
            place("connector", evse_id, connector_id)
    _configure(dm, evse_count, connectors_per_evse, identity or {}, supply_phases,
               max_power_w, connector_type)


def connector_count(connectors: int | Mapping[int, int], evse_id: int) -> int:
    return connectors if isinstance(connectors, int) else connectors.get(evse_id, 1)


def _configure(
    dm: DeviceModel,
    evse_count: int,
    connectors: int | Mapping[int, int],
    identity: Mapping[str, str],
    phases: int,
    max_power_w: float | Mapping[int, float],
    connector_type: str,
) -> None:
    station = "ChargingStation"
    for variable, field in (("VendorName", "vendor"), ("Model", "model"),
                            ("SerialNumber", "serial_number")):
        if field in identity:
            _factory(dm, VariableKey(station, variable), identity[field])
    _factory(dm, VariableKey(station, "SupplyPhases"), phases)
    if dm.has_component("Controller", None, None, None):
        for variable, field in (("Manufacturer", "vendor"), ("Model", "model"),
                                ("FirmwareVersion", "firmware_version")):
            if field in identity:
                _factory(dm, VariableKey("Controller", variable), identity[field])
    for evse_id in range(1, evse_count + 1):
        _factory(dm, VariableKey("EVSE", "SupplyPhases", evse_id=evse_id), phases)
        power = dm.find(VariableKey("EVSE", "Power", evse_id=evse_id))
        assert power is not None
        power.max_limit = float(
            max_power_w if isinstance(max_power_w, int | float) else max_power_w[evse_id]
        )
        for connector_id in range(1, connector_count(connectors, evse_id) + 1):
            at = {"evse_id": evse_id, "connector_id": connector_id}
            _factory(dm, VariableKey("Connector", "SupplyPhases", **at), phases)
            _factory(dm, VariableKey("Connector", "ConnectorType", **at), connector_type)


def _factory(dm: DeviceModel, key: VariableKey, value: str | int) -> None:
    var = dm.find(key)
    if var is not None and isinstance(value, str) and var.max_limit is not None:
        value = value[: int(var.max_limit)]  # as BootNotification truncates them
    dm.set_factory(key, value)


def evse_key(variable: str, evse_id: int, component: str = "EVSE") -> VariableKey:
    return VariableKey(component, variable, evse_id=evse_id)


def connector_key(
    variable: str, evse_id: int, connector_id: int, component: str = "Connector"
) -> VariableKey:
    return VariableKey(component, variable, evse_id=evse_id, connector_id=connector_id)


__all__ = ["ALL_DEVICES", "DEVICE_COMPONENTS", "add_physical_components", "connector_key",
           "evse_key"]
