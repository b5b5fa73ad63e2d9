"""Firmware end-to-end helpers: signed bundles built with the project's own bundle API
(development signing material, or a test manufacturer root), the OCPP signature a CSMS
puts in UpdateFirmware, and a loopback HTTP file server (aiohttp) that can cut a
transfer halfway or hold it until released."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from e2e_support import STATION

from evse_agent import __version__
from evse_agent.csms import DevCsms
from evse_agent.firmware import bundle
from evse_agent.firmware.signatures import (
    DEV_SIGNING_CERT,
    DEV_SIGNING_KEY,
    dev_path,
    load_private_key,
    sign_digest,
)

RUNNING = __version__  # what a fresh station runs (no slot activated yet)
HARDWARE = "evse-agent-mock"  # the e2e station's model = [firmware] hardware_id


def dev_signer() -> tuple[Any, str]:
    """The DEVELOPMENT ONLY signing key and certificate (firmware-bundle/dev)."""
    key = load_private_key(dev_path(DEV_SIGNING_KEY).read_bytes(), "dev key")
    return key, dev_path(DEV_SIGNING_CERT).read_text()


class OtherRoot:
    """A manufacturer root the station does not know until InstallCertificate."""

    def __init__(self, cn: str = "Other Manufacturer Root") -> None:
        now = datetime.now(UTC)
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        self.cert = self._issue(name, self.key.public_key(), name, ca=True, now=now)
        self.signing_key = ec.generate_private_key(ec.SECP256R1())
        signer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn + " signing")])
        self.signing_cert = self._issue(signer, self.signing_key.public_key(), name,
                                        ca=False, now=now)

    def _issue(self, subject: x509.Name, public: Any, issuer: x509.Name, *, ca: bool,
               now: datetime) -> x509.Certificate:
        return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
                .public_key(public).serial_number(x509.random_serial_number())
                .not_valid_before(now - timedelta(days=1))
                .not_valid_after(now + timedelta(days=30))
                .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
                .sign(self.key, hashes.SHA256()))

    @property
    def pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()

    @property
    def signing_pem(self) -> str:
        return self.signing_cert.public_bytes(serialization.Encoding.PEM).decode()


def make_bundle(tmp: Path, version: str, *, hardware: tuple[str, ...] = (HARDWARE,),
                min_version: str | None = None, key: Any = None,
                chain_pem: str | None = None, size: int = 64 * 1024) -> bytes:
    """A small signed bundle (one payload of `size` bytes) as the file's bytes."""
    if key is None:
        key, chain_pem = dev_signer()
    assert chain_pem is not None
    payload = tmp / f"rootfs-{version}.img"
    payload.write_bytes(bytes((i * 7 + len(version)) % 251 for i in range(size)))
    out = tmp / f"fw-{version}-{abs(hash(hardware)) % 1000}.bundle"
    bundle.build(out, version=version, payloads=[payload], key=key, chain_pem=chain_pem,
                 hardware=hardware, min_version=min_version)
    return out.read_bytes()


def ocpp_signature(data: bytes, key: Any = None) -> str:
    """UpdateFirmware firmware.signature: base64 signature over the whole file."""
    if key is None:
        key = dev_signer()[0]
    return base64.b64encode(sign_digest(key, hashlib.sha256(data).digest())).decode()


def tampered(data: bytes) -> bytes:
    """One byte of the payload changed (near the end, inside the payload data)."""
    spot = len(data) - 3 * 1024
    return data[:spot] + bytes([data[spot] ^ 0xFF]) + data[spot + 1:]


def past(hours: float = 2) -> str:
    return (datetime.now(UTC) - timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")


def future(hours: float = 2) -> str:
    return (datetime.now(UTC) + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")


def update_request(url: str, data: bytes, request_id: int, *, key: Any = None,
                   cert: str | None = None, install: str | None = None) -> dict[str, Any]:
    """An UpdateFirmwareRequest as TC_L_01_CS sends it (dates two hours ago)."""
    fw: dict[str, Any] = {
        "location": url,
        "retrieveDateTime": past(),
        "signingCertificate": cert or dev_signer()[1],
        "signature": ocpp_signature(data, key),
    }
    if install:
        fw["installDateTime"] = install
    return {"requestId": request_id, "retries": 1, "retryInterval": 1, "firmware": fw}


class FileServer:
    """GET /NAME serves files[NAME] with Range support; NAME in `cut_once` is cut after
    half of it the first time; NAME in `hold` waits for `release` before sending."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[tuple[str, str | None]] = []  # (name, Range header)
        self.cut_once: set[str] = set()
        self.hold: set[str] = set()
        self.release = asyncio.Event()
        self.port = 0
        self._runner: web.AppRunner | None = None

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def add(self, name: str, data: bytes) -> str:
        self.files[name] = data
        return self.url(name)

    async def _get(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        rng = request.headers.get("Range")
        self.requests.append((name, rng))
        data = self.files.get(name)
        if data is None:
            return web.Response(status=404)
        if name in self.hold:
            await self.release.wait()
        start, status = 0, 200
        headers = {"ETag": f'"{hashlib.sha256(data).hexdigest()[:16]}"',
                   "Accept-Ranges": "bytes"}
        if rng and rng.startswith("bytes="):
            start = int(rng[6:].split("-")[0])
            status = 206
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        body = data[start:]
        headers["Content-Length"] = str(len(body))
        resp = web.StreamResponse(status=status, headers=headers)
        await resp.prepare(request)
        if name in self.cut_once:
            self.cut_once.discard(name)
            await resp.write(body[: len(body) // 2])
            await asyncio.sleep(0.05)
            assert request.transport is not None
            request.transport.abort()  # the connection dies halfway
            return resp
        await resp.write(body)
        await resp.write_eof()
        return resp

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/{name}", self._get)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        self.release.set()
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture
async def files() -> AsyncIterator[FileServer]:
    server = FileServer()
    await server.start()
    yield server
    await server.stop()


def with_firmware(st: Any, **keys: Any) -> Any:
    """Add a [firmware] section to the station's config file."""
    import json

    text = "".join(f"{k} = {json.dumps(v)}\n" for k, v in keys.items())
    st.config.write_text(st.config.read_text() + f"\n[firmware]\n{text}")
    return st


def fw_statuses(csms: DevCsms, request_id: int | None = None, since: int = 0,
                action: str = "FirmwareStatusNotification") -> list[str]:
    return [r.payload["status"] for r in csms.received[since:]
            if r.station_id == STATION and r.action == action
            and (request_id is None or r.payload.get("requestId") == request_id)]


async def wait_status(csms: DevCsms, status: str, request_id: int | None = None,
                      since: int = 0, timeout: float = 10,
                      action: str = "FirmwareStatusNotification") -> None:
    await csms.wait_for(
        STATION, action,
        lambda p: p["status"] == status and request_id in (None, p.get("requestId")),
        timeout=timeout, since=since,
    )


async def wait_security_event(csms: DevCsms, type_: str, since: int = 0,
                              timeout: float = 10) -> dict[str, Any]:
    return await csms.wait_for(STATION, "SecurityEventNotification",
                               lambda p: p["type"] == type_, timeout=timeout, since=since)
