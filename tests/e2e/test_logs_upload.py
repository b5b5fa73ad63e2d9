"""Log upload over real loopback servers (N01.FR.14/18/19): http PUT and POST
(multipart, Content-Disposition with the file name), ftp STOR in passive mode; the
statuses a failure stands for (N01.FR.10); retries, retryInterval and the
cancellation of a running upload by a new request (N01.FR.12/20) in LogUploads."""

from __future__ import annotations

import asyncio
import time
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from logs_support import HttpUploads, ftp_server, http_uploads

from evse_agent.logs.jobs import LogRequest, LogUploads
from evse_agent.logs.upload import UploadError, target, upload, without_credentials
from evse_agent.security.events import SecurityEventLog
from evse_agent.storage import Storage

__all__ = ["ftp_server", "http_uploads"]


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    path = tmp_path / "a.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("evse-agent.log", "line\n" * 1000)
    return path


async def test_put_goes_to_the_directory_under_the_file_name(
    http_uploads: HttpUploads, archive: Path
) -> None:
    await upload(archive, http_uploads.url("/logs/"), "f.zip", method="PUT")
    [got] = http_uploads.received
    assert (got.method, got.path, got.filename) == ("PUT", "/logs/f.zip", "f.zip")
    assert got.body == archive.read_bytes()


async def test_post_is_a_multipart_form_naming_the_file(
    http_uploads: HttpUploads, archive: Path
) -> None:
    """N01.FR.19: Content-Type application/octet-stream, Content-Disposition with the
    file name (checked by the server)."""
    await upload(archive, http_uploads.url("/upload"), "f.zip", method="POST")
    [got] = http_uploads.received
    assert (got.method, got.path, got.filename) == ("POST", "/upload", "f.zip")
    assert got.body == archive.read_bytes()


async def test_a_server_refusing_the_method_gets_the_other(
    http_uploads: HttpUploads, archive: Path
) -> None:
    """N01.FR.18: CSMSs may take PUT or POST; 405 to PUT -> POST."""
    http_uploads.methods = ("POST",)
    await upload(archive, http_uploads.url(), "f.zip", method="PUT")
    assert http_uploads.attempts == ["PUT", "POST"]
    assert http_uploads.received[0].method == "POST"


async def test_basic_auth_from_the_url_and_permission_denied(
    http_uploads: HttpUploads, archive: Path
) -> None:
    """N01.FR.17: credentials in the URL; wrong ones -> PermissionDenied, and the
    message never shows the password."""
    http_uploads.auth = ("up", "load-pass")
    await upload(archive, f"http://up:load-pass@127.0.0.1:{http_uploads.port}/l/", "f.zip")
    assert len(http_uploads.received) == 1
    with pytest.raises(UploadError) as err:
        await upload(archive, f"http://up:wrong-pass@127.0.0.1:{http_uploads.port}/l/", "f.zip")
    assert err.value.status == "PermissionDenied"
    assert "wrong-pass" not in str(err.value) and "HTTP 401" in str(err.value)


@pytest.mark.parametrize(
    ("location", "status"),
    [
        ("sftp://host/logs/", "NotSupportedOperation"),
        ("not a url", "BadMessage"),
        ("http://127.0.0.1:1/logs/", "UploadFailure"),
    ],
)
async def test_failures_say_what_they_are(archive: Path, location: str, status: str) -> None:
    with pytest.raises(UploadError) as err:
        await upload(archive, location, "f.zip", timeout_s=2)
    assert err.value.status == status
    assert "\n" not in str(err.value) and str(err.value)


async def test_server_error_is_upload_failure(http_uploads: HttpUploads, archive: Path) -> None:
    http_uploads.fail = 500
    with pytest.raises(UploadError) as err:
        await upload(archive, http_uploads.url(), "f.zip")
    assert err.value.status == "UploadFailure" and "HTTP 500" in str(err.value)


async def test_ftp_stor_into_the_directory(ftp_server, archive: Path) -> None:  # noqa: ANN001
    await upload(archive, ftp_server.url("/upload/"), "f.zip")
    assert (ftp_server.root / "upload" / "f.zip").read_bytes() == archive.read_bytes()
    await upload(archive, ftp_server.url("/upload/named.zip"), "f.zip")  # a file's URL
    assert (ftp_server.root / "upload" / "named.zip").exists()


