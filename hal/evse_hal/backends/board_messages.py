"""The messages of the board-support port to an EV-communication module, and the
`BoardLink` that carries them. Transport-neutral: can_bridge.CanLink encodes them as CAN
frames (see config/can/evse-bridge.dbc); a UART link would be another encoding.

- to the module: PilotCommand (enable, PWM duty, state F, X1, allow power on) and our
  heartbeat counter;
- from the module: PilotStatus (pilot state A-F, proximity ampacity, power on as the
  mirror contact confirms it, error flags), EvStatus (what the EV says over ISO 15118),
  EvIdentity (EVCCID), Telemetry, Heartbeat;
- both ways: Iso15118Data, payloads of any length (a kind byte, then the data).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Protocol

from evse_hal.backends import iec61851
from evse_hal.interfaces import PilotState

# Module error flags (PilotStatus.errors)
ERROR_FLAGS = frozenset({
    "diode_fault", "pilot_short", "rcd_tripped", "proximity_invalid", "overtemperature",
    "relay_welded", "internal", "controller_timeout",
})


@dataclass(frozen=True)
class PilotCommand:
    """To the module. `x1` (steady voltage, no PWM) wins over `duty_percent`; `state_f`
    wins over both; `enable` False disables the port altogether."""

    enable: bool = True
    duty_percent: float = iec61851.NO_PWM_DUTY
    state_f: bool = False
    x1: bool = True
    allow_power_on: bool = False
    max_current_a: float = 0.0


@dataclass(frozen=True)
class PilotStatus:
    state: PilotState | None  # None: not measured (yet)
    duty_percent: float = iec61851.NO_PWM_DUTY
    proximity_a: float | None = None  # cable ampacity; None: no cable / not measured
    power_on: bool = False  # the contactor's mirror contact
    errors: frozenset[str] = frozenset()  # keys of ERROR_FAULTS


@dataclass(frozen=True)
class EvStatus:
    max_current_a: float | None = None
    soc_percent: float | None = None
    hlc_active: bool = False  # an ISO 15118 session runs
    error_code: str = "NO_ERROR"  # ISO 15118-2 DC_EVErrorCodeType
    energy_request_wh: float | None = None
    battery_wh: float | None = None


@dataclass(frozen=True)
class EvIdentity:
    evccid: str | None  # short form: the EV's MAC as upper-case hex


@dataclass(frozen=True)
class Heartbeat:
    counter: int
    protocol_version: int = 1


@dataclass(frozen=True)
class Telemetry:
    values: Mapping[str, float] = field(default_factory=dict)


class DataKind(IntEnum):
    """The first byte of a long payload (the rest is the data)."""

    EVCCID = 0x01  # full form, ASCII
    CHARGING_NEEDS = 0x02  # UTF-8 JSON object
    EXI = 0x04  # one ISO 15118 EXI message, passed through
    # Plug & Charge, UTF-8 JSON (see board_pnc)
    CERTIFICATE_HASH_DATA = 0x03  # from the module: the EV's contract (eMAID, hash data)
    EV_CERTIFICATE_REQUEST = 0x05  # from the module: install / update the contract
    CERTIFICATE_STATUS_REQUEST = 0x06  # from the module: OCSP status wanted
    EV_CERTIFICATE_RESPONSE = 0x07  # to the module
    CONTRACT_AUTHORIZATION = 0x08  # to the module
    CERTIFICATE_STATUS_RESPONSE = 0x09  # to the module


@dataclass(frozen=True)
class Iso15118Data:
    kind: DataKind
    data: bytes


ModuleMessage = PilotStatus | EvStatus | EvIdentity | Heartbeat | Telemetry | Iso15118Data


class BoardLink(Protocol):
    """One transport to one module. `receive` is called on the event loop's thread."""

    port: str  # where the module is attached, as the config names it: "socketcan can0"
    address: str  # the module on that port: "base id 0x300"
    description: str  # both, for logs: "socketcan can0 (base id 0x300)"

    async def open(self, receive: Callable[[ModuleMessage], None]) -> None:
        """Raises DeviceError naming the port when it cannot be opened."""

    async def close(self) -> None: ...

    def send_command(self, command: PilotCommand) -> None:
        """Raises DeviceError when the transport refuses the frame."""

    def send_heartbeat(self, counter: int) -> None: ...

    async def send_data(self, data: Iso15118Data) -> None: ...
