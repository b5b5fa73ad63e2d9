"""The device model as data (config/device_model/): complete against the reference
CSV of standardized variables, honest about what is not implemented, and found at
run time as package data."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from evse_agent.device_model import loader
from evse_agent.device_model.model import DeviceModel, VariableKey, format_value, parse_value
from evse_agent.device_model.physical import add_physical_components

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = Path(__file__).resolve().parents[1] / "data/ocpp201-device-model.csv"
CONTROLLERS = (
    "AlignedDataCtrlr", "AuthCacheCtrlr", "AuthCtrlr", "ClockCtrlr", "CustomizationCtrlr",
    "DeviceDataCtrlr", "DisplayMessageCtrlr", "ISO15118Ctrlr", "LocalAuthListCtrlr",
    "MonitoringCtrlr", "OCPPCommCtrlr", "ReservationCtrlr", "SampledDataCtrlr",
    "SecurityCtrlr", "SmartChargingCtrlr", "TariffCostCtrlr", "TxCtrlr",
)
# Left out on purpose; each file's header comment says why.
OMITTED = {
    ("ClockCtrlr", "NtpSource", ""), ("ClockCtrlr", "NtpServerUri", "<n>"),
    ("ClockCtrlr", "TimeAdjustmentReportingThreshold", ""),
    ("CustomizationCtrlr", "CustomImplementationEnabled", "<vendorId>"),
    ("ISO15118Ctrlr", "RequestedEnergyTransferMode", ""),
    ("MonitoringCtrlr", "MonitoringBase", ""), ("MonitoringCtrlr", "MonitoringLevel", ""),
    ("OCPPCommCtrlr", "FieldLength", "<message>.<field>"),
    ("TxCtrlr", "ChargingTime", ""),
}
NOT_IMPLEMENTED = ("AuthCacheCtrlr", "DisplayMessageCtrlr", "LocalAuthListCtrlr",
                   "ReservationCtrlr", "SmartChargingCtrlr")


def reference_rows() -> list[dict[str, str]]:
    with REFERENCE.open(newline="") as f:
        return list(csv.DictReader(f))


def full_model() -> DeviceModel:
    dm = DeviceModel()
    dm.load_standard()
    add_physical_components(dm, evse_count=2, connectors_per_evse={1: 1, 2: 2},
                            identity={"vendor": "V", "model": "M", "serial_number": "S",
                                      "firmware_version": "1.0"})
    return dm


def test_every_listed_controller_has_a_file() -> None:
    names = {spec.name for spec in loader.read_components("controllers")}
    assert names == set(CONTROLLERS)


def test_every_reference_variable_of_the_controllers_is_defined_as_the_csv_says() -> None:
    """Types, units and fixed mutabilities follow the reference; list types carry a
    valuesList (TC_B_12/13 check it)."""
    dm = full_model()
    for row in reference_rows():
        if row["component"] not in CONTROLLERS:
            continue
        ident = (row["component"], row["variable"], row["instance"])
        var = dm.find(VariableKey(row["component"], row["variable"],
                                  variable_instance=row["instance"] or None))
        if ident in OMITTED:
            assert var is None, ident
            continue
        assert var is not None, f"missing {ident}"
        assert var.data_type == row["data_type"], ident
        assert (var.unit or "") == row["unit"], ident
        if row["mutability"] in ("ReadOnly", "WriteOnly"):
            assert var.mutability == row["mutability"], ident
        assert var.required == (row["required"] == "yes"), ident


def test_unimplemented_features_say_so() -> None:
    """Available = false and Enabled = false, ReadOnly: no pretending."""
    dm = full_model()
    for component in NOT_IMPLEMENTED:
        assert dm.get(component, "Available") is False
        enabled = dm.find(VariableKey(component, "Enabled"))
        assert enabled is not None and enabled.value is False
        assert enabled.mutability == "ReadOnly"
        assert dm.set_from_csms(VariableKey(component, "Enabled"), "true") == "Rejected"
    for instance in ("Tariff", "Cost"):
        assert dm.get("TariffCostCtrlr", "Available", instance) is False
    assert dm.get("ISO15118Ctrlr", "PnCEnabled") is False


def test_every_value_fits_its_own_definition() -> None:
    """Factory values parse back under their own type and characteristics; list
    types have a valuesList and OptionLists a value from it."""
    dm = full_model()
    for var in dm.variables():
        if var.data_type in ("OptionList", "SequenceList", "MemberList"):
            assert var.values_list, var.key.label()
        for attribute in var.attribute_types():
            value = var.value_of(attribute)
            if value is None or (value == "" and var.data_type == "string"):
                continue
            assert parse_value(var, format_value(value)) == value, var.key.label()


def test_physical_components_follow_the_station() -> None:
    dm = full_model()
    assert dm.has_component("EVSE", None, 2, None)
    assert not dm.has_component("EVSE", None, 3, None)
    assert dm.has_component("Connector", None, 2, 2)
    assert not dm.has_component("Connector", None, 1, 2)
    assert dm.value(VariableKey("ChargingStation", "VendorName")) == "V"
    assert dm.value(VariableKey("Controller", "FirmwareVersion")) == "1.0"
    assert dm.find(VariableKey("EVSE", "Power", evse_id=1)).max_limit == 22080.0
    assert dm.value(VariableKey("Connector", "ConnectorType", evse_id=2, connector_id=2)) == (
        "cType2")
    for component in ("TokenReader", "PowerContactor", "FiscalMetering", "ConnectedEV",
                      "CPPWMController", "Controller", "Display"):
        assert any(k[0] == component for k in dm.components()), component


def test_only_the_devices_the_station_has() -> None:
    dm = DeviceModel()
    add_physical_components(dm, 1, devices=["meter"], supply_phases=1, max_power_w=7400)
    names = {k[0] for k in dm.components()}
    assert names == {"ChargingStation", "EVSE", "Connector", "FiscalMetering"}
    assert dm.value(VariableKey("EVSE", "SupplyPhases", evse_id=1)) == 1
    with pytest.raises(ValueError, match="unknown devices"):
        add_physical_components(DeviceModel(), 1, devices=["flux capacitor"])


def test_data_errors_name_the_file_and_key() -> None:
    with pytest.raises(ValueError, match=r"x.toml: variables.A: unknown keys \['colour'\]"):
        loader.parse_component("x.toml", 'name = "C"\n[variables.A]\ntype = "integer"\n'
                               'colour = "blue"\n')
    with pytest.raises(ValueError, match="needs `values`"):
        loader.parse_component("x.toml", 'name = "C"\n[variables.A]\ntype = "MemberList"\n')
    spec = loader.parse_component("x.toml", 'name = "C"\n[variables.A]\ntype = "integer"\n'
                                  'min = 5\nvalue = 1\n')
    with pytest.raises(ValueError, match="x.toml: variables.A: value: below minLimit"):
        list(loader.component_variables(spec))


def test_data_is_package_data_next_to_the_code() -> None:
    """Found through importlib.resources, as in a wheel (the `data` link points at
    config/device_model/, which pyproject ships as package data)."""
    folder = loader.data_dir()
    assert folder.joinpath("ocpp16_keys.toml").is_file()
    assert folder.joinpath("controllers", "TxCtrlr.toml").is_file()
    assert folder.joinpath("physical", "EVSE.toml").is_file()
