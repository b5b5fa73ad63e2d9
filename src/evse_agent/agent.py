"""The composition root: config -> storage and device model -> HAL -> core -> OCPP.

This is the only place that awaits on behalf of the core: HAL events, CSMS requests
and timer ticks go in through `feed`, which runs the core and dispatches its actions
(HAL commands in order on one worker, OCPP messages to the adapter).
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import uuid
from typing import Any

from evse_hal.clock import Clock, SystemClock
from evse_hal.interfaces import DeviceError, DeviceFault, HalEvent, PilotChanged

from . import __version__
from .aio import wait_event
from .config import Config, ConfigError
from .core import messages as m
from .core.station import RequestResult, Station
from .device_model.live import LiveFeed
from .device_model.setup import build_device_model
from .hardware import Hardware, build
from .logs import files as log_files
from .logs.jobs import LogUploads
from .monitoring import MonitoringEngine
from .ocpp import connection, rpc
from .ocpp.certificate_service import CertificateService
from .ocpp.connection import Backoff, Endpoint
from .ocpp.dialer import Dialer
from .ocpp.iso15118 import ISO15118_EVENTS, refuse_on_16
from .ocpp.network_profiles import NetworkProfiles, handlers_16, handlers_201
from .ocpp.security_events import InvalidMessageAudit
from .ocpp.v16 import V16Adapter
from .ocpp.v201 import V201Adapter
from .security import open_security, redaction
from .storage import Storage
from .systemd import Notifier

log = logging.getLogger("evse_agent")

RESTART = 3  # run() result asking the CLI to re-exec the process
METER_OFFLINE = "offline"  # the DeviceFault of a meter without a reading (as the HAL's)


class Agent:
    def __init__(self, cfg: Config, clock: Clock | None = None) -> None:
        self.cfg = cfg
        self.clock = clock or SystemClock()
        self.station_id = cfg.station_id
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        # The diagnostics log (N01): rotated, bounded files; redaction.install below
        # puts the secret filter on this handler too.
        self.log_file = log_files.attach(
            cfg.data_dir / "logs", cfg.log_max_bytes, cfg.log_backup_count
        )
        self.storage = Storage(cfg.data_dir / "evse-agent.db")
        self.dm = build_device_model(
            cfg, self.storage, __version__, lambda: rpc.timestamp(self.clock.now())
        )
        self.live = LiveFeed(self.dm)
        self.security = open_security(cfg, self.storage, self.clock.now)
        # CSRs, their back-off and renewal: one service across OCPP version switches.
        self.certificates = CertificateService(
            self.security, self.dm, cfg.serial_number[:25], self.clock.now,
            lambda: self._rearm.set(),
        )
        self.dm.subscribe(self._security_setting_changed)
        self._invalid_messages = InvalidMessageAudit(
            self.security.events, self.clock.monotonic, _frame_logger
        )
        # Network profiles (B09/B10) and the security profile; secrets out of every log.
        self.network = NetworkProfiles(cfg, self.storage, self.dm, self.security)
        self._dialer = Dialer(
            cfg.station_id, lambda: str(self.dm.get("SecurityCtrlr", "BasicAuthPassword") or ""),
            self.security, lambda: bool(self.dm.get("SecurityCtrlr", "AllowCSMSTLSWildcards")),
        )
        self._reconnect = asyncio.Event()
        redaction.install(self._secrets)
        self.log_uploads = LogUploads(
            self.log_file.directory, cfg.data_dir / "log-uploads", cfg.station_id,
            self.security.events, self.clock.now,
            secrets=self._secrets,
            tls_roots=lambda: self.security.certificates.trusted_pem("CSMSRootCertificate"),
            method=cfg.log_upload_method,
        )
        self._check_security_profile()
        self.hw: Hardware = build(cfg, self.clock)
        inoperative = set(self.storage.get("inoperative", []))
        self.station = Station(
            cfg.evse_count, self.dm, lambda: str(uuid.uuid4()), inoperative, cfg.max_current_a
        )
        self.monitoring = MonitoringEngine(
            self.dm,
            persist=lambda state: self.storage.put("monitoring", state),
            load=self.storage.get("monitoring"),
            transactions=self.station.transaction_ids,
        )
        # Signed firmware updates (block L); the installer counts this start (trial).
        from .firmware.service import FirmwareService

        self.firmware = FirmwareService(cfg, self.storage, self.security, self, self.clock.now,
                                        self.dm)
        running_version = self.firmware.open(__version__)
        self.firmware.publish_version(self.dm, running_version)  # Controller.FirmwareVersion
        # "auto" starts with the CSMS's last choice: what is queued before the first
        # connection is then spelled the way it will be sent.
        version = cfg.ocpp_version
        last = str(self.storage.get("ocpp_version", "2.0.1"))
        self.adapter: V201Adapter | V16Adapter = self._make_adapter(
            last if version == "auto" else version
        )
        self.boot_info: dict[str, Any] = {
            "model": cfg.model[:20],
            "vendorName": cfg.vendor[:50],
            "serialNumber": cfg.serial_number[:25],
            "firmwareVersion": running_version[:50],  # the active slot's bundle version
        }
        self._hw_commands: asyncio.Queue[m.Action] = asyncio.Queue()
        self._rearm = asyncio.Event()
        self._meter_wake = asyncio.Event()
        self._hal_events: asyncio.Queue[HalEvent] = asyncio.Queue()
        self._stopping = asyncio.Event()
        self._restart = False
        self._statuses: dict[tuple[int, int], m.ConnectorStatus] = {}
        self._sim: Any = None
        self._meter_faults: set[int] = set()
        self.systemd = Notifier()

    # -- StationPort (for the OCPP adapters) --------------------------------------
    def feed(self, event: m.Event) -> RequestResult | None:
        now = self.clock.now()
        actions = self.station.handle(event, now)
        result = self.station.last_result
        self.live.hal_event(event)
        events = []
        if isinstance(event, DeviceFault):  # hard-wired monitors (N07)
            events += self.monitoring.device_fault(
                event.device, event.evse_id, event.fault, event.active, now
            )
        elif isinstance(event, m.MeterSampled):
            self.live.meter_reading(event.evse_id, event.reading)
        elif isinstance(event, m.ResetRequested) and result is not None:
            if result.status in ("Accepted", "Scheduled"):
                self.security.events.record(
                    "ResetOrReboot", f"Reset requested by the CSMS: {result.status}"
                )
        self._dispatch(actions)
        self.firmware.station_changed()  # installation waits for transactions (L01.FR.06)
        if isinstance(event, m.ConnectionChanged) and event.online:
            self.firmware.registration_accepted()  # a new version passes its trial
        if isinstance(self.adapter, V16Adapter):
            self.adapter.station_changed()  # 1.6 statuses follow the whole EVSE state
        events += self.monitoring.drain_events(now)
        if isinstance(event, m.Tick):
            events += self.monitoring.tick(now)
        if events:
            self.adapter.notify_events(events)
        self._rearm.set()
        if self._sim is not None:
            self._sim.notify()
        return result

    def connector_statuses(self) -> list[m.ConnectorStatus]:
        if isinstance(self.adapter, V16Adapter):  # 1.6 names, and connector 0
            return self.adapter.connector_statuses()
        return list(self._statuses.values())

    def evse_ids(self) -> list[int]:
        return list(self.station.evses)

    def transaction_ids(self) -> dict[int, str]:
        return self.station.transaction_ids()

    async def unlock(self, evse_id: int, connector_id: int) -> bool:
        return await self.hw.evses[evse_id].lock.unlock()

    def persist_availability(self, evse_id: int | None, operative: bool) -> None:
        targets = {evse_id} if evse_id else set(self.station.evses)
        stored = set(self.storage.get("inoperative", []))
        stored = stored - targets if operative else stored | targets
        self.storage.put("inoperative", sorted(stored))

    def schedule_restart(self) -> None:
        self._restart = True
        self._stopping.set()

    # -- FirmwarePort (firmware/service.py) -------------------------------------------
    def operative_evses(self) -> list[int]:
        return [i for i, e in self.station.evses.items()
                if e.operative and not e.pending_inoperative]

    def firmware_notify(self, n: Any) -> None:
        handlers = getattr(self.adapter, "firmware", None)
        if handlers is not None:
            handlers.notify(n)

    # -- dispatch ------------------------------------------------------------------
    def _dispatch(self, actions: list[m.Action]) -> None:
        for a in actions:
            match a:
                case m.TransactionEventAction():
                    log.info(
                        "transaction %s %s seq %d (%s)",
                        a.transaction_id[:8], a.event_type, a.seq_no, a.trigger_reason,
                    )
                    self.adapter.transaction_event(a)
                case m.ConnectorStatus():
                    log.info("EVSE %d connector %s", a.evse_id, a.status)
                    self._statuses[(a.evse_id, a.connector_id)] = a
                    self.live.connector_status(a.evse_id, a.connector_id, a.status)
                    self.adapter.connector_status(a)
                case m.SendAuthorize():
                    self.adapter.authorize(a)
                case m.SendMeterValues():
                    self.adapter.meter_values(a)
                case m.RestartStation():
                    log.info("all transactions ended: restarting")
                    asyncio.get_running_loop().call_later(0.5, self.schedule_restart)
                case m.Log():
                    log.info("%s %s", a.text, a.fields or "")
                case m.ShowText():
                    self.live.display_text(a.text)
                    self._hw_commands.put_nowait(a)
                case _:
                    self._hw_commands.put_nowait(a)

    async def _hardware_worker(self) -> None:
        while True:
            a = await self._hw_commands.get()
            try:
                match a:
                    case m.OfferCurrent():
                        await self.hw.evses[a.evse_id].pilot.set_offered_current(a.amps)
                    case m.CloseContactor():
                        log.info("EVSE %d contactor close", a.evse_id)
                        await self.hw.evses[a.evse_id].contactor.close()
                    case m.OpenContactor():
                        log.info("EVSE %d contactor open", a.evse_id)
                        await self.hw.evses[a.evse_id].contactor.open()
                    case m.ReleaseConnector():
                        await self.hw.evses[a.evse_id].lock.unlock()
                    case m.ShowText():
                        await self.hw.display.show(a.text)
            except DeviceError as err:
                log.error("%s", err)
            except Exception as err:  # a backend bug must not end the worker
                device = _device_of(a)
                log.error("%s on EVSE %s failed: %s", device, getattr(a, "evse_id", 0),
                          _reason(err))
                log.debug("%s failed", type(a).__name__, exc_info=True)
                self.feed(DeviceFault(device, getattr(a, "evse_id", 0), "internal error"))

    def _hal_event(self, event: HalEvent) -> None:
        self._hal_events.put_nowait(event)

    async def _hal_worker(self) -> None:
        """HAL events in the order they happened. A plug or unplug is preceded by a
        fresh meter reading, so a transaction begins and ends on the exact register."""
        while True:
            event = await self._hal_events.get()
            if isinstance(event, PilotChanged) and event.evse_id in self.hw.evses:
                await self._read_meter(event.evse_id)
            if isinstance(event, ISO15118_EVENTS):  # certificates: the adapter's business
                if isinstance(self.adapter, V201Adapter):
                    contract = self.adapter.iso15118.hal_event(event)
                    if contract is not None:
                        self.feed(contract)
                else:
                    refuse_on_16(event, self._ev_bridge(event.evse_id))
                continue
            self.feed(event)
            self._meter_wake.set()  # something moved: poll at the busy rate now

    # -- loops -----------------------------------------------------------------------
    async def _timers(self) -> None:
        while True:
            self._rearm.clear()
            now = self.clock.now()
            wakes = [self.station.next_wakeup(now), self.monitoring.next_wakeup(now),
                     self.certificates.next_wakeup(now)]
            wake = min((w for w in wakes if w is not None), default=None)
            delay = None if wake is None else max(0.0, (wake - now).total_seconds())
            if not await wait_event(self._rearm, delay):
                self.feed(m.Tick())
                self.certificates.tick(self.clock.now())

    async def _meters(self) -> None:
        """Poll meters: every second while an EV is plugged, else every 30 s."""
        while True:
            await self._read_meters()
            busy = any(e.plugged or e.tx for e in self.station.evses.values())
            self._meter_wake.clear()
            await wait_event(self._meter_wake, 1.0 if busy else 30.0)

    async def _read_meters(self) -> None:
        if self.hw.mock is not None:
            self.hw.mock.sync()
        for evse_id in self.hw.evses:
            await self._read_meter(evse_id)

    async def _read_meter(self, evse_id: int) -> None:
        meter = self.hw.evses[evse_id].meter
        try:
            reading = await meter.read()
        except DeviceError as err:
            if evse_id not in self._meter_faults:
                # Fed at once, so the event that asked for this reading (an unplug) is
                # handled without the old register. A backend that supervises itself
                # reports the same "offline" fault (one fault per outage: a repeat of an
                # active fault is no news to the core or monitoring) and logs it itself.
                own = getattr(meter, "reports_faults", False)
                log.log(logging.DEBUG if own else logging.ERROR, "%s", err)
                self._meter_faults.add(evse_id)
                self.feed(DeviceFault("meter", evse_id, METER_OFFLINE))
            return
        if evse_id in self._meter_faults:
            self._meter_faults.discard(evse_id)
            self.feed(DeviceFault("meter", evse_id, METER_OFFLINE, active=False))
        self.feed(m.MeterSampled(evse_id, reading))

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

    # -- lifecycle -----------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """The whole station for the mock control API (DESIGN.md contract)."""
        snapshot = self.hw.mock.snapshot() if self.hw.mock else {"evses": []}
        hw = {e["evse_id"] if "evse_id" in e else e.get("id"): e for e in snapshot["evses"]}
        evses = []
        for evse_id, e in self.station.evses.items():
            h = self._simulated_values(evse_id, hw.get(evse_id, {}))
            evses.append({
                "id": evse_id,
                "connector_status": e.reported_status or "Available",
                "pilot": h.get("pilot", e.pilot),
                "contactor_closed": bool(h.get("contactor_closed", e.contactor_closed)),
                "offered_current_a": float(h.get("offered_current_a", e.offered_a)),
                "energy_wh": float(h.get("energy_wh", e.reading.energy_wh if e.reading else 0)),
                "power_w": float(h.get("power_w", e.reading.power_w if e.reading else 0)),
                "transaction_id": self._known_transaction_id(e.tx.id) if e.tx else None,
            })
        return {
            "ocpp": {
                "connected": self.adapter.connected,
                "version": self.adapter.version,
                "registration": self.adapter.registration,
            },
            "evses": evses,
            "display": {"text": self.hw.display.text},
        }

    def _simulated_values(self, evse_id: int, values: dict[str, Any]) -> dict[str, Any]:
        """The mock's view of an EVSE minus what real devices measure: those values come
        from the core's last observation (pilot, contactor feedback, meter sample)."""
        devices = self.hw.evses.get(evse_id)
        if devices is None:
            return values
        real = {
            "pilot": ("pilot", "offered_current_a"),
            "contactor": ("contactor_closed",),
            "meter": ("energy_wh", "power_w"),
        }
        out = dict(values)
        for role, keys in real.items():
            if not self.hw.is_simulated(getattr(devices, role)):
                for key in keys:
                    out.pop(key, None)
        return out

    def _known_transaction_id(self, local_id: str) -> str | None:
        """The id the CSMS knows: on 1.6 the integer StartTransaction.conf brought."""
        if not isinstance(self.adapter, V16Adapter):
            return local_id
        assigned = self.adapter.csms_transaction_id(local_id)
        return str(assigned) if assigned is not None else None

    async def run(self) -> int:
        """Run until stop() (exit 0) or a reset (RESTART)."""
        await self.hw.start(self._hal_event)  # DeviceError: one line naming the device
        for evse_id in self.hw.evses:  # simulated EV bridges report ISO 15118 events too
            bridge = self._ev_bridge(evse_id)
            if self.hw.evses[evse_id].bridge is None and bridge is not None:
                await bridge.start(self._hal_event)
        self.security.events.record("StartupOfTheDevice", f"evse-agent {__version__}")
        await self._read_meters()
        for tx_id, evse_id, connector_id, next_seq, token in self.storage.open_transactions():
            fields = json.loads(token) if token else None
            id_token = m.IdToken(fields["idToken"], fields["type"]) if fields else None
            log.warning("transaction %s was open at the last stop: ending it", tx_id)
            self.feed(m.RecoveredTransaction(tx_id, evse_id, connector_id or 1, next_seq,
                                             id_token))
        self.feed(m.Tick())
        self.firmware.start()
        tasks = [
            asyncio.ensure_future(c)
            for c in (
                self._hal_worker(),
                self._hardware_worker(),
                self._timers(),
                self._meters(),
                self._connection(),
                self.firmware.run(),
            )
        ]
        if self.systemd.watchdog_interval_s:
            tasks.append(asyncio.ensure_future(self._watchdog(list(tasks))))
        # Ready once the devices run and the first connection attempt has begun: a
        # station that cannot reach its CSMS still charges (offline), so it is up.
        self.systemd.ready("started; connecting to CSMS")
        if self.hw.serves_sim:
            await self._start_sim()
        await self._stopping.wait()
        await self._shutdown(tasks)
        return RESTART if self._restart else 0

    async def _start_sim(self) -> None:
        """The mock control API (aiohttp, ~0.25 s to import) comes up once the first
        BootNotification is answered, or after a second, so it never delays boot."""
        await wait_event(self.adapter.first_answer, 1.0)
        # Imported on a worker thread: the loop keeps talking to the CSMS meanwhile.
        api = await asyncio.to_thread(importlib.import_module, "evse_agent.sim.api")
        SimServer = api.SimServer  # noqa: N806 - a class

        host, port = self.cfg.sim_listen
        self._sim = SimServer(self.hw.mock, self.state, host, port, self._settle)
        await self._sim.start()

    async def _settle(self) -> None:
        """Let the events a mock action produced reach the core and the hardware."""
        for _ in range(3):
            await asyncio.sleep(0)
        while not (self._hw_commands.empty() and self._hal_events.empty()):
            await asyncio.sleep(0.01)

    def stop(self) -> None:
        self._stopping.set()

    async def _watchdog(self, loops: list[asyncio.Future[Any]]) -> None:
        """WATCHDOG=1 while the event loop turns and none of the station's loops died:
        a wedged or half-dead agent is then restarted by systemd (WatchdogSec=)."""
        interval = self.systemd.watchdog_interval_s or 1.0
        while not any(loop.done() for loop in loops):
            self.systemd.watchdog()
            await asyncio.sleep(interval)
        dead = next(loop for loop in loops if loop.done())
        error = None if dead.cancelled() else dead.exception()
        log.error("a station loop ended (%r): no more watchdog pings", error)
        self.systemd.status(f"unhealthy: a station loop ended ({error!r})")

    async def _shutdown(self, tasks: list[asyncio.Future[Any]]) -> None:
        if self._restart:  # re-exec in place: a reload to systemd, not a stop
            self.systemd.reloading("restarting")
        else:
            self.systemd.stopping("stopping")
        if self._restart:  # give queued transaction messages a moment to leave
            for _ in range(50):
                if self.storage.queue_length() == 0 or not self.adapter.online:
                    break
                await asyncio.sleep(0.1)
        for evse in self.hw.evses.values():
            try:
                await evse.contactor.open()
                await evse.pilot.set_offered_current(0)
            except DeviceError as err:
                log.error("%s", err)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._sim is not None:
            await self._sim.stop()
        await self.hw.stop()
        self.storage.close()


def _device_of(action: m.Action) -> str:
    """The HAL device a hardware command drives (DeviceFault.device)."""
    return {m.OfferCurrent: "pilot", m.CloseContactor: "contactor",
            m.OpenContactor: "contactor", m.ReleaseConnector: "lock",
            m.ShowText: "display"}.get(type(action), "hardware")


def _reason(err: BaseException) -> str:
    text = str(err) or type(err).__name__
    return text.splitlines()[0][:200]


def _frame_logger(direction: str, frame: str) -> None:
    logging.getLogger("evse_agent.frames").debug("%s %s", direction, frame)
