"""The hardware abstraction layer's contract: one small Protocol per device, and the
events devices report.

Devices push what they observe (a card, a pilot change, a contactor feedback edge, a
fault) through one callback, `emit`, given to them when they start; they are
commanded through plain method calls. Readings that are polled (the meter) are
returned from `read()`. Backends never import the agent's core.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

PilotState = Literal["A", "B", "C", "D", "E", "F"]


# --- events a device reports -------------------------------------------------------
@dataclass(frozen=True)
class TokenPresented:
    """A card (or other token) was presented to the reader."""

    id_token: str
    type: str = "ISO14443"


@dataclass(frozen=True)
class PilotChanged:
    """IEC 61851 control pilot state on an EVSE changed (A unplugged, B connected,
    C/D charging requested, E/F error)."""

    evse_id: int
    state: PilotState


@dataclass(frozen=True)
class ContactorChanged:
    """The contactor's feedback (mirror) contact changed."""

    evse_id: int
    closed: bool


@dataclass(frozen=True)
class DeviceFault:
    """A device problem appeared (active=True) or cleared (active=False).

    `device` names the device ("meter", "contactor", "rfid", "pilot", ...),
    `evse_id` is 0 for station-wide devices.
    """

    device: str
    evse_id: int
    fault: str
    active: bool = True


@dataclass(frozen=True)
class OcspRequestData:
    """One certificate as OCSP names it (RFC 6960 CertID, ISO 15118-2 / OCPP
    OCSPRequestDataType): hashes of its issuer's name and public key, its serial
    number in hex, and the OCSP responder URL from its AIA extension."""

    hash_algorithm: str  # "SHA256", "SHA384" or "SHA512"
    issuer_name_hash: str
    issuer_key_hash: str
    serial_number: str
    responder_url: str


@dataclass(frozen=True)
class ContractCertificatePresented:
    """ISO 15118 Plug & Charge: the EV on `evse_id` presented its contract certificate.
    `ocsp_request_data` identifies the contract certificate and its sub-CAs (leaf first,
    at most 4); `certificate_chain_pem` is the chain itself, for a CSMS that validates
    contracts centrally (OCPP C07.FR.06)."""

    evse_id: int
    emaid: str
    ocsp_request_data: tuple[OcspRequestData, ...]
    certificate_chain_pem: str | None = None


@dataclass(frozen=True)
class EvCertificateRequested:
    """The EV asked for its contract certificate to be installed ("Install",
    CertificateInstallationReq) or updated ("Update", CertificateUpdateReq); the EXI
    request is passed through untouched, base64 encoded. The answer goes back through
    EvBridge.ev_certificate_response."""

    evse_id: int
    action: Literal["Install", "Update"]
    iso15118_schema_version: str
    exi_request: str


@dataclass(frozen=True)
class CertificateStatusRequested:
    """The EV-communication module needs the OCSP status of a certificate of its V2G
    chain (to staple it in the ISO 15118 TLS handshake); the answer goes back through
    EvBridge.certificate_status_response."""

    evse_id: int
    ocsp_request_data: OcspRequestData


HalEvent = (
    TokenPresented | PilotChanged | ContactorChanged | DeviceFault
    | ContractCertificatePresented | EvCertificateRequested | CertificateStatusRequested
)
Emit = Callable[[HalEvent], None]


@dataclass(frozen=True)
class MeterReading:
    """One sample of an EVSE's energy meter. Per-phase lists are L1..L3 (one entry for
    a single-phase meter), empty when the meter does not measure them. `energy_wh` is
    the import register, not the session's; `power_w` the total over all phases."""

    energy_wh: float
    power_w: float
    voltage_v: list[float] = field(default_factory=list)
    current_a: list[float] = field(default_factory=list)
    frequency_hz: float | None = None
    soc_percent: float | None = None
    power_phase_w: list[float] = field(default_factory=list)


# --- devices -----------------------------------------------------------------------
@runtime_checkable
class Device(Protocol):
    name: str

    async def start(self, emit: Emit) -> None:
        """Open the device and begin reporting events through `emit`."""

    async def stop(self) -> None:
        """Release the device; contactors open, pilots go to 0 % / state off."""


class IdTokenReader(Device, Protocol):
    """An RFID / NFC reader; reports TokenPresented."""


class PowerMeter(Device, Protocol):
    evse_id: int

    async def read(self) -> MeterReading:
        """The current reading. Raises DeviceError when the meter does not answer."""
        ...


class Contactor(Device, Protocol):
    evse_id: int

    async def close(self) -> None: ...

    async def open(self) -> None: ...

    @property
    def closed(self) -> bool:
        """The feedback contact's state (what the contactor really is)."""
        ...


class ControlPilot(Device, Protocol):
    """IEC 61851 pilot: reports PilotChanged; the station offers current through PWM."""

    evse_id: int

    async def set_offered_current(self, amps: float) -> None:
        """Offer `amps` (PWM duty cycle); 0 means no current offered (5 % / off)."""
        ...

    @property
    def state(self) -> PilotState: ...

    @property
    def offered_current_a(self) -> float: ...


class ConnectorLock(Device, Protocol):
    evse_id: int

    async def lock(self) -> bool: ...

    async def unlock(self) -> bool:
        """True when the connector is unlocked afterwards."""
        ...


class Display(Device, Protocol):
    async def show(self, text: str) -> None: ...

    @property
    def text(self) -> str: ...


class EvBridge(Device, Protocol):
    """Link to the EV-communication module (ISO 15118 data such as SoC, EV max
    current, energy request). The mock reports what the simulated EV says."""

    evse_id: int

    def ev_info(self) -> dict[str, float | bool | None]: ...

    # ISO 15118 certificate traffic (answers to the events above). A bridge without
    # Plug & Charge may leave them out: the agent then tells the EV nothing.
    def ev_certificate_response(self, status: str, exi_response: str) -> None:
        """Get15118EVCertificate's answer for the EV: status "Accepted" or "Failed" and
        the EXI response (base64) as the CSMS sent it."""
        ...

    def contract_authorization(self, status: str, certificate_status: str | None) -> None:
        """The authorization of the contract the EV presented: idTokenInfo.status
        ("Accepted", "Invalid", ...) and the CSMS's certificateStatus, if any."""
        ...

    def certificate_status_response(
        self, request: OcspRequestData, status: str, ocsp_result: str | None
    ) -> None:
        """The OCSP status asked for: "Accepted" with the DER OCSPResponse (base64), or
        "Failed"."""
        ...


class DeviceError(Exception):
    """An expected device failure (absent port, no answer, permission denied).
    Its message names the device and the port or pin."""
