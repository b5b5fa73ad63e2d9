"""The firmware update process (OCPP 2.0.1 L01, 1.6 Firmware Management and the 1.6
security extension's SignedUpdateFirmware), sans-I/O: events in, actions out.

One update at a time. Its FirmwareStatusNotification statuses follow the 2.0.1 words
(FirmwareStatusEnumType); the 1.6 adapter re-spells them. Whatever runs the machine
(firmware/service.py) performs the actions: downloads, verifies, installs, sets the EVSEs
Unavailable, restarts. `snapshot()` / `restore()` carry the process over a restart, so
the InstallRebooting -> restart -> Installed sequence completes in the new process.

Phases: scheduled (retrieveDateTime ahead) -> downloading (-> retry_wait ->
downloading ...) -> verifying -> install_scheduled (installDateTime ahead) ->
waiting_idle (transactions run, L01.FR.06) -> installing -> rebooting -> [restart] ->
confirming (until BootNotification Accepted) -> done. Any failure -> done.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from typing import Any

# What the request came as: it decides how the statuses are spelled and whether the
# OCPP signature is checked ("legacy16": 1.6 UpdateFirmware, no signature).
KINDS = ("v201", "signed16", "legacy16")

# Answers that end the process (FirmwareStatusEnumType "end states").
END_STATUSES = ("DownloadFailed", "InvalidSignature", "InstallationFailed",
                "InstallVerificationFailed", "Installed")
DOWNLOAD_PHASES = ("scheduled", "downloading", "retry_wait")
# Once the inactive slot is being written the update cannot be cancelled (L01.FR.27).
UNCANCELLABLE = ("installing", "rebooting", "confirming")
DEFAULT_RETRIES = 2
DEFAULT_RETRY_INTERVAL_S = 30.0


@dataclass(frozen=True)
class UpdateRequest:
    request_id: int
    location: str
    retrieve_at: datetime | None = None
    install_at: datetime | None = None
    retries: int | None = None
    retry_interval_s: float | None = None
    signing_certificate: str | None = None
    signature: str | None = None
    kind: str = "v201"


# -- events ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Requested:
    request: UpdateRequest


@dataclass(frozen=True)
class DownloadDone:
    path: str


@dataclass(frozen=True)
class DownloadFailed:
    reason: str


@dataclass(frozen=True)
class VerifyDone:
    version: str


@dataclass(frozen=True)
class VerifyFailed:
    kind: str  # a BundleError kind: InvalidCertificate, InvalidSignature, HashMismatch, ...
    reason: str


@dataclass(frozen=True)
class Busy:
    """Whether transactions are running (L01.FR.06: installation waits for them)."""

    busy: bool


@dataclass(frozen=True)
class InstallDone:
    pass


@dataclass(frozen=True)
class InstallFailed:
    reason: str


@dataclass(frozen=True)
class Booted:
    """The process started; `running_version` is the active slot's bundle version."""

    running_version: str


@dataclass(frozen=True)
class Accepted:
    """BootNotification Accepted: the new version runs and talks to the CSMS."""


@dataclass(frozen=True)
class Tick:
    pass


Event = (Requested | DownloadDone | DownloadFailed | VerifyDone | VerifyFailed | Busy
         | InstallDone | InstallFailed | Booted | Accepted | Tick)


# -- actions ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Notify:
    """FirmwareStatusNotification (durable: it must survive a restart)."""

    status: str
    request_id: int
    kind: str


@dataclass(frozen=True)
class StartDownload:
    request: UpdateRequest


@dataclass(frozen=True)
class CancelDownload:
    pass


@dataclass(frozen=True)
class Verify:
    path: str
    request: UpdateRequest


@dataclass(frozen=True)
class SetUnavailable:
    pass


@dataclass(frozen=True)
class RestoreAvailability:
    pass


@dataclass(frozen=True)
class Install:
    path: str


@dataclass(frozen=True)
class Activate:
    """Switch to the new slot and restart the agent in it."""

    version: str


@dataclass(frozen=True)
class SecurityEvent:
    type: str
    tech_info: str


@dataclass(frozen=True)
class Log:
    text: str


Action = (Notify | StartDownload | CancelDownload | Verify | SetUnavailable
          | RestoreAvailability | Install | Activate | SecurityEvent | Log)


@dataclass
class _Run:
    """The update in progress."""

    request: UpdateRequest
    phase: str
    attempts: int = 0
    retry_at: datetime | None = None
    path: str | None = None
    version: str | None = None
    unavailable: bool = False
    install_notified: bool = False


