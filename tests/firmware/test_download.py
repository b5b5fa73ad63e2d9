"""firmware.download over real sockets on loopback: an aiohttp server (plain and TLS with a
test CA) and a pyftpdlib server. Covers the download part of UpdateFirmware (L01): the
file streamed to disk with SHA-256 on the fly, resumed after a broken connection."""

from __future__ import annotations

import asyncio
import hashlib
import ssl
import threading
import tracemalloc
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from download_support import ca_and_server_cert

from evse_agent.firmware.download import DownloadError, download

# pyftpdlib runs on asyncore/asynchat (deprecated in 3.11, separate packages from 3.12).
pytestmark = pytest.mark.filterwarnings(
    "ignore:The asyn(core|chat) module is deprecated:DeprecationWarning")

DATA = hashlib.shake_256(b"firmware").digest(3 * 1024 * 1024 + 12345)  # not chunk aligned
DIGEST = hashlib.sha256(DATA).hexdigest()


@dataclass
class Server:
    base: str
    requests: list[dict[str, str]] = field(default_factory=list)
    mode: str = "range"  # range | ignore-range | bad-range | cut-once | cut-always
    cut_at: int = len(DATA) // 2


def _handler(server: Server) -> Callable[[web.Request], Any]:
    async def handle(request: web.Request) -> web.StreamResponse:
        server.requests.append(dict(request.headers))
        if request.path != "/fw.bin":
            raise web.HTTPNotFound()
        start = 0
        status = 200
        headers = {"ETag": '"v1"', "Accept-Ranges": "bytes"}
        rng = request.headers.get("Range")
        if rng and server.mode == "bad-range":  # 206, but not the range asked for
            body = DATA
            return web.Response(status=206, body=body, headers={
                "Content-Range": f"bytes 0-{len(DATA) - 1}/{len(DATA)}"})
        if rng and server.mode != "ignore-range":
            start = int(rng.removeprefix("bytes=").rstrip("-"))
            if start >= len(DATA):
                return web.Response(status=416, headers={"Content-Range": f"bytes */{len(DATA)}"})
            status = 206
            headers["Content-Range"] = f"bytes {start}-{len(DATA) - 1}/{len(DATA)}"
        body = DATA[start:]
        headers["Content-Length"] = str(len(body))
        resp = web.StreamResponse(status=status, headers=headers)
        await resp.prepare(request)
        cut = server.mode == "cut-always" or (server.mode == "cut-once" and start == 0)
        if cut:
            await resp.write(body[: server.cut_at])
            await asyncio.sleep(0.05)
            assert request.transport is not None
            request.transport.abort()  # the connection dies halfway
            return resp
        for i in range(0, len(body), 256 * 1024):
            await resp.write(body[i : i + 256 * 1024])
        await resp.write_eof()
        return resp

    return handle


async def _serve(app: web.Application, ssl_context: ssl.SSLContext | None = None
                 ) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, port


@pytest.fixture
async def http_server() -> AsyncIterator[Server]:
    server = Server(base="")
    app = web.Application()
    app.router.add_get("/{name}", _handler(server))
    runner, port = await _serve(app)
    server.base = f"http://127.0.0.1:{port}"
    yield server
    await runner.cleanup()


async def test_full_download_hash_and_size(http_server: Server, tmp_path: Path) -> None:
    """L01: the downloaded file, its size and SHA-256 computed while streaming."""
    got = await download(f"{http_server.base}/fw.bin", tmp_path / "fw.bin")
    assert got.sha256 == DIGEST and got.size == len(DATA)
    assert (tmp_path / "fw.bin").read_bytes() == DATA
    assert not (tmp_path / "fw.bin.part").exists()
    assert not (tmp_path / "fw.bin.part.json").exists()


async def test_broken_connection_is_resumed_with_range(http_server: Server,
                                                       tmp_path: Path) -> None:
    """A connection cut halfway is resumed from the part file (Range + If-Range, 206)."""
    http_server.mode = "cut-once"
    progress: list[int] = []
    got = await download(f"{http_server.base}/fw.bin", tmp_path / "fw.bin",
                         on_progress=lambda done, total: progress.append(done))
    assert got.sha256 == DIGEST and got.size == len(DATA)
    assert [r.get("Range") for r in http_server.requests] == [
        None, f"bytes={http_server.cut_at}-"]
    assert http_server.requests[1]["If-Range"] == '"v1"'
    assert progress[-1] == len(DATA)


