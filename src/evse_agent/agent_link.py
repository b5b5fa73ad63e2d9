"""The agent's CSMS side: connecting with the network profiles and back-off, the
OCPP adapter for the version in use, and the security settings it depends on (a mixin
of `agent.Agent`)."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from .config import ConfigError
from .core import messages as m
from .ocpp import connection
from .ocpp.connection import Backoff, Endpoint
from .ocpp.network_profiles import handlers_16, handlers_201
from .ocpp.v16 import V16Adapter
from .ocpp.v201 import V201Adapter
from .security import redaction

if TYPE_CHECKING:
    from evse_hal.clock import Clock

    from .config import Config
    from .core.station import RequestResult, Station
    from .device_model.model import DeviceModel
    from .firmware.service import FirmwareService
    from .hardware import Hardware
    from .logs.jobs import LogUploads
    from .monitoring import MonitoringEngine
    from .ocpp.certificate_service import CertificateService
    from .ocpp.dialer import Dialer
    from .ocpp.network_profiles import NetworkProfiles
    from .ocpp.security_events import InvalidMessageAudit
    from .security import Security
    from .storage import Storage
    from .systemd import Notifier

log = logging.getLogger("evse_agent")


class CsmsLink:
    cfg: Config
    clock: Clock
    storage: Storage
    dm: DeviceModel
    security: Security
    certificates: CertificateService
    network: NetworkProfiles
    log_uploads: LogUploads
    monitoring: MonitoringEngine
    firmware: FirmwareService
    hw: Hardware
    station: Station
    systemd: Notifier
    adapter: V201Adapter | V16Adapter
    _dialer: Dialer
    _reconnect: asyncio.Event
    _invalid_messages: InvalidMessageAudit

    if TYPE_CHECKING:  # provided by Agent
        def feed(self, event: m.Event) -> RequestResult | None: ...

    async def _connection(self) -> None:
        """Connect with the network profiles in order (B10), reconnect with back-off
        (OCPP-J Part 4 §5.3); a profile that fails NetworkProfileConnectionAttempts times
        gives way to the next, and to the last one that worked (ocpp/network_profiles.py)."""
        attempts = self.network.attempts()
        backoff = Backoff(0, 0, 0)
        while True:
            backoff.wait_minimum = float(self.dm.get("OCPPCommCtrlr", "RetryBackOffWaitMinimum"))
            backoff.repeat_times = int(self.dm.get("OCPPCommCtrlr", "RetryBackOffRepeatTimes"))
            backoff.random_range = float(self.dm.get("OCPPCommCtrlr", "RetryBackOffRandomRange"))
            ping = int(self.dm.get("OCPPCommCtrlr", "WebSocketPingInterval")) or None
            profile = attempts.next()
            if profile is None:
                log.error("no usable network connection profile: check [ocpp] in %s",
                          self.cfg.path)
                await asyncio.sleep(60)
                continue
            url = connection.station_url(profile.csms_url, self.cfg.station_id)
            try:
                ws, version = await self._dialer.dial(profile, ping, profile.message_timeout)
            except Exception as err:  # refused, TLS, handshake, subprotocol: all retried
                attempts.failed()
                wait = backoff.next_wait()
                log.warning("cannot reach CSMS at %s: %s; retrying in %.1f s", url, _reason(err),
                            wait)
                self.systemd.status(f"offline: cannot reach CSMS at {url}: {_reason(err)}")
                await asyncio.sleep(wait)
                continue
            backoff.failures = 0
            profile = attempts.succeeded(profile)
            self._dialer.connected()
            log.info("connected to %s (OCPP %s) with security profile %d", url, version,
                     profile.security_profile)
            self.systemd.status(f"connected to CSMS at {url} (OCPP {version})")
            self._use_version(version)
            endpoint = Endpoint(ws, version, self.adapter.handle, self._invalid_messages)
            receiver = asyncio.ensure_future(endpoint.run())
            session = asyncio.ensure_future(self.adapter.session(endpoint))
            self._reconnect.clear()
            reconnect = asyncio.ensure_future(self._reconnect.wait())
            try:
                await asyncio.wait([receiver, session, reconnect],
                                   return_when=asyncio.FIRST_COMPLETED)
            finally:
                session.cancel()
                reconnect.cancel()
                await ws.close()
                await asyncio.gather(receiver, session, reconnect, return_exceptions=True)
            if not session.cancelled() and session.exception():
                log.error("session failed: %r", session.exception())
            if self._reconnect.is_set():  # 1.6 A05.FR.06/07: at once, with the new profile
                attempts = self.network.attempts()
                continue
            wait = backoff.next_wait()
            log.warning("connection to CSMS lost; reconnecting in %.1f s", wait)
            self.systemd.status("offline: connection to CSMS lost; reconnecting")
            await asyncio.sleep(wait)

    def _secrets(self) -> list[str]:
        password = str(self.dm.get("SecurityCtrlr", "BasicAuthPassword") or "")
        return [*redaction.basic_auth_forms(self.cfg.station_id, password),
                *self.network.secrets()]

    def _check_security_profile(self) -> None:
        """Profile 2 or 3 from the TOML without the root / certificate it needs cannot
        connect at all: one line at start-up (the CLI exits 2)."""
        first = (self.network.candidates() or [None])[0]
        if first is None or first.security_profile < 2 or first.slot != 1:
            return
        from .security.tls import can_use_profile

        problem = can_use_profile(first.security_profile, self.security)
        if problem is not None:
            raise ConfigError(f"{self.cfg.path}: ocpp.security_profile: {problem}")

    def reconnect(self) -> None:
        """Close the connection and connect again (1.6 SecurityProfile raised)."""
        self._reconnect.set()

    def _make_adapter(self, version: str) -> V201Adapter | V16Adapter:
        """The adapter for `version`. The queue holds messages in the words of the
        version that wrote them (kv "ocpp_version"; none stored: 2.0.1, the only one
        before 1.6 came): another version cannot send them, so they are dropped, loudly."""
        wrote = str(self.storage.get("ocpp_version", "2.0.1"))
        stale = self.storage.queued() if wrote != version else []
        if stale:
            log.error("%d queued OCPP %s message(s) cannot be sent over OCPP %s: discarded",
                      len(stale), wrote, version)
        for msg in stale:
            self.storage.dequeue(msg.id)
        if self.storage.get("ocpp_version") != version:
            self.storage.put("ocpp_version", version)
        adapter: V201Adapter | V16Adapter
        if version == "1.6":
            adapter = V16Adapter(
                self, self.storage, self.dm, self.clock.now, lambda: self.station.evses
            )
        else:
            adapter = V201Adapter(self, self.storage, self.dm, self.monitoring, self.clock.now)
        adapter.use_security_log(self.security.events)
        if isinstance(adapter, V201Adapter):
            adapter.overrides.update(handlers_201(
                self.network, self.dm, adapter.handlers()["SetVariables"]
            ))
        else:
            adapter.overrides.update(handlers_16(
                self.network, adapter.handlers()["ChangeConfiguration"], self.reconnect
            ))
        adapter.use_certificates(self.certificates)
        adapter.use_logs(self.log_uploads)
        adapter.use_firmware(self.firmware)
        if isinstance(adapter, V201Adapter):
            adapter.iso15118.bridge_for = self._ev_bridge
        return adapter

    def _ev_bridge(self, evse_id: int) -> Any:
        """The EVSE's EV-communication module: the configured one, else the mock's."""
        devices = self.hw.evses.get(evse_id)
        if devices is None:
            return None
        if devices.bridge is not None:
            return devices.bridge
        return self.hw.mock.evse(evse_id).ev_bridge if self.hw.mock is not None else None

    def _security_setting_changed(self, key: Any, value: object) -> None:
        """A04: security parameters changed (SetVariables / ChangeConfiguration); the
        value is never logged (a password may be among them)."""
        if key.component == "SecurityCtrlr":
            self.security.events.record(
                "ReconfigurationOfSecurityParameters", f"{key.component}.{key.variable} set"
            )

    def _use_version(self, version: str) -> None:
        """The version the CSMS accepted; with "auto" it may not be the one the adapter
        speaks (the CSMS changed): a new adapter takes over."""
        if version == self.adapter.version:
            return
        log.warning("the CSMS chose OCPP %s: switching from %s", version, self.adapter.version)
        self.adapter = self._make_adapter(version)
        self.feed(m.Tick())  # the new adapter learns the connector statuses


def _reason(err: BaseException) -> str:
    text = str(err) or type(err).__name__
    return text.splitlines()[0][:200]


def _frame_logger(direction: str, frame: str) -> None:
    logging.getLogger("evse_agent.frames").debug("%s %s", direction, frame)
