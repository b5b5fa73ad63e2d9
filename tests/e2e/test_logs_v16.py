"""OCPP 1.6 diagnostics end to end: GetDiagnostics with DiagnosticsStatusNotification
(1.6 edition 2 §4.4, §5.9, §6.17, §6.25), TriggerMessage DiagnosticsStatusNotification
(§5.17), and the security extension's GetLog / LogStatusNotification with
ExtendedTriggerMessage (whitepaper ed. 3, N01). Uploads go to real loopback servers;
every frame is checked against the official 1.6 schemas."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from e2e_support import STATION, booted16
from logs_support import FtpServer, HttpUploads, ftp_server, http_uploads

from evse_agent.csms import DevCsms
from evse_agent.logs.files import stamp_of

__all__ = ["ftp_server", "http_uploads"]
DSN = "DiagnosticsStatusNotification"
LSN = "LogStatusNotification"


@pytest.fixture
def csms16(csms: DevCsms) -> DevCsms:
    csms.checker.version = "1.6"  # type: ignore[attr-defined]
    return csms


def ts(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def sent(csms: DevCsms, action: str, since: int) -> list[dict[str, Any]]:
    return [r.payload for r in csms.received[since:] if r.action == action]


async def test_get_diagnostics_uploads_the_window(
    csms16: DevCsms, station_factory: Any, http_uploads: HttpUploads
) -> None:
    """§5.9: GetDiagnostics.conf names the file; DiagnosticsStatusNotification
    Uploading then Uploaded (§4.4); the file holds the records of [startTime,
    stopTime]. TriggerMessage DiagnosticsStatusNotification: Idle before, Uploading
    while the upload runs (§5.17, §7.24 "Idle only in answer to a TriggerMessage")."""
    csms = csms16
    st = station_factory(version="1.6")
    st.start()
    await booted16(csms)
    mark = len(csms.received)
    assert (await csms.call(STATION, "TriggerMessage", {"requestedMessage": DSN}))[
        "status"] == "Accepted"
    assert await csms.wait_for(STATION, DSN, since=mark) == {"status": "Idle"}

    start = datetime.now(UTC) - timedelta(minutes=5)
    stop = datetime.now(UTC)
    http_uploads.delay = 2
    mark = len(csms.received)
    answer = await csms.call(STATION, "GetDiagnostics", {
        "location": http_uploads.url("/diag/"), "retries": 1, "retryInterval": 1,
        "startTime": ts(start), "stopTime": ts(stop)})
    assert answer["fileName"].endswith(".zip")
    await csms.wait_for(STATION, DSN, lambda p: p["status"] == "Uploading", since=mark)
    trigger_mark = len(csms.received)
    await csms.call(STATION, "TriggerMessage", {"requestedMessage": DSN})
    assert await csms.wait_for(STATION, DSN, since=trigger_mark) == {"status": "Uploading"}
    await csms.wait_for(STATION, DSN, lambda p: p["status"] == "Uploaded", since=mark,
                        timeout=10)
    assert [p["status"] for p in sent(csms, DSN, mark)] == ["Uploading", "Uploading",
                                                             "Uploaded"]
    [got] = http_uploads.received
    assert got.path == f"/diag/{answer['fileName']}"
    text = got.members()["evse-agent.log"]
    stamps = [stamp_of(line) for line in text.splitlines()]
    assert all(start <= s <= stop for s in stamps if s is not None)
    assert '"BootNotification"' in text  # the 1.6 boot frame, within the window


async def test_get_diagnostics_failure_is_upload_failed(
    csms16: DevCsms, station_factory: Any, http_uploads: HttpUploads
) -> None:
    """retries 1 -> two attempts, then DiagnosticsStatusNotification UploadFailed."""
    csms = csms16
    http_uploads.fail = 403
    st = station_factory(version="1.6")
    st.start()
    await booted16(csms)
    mark = len(csms.received)
    await csms.call(STATION, "GetDiagnostics", {"location": http_uploads.url(), "retries": 1,
                                                 "retryInterval": 1})
    await csms.wait_for(STATION, DSN, lambda p: p["status"] == "UploadFailed", since=mark)
    assert [p["status"] for p in sent(csms, DSN, mark)] == ["Uploading", "UploadFailed"]
    assert http_uploads.attempts == ["PUT", "PUT"]


async def test_security_extension_get_log_over_ftp(
    csms16: DevCsms, station_factory: Any, ftp_server: FtpServer
) -> None:
    """Whitepaper N01.FR.01/03/07/08/09: GetLog SecurityLog -> Accepted with the file
    name, LogStatusNotification Uploading / Uploaded with the requestId; the file (FTP,
    passive STOR) holds the recorded security events. ExtendedTriggerMessage
    LogStatusNotification with nothing running: Idle without requestId
    (N01.FR.12)."""
    csms = csms16
    st = station_factory(version="1.6")
    st.start()
    await booted16(csms)
    mark = len(csms.received)
    answer = await csms.call(STATION, "ExtendedTriggerMessage", {"requestedMessage": LSN})
    assert answer["status"] == "Accepted"
    assert await csms.wait_for(STATION, LSN, since=mark) == {"status": "Idle"}
    mark = len(csms.received)
    answer = await csms.call(STATION, "GetLog", {
        "logType": "SecurityLog", "requestId": 77,
        "log": {"remoteLocation": ftp_server.url("/upload/")}})
    assert answer["status"] == "Accepted"
    await csms.wait_for(STATION, LSN, lambda p: p["status"] == "Uploaded", since=mark)
    assert sent(csms, LSN, mark) == [{"status": "Uploading", "requestId": 77},
                                     {"status": "Uploaded", "requestId": 77}]
    import io
    import zipfile

    for _ in range(50):
        stored = ftp_server.root / "upload" / answer["filename"]
        if stored.exists():
            break
        await asyncio.sleep(0.05)
    with zipfile.ZipFile(io.BytesIO(stored.read_bytes())) as archive:
        assert "StartupOfTheDevice (critical)" in archive.read("security.log").decode()