async def test_part_file_resumed_by_a_later_call(http_server: Server, tmp_path: Path) -> None:
    """No in-call resume: the first call fails, the retry (UpdateFirmware retries) resumes
    from the bytes on disk, re-hashing them."""
    http_server.mode = "cut-once"
    url = f"{http_server.base}/fw.bin"
    with pytest.raises(DownloadError, match="broken") as err:
        await download(url, tmp_path / "fw.bin", resume_attempts=0)
    assert "\n" not in str(err.value)
    assert (tmp_path / "fw.bin.part").stat().st_size == http_server.cut_at
    got = await download(url, tmp_path / "fw.bin")
    assert got.sha256 == DIGEST
    assert http_server.requests[-1]["Range"] == f"bytes={http_server.cut_at}-"


async def test_part_file_of_another_url_is_not_resumed(http_server: Server,
                                                       tmp_path: Path) -> None:
    (tmp_path / "fw.bin.part").write_bytes(b"x" * 1000)
    got = await download(f"{http_server.base}/fw.bin", tmp_path / "fw.bin")
    assert got.sha256 == DIGEST
    assert "Range" not in http_server.requests[0]


async def test_server_ignoring_range_restarts_from_zero(http_server: Server,
                                                        tmp_path: Path) -> None:
    """A 200 answer to a Range request: the part file is dropped and the whole file kept."""
    http_server.mode = "cut-once"
    url = f"{http_server.base}/fw.bin"
    with pytest.raises(DownloadError):
        await download(url, tmp_path / "fw.bin", resume_attempts=0)
    http_server.mode = "ignore-range"
    got = await download(url, tmp_path / "fw.bin")
    assert got.sha256 == DIGEST and got.size == len(DATA)
    assert http_server.requests[-1]["Range"] == f"bytes={http_server.cut_at}-"
    assert (tmp_path / "fw.bin").read_bytes() == DATA


async def test_unexpected_content_range_restarts(http_server: Server,
                                                 tmp_path: Path) -> None:
    """A 206 for another range than asked: nothing of it is kept; a fresh request follows."""
    http_server.mode = "cut-once"
    url = f"{http_server.base}/fw.bin"
    with pytest.raises(DownloadError):
        await download(url, tmp_path / "fw.bin", resume_attempts=0)
    http_server.mode = "bad-range"
    got = await download(url, tmp_path / "fw.bin")
    assert got.sha256 == DIGEST and got.size == len(DATA)
    assert [r.get("Range") for r in http_server.requests] == [
        None, f"bytes={http_server.cut_at}-", None]


async def test_complete_part_file_416(http_server: Server, tmp_path: Path) -> None:
    """The part file already holds everything (power lost just before the rename): the
    server's 416 with the same total ends the download without another byte."""
    http_server.mode = "cut-once"
    url = f"{http_server.base}/fw.bin"
    with pytest.raises(DownloadError):
        await download(url, tmp_path / "fw.bin", resume_attempts=0)
    with open(tmp_path / "fw.bin.part", "ab") as f:
        f.write(DATA[http_server.cut_at :])
    got = await download(url, tmp_path / "fw.bin")
    assert got.sha256 == DIGEST and got.size == len(DATA)
    assert http_server.requests[-1]["Range"] == f"bytes={len(DATA)}-"
    assert (tmp_path / "fw.bin").read_bytes() == DATA


async def test_cut_every_time_gives_up(http_server: Server, tmp_path: Path) -> None:
    http_server.mode = "cut-always"
    http_server.cut_at = 100_000
    with pytest.raises(DownloadError, match="broken"):
        await download(f"{http_server.base}/fw.bin", tmp_path / "fw.bin", resume_attempts=2)
    assert len(http_server.requests) == 3
    assert (tmp_path / "fw.bin.part").stat().st_size == 300_000


