"""Runs the firmware update machine (update.py) at the edge: downloads, verification and
installation on worker tasks / threads, EVSE availability through the core, durable
status notifications through the adapter, the trial of a new version after restart.

The agent creates one FirmwareService; the OCPP adapters (v201_firmware.py,
v16_firmware.py) hand it UpdateFirmware requests and ask it for the current status.
cryptography, aiohttp and the bundle code are imported only when an update runs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..aio import wait_event
from ..core import messages as m
from . import update as u
from .trial import InstallError

if TYPE_CHECKING:
    from ..config import Config
    from ..device_model.model import DeviceModel
    from ..security import Security
    from ..storage import Storage
    from .bundle import Manifest
    from .installer import Installer, TrialState

log = logging.getLogger("evse_agent.firmware")

STATE_KEY = "firmware_update"
ROLLBACK_KEY = "firmware_rollback_reported"


class FirmwarePort(Protocol):
    """What the service needs from the agent."""

    def feed(self, event: m.Event) -> Any: ...

    def transaction_ids(self) -> dict[int, str]: ...

    def operative_evses(self) -> list[int]: ...

    def schedule_restart(self) -> None: ...

    def firmware_notify(self, n: u.Notify) -> None: ...


class FirmwareService:
    def __init__(self, cfg: Config, storage: Storage, security: Security, port: FirmwarePort,
                 now: Callable[[], datetime], dm: DeviceModel | None = None) -> None:
        self.cfg = cfg
        self.dm = dm
        self.storage = storage
        self.security = security
        self.port = port
        self._now = now
        self.machine = u.FirmwareUpdate()
        self.machine.restore(storage.get(STATE_KEY))
        self.installer: Installer | None = None
        self.trial: TrialState | None = None
        self._trial_deadline: float | None = None
        self._confirmed = False
        self._manifest: Manifest | None = None
        self._download: asyncio.Task[Any] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._wake = asyncio.Event()
        self._restore: list[int] = []  # EVSEs set Unavailable for the update
        self.production = cfg.firmware.production
        self.hardware_id = cfg.firmware.hardware_id or cfg.model
        self.directory = cfg.data_dir / "firmware" / "download"

    # -- start-up ------------------------------------------------------------------------
    def open(self, fallback_version: str) -> str:
        """Open the installer, count this start (trial, rollback), and return the running
        version (BootNotification firmwareVersion). Called once, before connecting; a
        broken installer leaves the station charging, unable to update (logged)."""
        from .installer import open_installer

        try:
            self.installer = open_installer(self.cfg)
            self.trial = self.installer.boot()
            running = self.installer.running_version()
        except (InstallError, OSError) as err:
            log.error("firmware installer unavailable: %s; updates are refused", err)
            self.installer = None
            return fallback_version
        failed = self.trial.rolled_back_from
        if failed:
            log.error("firmware %s failed its trial: back on %s", failed, running)
            if self.storage.get(ROLLBACK_KEY) != failed:  # once, not at every start
                self.storage.put(ROLLBACK_KEY, failed)
                self.security.events.record(
                    "FirmwareRolledBack", f"{failed} failed its trial; running {running}"
                )
        return running

    def start(self) -> None:
        """On the event loop, before connecting: the persisted update carries on."""
        running = self.running_version()
        if self.installer is not None and self.trial is not None and self.trial.on_trial:
            left = self.installer.trial_remaining_s()
            if left is not None:  # the deadline holds across restarts (wall clock)
                self._trial_deadline = time.monotonic() + left
                log.warning("firmware %s on trial: needs BootNotification Accepted within "
                            "%.0f s", running, left)
        if self.installer is not None:
            self._run(u.Booted(running))

    @staticmethod
    def publish_version(dm: DeviceModel, version: str) -> None:
        """The device model's Controller.FirmwareVersion is the active slot's version."""
        from ..device_model.model import VariableKey

        key = VariableKey("Controller", "FirmwareVersion")
        if dm.find(key) is not None:
            dm.set_factory(key, version[:50])

    def running_version(self) -> str:
        return self.installer.running_version() if self.installer is not None else ""

    # -- from the adapters ----------------------------------------------------------------
    def request(self, req: u.UpdateRequest) -> tuple[str, Callable[[], Awaitable[None]] | None]:
        """The UpdateFirmware answer, and what to do once it is on the wire. The signing
        certificate is checked before accepting (L01.FR.21/22)."""
        if self.installer is None:
            return "Rejected", None
        if req.kind != "legacy16":
            if not req.signing_certificate or not req.signature:
                log.warning("UpdateFirmware %d without signingCertificate and signature: "
                            "refused (only signed firmware is installed)", req.request_id)
                return "Rejected", None  # TC_L_18_CS
            problem = self._certificate_problem(req.signing_certificate)
            if problem is not None:
                log.warning("UpdateFirmware %d: %s", req.request_id, problem)
                self.security.events.record("InvalidFirmwareSigningCertificate", problem)
                return "InvalidCertificate", None  # L01.FR.22
        self.machine.allow_new_sessions = self._allow_new_sessions()
        actions = self.machine.handle(u.Requested(req), self._now())
        answer = self.machine.answer
        self._persist()

        async def after() -> None:
            self._execute(actions)

        return answer, after

    def triggered_status(self) -> tuple[str, int | None, str | None]:
        """(status, requestId, kind of the request) for a triggered notification."""
        status, request_id = self.machine.triggered_status()
        last = self.machine.last_sent
        return status, request_id, (last.kind if last is not None and request_id else None)

    # -- from the agent ----------------------------------------------------------------------
    def station_changed(self) -> None:
        """After every core step: installation waits while transactions run."""
        busy = bool(self.port.transaction_ids())
        if busy == self.machine.busy:
            return
        if not self.machine.active:
            self.machine.busy = busy
            return
        # Not from inside this core step (the service itself feeds the core).
        try:
            asyncio.get_running_loop().call_soon(self._busy_changed)
        except RuntimeError:  # no loop (a test driving the core directly)
            self._run(u.Busy(busy))

    def _busy_changed(self) -> None:
        busy = bool(self.port.transaction_ids())
        if busy != self.machine.busy:
            self._run(u.Busy(busy))

    def registration_accepted(self) -> None:
        """BootNotification Accepted: a version on trial passed it (FirmwareUpdated)."""
        trial = self.trial
        if trial is not None and self.installer is not None and not self._confirmed:
            self._confirmed = True
            self._trial_deadline = None
            if trial.on_trial or trial.rolled_back_from:
                try:
                    self.installer.confirm()  # a rollback: reported, the old one is good
                except (InstallError, OSError) as err:
                    log.error("firmware: confirming failed: %s", err)
                if trial.rolled_back_from:
                    self.storage.put(ROLLBACK_KEY, None)
            if trial.on_trial:
                version = self.running_version()
                log.info("firmware %s confirmed (BootNotification Accepted)", version)
                self.security.events.record("FirmwareUpdated", f"firmware {version} running")
        self._run(u.Accepted())

    async def run(self) -> None:
        """Timers: retrieveDateTime, retry intervals, installDateTime, the trial."""
        while True:
            self._wake.clear()
            now = self._now()
            wake = self.machine.next_wakeup(now)
            delay = None if wake is None else max(0.0, (wake - now).total_seconds())
            if self._trial_deadline is not None:
                left = max(0.0, self._trial_deadline - time.monotonic())
                delay = left if delay is None else min(delay, left)
            if await wait_event(self._wake, delay):
                continue
            if self._trial_deadline is not None and time.monotonic() >= self._trial_deadline:
                self._trial_deadline = None
                self._trial_failed()
                continue
            self._run(u.Tick())

    # -- the machine's actions --------------------------------------------------------------
    def _run(self, event: u.Event) -> None:
        self.machine.allow_new_sessions = self._allow_new_sessions()
        actions = self.machine.handle(event, self._now())
        self._persist()
        self._execute(actions)

    def _allow_new_sessions(self) -> bool:
        if self.dm is None:
            return False
        from ..device_model.model import VariableKey

        var = self.dm.find(VariableKey("ChargingStation", "AllowNewSessionsPendingFirmwareUpdate"))
        return var is not None and var.value_of() is True

    def _persist(self) -> None:
        self.storage.put(STATE_KEY, self.machine.snapshot())
        self._wake.set()

    def _execute(self, actions: list[u.Action]) -> None:
        for a in actions:
            match a:
                case u.Notify():
                    log.info("firmware update %d: %s", a.request_id, a.status)
                    self.port.firmware_notify(a)
                    if a.status in u.END_STATUSES:
                        self._discard(a.request_id)
                case u.StartDownload():
                    self._download = self._spawn(self._fetch(a.request))
                case u.CancelDownload():
                    if self._download is not None:
                        self._download.cancel()
                        self._download = None
                case u.Verify():
                    self._spawn(self._verify(Path(a.path), a.request))
                case u.SetUnavailable():
                    self._restore = self.port.operative_evses()
                    self.port.feed(m.ChangeAvailability(False, None))  # L01.FR.07
                case u.RestoreAvailability():
                    for evse_id in self._restore:
                        self.port.feed(m.ChangeAvailability(True, evse_id))
                    self._restore = []
                case u.Install():
                    self._spawn(self._install(Path(a.path)))
                case u.Activate():
                    self._activate(a.version)
                case u.SecurityEvent():
                    self.security.events.record(a.type, a.tech_info)
                case u.Log():
                    log.info("%s", a.text)

    def _spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _current(self, request_id: int) -> bool:
        run = self.machine.run
        return run is not None and run.request.request_id == request_id

    async def _fetch(self, req: u.UpdateRequest) -> None:
        from .download import DownloadError, download

        dest = self.directory / f"{req.request_id}.bundle"
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            got = await download(req.location, dest)
        except DownloadError as err:
            if self._current(req.request_id):
                self._run(u.DownloadFailed(str(err)))
            return
        except OSError as err:
            if self._current(req.request_id):
                self._run(u.DownloadFailed(f"{dest}: {err.strerror}"))
            return
        log.info("firmware %s downloaded: %d bytes, sha256 %s", req.location, got.size,
                 got.sha256)
        if self._current(req.request_id):
            self._run(u.DownloadDone(str(got.path)))

    async def _verify(self, path: Path, req: u.UpdateRequest) -> None:
        from .errors import BundleError

        roots, running = self._roots(), self.running_version()
        try:
            manifest = await asyncio.to_thread(self._verify_blocking, path, req, roots, running)
        except BundleError as err:
            if self._current(req.request_id):
                self._run(u.VerifyFailed(err.kind, str(err)))
            return
        if self._current(req.request_id):
            self._manifest = manifest
            self._run(u.VerifyDone(manifest.firmware_version))

    def _verify_blocking(self, path: Path, req: u.UpdateRequest, roots: list[str],
                         running: str) -> Manifest:
        """L01.FR.04/12: the OCPP signature over the exact file (not for 1.6's unsigned
        UpdateFirmware), then the bundle's own manifest signature, hashes, hardware and
        anti-rollback version (firmware-bundle/FORMAT.md)."""
        from .bundle import verify_bundle, verify_ocpp_signature

        if req.kind != "legacy16":
            verify_ocpp_signature(path, req.signing_certificate or "", req.signature or "",
                                  roots, production=self.production)
        return verify_bundle(path, roots, hardware_id=self.hardware_id,
                             current_version=running, production=self.production)

    async def _install(self, path: Path) -> None:
        assert self.installer is not None
        from .errors import BundleError

        try:
            manifest = self._manifest
            if manifest is None:  # verified by an earlier process: verify again
                run = self.machine.run
                assert run is not None
                manifest = await asyncio.to_thread(self._verify_blocking, path, run.request,
                                                   self._roots(), self.running_version())
            await asyncio.to_thread(self.installer.install, path, manifest)
        except (InstallError, BundleError, OSError) as err:
            self._run(u.InstallFailed(str(err)))
            return
        self._run(u.InstallDone())

    def _activate(self, version: str) -> None:
        """Switch slots and restart in place; the next BootNotification says why."""
        assert self.installer is not None
        self.storage.put("boot_reason", "FirmwareUpdate")
        try:
            self.installer.activate()
        except Exception as err:  # noqa: BLE001 - any failure to switch: not installed
            log.error("firmware %s: activation failed: %s", version, err)
            self.storage.put("boot_reason", "PowerUp")
            run = self.machine.run
            if run is not None:
                run.phase = "installing"
                self._run(u.InstallFailed(f"activation failed: {err}"))
            return
        self._discard(None)
        if getattr(self.installer, "reboot_required", False):  # rauc / swupdate
            self._spawn(self._reboot(version))
            return
        log.warning("firmware %s activated: restarting", version)
        asyncio.get_running_loop().call_later(0.2, self.port.schedule_restart)

    def _discard(self, request_id: int | None) -> None:
        """Downloaded bundles (and part files) of an update that ended; None: all."""
        pattern = "*.bundle*" if request_id is None else f"{request_id}.bundle*"
        for path in self.directory.glob(pattern):
            path.unlink(missing_ok=True)

    async def _reboot(self, version: str) -> None:
        """The board boots the new image: InstallRebooting has a moment to leave first."""
        import shlex

        command = shlex.split(self.cfg.reboot_command or "reboot")
        log.warning("firmware %s activated: rebooting the board (%s)", version,
                    " ".join(command))
        await asyncio.sleep(2)
        try:
            proc = await asyncio.create_subprocess_exec(*command)
            await proc.wait()
        except OSError as err:
            log.error("station.reboot_command %s: %s", command[0], err.strerror)

    def _trial_failed(self) -> None:
        """The new version did not reach BootNotification Accepted in time: the previous
        slot comes back and this process restarts into it."""
        assert self.installer is not None
        version = self.running_version()
        reason = f"firmware {version}: no BootNotification Accepted within the trial time"
        log.error("%s: rolling back", reason)
        try:
            self.installer.rollback(reason)
        except (InstallError, OSError) as err:
            log.error("firmware rollback failed: %s", err)
            return
        self.port.schedule_restart()

    # -- certificates ----------------------------------------------------------------------
    def _roots(self) -> list[str]:
        pem = self.security.certificates.trusted_pem("ManufacturerRootCertificate")
        end = "-----END CERTIFICATE-----"
        return [part.strip() + "\n" + end + "\n" for part in pem.split(end) if part.strip()]

    def _certificate_problem(self, certificate: str) -> str | None:
        from .errors import BundleError
        from .signatures import verify_chain

        try:
            verify_chain(certificate, self._roots(), production=self.production)
        except BundleError as err:
            return str(err)
        return None
