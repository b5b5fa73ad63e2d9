"""OCPP 1.6-J adapter: the same core actions as 2.0.1, spelled as 1.6 messages.

The connection life (boot, heartbeats, the durable queue) is the shared Session's;
the CSMS's requests are in v16_requests.py. What differs from 2.0.1:
- A transaction is StartTransaction / MeterValues / StopTransaction, with an integer
  transactionId the CSMS assigns (v16_transactions.py). All three are written to
  SQLite before they are sent (§4.8, §4.10 "transaction-related messages").
- A 1.6 transaction needs an idTag and a connector. When the core starts one before
  both are known (TxStartPoint EVConnected, a tap before the plug), StartTransaction
  waits for the first event that completes them; a transaction that ends before is
  not a 1.6 transaction and is not reported.
- Connector status is the 1.6 ChargePointStatus, derived from the core's EVSE state
  after every step (core/status16.py), with connector 0 for the station (§4.9).
Section numbers: OCPP 1.6 edition 2; "errata" is the 1.6 errata sheet v4.x.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..core import messages as m
from ..core import status16
from ..core.evse import Evse
from ..core.status16 import Status16
from ..device_model.model import DeviceModel
from ..storage import QueuedMessage, Storage
from . import rpc
from . import v16_messages as msg16
from .connection import CallFailed
from .session import StationPort
from .v16_requests import DataTransferHandler, RequestHandlers16
from .v16_transactions import Record16, Transactions16

if TYPE_CHECKING:
    from ..firmware.service import FirmwareService
    from ..logs.jobs import LogUploads
    from .certificate_service import CertificateService

log = logging.getLogger("evse_agent.ocpp")

# Updated events whose meter values are MeterValues.req in 1.6: the periodic samples
# (MeterValueSampleInterval) and the clock-aligned ones (ClockAlignedDataInterval).
# State changes (plug, charging state, authorization) become StatusNotifications.
METER_TRIGGERS = ("MeterValuePeriodic", "MeterValueClock")


@dataclass
class PendingStart:
    """A core transaction waiting for its idTag or connector before StartTransaction."""

    timestamp: datetime
    meter_start: int | None
    begin: list[dict[str, Any]]
    connector_id: int | None = None
    id_token: m.IdToken | None = None


class V16Adapter(RequestHandlers16):
    version = "1.6"

    def __init__(
        self,
        port: StationPort,
        storage: Storage,
        dm: DeviceModel,
        now: Callable[[], datetime],
        evses: Callable[[], Mapping[int, Evse]],
    ) -> None:
        super().__init__(port, storage, dm, now)
        self.evses = evses  # the core's EVSE state, read only: 1.6 statuses and samples
        self.transactions = Transactions16(storage)
        self.transactions.prune(
            {row[0] for row in storage.open_transactions()}
            | {str(q.payload.get("transactionId")) for q in storage.queued()}
        )
        self._pending: dict[str, PendingStart] = {}
        self._status16: dict[int, Status16] = {}
        self._status_at: dict[int, datetime] = {}
        self.reset_type: str | None = None  # "Soft" / "Hard": names the StopTransaction reason
        self.unlocking: set[str] = set()  # local ids UnlockConnector is ending
        self.data_transfer: dict[str, DataTransferHandler] = {}  # vendorId -> handler
        self._remote_start_ids = 0
        self.certificates = None  # use_certificates()
        self.logs = None  # use_logs()
        self.firmware = None  # use_firmware()

    def use_certificates(self, service: CertificateService) -> None:
        """The security whitepaper's certificate messages; this adapter sends the CSRs."""
        from .v16_security import CertificateHandlers16

        self.certificates = CertificateHandlers16(service, self)
        service.attach(self.certificates)

    def use_firmware(self, service: FirmwareService) -> None:
        """UpdateFirmware, SignedUpdateFirmware and their notifications (v16_firmware.py)."""
        from .v16_firmware import FirmwareHandlers16

        self.firmware = FirmwareHandlers16(service, self)

    def use_logs(self, uploads: LogUploads) -> None:
        """GetDiagnostics and the security extension's GetLog (v16_logs.py)."""
        from .v16_logs import LogHandlers16

        self.logs = LogHandlers16(uploads, self)

    # -- from the core (synchronous: called while actions are dispatched) ----------------
    def transaction_event(self, a: m.TransactionEventAction) -> None:
        local = a.transaction_id
        if a.event_type == "Started":
            self._pending[local] = PendingStart(
                a.timestamp, msg16.energy_wh(a.meter_values), msg16.meter_values(a.meter_values)
            )
        pending = self._pending.get(local)
        if pending is not None:
            pending.connector_id = a.evse_id or pending.connector_id
            pending.id_token = a.id_token or pending.id_token
            if a.event_type == "Ended":
                del self._pending[local]
                log.info("transaction %s ended before it had an idTag and a connector:"
                         " nothing to report in 1.6", local[:8])
                return
            if pending.connector_id is None or pending.id_token is None:
                self._meter_values_before_start(a, pending)
                return
            del self._pending[local]
            self._start_transaction(local, pending, a)
        if a.event_type == "Updated" and a.trigger_reason in METER_TRIGGERS:
            self._transaction_meter_values(a)
        elif a.event_type == "Ended":
            self._stop_transaction(a)

    def connector_status(self, a: m.ConnectorStatus) -> None:
        """The 2.0.1 status says too little for 1.6: station_changed() reports instead."""

    def station_changed(self) -> None:
        """After every core step (the agent's hook): report each connector whose 1.6
        status changed (errata 3.19: SHALL send on every change)."""
        now = self._now()
        for s in status16.statuses(self.evses().values()):
            if self._status16.get(s.connector_id) == s:
                continue
            self._status16[s.connector_id] = s
            self._status_at[s.connector_id] = now
            if self.online:
                self._status_notification(self._as_connector_status(s))

    def connector_statuses(self) -> list[m.ConnectorStatus]:
        """The 1.6 statuses, connector 0 first: what the Session reports after boot
        (errata 3.22) and a TriggerMessage asks for."""
        return [self._as_connector_status(self._status16[c]) for c in sorted(self._status16)]

    def meter_values(self, a: m.SendMeterValues) -> None:
        """Clock-aligned values of an EVSE without a transaction: sent when online."""
        if self.online:
            values = msg16.meter_values(a.meter_values)
            if values:
                payload = msg16.meter_values_payload(a.evse_id, values, self._csms_id(a.evse_id))
                self._volatile.put_nowait(("MeterValues", payload))

    def notify_events(self, event_data: list[dict[str, Any]]) -> None:
        """Monitoring events are NotifyEventRequest, a 2.0.1 message: 1.6 has none."""

    def authorize(self, a: m.SendAuthorize) -> None:
        if len(a.id_token.id_token) > msg16.ID_TAG_MAX:
            log.warning("idTag %r is longer than 1.6 allows (%d characters): Invalid, not sent",
                        a.id_token.id_token, msg16.ID_TAG_MAX)

            async def refuse() -> None:  # no 1.6 idTag can name it (CiString20Type)
                self.port.feed(m.AuthorizeResult(a.request_id, a.id_token, "Invalid"))

            self._spawn(refuse())
            return
        super().authorize(a)

    def csms_transaction_id(self, local_id: str) -> int | None:
        return self.transactions.csms_id(local_id)

    # -- transactions ------------------------------------------------------------------
    def _start_transaction(
        self, local: str, pending: PendingStart, a: m.TransactionEventAction
    ) -> None:
        assert pending.connector_id is not None and pending.id_token is not None
        id_tag = pending.id_token.id_token
        if len(id_tag) > msg16.ID_TAG_MAX:  # authorized offline: Authorize never saw it
            log.warning("idTag %r is longer than 1.6 allows: sent as %r", id_tag,
                        id_tag[: msg16.ID_TAG_MAX])
            id_tag = id_tag[: msg16.ID_TAG_MAX]
        meter_start = pending.meter_start
        if meter_start is None:
            meter_start = self._register(pending.connector_id) or 0
        message_id = rpc.new_message_id()
        self.transactions.add(
            local, Record16(message_id, pending.connector_id, id_tag, meter_start, pending.begin)
        )
        payload = msg16.start_transaction_payload(
            pending.connector_id, id_tag, meter_start, pending.timestamp
        )
        token = json.dumps(pending.id_token.to_ocpp())
        self._enqueue(message_id, "StartTransaction", payload, a, token)

    def _transaction_meter_values(self, a: m.TransactionEventAction) -> None:
        record = self.transactions.get(a.transaction_id)
        values = msg16.meter_values(a.meter_values)
        if record is None or not values:
            return
        payload = msg16.meter_values_payload(record.connector_id, values, a.transaction_id)
        self._enqueue(rpc.new_message_id(), "MeterValues", payload, a)

    def _meter_values_before_start(self, a: m.TransactionEventAction, p: PendingStart) -> None:
        """Samples of a transaction 1.6 does not know yet: connector meter values."""
        if a.trigger_reason in METER_TRIGGERS and p.connector_id is not None:
            values = msg16.meter_values(a.meter_values)
            if values and self.online:
                payload = msg16.meter_values_payload(p.connector_id, values, None)
                self._volatile.put_nowait(("MeterValues", payload))

    def _stop_transaction(self, a: m.TransactionEventAction) -> None:
        local = a.transaction_id
        record = self.transactions.get(local)
        if record is None:
            log.warning("transaction %s ended but 1.6 never started it: not reported", local[:8])
            return
        reason = msg16.stop_reason(a.stopped_reason, self.reset_type)
        if local in self.unlocking and reason == "Remote":
            reason = "UnlockCommand"  # §5.18: UnlockConnector ended it
            self.unlocking.discard(local)
        meter_stop = msg16.energy_wh(a.meter_values)
        if meter_stop is None:
            meter_stop = self._register(record.connector_id)
        if meter_stop is None:
            meter_stop = record.meter_start  # meter offline: no energy we can vouch for
        # StopTxnSampledData = TxEndedMeasurands: the start and stop values of each
        # (errata 3.16.6); empty: no transactionData at all (errata 3.14.5).
        measurands = self.dm.members("SampledDataCtrlr", "TxEndedMeasurands")
        data: list[dict[str, Any]] = []
        if measurands:
            data = msg16.only(record.begin, measurands)
            data += msg16.meter_values(a.meter_values, measurands)
        payload = msg16.stop_transaction_payload(
            local, meter_stop, a.timestamp, reason,
            record.id_tag if reason == "Local" else None,  # who stopped it (§6.49)
            data,
        )
        self._enqueue(rpc.new_message_id(), "StopTransaction", payload, a, ended=True)

    def _enqueue(
        self,
        message_id: str,
        action: str,
        payload: dict[str, Any],
        a: m.TransactionEventAction,
        token: str | None = None,
        ended: bool = False,
    ) -> None:
        """Write before send; the transactions row lets a restart end it (PowerLoss)."""
        self.storage.enqueue(
            message_id, action, payload,
            (a.transaction_id, a.evse_id, a.connector_id, a.seq_no + 1, token, ended),
        )
        self.outbox.notify()

    async def _send_queued(self, msg: QueuedMessage) -> dict[str, Any]:
        """Send a queued message with the CSMS's transactionId in place of the local
        one. The id a StartTransaction.conf brings is stored before the outbox removes
        the request, so a kill -9 in between cannot lose it."""
        endpoint = self._endpoint
        if endpoint is None:
            raise CallFailed("closed")
        payload = self.transactions.resolve(msg.payload)
        try:
            response = await self._call(endpoint, msg.action, payload, msg.message_id)
        except rpc.RpcError as err:  # our payload breaks the schema: never wedge the queue
            raise CallFailed("invalid", err.description, err.code) from None
        if msg.action == "StartTransaction":
            self.transactions.assign(msg.message_id, int(response["transactionId"]))
        return response

    def queued_answered(self, msg: QueuedMessage, response: dict[str, Any]) -> None:
        if msg.action == "StartTransaction":
            local = self.transactions.local_for_start(msg.message_id)
            info = response.get("idTagInfo")
            if local is not None and info is not None:
                # Errata 3.17: not Accepted stops it when StopTransactionOnInvalidId.
                self.port.feed(m.TransactionResponse(local, info["status"]))
        elif msg.action == "StopTransaction":
            local = msg.payload.get("transactionId")
            if isinstance(local, str):
                self.transactions.forget(local)
            self.storage.prune_transactions()

    # -- helpers -----------------------------------------------------------------------
    def _as_connector_status(self, s: Status16) -> m.ConnectorStatus:
        # Session keys what the CSMS heard by (evse, connector): (connectorId, 0) here.
        at = self._status_at.get(s.connector_id) or self._now()
        return m.ConnectorStatus(s.connector_id, 0, s.status, at)

    def status_payload(self, s: m.ConnectorStatus) -> dict[str, Any]:
        known = self._status16.get(s.evse_id)
        if known is None or known.status != s.status:
            known = Status16(s.evse_id, s.status)
        return msg16.status_payload(known, s.timestamp)

    def boot_payload(self, reason: str) -> dict[str, Any]:
        return msg16.boot_payload(self.port.boot_info)  # 1.6 has no boot reason

    def authorize_payload(self, token: m.IdToken) -> dict[str, Any]:
        return {"idTag": token.id_token}

    def authorize_answer(self, response: dict[str, Any]) -> tuple[str, tuple[int, ...]]:
        return response["idTagInfo"]["status"], ()

    def _register(self, connector_id: int) -> int | None:
        e = self.evses().get(connector_id)
        return round(e.reading.energy_wh) if e is not None and e.reading else None

    def _csms_id(self, connector_id: int) -> int | None:
        local = self.port.transaction_ids().get(connector_id)
        return self.transactions.csms_id(local) if local is not None else None

    def next_remote_start_id(self) -> int:
        self._remote_start_ids += 1
        return self._remote_start_ids