async def test_http_404(http_server: Server, tmp_path: Path) -> None:
    with pytest.raises(DownloadError) as err:
        await download(f"{http_server.base}/missing.bin", tmp_path / "fw.bin")
    assert str(err.value) == "HTTP 404 Not Found from 127.0.0.1"
    assert not (tmp_path / "fw.bin").exists()


async def test_connection_refused(tmp_path: Path) -> None:
    runner, port = await _serve(web.Application())
    await runner.cleanup()  # nothing listens on this port any more
    with pytest.raises(DownloadError, match=f"connection refused by 127.0.0.1:{port}"):
        await download(f"http://127.0.0.1:{port}/fw.bin", tmp_path / "fw.bin")


async def test_unknown_host(tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="cannot resolve host no-such-host.invalid"):
        await download("http://no-such-host.invalid/fw.bin", tmp_path / "fw.bin",
                       timeout_s=5)


async def test_unsupported_scheme(tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="unsupported download location"):
        await download("file:///etc/passwd", tmp_path / "fw.bin")


async def test_read_timeout(tmp_path: Path) -> None:
    release = asyncio.Event()

    async def stall(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Length": "10"})
        await resp.prepare(request)
        await release.wait()
        return resp

    app = web.Application()
    app.router.add_get("/fw.bin", stall)
    runner, port = await _serve(app)
    try:
        with pytest.raises(DownloadError, match="timed out after 0.3 s waiting for 127.0.0.1"):
            await download(f"http://127.0.0.1:{port}/fw.bin", tmp_path / "fw.bin",
                           timeout_s=0.3)
    finally:
        release.set()
        await runner.cleanup()


# -- https with a test CA --------------------------------------------------------------

@pytest.fixture
async def https_server(tmp_path: Path) -> AsyncIterator[tuple[Server, Path]]:
    ca_pem, cert_pem, key_pem = ca_and_server_cert(tmp_path, "good")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert_pem, key_pem)
    server = Server(base="")
    app = web.Application()
    app.router.add_get("/{name}", _handler(server))
    runner, port = await _serve(app, server_ctx)
    server.base = f"https://127.0.0.1:{port}"
    yield server, ca_pem
    await runner.cleanup()


async def test_https_trusted_ca(https_server: tuple[Server, Path], tmp_path: Path) -> None:
    server, ca_pem = https_server
    server.mode = "cut-once"
    ctx = ssl.create_default_context(cafile=str(ca_pem))
    got = await download(f"{server.base}/fw.bin", tmp_path / "fw.bin", ssl_context=ctx)
    assert got.sha256 == DIGEST
    assert server.requests[-1]["Range"] == f"bytes={server.cut_at}-"


async def test_https_wrong_ca_refused(https_server: tuple[Server, Path],
                                      tmp_path: Path) -> None:
    server, _ = https_server
    other_ca, _, _ = ca_and_server_cert(tmp_path, "other")
    ctx = ssl.create_default_context(cafile=str(other_ca))
    with pytest.raises(DownloadError) as err:
        await download(f"{server.base}/fw.bin", tmp_path / "fw.bin", ssl_context=ctx)
    assert str(err.value).startswith("TLS certificate of 127.0.0.1 not trusted: ")
    assert "\n" not in str(err.value)
    assert server.requests == []  # no HTTP request went out


async def test_https_system_cas_refuse_test_ca(https_server: tuple[Server, Path],
                                               tmp_path: Path) -> None:
    server, _ = https_server
    with pytest.raises(DownloadError, match="not trusted"):
        await download(f"{server.base}/fw.bin", tmp_path / "fw.bin")


# -- ftp ---------------------------------------------------------------------------------

@dataclass
class FtpServer:
    url: str
    commands: list[str]
    cut_next_retr: list[int]


