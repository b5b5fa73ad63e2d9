"""The state of one EVSE and of the transaction on it: plain data the Station's rules
read and change. Kept apart from the rules so both read top to bottom."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from evse_hal.interfaces import MeterReading

from .messages import IdToken

PLUGGED = ("B", "C", "D")
REQUESTING = ("C", "D")


@dataclass
class Transaction:
    id: str
    started_at: datetime
    next_seq_no: int = 0
    charging_state: str | None = None  # last one reported
    evse_reported: bool = False
    id_token_reported: bool = False
    remote_start_reported: bool = False
    reached: set[str] = field(default_factory=set)  # stop-point conditions seen true
    next_sample: datetime | None = None
    ev_has_drawn: bool = False  # EV went to C at least once: later B is SuspendedEV

    def take_seq_no(self) -> int:
        seq = self.next_seq_no
        self.next_seq_no += 1
        return seq


@dataclass
class Evse:
    id: int
    connector_id: int = 1
    max_current_a: float = 32.0
    pilot: str = "A"
    contactor_closed: bool = False  # what we commanded
    offered_a: float = 0.0
    operative: bool = True
    pending_inoperative: bool | None = None  # ChangeAvailability Scheduled: target
    faults: set[str] = field(default_factory=set)
    auth: IdToken | None = None
    auth_deadline: datetime | None = None  # EVConnectionTimeOut after a tap / remote start
    remote_start_id: int | None = None
    stop_trigger: tuple[str, str] | None = None  # (triggerReason, stoppedReason) pending
    tx: Transaction | None = None
    reading: MeterReading | None = None
    reported_status: str | None = None
    just_plugged: bool = False  # the event being handled is the plug-in

    @property
    def plugged(self) -> bool:
        return self.pilot in PLUGGED

    @property
    def available(self) -> bool:
        return self.operative and not self.faults

    @property
    def free(self) -> bool:
        """Free for a new driver: usable, nothing plugged, nobody authorized."""
        return self.available and not self.plugged and self.auth is None and self.tx is None

    def connector_status(self) -> str:
        if self.faults:
            return "Faulted"
        if not self.operative and self.tx is None:
            return "Unavailable"
        if self.plugged or self.tx is not None:
            return "Occupied"
        return "Available"

    def charging_state(self) -> str:
        if not self.plugged:
            return "Idle"
        if self.contactor_closed and self.pilot in REQUESTING:
            return "Charging"
        if self.auth is None or not self.available:
            return "SuspendedEVSE" if self.auth is not None else "EVConnected"
        if self.pilot in REQUESTING:
            return "SuspendedEVSE"
        if self.offered_a > 0 and self.tx is not None and self.tx.ev_has_drawn:
            return "SuspendedEV"
        return "EVConnected"
