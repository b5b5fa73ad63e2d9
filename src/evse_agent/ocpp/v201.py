"""OCPP 2.0.1 adapter: core actions -> 2.0.1 messages, CSMS requests -> core events.
The connection life (boot, heartbeats, queues) is the shared Session's."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..core import messages as m
from ..device_model.model import DeviceModel
from ..monitoring import MonitoringEngine
from ..storage import QueuedMessage, Storage
from . import rpc
from .connection import CallFailed, Reply
from .iso15118 import Iso15118
from .session import Handler, Session, StationPort
from .v201_device_model import DeviceModelHandlers

if TYPE_CHECKING:
    from ..firmware.service import FirmwareService
    from ..logs.jobs import LogUploads
    from .certificate_service import CertificateService
    from .v201_firmware import FirmwareHandlers201
    from .v201_logs import LogHandlers201
    from .v201_security import CertificateHandlers201


def transaction_event_payload(a: m.TransactionEventAction) -> dict[str, Any]:
    info: dict[str, Any] = {"transactionId": a.transaction_id}
    if a.charging_state:
        info["chargingState"] = a.charging_state
    if a.stopped_reason:
        info["stoppedReason"] = a.stopped_reason
    if a.remote_start_id is not None:
        info["remoteStartId"] = a.remote_start_id
    payload: dict[str, Any] = {
        "eventType": a.event_type,
        "timestamp": rpc.timestamp(a.timestamp),
        "triggerReason": a.trigger_reason,
        "seqNo": a.seq_no,
        "transactionInfo": info,
    }
    if a.offline:
        payload["offline"] = True
    if a.evse_id is not None:
        payload["evse"] = {"id": a.evse_id, "connectorId": a.connector_id or 1}
    if a.id_token is not None:
        payload["idToken"] = a.id_token.to_ocpp()
    if a.meter_values:
        payload["meterValue"] = meter_values_payload(a.meter_values)
    return payload


def meter_values_payload(values: tuple[m.MeterValue, ...]) -> list[dict[str, Any]]:
    return [
        {"timestamp": rpc.timestamp(v.timestamp), "sampledValue": [s.to_ocpp() for s in v.sampled]}
        for v in values
    ]


class V201Adapter(Session):
    version = "2.0.1"

    def __init__(
        self,
        port: StationPort,
        storage: Storage,
        dm: DeviceModel,
        monitoring: MonitoringEngine,
        now: Callable[[], datetime],
    ) -> None:
        super().__init__(port, storage, dm, now)
        self.monitoring = monitoring
        # Feeding a Tick makes the agent recompute its next wake-up (periodic monitors).
        self.device_model = DeviceModelHandlers(
            dm, monitoring, self._send_pages, now, lambda: port.feed(m.Tick())
        )
        self.iso15118 = Iso15118(dm, storage, now, self._call_now)
        self.certificates: CertificateHandlers201 | None = None  # use_certificates()
        self.logs: LogHandlers201 | None = None  # use_logs()
        self.firmware: FirmwareHandlers201 | None = None  # use_firmware()

    def use_certificates(self, service: CertificateService) -> None:
        """Certificate management (A02/A03, M03-M05); this adapter sends the CSRs."""
        from .v201_security import CertificateHandlers201

        self.certificates = CertificateHandlers201(service, self)
        service.attach(self.certificates)

    def use_firmware(self, service: FirmwareService) -> None:
        """UpdateFirmware and FirmwareStatusNotification (L01)."""
        from .v201_firmware import FirmwareHandlers201

        self.firmware = FirmwareHandlers201(service, self)

    def use_logs(self, uploads: LogUploads) -> None:
        """GetLog and LogStatusNotification (N01)."""
        from .v201_logs import LogHandlers201

        self.logs = LogHandlers201(uploads, self)

    # -- from the core (synchronous: called while actions are dispatched) ----------------
    def transaction_event(self, a: m.TransactionEventAction) -> None:
        """Write before send: the message is in SQLite when this returns."""
        token = json.dumps(a.id_token.to_ocpp()) if a.id_token is not None else None
        self.storage.enqueue(
            rpc.new_message_id(),
            "TransactionEvent",
            transaction_event_payload(a),
            (a.transaction_id, a.evse_id, a.connector_id, a.seq_no + 1, token,
             a.event_type == "Ended"),
        )
        self.outbox.notify()

    def authorize(self, a: m.SendAuthorize) -> None:
        """A contract (Plug & Charge) is authorized with its certificate data (C07)."""
        contract = self.iso15118.contract_for(a.id_token)
        if contract is None:
            super().authorize(a)
            return

        async def authorize_contract() -> None:
            status, evse_ids = await self.iso15118.authorize(contract)
            self.port.feed(m.AuthorizeResult(a.request_id, a.id_token, status, evse_ids))

        self._spawn(authorize_contract())

    async def _call_now(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        """A message that only makes sense now: fails at once when offline."""
        endpoint = self._endpoint
        if endpoint is None or not self.online:
            raise CallFailed("closed", "offline")
        return await self._call(endpoint, action, payload)

    def notify_events(self, event_data: list[dict[str, Any]]) -> None:
        """Monitoring events: sent now, or kept per OfflineQueuingSeverity (N07)."""
        for request in self.monitoring.notify_event_requests(event_data, self._now(), self.online):
            self._volatile.put_nowait(("NotifyEvent", request))

    def meter_values(self, a: m.SendMeterValues) -> None:
        if self.online:
            payload = {"evseId": a.evse_id, "meterValue": meter_values_payload(a.meter_values)}
            self._volatile.put_nowait(("MeterValues", payload))

    # -- how 2.0.1 spells the session's messages -----------------------------------------
    def boot_payload(self, reason: str) -> dict[str, Any]:
        return {"reason": reason, "chargingStation": self.port.boot_info}

    def status_payload(self, s: m.ConnectorStatus) -> dict[str, Any]:
        return {
            "timestamp": rpc.timestamp(s.timestamp),
            "connectorStatus": s.status,
            "evseId": s.evse_id,
            "connectorId": s.connector_id,
        }

    def authorize_payload(self, token: m.IdToken) -> dict[str, Any]:
        return {"idToken": token.to_ocpp()}

    def authorize_answer(self, response: dict[str, Any]) -> tuple[str, tuple[int, ...]]:
        info = response["idTokenInfo"]
        return info["status"], tuple(info.get("evseId", ()))

    def queued_answered(self, msg: QueuedMessage, response: dict[str, Any]) -> None:
        info = response.get("idTokenInfo")
        if info is not None:
            tx_id = msg.payload["transactionInfo"]["transactionId"]
            self.port.feed(m.TransactionResponse(tx_id, info["status"]))
        if msg.payload.get("eventType") == "Ended":
            self.storage.prune_transactions()

    def undelivered(self, action: str, payload: dict[str, Any]) -> None:
        if action == "NotifyEvent":
            self.monitoring.queue_offline(payload["eventData"])

    def back_online(self) -> None:
        for request in self.monitoring.flush(self._now()):
            self._volatile.put_nowait(("NotifyEvent", request))

    def link_lost(self) -> None:
        self.device_model.connection_lost()

    # -- CSMS-initiated requests -----------------------------------------------------------
    def handlers(self) -> dict[str, Handler]:
        return {
            **self.device_model.handlers(),
            **(self.certificates.handlers() if self.certificates else {}),
            **(self.logs.handlers() if self.logs else {}),
            **(self.firmware.handlers() if self.firmware else {}),
            "RequestStartTransaction": self._request_start,
            "RequestStopTransaction": self._request_stop,
            "TriggerMessage": self._trigger,
            "ChangeAvailability": self._change_availability,
            "Reset": self._reset,
            "UnlockConnector": self._unlock,
        }

    async def _request_start(self, p: dict[str, Any]) -> Reply:
        if self.registration != "Accepted":
            return Reply({"status": "Rejected"})  # B02.FR.05
        token = m.IdToken(p["idToken"]["idToken"], p["idToken"]["type"])
        result = self.port.feed(m.RemoteStart(token, p["remoteStartId"], p.get("evseId")))
        assert result is not None
        out: dict[str, Any] = {"status": result.status}
        if result.transaction_id:
            out["transactionId"] = result.transaction_id
        return Reply(out)

    async def _request_stop(self, p: dict[str, Any]) -> Reply:
        if self.registration != "Accepted":
            return Reply({"status": "Rejected"})  # B02.FR.05
        result = self.port.feed(m.RemoteStop(p["transactionId"]))
        return Reply({"status": result.status if result else "Rejected"})

    async def _change_availability(self, p: dict[str, Any]) -> Reply:
        operative = p["operationalStatus"] == "Operative"
        evse = p.get("evse") or {}
        evse_id = evse.get("id") or None
        if evse_id is not None and (
            evse_id not in self.port.evse_ids() or evse.get("connectorId", 1) != 1
        ):
            return Reply({"status": "Rejected"})
        result = self.port.feed(m.ChangeAvailability(operative, evse_id))
        self.port.persist_availability(evse_id, operative)  # G03.FR.08
        return Reply({"status": result.status if result else "Rejected"})

    async def _reset(self, p: dict[str, Any]) -> Reply:
        if p.get("evseId"):
            return Reply({"status": "Rejected"})  # B11.FR.09: no per-EVSE reset
        result = self.port.feed(m.ResetRequested(p["type"] == "Immediate"))
        status = result.status if result else "Rejected"
        self.reset_reason(status)
        return Reply({"status": status})

    async def _unlock(self, p: dict[str, Any]) -> Reply:
        evse_id, connector_id = p["evseId"], p["connectorId"]
        if evse_id not in self.port.evse_ids() or connector_id != 1:
            return Reply({"status": "UnknownConnector"})
        if evse_id in self.port.transaction_ids():
            return Reply({"status": "OngoingAuthorizedTransaction"})  # F05.FR.02
        unlocked = await self.port.unlock(evse_id, connector_id)
        return Reply({"status": "Unlocked" if unlocked else "UnlockFailed"})

    async def _trigger(self, p: dict[str, Any]) -> Reply:
        what = p["requestedMessage"]
        evse = p.get("evse") or {}
        evse_id = evse.get("id")
        if evse_id is not None and evse_id not in self.port.evse_ids():
            return Reply({"status": "Rejected"})
        if what == "BootNotification":
            if self.registration == "Accepted":
                return Reply({"status": "Rejected"})  # F06.FR.17
            return Reply({"status": "Accepted"}, self.wake_boot)
        if self.registration != "Accepted" and what not in ("Heartbeat", "StatusNotification"):
            return Reply({"status": "Rejected"})
        if what == "Heartbeat":
            return Reply({"status": "Accepted"}, self.heartbeat_now)
        if what == "StatusNotification":
            statuses = [
                s for s in self.port.connector_statuses()
                if evse_id in (None, s.evse_id)
                and evse.get("connectorId") in (None, s.connector_id)
            ]
            return Reply({"status": "Accepted"}, lambda: self.queue_statuses(statuses))
        # F06.FR.04: the response goes first, the triggered message after it.
        if what == "MeterValues":
            return Reply({"status": "Accepted"}, self.after_feed(m.TriggerMeterValues(evse_id)))
        if what == "TransactionEvent":
            running = self.port.transaction_ids()
            if not any(evse_id in (None, e) for e in running):
                return Reply({"status": "Rejected"})
            return Reply(
                {"status": "Accepted"}, self.after_feed(m.TriggerTransactionEvent(evse_id))
            )
        if self.firmware is not None and what == "FirmwareStatusNotification":
            return self.firmware.trigger()  # L01.FR.25/26
        if self.logs is not None and (reply := self.logs.trigger(what)):
            return reply  # LogStatusNotification (F06.FR.14/15)
        if self.certificates is not None and (reply := self.certificates.trigger(what)):
            return reply  # SignChargingStationCertificate, SignV2GCertificate (A02)
        return Reply({"status": "NotImplemented"})  # F06.FR.08
