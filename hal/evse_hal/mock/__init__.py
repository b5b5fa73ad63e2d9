"""Mock hardware: a simulated EV and simulated devices behind the HAL interfaces, for
the demo, the bench and every test."""

from evse_hal.mock.devices import (
    EVSE_FAULTS,
    STATION_FAULTS,
    MockConnectorLock,
    MockContactor,
    MockControlPilot,
    MockDevice,
    MockDisplay,
    MockEvBridge,
    MockIdTokenReader,
    MockPowerMeter,
)
from evse_hal.mock.errors import SimConflict, UnknownEvse, UnknownFault
from evse_hal.mock.ev import SimulatedEV
from evse_hal.mock.evse import MockEvse
from evse_hal.mock.hardware import MockHardware

__all__ = [
    "EVSE_FAULTS",
    "STATION_FAULTS",
    "MockConnectorLock",
    "MockContactor",
    "MockControlPilot",
    "MockDevice",
    "MockDisplay",
    "MockEvBridge",
    "MockEvse",
    "MockHardware",
    "MockIdTokenReader",
    "MockPowerMeter",
    "SimConflict",
    "SimulatedEV",
    "UnknownEvse",
    "UnknownFault",
]
