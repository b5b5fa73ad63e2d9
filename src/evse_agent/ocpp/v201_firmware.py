"""Firmware management over OCPP 2.0.1 (block L, L01 Secure Firmware Update):
UpdateFirmware, FirmwareStatusNotification, TriggerMessage FirmwareStatusNotification.

The update itself runs in firmware/service.py. Status notifications go through the
durable queue (written to SQLite before they are sent), so the InstallRebooting sent
before the restart and the Installed sent by the new version both reach the CSMS.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..firmware.update import Notify, UpdateRequest
from . import rpc
from .connection import Reply
from .session import Handler

if TYPE_CHECKING:
    from ..firmware.service import FirmwareService
    from .session import Session


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def status_request(status: str, request_id: int | None) -> dict[str, Any]:
    """L01.FR.20: requestId in every notification except a triggered Idle."""
    payload: dict[str, Any] = {"status": status}
    if request_id is not None and status != "Idle":
        payload["requestId"] = request_id
    return payload


def signed_request(p: dict[str, Any], kind: str) -> UpdateRequest:
    """The UpdateRequest of a 2.0.1 UpdateFirmware or a 1.6 SignedUpdateFirmware (the
    same payload). ValueError: an unreadable retrieve/install date-time."""
    fw = p["firmware"]
    return UpdateRequest(
        request_id=p["requestId"],
        location=fw["location"],
        retrieve_at=parse_time(fw.get("retrieveDateTime")),
        install_at=parse_time(fw.get("installDateTime")),
        retries=p.get("retries"),
        retry_interval_s=p.get("retryInterval"),
        signing_certificate=fw.get("signingCertificate"),
        signature=fw.get("signature"),
        kind=kind,
    )


class FirmwareHandlers201:
    def __init__(self, service: FirmwareService, session: Session) -> None:
        self.service = service
        self.session = session

    def handlers(self) -> dict[str, Handler]:
        return {"UpdateFirmware": self._update_firmware}

    async def _update_firmware(self, p: dict[str, Any]) -> Reply:
        try:
            req = signed_request(p, "v201")
        except ValueError:
            return Reply({"status": "Rejected",
                          "statusInfo": {"reasonCode": "InvalidValue",
                                         "additionalInfo": "unreadable date-time"}})
        status, after = self.service.request(req)
        return Reply({"status": status}, after)

    def trigger(self) -> Reply:
        """L01.FR.25/26: the last status sent (Idle once Installed, or never updated)."""
        status, request_id, _ = self.service.triggered_status()
        payload = status_request(status, request_id)

        async def send() -> None:
            self.session._volatile.put_nowait(("FirmwareStatusNotification", payload))

        return Reply({"status": "Accepted"}, send)

    def notify(self, n: Notify) -> None:
        """Write before send: in SQLite when this returns, sent in order when online."""
        self.session.storage.enqueue(
            rpc.new_message_id(), "FirmwareStatusNotification",
            status_request(n.status, n.request_id),
        )
        self.session.outbox.notify()