class FirmwareUpdate:
    def __init__(self) -> None:
        self.run: _Run | None = None
        self.busy = False
        # ChargingStation.AllowNewSessionsPendingFirmwareUpdate: free EVSEs stay
        # available while installation waits for the running transactions.
        self.allow_new_sessions = False
        self.last_sent: Notify | None = None  # for TriggerMessage (L01.FR.25/26)
        self.answer = ""  # the UpdateFirmware response status of the last Requested

    # -- queries -------------------------------------------------------------------------
    @property
    def active(self) -> bool:
        return self.run is not None

    def triggered_status(self) -> tuple[str, int | None]:
        """What a triggered FirmwareStatusNotification says: the last status sent, or
        Idle once Installed or when none was ever sent (L01.FR.25/26)."""
        last = self.last_sent
        if last is None or last.status == "Installed":
            return "Idle", None
        return last.status, last.request_id

    def next_wakeup(self, now: datetime) -> datetime | None:
        r = self.run
        if r is None:
            return None
        if r.phase == "scheduled":
            return r.request.retrieve_at
        if r.phase == "retry_wait":
            return r.retry_at
        if r.phase == "install_scheduled":
            return r.request.install_at
        return None

    # -- the machine ---------------------------------------------------------------------
    def handle(self, event: Event, now: datetime) -> list[Action]:
        out: list[Action] = []
        match event:
            case Requested():
                self._requested(event.request, now, out)
            case Busy():
                self.busy = event.busy
                self._install_if_due(now, out)
            case Tick():
                self._tick(now, out)
            case DownloadDone():
                self._download_done(event.path, out)
            case DownloadFailed():
                self._download_failed(event.reason, now, out)
            case VerifyDone():
                self._verified(event.version, now, out)
            case VerifyFailed():
                self._verify_failed(event.kind, event.reason, out)
            case InstallDone():
                self._installed(out)
            case InstallFailed():
                self._install_failed(event.reason, out)
            case Booted():
                self._booted(event.running_version, now, out)
            case Accepted():
                self._accepted(out)
        return out

    def _requested(self, req: UpdateRequest, now: datetime, out: list[Action]) -> None:
        r = self.run
        if r is not None:
            if r.phase in UNCANCELLABLE:
                self.answer = "Rejected"  # L01.FR.27: the slot is being written
                out.append(Log(f"UpdateFirmware {req.request_id} rejected: update "
                               f"{r.request.request_id} is {r.phase}"))
                return
            self._cancel(r, out)
            self.answer = "AcceptedCanceled"  # L01.FR.24
        else:
            self.answer = "Accepted"
        self.run = _Run(req, "scheduled")
        self._begin(now, out)

    def _cancel(self, r: _Run, out: list[Action]) -> None:
        """L01.FR.24: the running update ends; its last word is a failure status."""
        if r.phase == "downloading":
            out.append(CancelDownload())
        if r.unavailable:
            out.append(RestoreAvailability())
        status = "DownloadFailed" if r.phase in DOWNLOAD_PHASES else "InstallationFailed"
        out.append(Log(f"firmware update {r.request.request_id} cancelled by a new request"))
        self._notify(r, status, out)
        self.run = None

    def _begin(self, now: datetime, out: list[Action]) -> None:
        r = self.run
        assert r is not None
        at = r.request.retrieve_at
        if at is not None and at > now:
            r.phase = "scheduled"
            self._notify(r, "DownloadScheduled", out)  # L01.FR.13
            return
        self._download(r, out)

    def _download(self, r: _Run, out: list[Action]) -> None:
        if r.phase != "retry_wait":  # MAY repeat Downloading per retry (L01.FR.30): not
            self._notify(r, "Downloading", out)
        r.phase = "downloading"
        r.attempts += 1
        out.append(StartDownload(r.request))

    def _tick(self, now: datetime, out: list[Action]) -> None:
        r = self.run
        if r is None:
            return
        due = self.next_wakeup(now)
        if due is None or due > now:
            return
        if r.phase in ("scheduled", "retry_wait"):
            self._download(r, out)
        elif r.phase == "install_scheduled":
            r.phase = "waiting_idle"
            self._install_if_due(now, out)

    def _download_done(self, path: str, out: list[Action]) -> None:
        r = self.run
        if r is None or r.phase != "downloading":
            return
        r.path, r.phase = path, "verifying"
        self._notify(r, "Downloaded", out)
        out.append(Verify(path, r.request))

    def _download_failed(self, reason: str, now: datetime, out: list[Action]) -> None:
        r = self.run
        if r is None or r.phase != "downloading":
            return
        retries = DEFAULT_RETRIES if r.request.retries is None else r.request.retries
        if r.attempts <= retries:
            interval = r.request.retry_interval_s
            if interval is None:
                interval = DEFAULT_RETRY_INTERVAL_S
            r.phase, r.retry_at = "retry_wait", now + timedelta(seconds=interval)
            out.append(Log(f"firmware download failed ({reason}); attempt {r.attempts + 1} "
                           f"of {retries + 1} in {interval:g} s"))
            return
        out.append(Log(f"firmware download failed after {r.attempts} attempt(s): {reason}"))
        self._end(r, "DownloadFailed", out)  # L01.FR.30

    def _verified(self, version: str, now: datetime, out: list[Action]) -> None:
        r = self.run
        if r is None or r.phase != "verifying":
            return
        r.version = version
        self._notify(r, "SignatureVerified", out)
        at = r.request.install_at
        if at is not None and at > now:
            r.phase = "install_scheduled"
            r.install_notified = True
            self._notify(r, "InstallScheduled", out)  # L01.FR.16
            return
        r.phase = "waiting_idle"
        self._install_if_due(now, out)

    def _verify_failed(self, kind: str, reason: str, out: list[Action]) -> None:
        r = self.run
        if r is None or r.phase != "verifying":
            return
        out.append(Log(f"firmware {r.request.location} refused: {reason}"))
        if kind == "InvalidCertificate":
            out.append(SecurityEvent("InvalidFirmwareSigningCertificate", reason))
            self._end(r, "InvalidSignature", out)
        elif kind in ("Incompatible", "Downgrade"):
            # Authentic, but not for this station or older than allowed: the signature
            # was fine, the installation is what cannot happen.
            self._notify(r, "SignatureVerified", out)
            self._end(r, "InstallationFailed", out)
        else:  # InvalidSignature, HashMismatch, Malformed, DevelopmentSigned
            out.append(SecurityEvent("InvalidFirmwareSignature", reason))  # L01.FR.03
            self._end(r, "InvalidSignature", out)

    def _install_if_due(self, now: datetime, out: list[Action]) -> None:
        r = self.run
        if r is None or r.phase != "waiting_idle":
            return
        if not r.unavailable and not (self.busy and self.allow_new_sessions):
            r.unavailable = True  # L01.FR.07: EVSEs not in use now, the others when free
            out.append(SetUnavailable())
        if self.busy:  # L01.FR.06: installation waits until every transaction ended
            if not r.install_notified:
                r.install_notified = True
                self._notify(r, "InstallScheduled", out)  # L01.FR.34
            return
        assert r.path is not None
        r.phase = "installing"
        self._notify(r, "Installing", out)
        out.append(Install(r.path))

    def _installed(self, out: list[Action]) -> None:
        r = self.run
        if r is None or r.phase != "installing":
            return
        assert r.version is not None
        r.phase = "rebooting"
        self._notify(r, "InstallRebooting", out)  # L01.FR.32 (a)
        out.append(Activate(r.version))

    def _install_failed(self, reason: str, out: list[Action]) -> None:
        r = self.run
        if r is None or r.phase != "installing":
            return
        out.append(Log(f"firmware installation failed: {reason}"))
        self._end(r, "InstallationFailed", out)

    def _booted(self, running: str, now: datetime, out: list[Action]) -> None:
        """A new process took over the persisted state."""
        r = self.run
        if r is None:
            return
        r.unavailable = False  # a fresh core: every EVSE starts as it was configured
        if r.phase in ("rebooting", "confirming"):
            if running == r.version:
                r.phase = "confirming"  # Installed once the CSMS accepted us (L01.FR.32)
                return
            out.append(Log(f"firmware {r.version} did not stay: running {running}"))
            self._end(r, "InstallVerificationFailed", out)  # L01.FR.29
        elif r.phase == "installing":
            self._end(r, "InstallationFailed", out)  # the process died while installing
        else:  # interrupted before installing: start over (the download resumes)
            r.phase, r.attempts, r.install_notified = "scheduled", 0, False
            self._begin(now, out)

    def _accepted(self, out: list[Action]) -> None:
        r = self.run
        if r is not None and r.phase == "confirming":
            self._end(r, "Installed", out)  # L01.FR.28

    # -- helpers -------------------------------------------------------------------------
    def _notify(self, r: _Run, status: str, out: list[Action]) -> None:
        n = Notify(status, r.request.request_id, r.request.kind)
        self.last_sent = n
        out.append(n)

    def _end(self, r: _Run, status: str, out: list[Action]) -> None:
        if r.phase == "downloading":
            out.append(CancelDownload())
        if r.unavailable:
            out.append(RestoreAvailability())
        self._notify(r, status, out)
        self.run = None

    # -- persistence ---------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        run = None
        if self.run is not None:
            run = asdict(self.run)
            run["request"] = _request_to_json(self.run.request)
            run["retry_at"] = _time(self.run.retry_at)
        last = asdict(self.last_sent) if self.last_sent is not None else None
        return {"run": run, "last_sent": last}

    def restore(self, data: dict[str, Any] | None) -> None:
        if not data:
            return
        last = data.get("last_sent")
        self.last_sent = Notify(**last) if last else None
        run = data.get("run")
        if run:
            fields = dict(run)
            fields["request"] = _request_from_json(run["request"])
            fields["retry_at"] = _parse(run.get("retry_at"))
            self.run = _Run(**fields)


def _time(t: datetime | None) -> str | None:
    return t.isoformat() if t is not None else None


def _parse(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _request_to_json(req: UpdateRequest) -> dict[str, Any]:
    data = asdict(req)
    data["retrieve_at"] = _time(req.retrieve_at)
    data["install_at"] = _time(req.install_at)
    return data


def _request_from_json(data: dict[str, Any]) -> UpdateRequest:
    req = UpdateRequest(**data)
    return replace(req, retrieve_at=_parse(data.get("retrieve_at")),
                   install_at=_parse(data.get("install_at")))