async def test_ftp_wrong_password_is_permission_denied(ftp_server, archive: Path) -> None:  # noqa: ANN001
    url = f"ftp://{ftp_server.user}:nope@127.0.0.1:{ftp_server.port}/upload/"
    with pytest.raises(UploadError) as err:
        await upload(archive, url, "f.zip")
    assert err.value.status == "PermissionDenied" and "nope" not in str(err.value)


def test_where_files_go_and_what_is_logged() -> None:
    assert target("http://h/logs", "f.zip") == "http://h/logs/f.zip"
    assert target("http://h/logs/x.zip", "f.zip") == "http://h/logs/x.zip"
    assert target("https://b/k?sig=1", "f.zip") == "https://b/k?sig=1"  # pre-signed
    assert without_credentials("ftp://u:p@h:21/d/") == "ftp://u:***@h:21/d/"


def uploads_for(tmp_path: Path) -> LogUploads:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "evse-agent.log").write_text("2026-11-25T10:00:00.000Z INFO    x: hello\n")
    events = SecurityEventLog(Storage(tmp_path / "a.db"), lambda: datetime.now(UTC))
    return LogUploads(logs, tmp_path / "out", "CS-1", events, lambda: datetime.now(UTC))


async def run(uploads: LogUploads, request: LogRequest, seen: list[tuple[str, int | None]]) -> None:
    started = uploads.start(request, lambda s, r: seen.append((s, r.request_id)))
    assert started.after is not None
    await started.after()


async def wait_done(uploads: LogUploads, timeout: float = 10) -> None:
    for _ in range(int(timeout * 50)):
        if uploads.current() is None:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("upload still running")


async def test_retries_then_one_failure_status(
    tmp_path: Path, http_uploads: HttpUploads
) -> None:
    """TC_N_26_CS: retries 3 -> four attempts retryInterval apart, Uploading once, the
    failure status once after the last (N01.FR.08/10), requestId on each (N01.FR.07)."""
    http_uploads.fail = 503
    uploads = uploads_for(tmp_path)
    seen: list[tuple[str, int | None]] = []
    begin = time.monotonic()
    await run(uploads, LogRequest("DiagnosticsLog", http_uploads.url(), 7, retries=3,
                                  retry_interval=1), seen)
    await wait_done(uploads)
    assert 3 <= time.monotonic() - begin < 6
    assert http_uploads.attempts == ["PUT"] * 4
    assert seen == [("Uploading", 7), ("UploadFailure", 7)]
    assert not list((tmp_path / "out").iterdir())  # the packed file is gone


async def test_a_new_request_cancels_the_running_one(
    tmp_path: Path, http_uploads: HttpUploads
) -> None:
    """N01.FR.12/20, TC_N_36_CS: AcceptedCanceled to the new request, the old one
    reported AcceptedCanceled, then the new one runs to Uploaded."""
    http_uploads.delay = 5
    uploads = uploads_for(tmp_path)
    seen: list[tuple[str, int | None]] = []
    await run(uploads, LogRequest("DiagnosticsLog", http_uploads.url(), 1), seen)
    for _ in range(100):
        if http_uploads.attempts:
            break
        await asyncio.sleep(0.02)
    http_uploads.delay = 0
    second = uploads.start(LogRequest("SecurityLog", http_uploads.url(), 2),
                           lambda s, r: seen.append((s, r.request_id)))
    assert second.status == "AcceptedCanceled" and second.filename
    assert second.after is not None
    await second.after()
    await wait_done(uploads)
    assert seen == [("Uploading", 1), ("AcceptedCanceled", 1), ("Uploading", 2),
                    ("Uploaded", 2)]
    assert [u.filename for u in http_uploads.received] == [second.filename]


async def test_no_diagnostics_files_is_rejected(tmp_path: Path) -> None:
    """N01.FR.05: the requested log is not available."""
    events = SecurityEventLog(Storage(tmp_path / "a.db"), lambda: datetime.now(UTC))
    uploads = LogUploads(tmp_path / "none", tmp_path / "out", "CS", events,
                         lambda: datetime.now(UTC))
    assert uploads.start(LogRequest("DiagnosticsLog", "http://h/"), lambda s, r: None).status \
        == "Rejected"
    assert uploads.start(LogRequest("SecurityLog", "http://h/"), lambda s, r: None).status \
        == "Accepted"
