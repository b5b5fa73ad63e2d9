"""OCPP 2.0.1 N01 Retrieve Log end to end: `evse-agent run` against the development
CSMS, uploads to real loopback servers (aiohttp PUT / POST, pyftpdlib FTP), every frame
checked against the official schemas (FrameChecker in the csms fixture)."""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from e2e_support import STATION, Station
from logs_support import FtpServer, HttpUploads, ftp_server, http_uploads

from evse_agent.csms import DevCsms
from evse_agent.logs.files import stamp_of

__all__ = ["ftp_server", "http_uploads"]
LSN = "LogStatusNotification"


def ts(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{moment.microsecond // 1000:03d}Z"
    )


def with_logs(st: Station, **keys: Any) -> Station:
    st.config.write_text(st.config.read_text() + "\n[logs]\n" + "".join(
        f'{k} = {v!r}\n'.replace("'", '"') for k, v in keys.items()))
    return st


async def statuses(csms: DevCsms, request_id: int | None, until: str, since: int,
                   timeout: float = 15) -> list[str]:
    """The LogStatusNotification statuses of `request_id` up to `until`."""
    await csms.wait_for(STATION, LSN, lambda p: p["status"] == until
                        and p.get("requestId") == request_id, since=since, timeout=timeout)
    return [r.payload["status"] for r in csms.received[since:]
            if r.action == LSN and r.payload.get("requestId") == request_id]


async def test_diagnostics_log_window_uploaded_with_put(
    csms: DevCsms, station_factory: Any, http_uploads: HttpUploads
) -> None:
    """TC_N_25_CS (N01.FR.01/02/04/07/08/09): Accepted with the file name, Uploading,
    Uploaded, same requestId; the uploaded zip holds exactly the log records of
    [oldestTimestamp, latestTimestamp]: the Heartbeat triggered inside the window, not
    the BootNotification before it. TC_F_15_CS: TriggerMessage LogStatusNotification
    with nothing uploading -> Idle without requestId (F06.FR.15, N01.FR.13)."""
    st = station_factory()
    st.start()
    await csms.wait_for(STATION, "BootNotification", timeout=15)
    await asyncio.sleep(0.5)
    oldest = datetime.now(UTC)
    mark = len(csms.received)
    assert (await csms.call(STATION, "TriggerMessage", {"requestedMessage": "Heartbeat"}))[
        "status"] == "Accepted"
    await csms.wait_for(STATION, "Heartbeat", since=mark)
    await asyncio.sleep(0.3)
    latest = datetime.now(UTC)
    await asyncio.sleep(0.3)

    answer = await csms.call(STATION, "TriggerMessage", {"requestedMessage": LSN})
    assert answer["status"] == "Accepted"
    idle = await csms.wait_for(STATION, LSN, since=mark)
    assert idle == {"status": "Idle"}

    mark = len(csms.received)
    answer = await csms.call(STATION, "GetLog", {
        "logType": "DiagnosticsLog", "requestId": 41,
        "log": {"remoteLocation": http_uploads.url("/diag/"),
                "oldestTimestamp": ts(oldest), "latestTimestamp": ts(latest)}})
    assert answer["status"] == "Accepted" and answer["filename"].endswith(".zip")
    assert await statuses(csms, 41, "Uploaded", mark) == ["Uploading", "Uploaded"]
    [got] = http_uploads.received
    assert (got.method, got.path) == ("PUT", f"/diag/{answer['filename']}")
    text = got.members()["evse-agent.log"]
    stamps = [stamp_of(line) for line in text.splitlines()]
    assert stamps and all(s is not None and oldest <= s <= latest for s in stamps if s)
    assert '"Heartbeat"' in text  # the frame, logged with -v
    assert "BootNotification" not in text


async def test_security_log_posted_and_secrets_never_uploaded(
    csms: DevCsms, tmp_path: Path, http_uploads: HttpUploads
) -> None:
    """TC_N_35_CS (N01.FR.03): the security log, POSTed as a multipart form
    (N01.FR.19, [logs] upload_method), holds the recorded events. The station runs
    security profile 1 and the CSMS sets a new BasicAuthPassword with SetVariables:
    neither password, nor the Basic token it travels in, is in the diagnostics log
    uploaded afterwards (A00.FR.304), though the frames were logged."""
    old, new = "old-Secret-Passw0rd-123", "n3w-Secret-Passw0rd-456"
    csms.basic_auth_password = old
    st = with_logs(Station(tmp_path, csms.port, ocpp={"security_profile": 1,
                                                      "basic_auth_password": old}),
                   upload_method="POST")
    st.start()
    try:
        await csms.wait_for(STATION, "BootNotification", timeout=15)
        answer = await csms.call(STATION, "SetVariables", {"setVariableData": [{
            "component": {"name": "SecurityCtrlr"}, "variable": {"name": "BasicAuthPassword"},
            "attributeValue": new}]})
        assert answer["setVariableResult"][0]["attributeStatus"] == "Accepted"
        mark = len(csms.received)
        answer = await csms.call(STATION, "GetLog", {
            "logType": "SecurityLog", "requestId": 5,
            "log": {"remoteLocation": http_uploads.url("/upload")}})
        assert answer["status"] == "Accepted"
        assert await statuses(csms, 5, "Uploaded", mark) == ["Uploading", "Uploaded"]
        answer = await csms.call(STATION, "GetLog", {
            "logType": "DiagnosticsLog", "requestId": 6,
            "log": {"remoteLocation": http_uploads.url("/upload")}})
        await statuses(csms, 6, "Uploaded", mark)
    finally:
        assert await st.terminate() == 0
    security, diagnostics = http_uploads.received
    assert (security.method, security.filename) == ("POST", security.filename)
    events = security.members()["security.log"]
    assert "StartupOfTheDevice (critical)" in events
    assert "ReconfigurationOfSecurityParameters: SecurityCtrlr.BasicAuthPassword set" in events
    text = diagnostics.members()["evse-agent.log"]
    assert '"SetVariables"' in text and '"attributeValue":"***"' in text
    for password in (old, new):
        token = base64.b64encode(f"{STATION}:{password}".encode()).decode()
        assert password not in text and token not in text
        assert password not in st.output()
    assert "Traceback" not in st.output()


async def test_upload_failure_after_retries(
    csms: DevCsms, station_factory: Any, http_uploads: HttpUploads
) -> None:
    """TC_N_26_CS (N01.FR.08/10): retries 2, retryInterval 1 -> three attempts, one
    Uploading, then UploadFailure once, about 2 x retryInterval after Uploading."""
    http_uploads.fail = 500
    st = station_factory()
    st.start()
    await csms.wait_for(STATION, "BootNotification", timeout=15)
    mark = len(csms.received)
    answer = await csms.call(STATION, "GetLog", {
        "logType": "DiagnosticsLog", "requestId": 9, "retries": 2, "retryInterval": 1,
        "log": {"remoteLocation": http_uploads.url()}})
    assert answer["status"] == "Accepted"
    assert await statuses(csms, 9, "UploadFailure", mark) == ["Uploading", "UploadFailure"]
    assert http_uploads.attempts == ["PUT"] * 3
    times = [r for r in csms.received[mark:] if r.action == LSN]
    assert len(times) == 2
    assert "HTTP 500" in st.output()


async def test_second_request_cancels_and_trigger_reports_uploading(
    csms: DevCsms, station_factory: Any, http_uploads: HttpUploads, ftp_server: FtpServer
) -> None:
    """TC_F_16_CS (F06.FR.14): while uploading, TriggerMessage LogStatusNotification ->
    Uploading with the requestId. TC_N_36_CS (N01.FR.12/20): a second GetLog is
    answered AcceptedCanceled, the first is reported AcceptedCanceled, the second
    (SecurityLog over FTP, passive STOR) runs to Uploaded."""
    http_uploads.delay = 10  # the first upload hangs
    st = station_factory()
    st.start()
    await csms.wait_for(STATION, "BootNotification", timeout=15)
    mark = len(csms.received)
    first = await csms.call(STATION, "GetLog", {
        "logType": "DiagnosticsLog", "requestId": 1,
        "log": {"remoteLocation": http_uploads.url()}})
    assert first["status"] == "Accepted"
    await csms.wait_for(STATION, LSN, lambda p: p["status"] == "Uploading", since=mark)
    for _ in range(100):
        if http_uploads.attempts:
            break
        await asyncio.sleep(0.05)
    trigger_mark = len(csms.received)
    answer = await csms.call(STATION, "TriggerMessage", {"requestedMessage": LSN})
    assert answer["status"] == "Accepted"
    triggered = await csms.wait_for(STATION, LSN, since=trigger_mark)
    assert triggered == {"status": "Uploading", "requestId": 1}

    second = await csms.call(STATION, "GetLog", {
        "logType": "SecurityLog", "requestId": 2,
        "log": {"remoteLocation": ftp_server.url("/upload/"),
                "oldestTimestamp": ts(datetime.now(UTC) - timedelta(hours=1))}})
    assert second["status"] == "AcceptedCanceled"
    await statuses(csms, 2, "Uploaded", mark)
    sent = [(r.payload["status"], r.payload.get("requestId"))
            for r in csms.received[mark:] if r.action == LSN]
    assert sent == [("Uploading", 1), ("Uploading", 1), ("AcceptedCanceled", 1),
                    ("Uploading", 2), ("Uploaded", 2)]
    stored = (ftp_server.root / "upload" / second["filename"]).read_bytes()
    import io
    import zipfile

    with zipfile.ZipFile(io.BytesIO(stored)) as archive:
        assert "StartupOfTheDevice" in archive.read("security.log").decode()
    assert http_uploads.received == []
    # N01.FR.17: the upload password stays out of the diagnostics files (they leave
    # the station); the frame log on stderr is redaction.py's business.
    logs = "".join(p.read_text() for p in (st.tmp / "data" / "logs").iterdir())
    assert '"GetLog"' in logs and ftp_server.password not in logs
