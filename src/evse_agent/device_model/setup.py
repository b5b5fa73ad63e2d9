"""The station's device model at start-up: the standard controllers, the physical
components of this station, the factory values of its TOML file, then the values the
CSMS set (stored in SQLite), which win."""

from __future__ import annotations

import json
from collections.abc import Callable

from ..config import Config, ConfigError
from ..storage import Storage
from .model import ACTUAL, DeviceModel, VariableKey
from .physical import add_physical_components

STATION_DEVICES = {"rfid", "display", "controller", "contactor", "meter", "pilot", "lock", "ev"}


def key_text(key: VariableKey, attribute: str = ACTUAL) -> str:
    fields: list[object] = [key.component, key.component_instance, key.evse_id,
                            key.connector_id, key.variable, key.variable_instance]
    if attribute != ACTUAL:
        fields.append(attribute)
    return json.dumps(fields)


def text_key(text: str) -> tuple[VariableKey, str]:
    comp, comp_inst, evse, conn, var, var_inst, *attribute = json.loads(text)
    return VariableKey(comp, var, comp_inst, var_inst, evse, conn), (attribute or [ACTUAL])[0]


def build_device_model(
    cfg: Config, storage: Storage, firmware_version: str, now_text: Callable[[], str]
) -> DeviceModel:
    dm = DeviceModel()
    dm.load_standard()
    add_physical_components(
        dm,
        cfg.evse_count,
        devices=STATION_DEVICES,
        identity={
            "vendor": cfg.vendor,
            "model": cfg.model,
            "serial_number": cfg.serial_number,
            "firmware_version": firmware_version,
        },
        max_power_w=cfg.max_current_a * 230 * 3,
    )
    dm.set_getter(VariableKey("ClockCtrlr", "DateTime"), now_text)

    def factory(where: str, key: VariableKey, value: object) -> None:
        if dm.find(key) is None:
            raise ConfigError(f"{cfg.path}: {where}: unknown variable")
        try:
            dm.set_factory(key, value)  # type: ignore[arg-type]
        except ValueError as err:
            raise ConfigError(f"{cfg.path}: {where}: {err}") from None

    factory("ocpp.security_profile", VariableKey("SecurityCtrlr", "SecurityProfile"),
            cfg.security_profile)
    factory("station.id", VariableKey("SecurityCtrlr", "Identity"), cfg.station_id)
    if cfg.basic_auth_password:
        factory("ocpp.basic_auth_password", VariableKey("SecurityCtrlr", "BasicAuthPassword"),
                cfg.basic_auth_password)
    for component, variables in cfg.device_model.items():
        if not isinstance(variables, dict):
            raise ConfigError(f"{cfg.path}: device_model.{component}: must be a table")
        for name, value in variables.items():
            var_name, _, instance = name.partition("[")
            key = VariableKey(component, var_name, variable_instance=instance.rstrip("]") or None)
            factory(f"device_model.{component}.{name}", key, value)
    for text, value in storage.variables().items():
        key, attribute = text_key(text)
        dm.load_persisted(key, value, attribute)  # the CSMS's values win (B05)
    dm.set_persist(
        lambda key, value, attribute=ACTUAL: storage.put_variable(key_text(key, attribute), value)
    )
    return dm
