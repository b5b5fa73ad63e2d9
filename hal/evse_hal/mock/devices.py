"""Mock device objects implementing the Protocols of evse_hal.interfaces.

The per-EVSE devices are thin views onto one shared simulation (MockEvse), because on
real hardware pilot, contactor and meter observe the same physical circuit: what the
contactor does changes what the meter measures and what the EV signals.

Each device reports through the `emit` it was started with; before start() and after
stop() its events are dropped, as a closed port reports nothing.
"""

from __future__ import annotations

import base64
import logging
from typing import TYPE_CHECKING

from evse_hal.interfaces import (
    CertificateStatusRequested,
    ContractCertificatePresented,
    DeviceError,
    DeviceFault,
    Emit,
    EvCertificateRequested,
    HalEvent,
    MeterReading,
    OcspRequestData,
    PilotState,
    TokenPresented,
)
from evse_hal.mock.errors import UnknownFault

if TYPE_CHECKING:
    from evse_hal.mock.ev import SimulatedEV
    from evse_hal.mock.evse import MockEvse

log = logging.getLogger(__name__)
ISO15118_2 = "urn:iso:15118:2:2013:MsgDef"

# Faults each mock device can simulate, by device name.
EVSE_FAULTS: dict[str, frozenset[str]] = {
    "meter": frozenset({"offline"}),
    "contactor": frozenset({"welded", "stuck_open"}),
    "pilot": frozenset({"diode_fault"}),
    "lock": frozenset({"jammed"}),
}
STATION_FAULTS: dict[str, frozenset[str]] = {
    "rfid": frozenset({"gone"}),
}


class MockDevice:
    """Common part: identity and the emit callback."""

    def __init__(self, name: str, evse_id: int) -> None:
        self.name = name
        self.evse_id = evse_id
        self._emit: Emit | None = None

    @property
    def started(self) -> bool:
        return self._emit is not None

    async def start(self, emit: Emit) -> None:
        self._emit = emit

    async def stop(self) -> None:
        self._emit = None

    def report(self, event: HalEvent) -> None:
        if self._emit is not None:
            self._emit(event)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} evse={self.evse_id}>"


class _EvseDevice(MockDevice):
    def __init__(self, name: str, sim: MockEvse) -> None:
        super().__init__(name, sim.evse_id)
        self._sim = sim


class MockControlPilot(_EvseDevice):
    def __init__(self, sim: MockEvse) -> None:
        super().__init__("pilot", sim)

    async def stop(self) -> None:
        # Detach first: a stopping station reports nothing more, but the EV still
        # sees the PWM vanish and leaves C.
        await super().stop()
        self._sim.set_offered_current(0.0)

    async def set_offered_current(self, amps: float) -> None:
        self._sim.set_offered_current(amps)

    @property
    def state(self) -> PilotState:
        # The EV may have filled up since the last look; catch up before answering.
        self._sim.sync()
        return self._sim.pilot_state

    @property
    def offered_current_a(self) -> float:
        return self._sim.offered_current_a


class MockContactor(_EvseDevice):
    def __init__(self, sim: MockEvse) -> None:
        super().__init__("contactor", sim)

    async def stop(self) -> None:
        await super().stop()
        self._sim.command_contactor(False)

    async def close(self) -> None:
        self._sim.command_contactor(True)

    async def open(self) -> None:
        self._sim.command_contactor(False)

    @property
    def closed(self) -> bool:
        return self._sim.contactor_closed


class MockPowerMeter(_EvseDevice):
    def __init__(self, sim: MockEvse) -> None:
        super().__init__("meter", sim)

    async def stop(self) -> None:
        self._sim.sync()
        await super().stop()

    async def read(self) -> MeterReading:
        # The register keeps counting while the bus is dead, as a real meter's does.
        reading = self._sim.meter_reading()
        if self._sim.has_fault("meter", "offline"):
            raise DeviceError(f"meter on EVSE {self.evse_id} does not answer")
        return reading


class MockConnectorLock(_EvseDevice):
    def __init__(self, sim: MockEvse) -> None:
        super().__init__("lock", sim)
        self.locked = False

    async def lock(self) -> bool:
        if not self._sim.has_fault("lock", "jammed"):
            self.locked = True
        return self.locked

    async def unlock(self) -> bool:
        if not self._sim.has_fault("lock", "jammed"):
            self.locked = False
        return not self.locked


