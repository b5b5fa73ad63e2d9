"""Live values of the physical components (device_model/live.py): HAL events and
connector statuses land on the right variables, roll up, and reach subscribers."""

from __future__ import annotations

from evse_hal.interfaces import ContactorChanged, DeviceFault, MeterReading, PilotChanged

from evse_agent.device_model.live import LiveFeed
from evse_agent.device_model.model import DeviceModel, VariableKey
from evse_agent.device_model.physical import add_physical_components, connector_key, evse_key


def station(evse_count: int = 2, connectors: int | dict[int, int] = 1) -> LiveFeed:
    dm = DeviceModel()
    dm.load_standard()
    add_physical_components(dm, evse_count, connectors)
    return LiveFeed(dm)


def test_availability_rolls_up_from_connectors_to_station() -> None:
    feed = station(2, {1: 2, 2: 1})
    dm = feed.dm
    feed.connector_status(1, 2, "Occupied")
    assert dm.value(connector_key("AvailabilityState", 1, 2)) == "Occupied"
    assert dm.value(evse_key("AvailabilityState", 1)) == "Occupied"
    assert dm.get("ChargingStation", "AvailabilityState") == "Available"  # EVSE 2 is free
    feed.connector_status(2, 1, "Unavailable")
    assert dm.value(evse_key("Enabled", 2)) is False
    assert dm.get("ChargingStation", "AvailabilityState") == "Occupied"
    feed.connector_status(1, 2, "Unavailable")
    feed.connector_status(1, 1, "Unavailable")
    assert dm.get("ChargingStation", "AvailabilityState") == "Unavailable"
    assert dm.get("ChargingStation", "Enabled") is False


def test_device_faults_set_problem_and_tripped_and_clear() -> None:
    feed = station()
    dm = feed.dm
    heard: list[tuple[str, object]] = []
    dm.subscribe(lambda k, v: heard.append((k.label(), v)))
    feed.hal_event(DeviceFault("contactor", 1, "welded"))
    feed.hal_event(DeviceFault("contactor", 1, "stuck_open"))
    assert dm.value(evse_key("Problem", 1, "PowerContactor")) is True
    assert dm.value(evse_key("Tripped", 1, "PowerContactor")) is True
    assert dm.value(evse_key("Problem", 1)) is True and dm.value(evse_key("Problem", 2)) is False
    assert dm.get("ChargingStation", "Tripped") is True
    feed.hal_event(DeviceFault("contactor", 1, "welded", active=False))
    assert dm.value(evse_key("Problem", 1, "PowerContactor")) is True  # stuck_open remains
    assert dm.value(evse_key("Tripped", 1, "PowerContactor")) is False
    feed.hal_event(DeviceFault("contactor", 1, "stuck_open", active=False))
    assert dm.get("ChargingStation", "Problem") is False
    assert ("PowerContactor@1.Problem", True) in heard
    assert ("ChargingStation.Problem", False) in heard


def test_station_devices_and_connector_locks() -> None:
    feed = station()
    dm = feed.dm
    feed.hal_event(DeviceFault("rfid", 0, "gone"))
    assert dm.get("TokenReader", "Problem") is True
    assert dm.get("ChargingStation", "Problem") is True
    feed.hal_event(DeviceFault("lock", 2, "jammed"))
    assert dm.value(connector_key("Problem", 2, 1, "ConnectorPlugRetentionLock")) is True
    assert dm.value(connector_key("Problem", 2, 1)) is True
    feed.hal_event(DeviceFault("meter", 1, "offline"))
    assert dm.value(evse_key("Problem", 1, "FiscalMetering")) is True


def test_pilot_contactor_meter_and_ev() -> None:
    feed = station()
    dm = feed.dm
    feed.hal_event(PilotChanged(1, "C"))
    feed.hal_event(ContactorChanged(1, True))
    feed.meter_reading(1, MeterReading(energy_wh=1234.5, power_w=7000))
    feed.ev_info(1, {"plugged": True, "soc_percent": 40, "max_current_a": 32,
                     "battery_wh": 60000, "energy_request_wh": 20000})
    assert dm.value(evse_key("State", 1, "CPPWMController")) == "C"
    assert dm.value(evse_key("Active", 1, "PowerContactor")) is True
    assert dm.value(evse_key("Power", 1)) == 7000.0
    assert dm.value(evse_key("EnergyImportRegister", 1, "FiscalMetering")) == 1234.5
    assert dm.value(evse_key("StateOfCharge", 1, "ConnectedEV")) == 40.0
    assert dm.value(evse_key("ACCurrent", 1, "ConnectedEV"), "MaxSet") == 32.0
    assert dm.value(evse_key("EnergyImport", 1, "ConnectedEV"), "Target") == 20000.0
    feed.hal_event(PilotChanged(1, "A"))  # unplugged: the EV's data goes with it
    assert dm.value(evse_key("Available", 1, "ConnectedEV")) is False
    assert dm.value(evse_key("StateOfCharge", 1, "ConnectedEV")) is None


def test_missing_devices_are_skipped() -> None:
    dm = DeviceModel()
    add_physical_components(dm, 1, devices=[])
    feed = LiveFeed(dm)
    feed.hal_event(DeviceFault("meter", 1, "offline"))  # no FiscalMetering component
    feed.hal_event(PilotChanged(1, "B"))
    feed.display_text("hello")
    assert dm.value(evse_key("Problem", 1)) is True  # the EVSE still shows it
    assert dm.find(VariableKey("Display", "DataText", variable_instance="Visible")) is None
