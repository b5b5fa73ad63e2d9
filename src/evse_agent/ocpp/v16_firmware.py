"""Firmware management over OCPP 1.6: the Firmware Management profile's UpdateFirmware
(§5.19) with FirmwareStatusNotification (§4.5), and the security whitepaper's
SignedUpdateFirmware with SignedFirmwareStatusNotification (use case L01 there).

Both run the same process as 2.0.1 (firmware/service.py). 1.6's UpdateFirmware carries
no signature: the bundle is installed only when its own manifest signature chains to a
ManufacturerRootCertificate (firmware-bundle/FORMAT.md). Its statuses are the seven of
FirmwareStatus; the update's finer 2.0.1 steps are left out or folded into them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..firmware.update import Notify, UpdateRequest
from . import rpc
from .connection import Reply
from .session import Handler
from .v201_firmware import parse_time, signed_request, status_request

if TYPE_CHECKING:
    from ..firmware.service import FirmwareService
    from .v16_requests import RequestHandlers16

# 2.0.1 status -> 1.6 FirmwareStatus; None: not reported in 1.6.
LEGACY: dict[str, str | None] = {
    "DownloadScheduled": None,
    "Downloading": "Downloading",
    "Downloaded": "Downloaded",
    "DownloadFailed": "DownloadFailed",
    "SignatureVerified": None,
    "InvalidSignature": "InstallationFailed",
    "InstallScheduled": None,
    "Installing": "Installing",
    "InstallRebooting": None,
    "Installed": "Installed",
    "InstallationFailed": "InstallationFailed",
    "InstallVerificationFailed": "InstallationFailed",
}
# For a trigger while an update runs: the nearest 1.6 word for where it is.
LEGACY_NOW = {**LEGACY, "DownloadScheduled": "Idle", "SignatureVerified": "Downloaded",
              "InstallScheduled": "Downloaded", "InstallRebooting": "Installing"}
LEGACY_ID_KEY = "firmware_legacy_request_id"


class FirmwareHandlers16:
    def __init__(self, service: FirmwareService, session: RequestHandlers16) -> None:
        self.service = service
        self.session = session

    def handlers(self) -> dict[str, Handler]:
        return {
            "UpdateFirmware": self._update_firmware,
            "SignedUpdateFirmware": self._signed_update_firmware,
        }

    async def _update_firmware(self, p: dict[str, Any]) -> Reply:
        """§5.19: the response is empty; a bad date or a busy slot is only logged."""
        storage = self.session.storage
        request_id = int(storage.get(LEGACY_ID_KEY, 0)) + 1  # 1.6 has none: ours
        storage.put(LEGACY_ID_KEY, request_id)
        try:
            retrieve_at = parse_time(p.get("retrieveDate"))
        except ValueError:
            retrieve_at = None
        req = UpdateRequest(
            request_id=request_id,
            location=p["location"],
            retrieve_at=retrieve_at,
            retries=p.get("retries"),
            retry_interval_s=p.get("retryInterval"),
            kind="legacy16",
        )
        _, after = self.service.request(req)
        return Reply({}, after)

    async def _signed_update_firmware(self, p: dict[str, Any]) -> Reply:
        """Whitepaper L01: as 2.0.1's UpdateFirmware."""
        try:
            req = signed_request(p, "signed16")
        except ValueError:
            return Reply({"status": "Rejected"})
        status, after = self.service.request(req)
        return Reply({"status": status}, after)

    def notify(self, n: Notify) -> None:
        """Write before send, in the words of the request that started the update."""
        if n.kind == "legacy16":
            status = LEGACY.get(n.status)
            if status is None:
                return
            action, payload = "FirmwareStatusNotification", {"status": status}
        else:
            action = "SignedFirmwareStatusNotification"
            payload = status_request(n.status, n.request_id)
        self.session.storage.enqueue(rpc.new_message_id(), action, payload)
        self.session.outbox.notify()

    def trigger(self) -> Reply:
        """TriggerMessage FirmwareStatusNotification (§5.17, §4.5): Idle unless an update
        runs (Idle is only sent in answer to a trigger)."""
        status = "Idle"
        last = self.service.machine.last_sent
        if self.service.machine.active and last is not None:
            status = LEGACY_NOW.get(last.status) or "Idle"
        return self.session.triggered("FirmwareStatusNotification", [{"status": status}])

    def trigger_signed(self) -> Reply:
        """ExtendedTriggerMessage FirmwareStatusNotification: the last status sent, Idle
        once Installed (whitepaper L01.FR.25/26)."""
        status, request_id, _ = self.service.triggered_status()
        return self.session.triggered("SignedFirmwareStatusNotification",
                                      [status_request(status, request_id)])
