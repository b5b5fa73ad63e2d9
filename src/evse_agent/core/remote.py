"""The core's answers to CSMS requests (remote start/stop, availability, reset,
triggers) and the recovery of a transaction a lost process left open.

A mixin of Station, kept apart so each file reads top to bottom: it uses the
Station's EVSEs, settings and its authorization and transaction helpers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from . import messages as m
from .evse import Transaction
from .metering import sample

if TYPE_CHECKING:
    from .station import Station


@dataclass(frozen=True)
class RequestResult:
    """The answer to a CSMS request the core decided (status plus optional data)."""

    status: str
    transaction_id: str | None = None


class RemoteControl:
    def _remote_start(self: Station, ev: m.RemoteStart, now: datetime, out: list[m.Action]) -> None:
        if ev.evse_id is not None:
            e = self.evses.get(ev.evse_id)
            if e is None or not e.available or e.auth is not None:
                self.last_result = RequestResult("Rejected")
                return
        else:
            e = self._evse_for_new_token()
            if e is None:
                self.last_result = RequestResult("Rejected")
                return
        tx_id = e.tx.id if e.tx is not None else None
        self.last_result = RequestResult("Accepted", tx_id)  # F01.FR.xx: id if one runs
        if self._setting("AuthCtrlr", "AuthorizeRemoteStart"):
            self._ask_csms(ev.id_token, e.id, ev.remote_start_id, now, out)
        else:
            self._authorize(e, ev.id_token, now, ev.remote_start_id)

    def _remote_stop(self: Station, ev: m.RemoteStop, now: datetime, out: list[m.Action]) -> None:
        for e in self.evses.values():
            if e.tx is not None and e.tx.id == ev.transaction_id:
                self._deauthorize(e, ("RemoteStop", "Remote"))
                self.last_result = RequestResult("Accepted")
                return
        self.last_result = RequestResult("Rejected")

    def _change_availability(
        self, ev: m.ChangeAvailability, now: datetime, out: list[m.Action]
    ) -> None:
        targets = list(self.evses.values()) if not ev.evse_id else [self.evses[ev.evse_id]]
        status = "Accepted"
        for e in targets:
            if e.tx is not None and not ev.operative:
                e.pending_inoperative = True  # G03.FR.03: after the transaction
                status = "Scheduled"
            else:
                e.operative = ev.operative
                e.pending_inoperative = None
        self.last_result = RequestResult(status)

    def _reset(self: Station, ev: m.ResetRequested, now: datetime, out: list[m.Action]) -> None:
        busy = [e for e in self.evses.values() if e.tx is not None]
        if ev.immediate:
            for e in busy:  # B12.FR.04: end transactions before rebooting
                self._deauthorize(e, ("ResetCommand", "ImmediateReset"))
            self.last_result = RequestResult("Accepted")
        else:
            self.last_result = RequestResult("Scheduled" if busy else "Accepted")  # B12.FR.01
        self.pending_reset = True

    def _trigger_transaction_event(
        self, ev: m.TriggerTransactionEvent, now: datetime, out: list[m.Action]
    ) -> None:
        targets = [e for e in self.evses.values() if ev.evse_id in (None, e.id) and e.tx]
        if not targets:
            self.last_result = RequestResult("Rejected")
            return
        self.last_result = RequestResult("Accepted")
        for e in targets:
            self._emit(e, "Updated", "Trigger", now, out, context="Trigger")

    def _trigger_meter_values(
        self, ev: m.TriggerMeterValues, now: datetime, out: list[m.Action]
    ) -> None:
        self.last_result = RequestResult("Accepted")
        measurands = self.settings.members("AlignedDataCtrlr", "Measurands")
        for e in self.evses.values():
            if ev.evse_id in (None, e.id):
                mv = sample(e.reading, measurands, "Trigger", now, e.offered_a)
                if mv is not None:
                    out.append(m.SendMeterValues(e.id, (mv,)))

    def _recovered(
        self: Station, ev: m.RecoveredTransaction, now: datetime, out: list[m.Action]
    ) -> None:
        """The process died with this transaction open: end it (stoppedReason
        PowerLoss), its seqNo continuing where the lost process stopped."""
        e = self.evses.get(ev.evse_id or 0)
        tx = Transaction(ev.transaction_id, now, next_seq_no=ev.next_seq_no)
        mv = None
        if e is not None:
            measurands = self.settings.members("SampledDataCtrlr", "TxEndedMeasurands")
            mv = sample(e.reading, measurands, "Transaction.End", now)
        out.append(
            m.TransactionEventAction(
                event_type="Ended",
                timestamp=now,
                trigger_reason="AbnormalCondition",
                seq_no=tx.take_seq_no(),
                transaction_id=tx.id,
                offline=not self.online,
                evse_id=ev.evse_id,
                connector_id=ev.connector_id if ev.evse_id else None,
                charging_state="Idle",
                stopped_reason="PowerLoss",
                meter_values=(mv,) if mv else (),
            )
        )