@pytest.fixture
def ftp_server(tmp_path: Path) -> Iterator[FtpServer]:
    from pyftpdlib.authorizers import DummyAuthorizer
    from pyftpdlib.filesystems import AbstractedFS
    from pyftpdlib.handlers import FTPHandler
    from pyftpdlib.servers import FTPServer

    root = tmp_path / "ftproot"
    (root / "pub").mkdir(parents=True)
    (root / "pub" / "fw.bin").write_bytes(DATA)
    truncated = tmp_path / "truncated.bin"
    commands: list[str] = []
    cut_next_retr: list[int] = []

    class CuttingFS(AbstractedFS):  # type: ignore[misc]
        def open(self, filename: str, mode: str) -> Any:
            if cut_next_retr and filename.endswith("fw.bin"):
                truncated.write_bytes(DATA[: cut_next_retr.pop()])
                return open(truncated, mode)  # the data connection ends early
            return super().open(filename, mode)

    class Handler(FTPHandler):  # type: ignore[misc]
        abstracted_fs = CuttingFS
        auth_failed_timeout = 0

        def pre_process_command(self, line: str, cmd: str, arg: str) -> None:
            commands.append(line)
            super().pre_process_command(line, cmd, arg)

    authorizer = DummyAuthorizer()
    authorizer.add_user("station", "s3cret", str(root), perm="elr")
    Handler.authorizer = authorizer
    server = FTPServer(("127.0.0.1", 0), Handler)
    port = server.socket.getsockname()[1]
    serving = threading.Event()
    serving.set()

    def loop() -> None:
        while serving.is_set():
            server.serve_forever(timeout=0.05, blocking=False, handle_exit=False)
        server.close_all()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    yield FtpServer(f"ftp://station:s3cret@127.0.0.1:{port}/pub/fw.bin", commands,
                    cut_next_retr)
    serving.clear()
    thread.join(5)


async def test_ftp_full_download(ftp_server: FtpServer, tmp_path: Path) -> None:
    got = await download(ftp_server.url, tmp_path / "fw.bin")
    assert got.sha256 == DIGEST and got.size == len(DATA)
    assert "USER station" in ftp_server.commands
    assert not any(c.startswith("REST") for c in ftp_server.commands)


async def test_ftp_resume_with_rest(ftp_server: FtpServer, tmp_path: Path) -> None:
    """The data connection ends after 1 MB: the next attempt continues with REST."""
    ftp_server.cut_next_retr.append(1_000_000)
    with pytest.raises(DownloadError, match="ended after 1000000 of"):
        await download(ftp_server.url, tmp_path / "fw.bin", resume_attempts=0)
    assert "s3cret" not in (tmp_path / "fw.bin.part.json").read_text()  # no password on disk
    got = await download(ftp_server.url, tmp_path / "fw.bin")
    assert got.sha256 == DIGEST
    assert "REST 1000000" in ftp_server.commands


async def test_ftp_resume_in_one_call(ftp_server: FtpServer, tmp_path: Path) -> None:
    ftp_server.cut_next_retr.append(777_777)
    got = await download(ftp_server.url, tmp_path / "fw.bin")
    assert got.sha256 == DIGEST
    assert "REST 777777" in ftp_server.commands


async def test_ftp_missing_file_and_bad_login(ftp_server: FtpServer, tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="FTP server 127.0.0.1 refused: 550"):
        await download(ftp_server.url.replace("fw.bin", "nope.bin"), tmp_path / "fw.bin")
    with pytest.raises(DownloadError, match="FTP server 127.0.0.1 refused: 530") as err:
        await download(ftp_server.url.replace("s3cret", "wrong"), tmp_path / "fw.bin")
    assert "wrong" not in str(err.value)


# -- constant memory -------------------------------------------------------------------

async def test_constant_memory_50_mb(tmp_path: Path) -> None:
    """50 MB through aiohttp (server: sendfile) keeps the Python heap peak under 2 MB."""
    big = tmp_path / "srv" / "big.bin"
    big.parent.mkdir()
    block = hashlib.shake_256(b"big").digest(1024 * 1024)
    expected = hashlib.sha256()
    with open(big, "wb") as f:
        for _ in range(50):
            f.write(block)
            expected.update(block)

    app = web.Application()
    app.router.add_static("/", big.parent)
    runner, port = await _serve(app)
    try:
        tracemalloc.start()
        try:
            tracemalloc.reset_peak()
            got = await download(f"http://127.0.0.1:{port}/big.bin", tmp_path / "big.bin")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    finally:
        await runner.cleanup()
    assert got.size == 50 * 1024 * 1024 and got.sha256 == expected.hexdigest()
    print(f"tracemalloc peak {peak} bytes")
    assert peak < 2 * 1024 * 1024, f"peak {peak} bytes"
