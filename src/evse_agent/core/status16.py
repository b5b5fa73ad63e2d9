"""The OCPP 1.6 ChargePointStatus of each connector, derived from the core's EVSE state.

2.0.1 reports only Available / Occupied / Reserved / Unavailable / Faulted and puts the
rest in TransactionEvent's chargingState; 1.6 folds both into one status (1.6 §4.9,
§7.7, with errata 3.20, 3.55 and 3.64). Pure functions of `Evse`: the 1.6 adapter calls
them after every core step and sends a StatusNotification when an answer changes.

One connector per EVSE, so 1.6 connectorId n is EVSE n; connectorId 0 is the station.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .evse import Evse

# The device a fault comes from -> 1.6 ChargePointErrorCode (§7.6).
ERROR_CODES = {
    "meter": "PowerMeterFailure",
    "contactor": "PowerSwitchFailure",
    "lock": "ConnectorLockFailure",
    "pilot": "EVCommunicationError",
    "ev_bridge": "EVCommunicationError",
    "rfid": "ReaderFailure",
}


@dataclass(frozen=True)
class Status16:
    connector_id: int
    status: str
    error_code: str = "NoError"
    info: str | None = None  # the fault as the HAL named it ("contactor:welded")


def connector_status(e: Evse) -> Status16:
    if e.faults:
        return _faulted(e.id, e.faults)
    if not e.operative and e.tx is None:
        return Status16(e.id, "Unavailable")  # a scheduled change waits for the transaction
    if e.tx is None:
        if not e.plugged:
            # A card was presented and the EVSE waits for the EV: no longer available
            # for a new user (§4.9 Preparing).
            return Status16(e.id, "Available" if e.auth is None else "Preparing")
        if e.stop_trigger is not None and e.auth is None:
            # The session ended with the EV still plugged: not available for the next
            # driver until the cable is removed (§4.9 Finishing, errata 3.20 B6).
            return Status16(e.id, "Finishing")
        return Status16(e.id, "Preparing")  # plugged, waiting for a card or the contactor
    if not e.plugged:
        # A transaction without an EV: started at the tap (TxStartPoint Authorized), or
        # the EV left and the transaction goes on (StopTransactionOnEVSideDisconnect off).
        return Status16(e.id, "SuspendedEV" if e.tx.ev_has_drawn else "Preparing")
    state = e.charging_state()
    if state == "Charging":
        return Status16(e.id, "Charging")
    if state == "SuspendedEVSE" or e.offered_a <= 0:
        # No current offered: authorization gone, inoperative, StartTransaction.conf
        # not Accepted (errata 3.64 SuspendedEVSE).
        return Status16(e.id, "SuspendedEVSE")
    # Current offered, the EV does not take it: errata 3.55 (a mode 3 EV in B2).
    return Status16(e.id, "SuspendedEV")


def station_status(evses: Iterable[Evse]) -> Status16:
    """Connector 0, the Charge Point main controller: Faulted by a fault every EVSE
    shares (a station-wide device), Unavailable when no EVSE is operative."""
    evses = list(evses)
    if not evses:
        return Status16(0, "Available")
    shared = set.intersection(*(e.faults for e in evses))
    if shared:
        return _faulted(0, shared)
    if all(not e.operative for e in evses):
        return Status16(0, "Unavailable")
    return Status16(0, "Available")


def statuses(evses: Iterable[Evse]) -> list[Status16]:
    """Connector 0 first, then every connector: the order of the StatusNotifications
    after boot (errata 3.22)."""
    evses = list(evses)
    return [station_status(evses), *(connector_status(e) for e in evses)]


def _faulted(connector_id: int, faults: set[str]) -> Status16:
    fault = sorted(faults)[0]
    device = fault.split(":", 1)[0]
    return Status16(connector_id, "Faulted", ERROR_CODES.get(device, "OtherError"), fault[:50])
