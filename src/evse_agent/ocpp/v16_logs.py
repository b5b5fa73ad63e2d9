"""OCPP 1.6 diagnostics: GetDiagnostics / DiagnosticsStatusNotification (Firmware
Management profile, §4.4, §5.9, §6.17, §6.25) and the security extension's GetLog /
LogStatusNotification (whitepaper ed. 3, N01), with TriggerMessage
DiagnosticsStatusNotification (§5.17) and ExtendedTriggerMessage LogStatusNotification.
The upload is logs/jobs.py's, shared with 2.0.1; one runs at a time, a new request of
either kind replaces the running one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..logs.jobs import LogRequest, LogUploads
from .connection import Reply
from .v201_logs import get_log_reply, parse_time

if TYPE_CHECKING:
    from .session import Handler
    from .v16_requests import RequestHandlers16

DIAGNOSTICS = "DiagnosticsStatusNotification"
LOG = "LogStatusNotification"
# 2.0.1 words (logs/jobs.py) -> DiagnosticsStatusEnumType; a replaced GetDiagnostics
# upload was abandoned: UploadFailed, its last word.
DIAGNOSTICS_STATUS = {"Uploading": "Uploading", "Uploaded": "Uploaded"}


class LogHandlers16:
    """Registered by V16Adapter.use_logs."""

    def __init__(self, uploads: LogUploads, session: RequestHandlers16) -> None:
        self.uploads = uploads
        self.session = session

    def handlers(self) -> dict[str, Handler]:
        return {"GetDiagnostics": self._get_diagnostics, "GetLog": self._get_log}

    def trigger_diagnostics(self) -> Reply:
        """TriggerMessage DiagnosticsStatusNotification: Uploading while a
        GetDiagnostics upload runs, else Idle (§4.4: only in answer to this)."""
        running = self.uploads.current()
        busy = running is not None and running.kind == "GetDiagnostics"
        return self.session.triggered(DIAGNOSTICS, [{"status": "Uploading" if busy else "Idle"}])

    def trigger_log(self) -> Reply:
        """ExtendedTriggerMessage LogStatusNotification: Uploading with the requestId of
        a running GetLog upload, else Idle without one (whitepaper N01.FR.12)."""
        running = self.uploads.current()
        payload: dict[str, Any] = {"status": "Idle"}
        if running is not None and running.kind == "GetLog" and running.request_id is not None:
            payload = {"status": "Uploading", "requestId": running.request_id}
        return self.session.triggered(LOG, [payload])

    async def _get_diagnostics(self, p: dict[str, Any]) -> Reply:
        """§5.9: the file name, or none when no diagnostics are available."""
        request = LogRequest(
            log_type="DiagnosticsLog",
            location=p["location"],
            oldest=parse_time(p.get("startTime")),
            latest=parse_time(p.get("stopTime")),
            retries=p.get("retries"),
            retry_interval=p.get("retryInterval"),
            kind="GetDiagnostics",
        )
        started = self.uploads.start(request, self._notify_diagnostics)
        if started.filename is None:
            return Reply({})
        return Reply({"fileName": started.filename}, started.after)

    async def _get_log(self, p: dict[str, Any]) -> Reply:
        return get_log_reply(self.uploads, p, self._notify_log)

    def _notify_diagnostics(self, status: str, request: LogRequest) -> None:
        payload = {"status": DIAGNOSTICS_STATUS.get(status, "UploadFailed")}
        self.session._volatile.put_nowait((DIAGNOSTICS, payload))

    def _notify_log(self, status: str, request: LogRequest) -> None:
        if status == "AcceptedCanceled":
            return  # not a 1.6 UploadLogStatusEnumType value: the GetLog.conf said it
        payload: dict[str, Any] = {"status": status}
        if request.request_id is not None:
            payload["requestId"] = request.request_id
        self.session._volatile.put_nowait((LOG, payload))
