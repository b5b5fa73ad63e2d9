"""Log uploads, one at a time, for both OCPP versions (2.0.1 N01; 1.6 GetDiagnostics and
the security extension's GetLog). The OCPP modules (ocpp/v201_logs.py, v16_logs.py)
turn requests into a LogRequest and say how each status is sent; this runs the upload:

1. `start` answers at once: Accepted with the file name, AcceptedCanceled when it
   replaces a running upload (N01.FR.12), Rejected when that log is not available
   (N01.FR.05).
2. Once the response is on the wire (`Started.after`): the replaced upload stops and is
   reported AcceptedCanceled (N01.FR.20), then the window is packed into one zip
   (N01.FR.02-04), Uploading is reported (N01.FR.08), and the upload is tried 1 +
   retries times, retryInterval apart; Uploaded (N01.FR.09) or, after the last try, the
   failure status (N01.FR.10: "only after all retry attempts have failed"). A location
   that is not a URL or names an unsupported scheme is not retried.
Every status carries the request's requestId (N01.FR.07).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from .files import log_files

if TYPE_CHECKING:
    from ..security.events import SecurityEventLog

log = logging.getLogger("evse_agent.logs")

DEFAULT_RETRIES = 1  # GetLog.retries absent: "left to the Charging Station"
DEFAULT_RETRY_INTERVAL_S = 30
NOT_RETRIED = ("BadMessage", "NotSupportedOperation")


@dataclass(frozen=True)
class LogRequest:
    log_type: str  # "DiagnosticsLog" | "SecurityLog"
    location: str
    request_id: int | None = None  # None: 1.6 GetDiagnostics
    oldest: datetime | None = None
    latest: datetime | None = None
    retries: int | None = None
    retry_interval: int | None = None
    kind: str = "GetLog"  # or "GetDiagnostics" (1.6)


# status (2.0.1 UploadLogStatusEnumType words), request -> the notification is queued
Notify = Callable[[str, LogRequest], None]


@dataclass
class Job:
    request: LogRequest
    notify: Notify
    filename: str
    task: asyncio.Task[None] | None = None


@dataclass(frozen=True)
class Started:
    status: str  # GetLogResponse.status
    filename: str | None
    after: Callable[[], Awaitable[None]] | None


class LogUploads:
    def __init__(
        self,
        log_dir: Path | None,
        work_dir: Path,
        station_id: str,
        security_log: SecurityEventLog,
        now: Callable[[], datetime],
        secrets: Callable[[], Iterable[str]] = list,
        tls_roots: Callable[[], str] = lambda: "",
        method: str = "PUT",
    ) -> None:
        """`secrets` gives the secrets the station holds (the agent's SecretFilter's);
        `tls_roots` gives the CSMS root certificates (PEM) trusted besides the system's
        for https / ftps (N01.FR.15/16); `method` is [logs] upload_method."""
        self.log_dir = log_dir
        self.work_dir = work_dir
        self.station_id = station_id
        self.security_log = security_log
        self._now = now
        self._secrets = secrets
        self._tls_roots = tls_roots
        self.method = method
        self._job: Job | None = None
        for stale in work_dir.glob("*.zip*"):  # left by a kill -9 during an upload
            stale.unlink(missing_ok=True)

    def current(self) -> LogRequest | None:
        """The upload in progress (TriggerMessage LogStatusNotification: Uploading with
        its requestId, F06.FR.14; none: Idle, F06.FR.15)."""
        return self._job.request if self._job is not None else None

    def available(self, log_type: str) -> bool:
        if log_type == "SecurityLog":
            return True
        return self.log_dir is not None and bool(log_files(self.log_dir))

    def start(self, request: LogRequest, notify: Notify) -> Started:
        if not self.available(request.log_type):
            return Started("Rejected", None, None)  # N01.FR.05
        from .pack import filename

        previous = self._job
        name = filename(self.station_id, request.log_type, self._now(), request.request_id)
        job = Job(request, notify, name)
        self._job = job
        if previous is not None and previous.task is not None:
            previous.task.cancel()  # N01.FR.12

        async def after() -> None:
            if previous is not None:
                if previous.task is not None:
                    await asyncio.gather(previous.task, return_exceptions=True)
                log.info("log upload %s canceled: a new request replaced it",
                         previous.filename)
                previous.notify("AcceptedCanceled", previous.request)  # N01.FR.20
            if self._job is job:
                job.task = asyncio.ensure_future(self._run(job))

        return Started("AcceptedCanceled" if previous else "Accepted", job.filename, after)

    async def _run(self, job: Job) -> None:
        from .pack import pack_diagnostics, pack_security
        from .upload import UploadError, tls_context, upload, without_credentials

        request = job.request
        self.work_dir.mkdir(parents=True, exist_ok=True)
        path = self.work_dir / job.filename
        where = without_credentials(request.location)
        try:
            clean = self._cleaner()
            if request.log_type == "SecurityLog":
                events = self.security_log.entries(request.oldest, request.latest)
                lines = await asyncio.to_thread(pack_security, events, path, clean)
            else:
                assert self.log_dir is not None
                lines = await asyncio.to_thread(
                    pack_diagnostics, self.log_dir, path, request.oldest, request.latest, clean
                )
            log.info("log upload %s: %d lines of the %s to %s", job.filename, lines,
                     request.log_type, where)
            job.notify("Uploading", request)  # N01.FR.08
            retries = DEFAULT_RETRIES if request.retries is None else max(0, request.retries)
            interval = (DEFAULT_RETRY_INTERVAL_S if request.retry_interval is None
                        else max(0, request.retry_interval))
            failure: UploadError | None = None
            for attempt in range(retries + 1):
                if attempt:
                    await asyncio.sleep(interval)
                try:
                    tls = request.location.lower().startswith(("https:", "ftps:"))
                    await upload(path, request.location, job.filename, method=self.method,
                                 ssl_context=tls_context(self._tls_roots()) if tls else None)
                except UploadError as err:
                    failure = err
                    log.warning("log upload %s, attempt %d of %d: %s", job.filename,
                                attempt + 1, retries + 1, err)
                    if err.status in NOT_RETRIED:
                        break
                    continue
                log.info("log upload %s: uploaded", job.filename)
                job.notify("Uploaded", request)  # N01.FR.09
                return
            assert failure is not None
            job.notify(failure.status, request)  # N01.FR.10, after the last try
        except OSError as err:  # packing: disk full, permissions
            log.error("log upload %s: cannot pack the %s: %s", job.filename,
                      request.log_type, err.strerror or err)
            job.notify("UploadFailure", request)
        except Exception as err:  # noqa: BLE001 - a bug must not leave the CSMS waiting
            log.error("log upload %s failed: %r", job.filename, err)
            job.notify("UploadFailure", request)
        finally:
            if self._job is job:
                self._job = None
            path.unlink(missing_ok=True)
            path.with_name(path.name + ".part").unlink(missing_ok=True)

    def _cleaner(self) -> Callable[[str], str]:
        """Every line once more through the secret filter, with the secrets read here on
        the event loop's thread (the packing runs on a worker thread)."""
        from ..security.redaction import SecretFilter

        held = [s for s in self._secrets() if s]
        flt = SecretFilter(lambda: held)
        return flt.clean  # passwords in URLs included
