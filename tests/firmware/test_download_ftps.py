"""ftps:// (explicit FTPS: AUTH TLS, PROT P) against a small FTPS server on loopback
written here with the stdlib ssl module (pyftpdlib's TLS handler needs pyOpenSSL). The
server speaks just the commands a download uses, TLS on control and data connections."""

from __future__ import annotations

import hashlib
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from download_support import ca_and_server_cert

from evse_agent.firmware.download import DownloadError, download

DATA = hashlib.shake_256(b"ftps firmware").digest(700_001)
DIGEST = hashlib.sha256(DATA).hexdigest()


class MiniFtps:
    """One client at a time; `cut_next` shortens the next RETR (the data connection ends
    early, as when a link drops)."""

    def __init__(self, ctx: ssl.SSLContext) -> None:
        self.ctx = ctx
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.port = self.listener.getsockname()[1]
        self.commands: list[str] = []
        self.cut_next: int | None = None
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.listener.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            conn.settimeout(5)
            try:
                self._session(conn)
            except (OSError, ssl.SSLError) as err:
                self.errors.append(err)
            finally:
                conn.close()

    def _session(self, ctrl: socket.socket) -> None:
        def send(line: str) -> None:
            ctrl.sendall(line.encode() + b"\r\n")

        def readline() -> str:
            buf = b""
            while not buf.endswith(b"\r\n"):
                byte = ctrl.recv(1)
                if not byte:
                    raise ConnectionError("client went away")
                buf += byte
            return buf.decode().strip()

        send("220 mini ftps")
        pasv: socket.socket | None = None
        rest = 0
        while True:
            line = readline()
            self.commands.append(line)
            cmd, _, arg = line.partition(" ")
            cmd = cmd.upper()
            if cmd == "AUTH":
                send("234 AUTH TLS ok")
                ctrl = self.ctx.wrap_socket(ctrl, server_side=True)
            elif cmd == "USER":
                send("331 password please")
            elif cmd == "PASS":
                send("230 logged in" if arg == "s3cret" else "530 login incorrect")
            elif cmd in ("PBSZ", "PROT", "TYPE"):
                send("200 ok")
            elif cmd == "SIZE":
                send(f"213 {len(DATA)}" if arg == "fw.bin" else "550 no such file")
            elif cmd == "PASV":
                pasv = socket.create_server(("127.0.0.1", 0))
                port = pasv.getsockname()[1]
                send(f"227 Entering Passive Mode (127,0,0,1,{port >> 8},{port & 255})")
            elif cmd == "REST":
                rest = int(arg)
                send(f"350 restarting at {rest}")
            elif cmd == "RETR" and pasv is not None:
                send("150 opening data connection")
                raw, _ = pasv.accept()
                pasv.close()
                pasv = None
                data_conn = self.ctx.wrap_socket(raw, server_side=True)
                end = len(DATA) if self.cut_next is None else self.cut_next
                self.cut_next = None
                data_conn.sendall(DATA[rest:end])
                data_conn.unwrap().close()
                rest = 0
                send("226 transfer complete")
            elif cmd == "QUIT":
                send("221 bye")
                return
            else:
                send("502 not implemented")


@pytest.fixture
def ftps(tmp_path: Path) -> Iterator[tuple[MiniFtps, Path]]:
    ca_pem, cert_pem, key_pem = ca_and_server_cert(tmp_path, "ftps")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert_pem, key_pem)
    server = MiniFtps(ctx)
    yield server, ca_pem
    server.close()


async def test_ftps_download_and_resume(ftps: tuple[MiniFtps, Path], tmp_path: Path) -> None:
    server, ca_pem = ftps
    url = f"ftps://station:s3cret@127.0.0.1:{server.port}/fw.bin"
    ctx = ssl.create_default_context(cafile=str(ca_pem))
    server.cut_next = 300_000
    got = await download(url, tmp_path / "fw.bin", ssl_context=ctx)
    assert got.sha256 == DIGEST and got.size == len(DATA)
    assert server.commands[0] == "AUTH TLS"
    assert "PROT P" in server.commands
    assert "REST 300000" in server.commands


async def test_ftps_wrong_ca_refused(ftps: tuple[MiniFtps, Path], tmp_path: Path) -> None:
    server, _ = ftps
    other_ca, _, _ = ca_and_server_cert(tmp_path, "other")
    ctx = ssl.create_default_context(cafile=str(other_ca))
    with pytest.raises(DownloadError) as err:
        await download(f"ftps://station:s3cret@127.0.0.1:{server.port}/fw.bin",
                       tmp_path / "fw.bin", ssl_context=ctx)
    assert str(err.value).startswith("TLS certificate of 127.0.0.1 not trusted: ")
    assert not any(c.startswith("USER") for c in server.commands)  # no credentials sent
