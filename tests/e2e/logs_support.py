"""Upload servers on loopback for the log tests: an aiohttp server taking PUT and
POST (multipart) uploads, and an FTP server (pyftpdlib) on a thread."""

from __future__ import annotations

import asyncio
import io
import logging
import threading
import zipfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import BasicAuth, web
from e2e_support import free_port


@dataclass
class Upload:
    method: str
    path: str
    filename: str
    body: bytes

    def members(self) -> dict[str, str]:
        with zipfile.ZipFile(io.BytesIO(self.body)) as archive:
            return {n: archive.read(n).decode() for n in archive.namelist()}


@dataclass
class HttpUploads:
    """`methods`: what the server accepts (others: 405); `fail`: answer this status to
    every upload; `auth`: (user, password) required (401 otherwise)."""

    port: int = 0
    methods: tuple[str, ...] = ("PUT", "POST")
    fail: int | None = None
    auth: tuple[str, str] | None = None
    received: list[Upload] = field(default_factory=list)
    attempts: list[str] = field(default_factory=list)
    delay: float = 0.0  # hold each upload this long (or until the fixture ends)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def url(self, path: str = "/logs/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def handle(self, request: web.Request) -> web.Response:
        self.attempts.append(request.method)
        if self.delay:
            try:
                await asyncio.wait_for(self.release.wait(), self.delay)
            except TimeoutError:
                pass
        if self.auth is not None:
            header = request.headers.get("Authorization", "")
            try:
                given = BasicAuth.decode(header)
            except ValueError:
                given = None
            if given is None or (given.login, given.password) != self.auth:
                return web.Response(status=401)
        if request.method not in self.methods:
            return web.Response(status=405)
        if self.fail is not None:
            return web.Response(status=self.fail)
        if request.method == "PUT":
            try:
                body = await request.read()
            except ConnectionResetError:  # the station gave up (a canceled upload)
                return web.Response(status=400)
            name = request.path.rsplit("/", 1)[-1]
        else:
            form = await request.post()
            part = form["uploadfile"]
            assert isinstance(part, web.FileField), form
            assert part.content_type == "application/octet-stream"
            body, name = part.file.read(), part.filename
        self.received.append(Upload(request.method, request.path, name, body))
        return web.Response(status=201 if request.method == "PUT" else 200)


@pytest.fixture
async def http_uploads() -> AsyncIterator[HttpUploads]:
    server = HttpUploads()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", server.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server.port = runner.addresses[0][1]
    yield server
    server.release.set()
    await runner.cleanup()


@dataclass
class FtpServer:
    port: int
    root: Path
    user: str = "logs"
    password: str = "ftp-Secret-42"

    def url(self, path: str = "/upload/") -> str:
        return f"ftp://{self.user}:{self.password}@127.0.0.1:{self.port}{path}"


@pytest.fixture
def ftp_server(tmp_path: Path) -> Iterator[FtpServer]:
    from pyftpdlib.authorizers import DummyAuthorizer
    from pyftpdlib.handlers import FTPHandler
    from pyftpdlib.servers import FTPServer

    logging.getLogger("pyftpdlib").setLevel(logging.WARNING)
    root = tmp_path / "ftp"
    (root / "upload").mkdir(parents=True)
    info = FtpServer(free_port(), root)
    authorizer = DummyAuthorizer()
    authorizer.add_user(info.user, info.password, str(root), perm="elradfmw")
    handler = type("Handler", (FTPHandler,), {"authorizer": authorizer,
                                              "auth_failed_timeout": 0})
    server = FTPServer(("127.0.0.1", info.port), handler)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            server.serve_forever(timeout=0.05, blocking=False, handle_exit=False)
        server.close_all()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield info
    stop.set()
    thread.join(5)
