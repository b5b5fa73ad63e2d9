"""OCPP 2.0.1 N01 Retrieve Log: GetLog (DiagnosticsLog, SecurityLog) and
LogStatusNotification, and TriggerMessage LogStatusNotification (F06.FR.14/15); the
upload itself is logs/jobs.py's. Shared with the 1.6 security extension's GetLog, which
has the same fields (ocpp/v16_logs.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..logs.jobs import LogRequest, LogUploads
from .connection import Reply

if TYPE_CHECKING:
    from .session import Handler, Session

ACTION = "LogStatusNotification"


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def log_request(p: dict[str, Any]) -> LogRequest:
    """GetLogRequest (2.0.1) / GetLog.req (1.6 security extension): the same fields."""
    params = p["log"]
    return LogRequest(
        log_type=p["logType"],
        location=params["remoteLocation"],
        request_id=p["requestId"],
        oldest=parse_time(params.get("oldestTimestamp")),
        latest=parse_time(params.get("latestTimestamp")),
        retries=p.get("retries"),
        retry_interval=p.get("retryInterval"),
    )


def get_log_reply(uploads: LogUploads, p: dict[str, Any], notify: Any) -> Reply:
    started = uploads.start(log_request(p), notify)
    out: dict[str, Any] = {"status": started.status}
    if started.filename:
        out["filename"] = started.filename  # N01.FR.01
    return Reply(out, started.after)


class LogHandlers201:
    """Registered by V201Adapter.use_logs."""

    def __init__(self, uploads: LogUploads, session: Session) -> None:
        self.uploads = uploads
        self.session = session

    def handlers(self) -> dict[str, Handler]:
        return {"GetLog": self._get_log}

    def trigger(self, requested: str) -> Reply | None:
        """TriggerMessage LogStatusNotification: Uploading with the running upload's
        requestId (F06.FR.14), else Idle without one (F06.FR.15, N01.FR.13)."""
        if requested != ACTION:
            return None
        running = self.uploads.current()
        payload: dict[str, Any] = {"status": "Idle"}
        if running is not None and running.request_id is not None:
            payload = {"status": "Uploading", "requestId": running.request_id}

        async def send() -> None:
            self.session._volatile.put_nowait((ACTION, payload))

        return Reply({"status": "Accepted"}, send)

    async def _get_log(self, p: dict[str, Any]) -> Reply:
        return get_log_reply(self.uploads, p, self._notify)

    def _notify(self, status: str, request: LogRequest) -> None:
        payload: dict[str, Any] = {"status": status}
        if request.request_id is not None:
            payload["requestId"] = request.request_id  # N01.FR.07
        self.session._volatile.put_nowait((ACTION, payload))