class MockEvBridge(_EvseDevice):
    """What the EV-communication module reports. For a Plug & Charge EV (ISO 15118 with
    an eMAID) it plays the ISO 15118 certificate steps: the OCSP status of the SECC's own
    certificate, optionally the contract certificate installation (a placeholder EXI
    message, not a real EXI encoding), then the contract (PaymentDetailsReq)."""

    def __init__(self, sim: MockEvse) -> None:
        super().__init__("ev_bridge", sim)
        self._certificates: dict[str, object] = {}

    # -- ISO 15118 certificate steps ----------------------------------------------------
    def ev_plugged(self, ev: SimulatedEV) -> None:
        self._certificates = {}
        if not (ev.iso15118 and ev.emaid):
            return
        from evse_hal.mock import pki

        self.report(CertificateStatusRequested(self.evse_id, pki.secc_chain().ocsp_request_data[0]))
        if ev.certificate_request:
            exi = f"mock-exi:{ev.certificate_request}:{ev.emaid}".encode()
            self._certificates["certificate_request"] = ev.certificate_request
            self.report(EvCertificateRequested(
                self.evse_id, "Install" if ev.certificate_request == "Install" else "Update",
                ISO15118_2, base64.b64encode(exi).decode(),
            ))
            return
        self._present_contract(ev.emaid)

    def _present_contract(self, emaid: str) -> None:
        from evse_hal.mock import pki

        chain = pki.contract_chain(emaid)
        self._certificates["contract"] = emaid
        self.report(ContractCertificatePresented(
            self.evse_id, emaid, chain.ocsp_request_data, chain.pem
        ))

    def ev_certificate_response(self, status: str, exi_response: str) -> None:
        self._certificates["certificate_response"] = status
        log.info("EVSE %d: EV certificate %s", self.evse_id, status)
        ev = self._sim.ev
        if status == "Accepted" and exi_response and ev is not None and ev.emaid:
            self._present_contract(ev.emaid)  # the EV goes on with its new contract

    def contract_authorization(self, status: str, certificate_status: str | None) -> None:
        self._certificates["authorization"] = status
        self._certificates["certificate_status"] = certificate_status
        log.info("EVSE %d: contract authorization %s (certificateStatus %s)",
                 self.evse_id, status, certificate_status)

    def certificate_status_response(
        self, request: OcspRequestData, status: str, ocsp_result: str | None
    ) -> None:
        self._certificates["ocsp"] = status
        log.info("EVSE %d: OCSP status of certificate %s: %s (%d bytes)", self.evse_id,
                 request.serial_number, status, len(base64.b64decode(ocsp_result or "")))

    def certificate_state(self) -> dict[str, object]:
        """What the ISO 15118 certificate steps of this session came to (snapshot)."""
        return dict(self._certificates)

    def ev_info(self) -> dict[str, float | bool | None]:
        self._sim.sync()
        ev = self._sim.ev
        info: dict[str, float | bool | None] = {
            "plugged": ev is not None,
            "iso15118": bool(ev and ev.iso15118),
            "soc_percent": None,
            "max_current_a": None,
            "battery_wh": None,
            "energy_request_wh": None,
        }
        # Only ISO 15118 talks; a basic IEC 61851 EV tells the station nothing.
        if ev is not None and ev.iso15118:
            info.update(
                soc_percent=ev.soc,
                max_current_a=ev.max_current_a,
                battery_wh=ev.battery_wh,
                energy_request_wh=ev.room_wh,
            )
        return info


class MockIdTokenReader(MockDevice):
    """The station's card reader (evse_id 0: it serves the whole station)."""

    def __init__(self) -> None:
        super().__init__("rfid", 0)
        self.faults: set[str] = set()

    def present(self, id_token: str, type: str = "ISO14443") -> bool:
        """A card is held to the reader; False when nobody could hear it (reader gone
        or not started), so the caller can tell the user."""
        if self.faults or not self.started:
            return False
        self.report(TokenPresented(id_token, type))
        return True

    def inject_fault(self, fault: str) -> None:
        if fault not in STATION_FAULTS["rfid"]:
            raise unknown_fault("rfid", fault)
        if fault not in self.faults:
            self.faults.add(fault)
            self.report(DeviceFault("rfid", 0, fault, True))

    def clear_faults(self) -> None:
        for fault in sorted(self.faults):
            self.report(DeviceFault("rfid", 0, fault, False))
        self.faults.clear()


class MockDisplay(MockDevice):
    def __init__(self) -> None:
        super().__init__("display", 0)
        self._text = ""

    async def show(self, text: str) -> None:
        self._text = text

    @property
    def text(self) -> str:
        return self._text


def unknown_fault(device: str, fault: str) -> UnknownFault:
    """The error for a device/fault pair the mock does not simulate, listing what is."""
    known = {**EVSE_FAULTS, **STATION_FAULTS}
    if device not in known:
        return UnknownFault(f"unknown device {device!r}; mock devices: {', '.join(sorted(known))}")
    return UnknownFault(
        f"unknown fault {fault!r} for {device}; known: {', '.join(sorted(known[device]))}"
    )
