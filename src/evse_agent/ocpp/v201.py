"""OCPP 2.0.1 adapter: core actions -> 2.0.1 messages, CSMS requests -> core events.

One instance lives as long as the process; `session(endpoint)` runs for each
websocket connection: BootNotification until Accepted (B01-B03), StatusNotification
for every connector, then heartbeats, the durable transaction queue and the other
messages side by side until the connection drops.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Protocol

from ..core import messages as m
from ..core.station import RequestResult
from ..device_model.model import DeviceModel, VariableKey
from ..monitoring import MonitoringEngine
from ..storage import QueuedMessage, Storage
from . import rpc
from .connection import CallFailed, Endpoint, Reply
from .outbox import Outbox
from .v201_device_model import DeviceModelHandlers

log = logging.getLogger("evse_agent.ocpp")


class StationPort(Protocol):
    """What the adapter needs from the agent."""

    station_id: str
    boot_info: dict[str, Any]

    def feed(self, event: m.Event) -> RequestResult | None: ...

    def connector_statuses(self) -> list[m.ConnectorStatus]: ...

    def evse_ids(self) -> list[int]: ...

    def transaction_ids(self) -> dict[int, str]: ...

    async def unlock(self, evse_id: int, connector_id: int) -> bool: ...

    def persist_availability(self, evse_id: int | None, operative: bool) -> None: ...

    def schedule_restart(self) -> None: ...


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


class V201Adapter:
    version = "2.0.1"

    def __init__(
        self,
        port: StationPort,
        storage: Storage,
        dm: DeviceModel,
        monitoring: MonitoringEngine,
        now: Callable[[], datetime],
    ) -> None:
        self.port = port
        self.monitoring = monitoring
        self._now = now
        self.device_model = DeviceModelHandlers(dm, monitoring, self._send_pages, now)
        self.storage = storage
        self.dm = dm
        self.registration: str | None = None
        self.connected = False
        self.online = False  # connected and Accepted: messages may flow
        self._endpoint: Endpoint | None = None
        self._reported: dict[tuple[int, int], str] = {}  # status the CSMS last heard
        self._offline_since: float | None = None
        self._volatile: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        self._last_sent = time.monotonic()
        self._boot_wake = asyncio.Event()
        self.first_answer = asyncio.Event()  # the first BootNotification got an answer
        self._heartbeat_changed = asyncio.Event()
        dm.subscribe(
            lambda key, value: self._heartbeat_changed.set(),
            VariableKey("OCPPCommCtrlr", "HeartbeatInterval"),
        )
        self._tasks: set[asyncio.Task[Any]] = set()
        self.outbox = Outbox(
            storage,
            lambda: int(dm.get("OCPPCommCtrlr", "MessageAttempts", "TransactionEvent")),
            lambda: float(dm.get("OCPPCommCtrlr", "MessageAttemptInterval", "TransactionEvent")),
        )

    # -- from the core (synchronous: called while actions are dispatched) ----------
    def transaction_event(self, a: m.TransactionEventAction) -> None:
        """Write before send: the message is in SQLite when this returns."""
        payload = transaction_event_payload(a)
        token = json.dumps(a.id_token.to_ocpp()) if a.id_token is not None else None
        self.storage.enqueue(
            rpc.new_message_id(),
            "TransactionEvent",
            payload,
            (a.transaction_id, a.evse_id, a.connector_id, a.seq_no + 1, token,
             a.event_type == "Ended"),
        )
        self.outbox.notify()

    def connector_status(self, a: m.ConnectorStatus) -> None:
        if self.online:
            self._status_notification(a)

    def authorize(self, a: m.SendAuthorize) -> None:
        self._spawn(self._authorize(a))

    def notify_events(self, event_data: list[dict[str, Any]]) -> None:
        """Monitoring events: sent now, or kept per OfflineQueuingSeverity (N07)."""
        for request in self.monitoring.notify_event_requests(event_data, self._now(), self.online):
            self._volatile.put_nowait(("NotifyEvent", request))

    def meter_values(self, a: m.SendMeterValues) -> None:
        if self.online:
            payload = {"evseId": a.evse_id, "meterValue": meter_values_payload(a.meter_values)}
            self._volatile.put_nowait(("MeterValues", payload))

    # -- the session on one connection ---------------------------------------------
    async def session(self, endpoint: Endpoint) -> None:
        self._endpoint = endpoint
        self.connected = True
        try:
            if self.registration != "Accepted":
                await self._boot(endpoint)
            self._went_online()
            await asyncio.gather(
                self._heartbeats(endpoint),
                self.outbox.drain(self._send_queued, self._queued_answered),
                self._send_volatile(endpoint),
            )
        except CallFailed as failure:
            if failure.kind != "closed":
                raise
        finally:
            self._went_offline()

    def _went_online(self) -> None:
        self.online = True
        self.port.feed(m.ConnectionChanged(True))
        threshold = float(self.dm.get("OCPPCommCtrlr", "OfflineThreshold"))
        long_offline = (
            self._offline_since is None or time.monotonic() - self._offline_since > threshold
        )
        for status in self.port.connector_statuses():
            key = (status.evse_id, status.connector_id)
            if long_offline or self._reported.get(key) != status.status:
                self._status_notification(status)  # B01.FR.05; changes after a short outage
        self._offline_since = None
        for request in self.monitoring.flush(self._now()):
            self._volatile.put_nowait(("NotifyEvent", request))

    def _went_offline(self) -> None:
        was_online = self.online
        self.connected = self.online = False
        self._endpoint = None
        if was_online:
            self._offline_since = time.monotonic()
            self.port.feed(m.ConnectionChanged(False))
        self.storage.mark_unsent_offline()  # E11.FR.07
        self.device_model.connection_lost()
        while not self._volatile.empty():
            self._undelivered(*self._volatile.get_nowait())

    def _undelivered(self, action: str, payload: dict[str, Any]) -> None:
        if action == "NotifyEvent":
            self.monitoring.queue_offline(payload["eventData"])

    async def _boot(self, endpoint: Endpoint) -> None:
        reason = self.storage.get("boot_reason", "PowerUp")
        while True:
            payload = {"reason": reason, "chargingStation": self.port.boot_info}
            try:
                response = await self._call(endpoint, "BootNotification", payload)
            except CallFailed as failure:
                if failure.kind == "closed":
                    raise
                log.warning("BootNotification failed: %s; retrying in 30 s", failure)
                await self._sleep_or_trigger(30)
                continue
            self.registration = response["status"]
            self.first_answer.set()
            interval = int(response.get("interval", 0))
            log.info("BootNotification %s (interval %d s)", self.registration, interval)
            if self.registration == "Accepted":
                if interval > 0:  # B01.FR.04
                    self.dm.set_factory(VariableKey("OCPPCommCtrlr", "HeartbeatInterval"), interval)
                self.storage.put("boot_reason", "PowerUp")
                return
            await self._sleep_or_trigger(interval if interval > 0 else 60)  # B02.FR.07/08

    async def _sleep_or_trigger(self, seconds: float) -> None:
        self._boot_wake.clear()
        try:
            await asyncio.wait_for(self._boot_wake.wait(), seconds)
        except TimeoutError:
            pass

    async def _heartbeats(self, endpoint: Endpoint) -> None:
        while True:
            interval = float(self.dm.get("OCPPCommCtrlr", "HeartbeatInterval"))
            idle = time.monotonic() - self._last_sent
            if idle < interval:
                self._heartbeat_changed.clear()
                try:  # a new HeartbeatInterval from SetVariables applies at once
                    await asyncio.wait_for(self._heartbeat_changed.wait(), interval - idle)
                except TimeoutError:
                    pass
                continue
            await self._heartbeat(endpoint)

    async def _heartbeat(self, endpoint: Endpoint) -> None:
        try:
            await self._call(endpoint, "Heartbeat", {})
        except CallFailed as failure:
            if failure.kind == "closed":
                raise
            log.warning("Heartbeat failed: %s", failure)

    async def _send_volatile(self, endpoint: Endpoint) -> None:
        while True:
            action, payload = await self._volatile.get()
            try:
                await self._call(endpoint, action, payload)
            except CallFailed as failure:
                self._undelivered(action, payload)
                if failure.kind == "closed":
                    raise
                log.warning("%s failed: %s", action, failure)

    async def _send_pages(self, action: str, pages: list[dict[str, Any]]) -> None:
        """Report pages, in order, right after the answer that announced them (allowed
        while Pending, B02.FR.02)."""
        endpoint = self._endpoint
        for page in pages:
            if endpoint is None:
                return
            try:
                await self._call(endpoint, action, page)
            except CallFailed as failure:
                log.warning("%s seqNo %s failed: %s; report abandoned", action,
                            page.get("seqNo"), failure)
                return

    async def _send_queued(self, msg: QueuedMessage) -> dict[str, Any]:
        endpoint = self._endpoint
        if endpoint is None:
            raise CallFailed("closed")
        return await self._call(endpoint, msg.action, msg.payload, msg.message_id)

    def _queued_answered(self, msg: QueuedMessage, response: dict[str, Any]) -> None:
        info = response.get("idTokenInfo")
        if info is not None:
            tx_id = msg.payload["transactionInfo"]["transactionId"]
            self.port.feed(m.TransactionResponse(tx_id, info["status"]))
        if msg.payload.get("eventType") == "Ended":
            self.storage.prune_transactions()

    async def _call(
        self, endpoint: Endpoint, action: str, payload: dict[str, Any], mid: str | None = None
    ) -> dict[str, Any]:
        timeout = float(self.dm.get("OCPPCommCtrlr", "MessageTimeout", "Default"))
        self._last_sent = time.monotonic()
        return await endpoint.call(action, payload, timeout, mid)

    def _status_notification(self, s: m.ConnectorStatus) -> None:
        self._reported[(s.evse_id, s.connector_id)] = s.status
        payload = {
            "timestamp": rpc.timestamp(s.timestamp),
            "connectorStatus": s.status,
            "evseId": s.evse_id,
            "connectorId": s.connector_id,
        }
        self._volatile.put_nowait(("StatusNotification", payload))

    async def _authorize(self, a: m.SendAuthorize) -> None:
        endpoint, status, evse_ids = self._endpoint, None, ()
        if endpoint is not None and self.online:
            try:
                request = {"idToken": a.id_token.to_ocpp()}
                response = await self._call(endpoint, "Authorize", request)
                info = response["idTokenInfo"]
                status, evse_ids = info["status"], tuple(info.get("evseId", ()))
            except CallFailed as failure:
                log.warning("Authorize failed: %s; deciding offline", failure)
        self.port.feed(m.AuthorizeResult(a.request_id, a.id_token, status, evse_ids))

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- CSMS-initiated requests -----------------------------------------------------
    async def handle(self, call: rpc.Call) -> Reply:
        if self.registration == "Rejected":
            raise rpc.RpcError("SecurityError", "the CSMS rejected this station (B03.FR.08)")
        handler = self._handlers().get(call.action)
        if handler is None:
            raise rpc.RpcError("NotImplemented", f"{call.action} is not implemented")
        return await handler(call.payload)

    def _handlers(self) -> dict[str, Callable[[dict[str, Any]], Awaitable[Reply]]]:
        return {
            **self.device_model.handlers(),
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
        # The next BootNotification says why (TC_B_21_CS: ScheduledReset when it waited).
        reason = {"Scheduled": "ScheduledReset", "Accepted": "RemoteReset"}.get(status)
        if reason:
            self.storage.put("boot_reason", reason)
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
        endpoint = self._endpoint
        if what == "BootNotification":
            if self.registration == "Accepted":
                return Reply({"status": "Rejected"})  # F06.FR.17
            return Reply({"status": "Accepted"}, self._wake_boot)
        if self.registration != "Accepted" and what not in ("Heartbeat", "StatusNotification"):
            return Reply({"status": "Rejected"})
        if what == "Heartbeat" and endpoint is not None:
            return Reply({"status": "Accepted"}, lambda: self._heartbeat(endpoint))
        if what == "StatusNotification":
            statuses = [
                s for s in self.port.connector_statuses()
                if evse_id in (None, s.evse_id)
                and evse.get("connectorId") in (None, s.connector_id)
            ]
            return Reply({"status": "Accepted"}, lambda: self._queue_statuses(statuses))
        # F06.FR.04: the response goes first, the triggered message after it.
        if what == "MeterValues":
            return Reply({"status": "Accepted"}, self._after_feed(m.TriggerMeterValues(evse_id)))
        if what == "TransactionEvent":
            running = self.port.transaction_ids()
            if not any(evse_id in (None, e) for e in running):
                return Reply({"status": "Rejected"})
            return Reply(
                {"status": "Accepted"}, self._after_feed(m.TriggerTransactionEvent(evse_id))
            )
        return Reply({"status": "NotImplemented"})  # F06.FR.08

    def _after_feed(self, event: m.Event) -> Callable[[], Awaitable[None]]:
        async def feed() -> None:
            self.port.feed(event)

        return feed

    async def _wake_boot(self) -> None:
        self._boot_wake.set()

    async def _queue_statuses(self, statuses: list[m.ConnectorStatus]) -> None:
        for s in statuses:
            self._status_notification(s)

