"""What every OCPP version's adapter does the same way, on each websocket connection:
BootNotification until Accepted (B01-B03; 1.6 §4.2), StatusNotification for every
connector, then heartbeats, the durable transaction queue and the other messages side
by side until the connection drops. Subclasses say how each thing is spelled.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from ..aio import wait_event
from ..core import messages as m
from ..core.station import RequestResult
from ..device_model.model import DeviceModel, VariableKey
from ..storage import QueuedMessage, Storage
from . import rpc
from .connection import CallFailed, Endpoint, Reply
from .outbox import Outbox
from .security_events import SecurityEventSender, payload_for

if TYPE_CHECKING:
    from ..security.events import SecurityEventLog

log = logging.getLogger("evse_agent.ocpp")

Handler = Callable[[dict[str, Any]], Awaitable[Reply]]


class StationPort(Protocol):
    """What the adapters need from the agent."""

    station_id: str
    boot_info: dict[str, Any]

    def feed(self, event: m.Event) -> RequestResult | None: ...

    def connector_statuses(self) -> list[m.ConnectorStatus]: ...

    def evse_ids(self) -> list[int]: ...

    def transaction_ids(self) -> dict[int, str]: ...

    async def unlock(self, evse_id: int, connector_id: int) -> bool: ...

    def persist_availability(self, evse_id: int | None, operative: bool) -> None: ...

    def schedule_restart(self) -> None: ...


class Session:
    version = ""

    def __init__(
        self, port: StationPort, storage: Storage, dm: DeviceModel, now: Callable[[], datetime]
    ) -> None:
        self.port = port
        self.storage = storage
        self.dm = dm
        self._now = now
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
        # Handlers the agent adds or wraps (network profiles: ocpp/network_profiles.py).
        self.overrides: dict[str, Handler] = {}
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
        self.security_events: SecurityEventSender | None = None  # use_security_log()

    # -- spelled by each version ---------------------------------------------------------
    def boot_payload(self, reason: str) -> dict[str, Any]:
        raise NotImplementedError

    def status_payload(self, s: m.ConnectorStatus) -> dict[str, Any]:
        raise NotImplementedError

    def authorize_payload(self, token: m.IdToken) -> dict[str, Any]:
        raise NotImplementedError

    def authorize_answer(self, response: dict[str, Any]) -> tuple[str, tuple[int, ...]]:
        raise NotImplementedError

    def handlers(self) -> dict[str, Handler]:
        raise NotImplementedError

    def queued_answered(self, msg: QueuedMessage, response: dict[str, Any]) -> None:
        """The CSMS answered a queued transaction message."""

    def undelivered(self, action: str, payload: dict[str, Any]) -> None:
        """A volatile message could not be delivered (dropped unless overridden)."""

    def back_online(self) -> None:
        """Connected and Accepted again: flush what waited for it."""

    def link_lost(self) -> None:
        """The connection dropped."""

    # -- from the core (synchronous: called while actions are dispatched) ----------------
    def connector_status(self, a: m.ConnectorStatus) -> None:
        if self.online:
            self._status_notification(a)

    def authorize(self, a: m.SendAuthorize) -> None:
        self._spawn(self._authorize(a))

    # -- the session on one connection ---------------------------------------------------
    async def session(self, endpoint: Endpoint) -> None:
        self._endpoint = endpoint
        self.connected = True
        try:
            if self.registration != "Accepted":
                await self._boot(endpoint)
            self._went_online()
            await asyncio.gather(
                self._heartbeats(endpoint),
                self.outbox.drain(self._send_queued, self.queued_answered),
                self._send_volatile(endpoint),
                self._send_security_events(endpoint),
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
        self.back_online()

    def _went_offline(self) -> None:
        was_online = self.online
        self.connected = self.online = False
        self._endpoint = None
        if was_online:
            self._offline_since = time.monotonic()
            self.port.feed(m.ConnectionChanged(False))
        self.storage.mark_unsent_offline()  # E11.FR.07
        self.link_lost()
        while not self._volatile.empty():
            self.undelivered(*self._volatile.get_nowait())

    async def _boot(self, endpoint: Endpoint) -> None:
        reason = self.storage.get("boot_reason", "PowerUp")
        while True:
            try:
                response = await self._call(endpoint, "BootNotification", self.boot_payload(reason))
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
        await wait_event(self._boot_wake, seconds)

    async def _heartbeats(self, endpoint: Endpoint) -> None:
        while True:
            interval = float(self.dm.get("OCPPCommCtrlr", "HeartbeatInterval"))
            idle = time.monotonic() - self._last_sent
            if idle < interval:
                self._heartbeat_changed.clear()
                # a new HeartbeatInterval from SetVariables applies at once
                await wait_event(self._heartbeat_changed, interval - idle)
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
                self.undelivered(action, payload)
                if failure.kind == "closed":
                    raise
                log.warning("%s failed: %s", action, failure)

    def use_security_log(self, events: SecurityEventLog) -> None:
        """Critical security events go out as SecurityEventNotification (A04)."""
        self.security_events = SecurityEventSender(
            events,
            lambda: float(self.dm.get("OCPPCommCtrlr", "MessageAttemptInterval",
                                      "TransactionEvent")),
        )

    async def _send_security_events(self, endpoint: Endpoint) -> None:
        if self.security_events is None:
            return
        while not self._volatile.empty():  # connector statuses first (TC_B_21_CS)
            await asyncio.sleep(0.01)

        async def send(action: str, payload: dict[str, Any], message_id: str) -> dict[str, Any]:
            # bound to this connection: a drain that outlives it fails instead of
            # sending a second copy over the next one
            return await self._call(
                endpoint, action, payload_for(self.version, payload), message_id
            )

        await self.security_events.drain(send)

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

    async def _call(
        self, endpoint: Endpoint, action: str, payload: dict[str, Any], mid: str | None = None
    ) -> dict[str, Any]:
        timeout = float(self.dm.get("OCPPCommCtrlr", "MessageTimeout", "Default"))
        self._last_sent = time.monotonic()
        return await endpoint.call(action, payload, timeout, mid)

    def _status_notification(self, s: m.ConnectorStatus) -> None:
        self._reported[(s.evse_id, s.connector_id)] = s.status
        self._volatile.put_nowait(("StatusNotification", self.status_payload(s)))

    async def _authorize(self, a: m.SendAuthorize) -> None:
        endpoint, status, evse_ids = self._endpoint, None, ()
        if endpoint is not None and self.online:
            try:
                response = await self._call(
                    endpoint, "Authorize", self.authorize_payload(a.id_token)
                )
                status, evse_ids = self.authorize_answer(response)
            except CallFailed as failure:
                log.warning("Authorize failed: %s; deciding offline", failure)
        self.port.feed(m.AuthorizeResult(a.request_id, a.id_token, status, evse_ids))

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- CSMS-initiated requests ---------------------------------------------------------
    async def handle(self, call: rpc.Call) -> Reply:
        if self.registration == "Rejected":
            raise rpc.RpcError("SecurityError", "the CSMS rejected this station (B03.FR.08)")
        handler = self.overrides.get(call.action) or self.handlers().get(call.action)
        if handler is None:
            raise rpc.RpcError("NotImplemented", f"{call.action} is not implemented")
        return await handler(call.payload)

    def after_feed(self, event: m.Event) -> Callable[[], Awaitable[None]]:
        """Feed `event` once the response is on the wire (F06.FR.04)."""

        async def feed() -> None:
            self.port.feed(event)

        return feed

    async def wake_boot(self) -> None:
        self._boot_wake.set()

    async def queue_statuses(self, statuses: list[m.ConnectorStatus]) -> None:
        for s in statuses:
            self._status_notification(s)

    async def heartbeat_now(self) -> None:
        if self._endpoint is not None:
            await self._heartbeat(self._endpoint)

    def reset_reason(self, status: str) -> None:
        """The next BootNotification says why (TC_B_21_CS: ScheduledReset when it waited)."""
        reason = {"Scheduled": "ScheduledReset", "Accepted": "RemoteReset"}.get(status)
        if reason:
            self.storage.put("boot_reason", reason)
