"""The OCPP 1.6 view (device_model/ocpp16_view.py): every 1.6 key of the reference is
mapped or knowingly unsupported; GetConfiguration / ChangeConfiguration read and
write the same store as SetVariables, and answer valid 1.6 payloads."""

from __future__ import annotations

import csv
from pathlib import Path

from ocpp.messages import get_validator

from evse_agent.device_model.model import DeviceModel, VariableKey
from evse_agent.device_model.ocpp16_view import (
    change_configuration,
    get_configuration,
    mappings,
    unsupported,
)
from evse_agent.device_model.physical import add_physical_components

REFERENCE = Path(__file__).resolve().parents[1] / "data/ocpp16-configuration-keys.csv"
GET_RESPONSE = get_validator(3, "GetConfiguration", "1.6")
CHANGE_RESPONSE = get_validator(3, "ChangeConfiguration", "1.6")


def station() -> tuple[DeviceModel, list[tuple[object, ...]]]:
    stored: list[tuple[object, ...]] = []
    dm = DeviceModel(persist=lambda *args: stored.append(args))
    dm.load_standard()
    add_physical_components(dm, 2)
    return dm, stored


def get(dm: DeviceModel, keys: list[str] | None = None) -> dict[str, dict[str, object]]:
    found, unknown = get_configuration(dm, keys)
    payload = {"configurationKey": found, "unknownKey": unknown}
    GET_RESPONSE.validate(payload)
    return {entry["key"]: entry for entry in found} | {k: {} for k in unknown}


def change(dm: DeviceModel, key: str, value: str) -> str:
    status = change_configuration(dm, key, value)
    CHANGE_RESPONSE.validate({"status": status})
    return status


def test_every_reference_key_is_mapped_or_knowingly_unsupported() -> None:
    with REFERENCE.open(newline="") as f:
        keys = {row["key"] for row in csv.DictReader(f)}
    mapped = {m.key for m in mappings().values()}
    assert keys == mapped | set(unsupported())
    assert not mapped & set(unsupported())


def test_every_mapped_variable_exists() -> None:
    dm, _ = station()
    for mapping in mappings().values():
        key = mapping.variable_key
        assert key is None or dm.find(key) is not None, mapping.key


def test_get_configuration_reads_the_device_model() -> None:
    dm, _ = station()
    got = get(dm)
    assert got["HeartbeatInterval"] == {"key": "HeartbeatInterval", "readonly": False,
                                        "value": "300"}
    assert got["MeterValueSampleInterval"]["value"] == "60"
    assert got["ClockAlignedDataInterval"]["value"] == "900"
    assert got["TransactionMessageAttempts"]["value"] == "5"
    assert got["MessageTimeout"] == {"key": "MessageTimeout", "readonly": True, "value": "30"}
    assert got["NumberOfConnectors"]["value"] == "2"
    assert got["SupportedFeatureProfiles"]["value"] == "Core,FirmwareManagement,RemoteTrigger"
    assert got["MeterValuesSampledDataMaxLength"]["value"] == "7"
    assert got["AuthorizationKey"] == {"key": "AuthorizationKey", "readonly": False}  # no value
    assert got["LocalAuthListEnabled"]["readonly"] is True  # not implemented: not writable
    assert "BlinkRepeat" not in got


def test_get_configuration_by_keys() -> None:
    """Named keys, case-insensitive (CiString50Type); unknown ones in unknownKey."""
    dm, _ = station()
    found, unknown = get_configuration(dm, ["heartbeatinterval", "BlinkRepeat", "Nope"])
    assert [f["key"] for f in found] == ["HeartbeatInterval"]
    assert unknown == ["BlinkRepeat", "Nope"]


def test_change_configuration_writes_the_same_store() -> None:
    """A 1.6 change is a SetVariables of the mapped variable: parsed, limited, persisted
    and announced."""
    dm, stored = station()
    heard: list[object] = []
    dm.subscribe(lambda k, v: heard.append(v), VariableKey("OCPPCommCtrlr", "HeartbeatInterval"))
    assert change(dm, "HeartbeatInterval", "42") == "Accepted"
    assert dm.get("OCPPCommCtrlr", "HeartbeatInterval") == 42 and heard == [42]
    assert stored == [(VariableKey("OCPPCommCtrlr", "HeartbeatInterval"), "42")]
    assert change(dm, "MeterValuesSampledData", "Energy.Active.Import.Register,SoC") == "Accepted"
    assert dm.members("SampledDataCtrlr", "TxUpdatedMeasurands") == [
        "Energy.Active.Import.Register", "SoC"]
    assert change(dm, "ConnectionTimeOut", "45") == "Accepted"
    assert dm.get("TxCtrlr", "EVConnectionTimeOut") == 45
    assert change(dm, "AuthorizationKey", "0123456789abcdef0123") == "Accepted"
    assert dm.get("SecurityCtrlr", "BasicAuthPassword") == "0123456789abcdef0123"


def test_change_configuration_statuses() -> None:
    dm, _ = station()
    assert change(dm, "WebSocketPingInterval", "-1") == "Rejected"  # negative: rejected
    assert change(dm, "HeartbeatInterval", "soon") == "Rejected"
    assert change(dm, "NumberOfConnectors", "3") == "Rejected"  # read-only
    assert change(dm, "MessageTimeout", "10") == "Rejected"  # ReadOnly in 2.0.1 too
    assert change(dm, "LocalAuthListEnabled", "true") == "Rejected"  # not implemented
    assert change(dm, "BlinkRepeat", "3") == "NotSupported"
    assert change(dm, "NoSuchKey", "3") == "NotSupported"


def test_rate_unit_conversion() -> None:
    dm, _ = station()
    dm.set_factory(VariableKey("SmartChargingCtrlr", "RateUnit"), "A,W")
    assert get(dm, ["ChargingScheduleAllowedChargingRateUnit"])[
        "ChargingScheduleAllowedChargingRateUnit"]["value"] == "Current,Power"
