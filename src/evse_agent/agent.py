"""The composition root: config -> storage and device model -> HAL -> core -> OCPP.

This is the only place that awaits on behalf of the core: HAL events, CSMS requests
and timer ticks go in through `feed`, which runs the core and dispatches its actions
(HAL commands in order on one worker, OCPP messages to the adapter). The loops live in
mixins: agent_hardware.py (devices, meters), agent_link.py (CSMS connection, adapter),
agent_sim.py (mock control API).
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from typing import Any

from evse_hal.clock import Clock, SystemClock
from evse_hal.interfaces import DeviceError, DeviceFault, HalEvent

from . import __version__
from .agent_hardware import METER_OFFLINE, HardwareLoops
from .agent_link import CsmsLink, _frame_logger
from .agent_sim import SimView
from .aio import wait_event
from .config import Config
from .core import messages as m
from .core.station import RequestResult, Station
from .device_model.live import LiveFeed
from .device_model.setup import build_device_model
from .hardware import Hardware, build
from .logs import files as log_files
from .logs.jobs import LogUploads
from .monitoring import MonitoringEngine
from .ocpp import rpc
from .ocpp.certificate_service import CertificateService
from .ocpp.dialer import Dialer
from .ocpp.network_profiles import NetworkProfiles
from .ocpp.security_events import InvalidMessageAudit
from .ocpp.v16 import V16Adapter
from .ocpp.v201 import V201Adapter
from .security import open_security, redaction
from .storage import Storage
from .systemd import Notifier

__all__ = ["METER_OFFLINE", "RESTART", "Agent"]

log = logging.getLogger("evse_agent")

RESTART = 3  # run() result asking the CLI to re-exec the process


class Agent(HardwareLoops, CsmsLink, SimView):
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
