"""Firmware download: http(s) and ftp(s), streamed to disk with SHA-256 on the fly.

Bytes go to `dest.part` in fixed-size chunks and into the hash as they arrive, so memory
stays constant whatever the size. A transfer that breaks leaves `dest.part` behind with a
small sidecar (`dest.part.json`: a digest of the URL, the server's validators); the next
attempt, in this call or a later one, re-hashes the part file and asks only for the rest
(HTTP Range + If-Range, FTP REST). A server that answers a Range request with the whole file
(200) is followed from zero. Only a complete file is renamed to `dest`.

aiohttp is imported on the first http(s) download, not with this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import re
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

CHUNK = 64 * 1024
Progress = Callable[[int, int | None], None]  # (bytes so far, total size or None)


class DownloadError(Exception):
    """A failed download; the message is one line a person can act on."""


class Broken(Exception):
    """The connection broke mid-transfer after some progress: worth resuming."""


@dataclass(frozen=True)
class Downloaded:
    path: Path
    size: int
    sha256: str


async def download(url: str, dest: Path, *, timeout_s: float = 30,
                   ssl_context: ssl.SSLContext | None = None, resume_attempts: int = 3,
                   on_progress: Progress | None = None) -> Downloaded:
    """Fetch `url` into `dest`; raises DownloadError with a one-line message.

    `timeout_s` bounds connecting and every wait for data (not the whole transfer).
    https and ftps verify against the system CAs unless `ssl_context` is given.
    A transfer that breaks after making progress is resumed up to `resume_attempts`
    times within this call; whatever is left in `dest.part` is resumed by the next call.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https", "ftp", "ftps") or not parts.hostname:
        raise DownloadError(f"unsupported download location: {safe_url(url)}")
    dest = Path(dest)
    part = PartFile(dest, url)
    attempt = 0
    while True:
        attempt += 1
        try:
            if scheme in ("http", "https"):
                await _http(url, part, timeout_s, ssl_context, on_progress)
            else:
                from .download_ftp import fetch

                await fetch(url, part, timeout_s, ssl_context, on_progress)
            break
        except Broken as err:
            if attempt > resume_attempts:
                raise DownloadError(str(err)) from None
            log.info("%s; resuming from byte %d", err, part.size)
    # fsync of a large file on slow flash takes a while: not on the event loop.
    size, digest = await asyncio.to_thread(part.finish)
    return Downloaded(dest, size, digest)


class PartFile:
    """dest.part with its running hash and the sidecar that makes it resumable."""

    def __init__(self, dest: Path, url: str) -> None:
        self.dest = dest
        self.url = url
        self.path = dest.with_name(dest.name + ".part")
        self.meta_path = dest.with_name(dest.name + ".part.json")
        self.hash = hashlib.sha256()
        self.size = 0
        self.file: BinaryIO | None = None
        self.validators: dict[str, str] = {}

    def resume_point(self) -> int:
        """Open for appending after re-hashing what is there; 0 when starting afresh."""
        try:
            return self._resume_point()
        except OSError as err:
            raise DownloadError(_os_problem(err, self.path)) from None

    def _resume_point(self) -> int:
        self.close()
        meta = self._read_meta()
        if meta.get("source") != self._source() or not self.path.exists():
            return self.restart()
        self.validators = {k: v for k, v in meta.items() if k in ("etag", "last_modified")}
        self.hash = hashlib.sha256()
        self.size = 0
        with open(self.path, "rb") as f:
            while chunk := f.read(1024 * 1024):
                self.hash.update(chunk)
                self.size += len(chunk)
        self.file = open(self.path, "ab")  # noqa: SIM115 - closed by close()/finish()
        return self.size

    def restart(self, validators: dict[str, str] | None = None) -> int:
        try:
            return self._restart(validators)
        except OSError as err:
            raise DownloadError(_os_problem(err, self.path)) from None

    def _restart(self, validators: dict[str, str] | None) -> int:
        self.close()
        self.dest.parent.mkdir(parents=True, exist_ok=True)
        self.validators = validators or {}
        self._write_meta()
        self.file = open(self.path, "wb")  # noqa: SIM115
        self.hash = hashlib.sha256()
        self.size = 0
        return 0

    def remember(self, validators: dict[str, str]) -> None:
        if validators != self.validators:
            self.validators = validators
            try:
                self._write_meta()
            except OSError as err:
                raise DownloadError(_os_problem(err, self.meta_path)) from None

    def write(self, chunk: bytes) -> None:
        assert self.file is not None
        try:
            self.file.write(chunk)
        except OSError as err:
            raise DownloadError(_os_problem(err, self.path)) from None
        self.hash.update(chunk)
        self.size += len(chunk)

    def close(self) -> None:
        if self.file is not None:
            with contextlib.suppress(OSError):
                self.file.close()
            self.file = None

    def finish(self) -> tuple[int, str]:
        try:
            return self._finish()
        except OSError as err:
            raise DownloadError(_os_problem(err, self.dest)) from None

    def _finish(self) -> tuple[int, str]:
        if self.file is None:  # nothing was transferred this time (already complete)
            self.file = open(self.path, "ab")  # noqa: SIM115
        self.file.flush()
        os.fsync(self.file.fileno())
        self.close()
        os.replace(self.path, self.dest)
        with contextlib.suppress(FileNotFoundError):
            self.meta_path.unlink()
        return self.size, self.hash.hexdigest()

    def _read_meta(self) -> dict[str, Any]:
        try:
            meta = json.loads(self.meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return meta if isinstance(meta, dict) else {}

    def _write_meta(self) -> None:
        self.meta_path.write_text(json.dumps({"source": self._source(), **self.validators}),
                                  encoding="utf-8")

    def _source(self) -> str:
        # A digest, not the URL: it may carry an FTP password or an access token.
        return hashlib.sha256(self.url.encode("utf-8")).hexdigest()


# -- http(s) -----------------------------------------------------------------------------

async def _http(url: str, part: PartFile, timeout_s: float, ctx: ssl.SSLContext | None,
                on_progress: Progress | None) -> None:
    import aiohttp

    offset = await asyncio.to_thread(part.resume_point)  # re-hashing may take seconds
    host = urlsplit(url).hostname or "?"
    timeout = aiohttp.ClientTimeout(total=None, connect=timeout_s, sock_connect=timeout_s,
                                    sock_read=timeout_s)
    headers = {"Accept-Encoding": "identity"}  # the hash is over the bytes as served
    if offset:
        headers["Range"] = f"bytes={offset}-"
        validator = part.validators.get("etag") or part.validators.get("last_modified")
        if validator and not validator.startswith("W/"):  # If-Range needs a strong one
            headers["If-Range"] = validator
    start = offset
    try:
        async with aiohttp.ClientSession(timeout=timeout, auto_decompress=False) as session, \
                session.get(url, headers=headers, ssl=ctx if ctx is not None else True) as resp:
            total = await _position(resp, part, offset, host)
            if total is not None and part.size == total:
                return
            async for chunk in resp.content.iter_chunked(CHUNK):
                part.write(chunk)
                if on_progress is not None:
                    on_progress(part.size, total)
            if total is not None and part.size != total:
                raise Broken(f"connection to {host} broken after {part.size} of "
                             f"{total} bytes")
    except Broken:
        raise
    except aiohttp.ClientError as err:
        problem = _http_problem(err, host, timeout_s)
        if part.size > start and _resumable(err):
            raise Broken(f"{problem} after {part.size} bytes") from None
        raise DownloadError(problem) from None
    except TimeoutError:
        if part.size > start:
            raise Broken(f"no data from {host} for {timeout_s:g} s") from None
        raise DownloadError(f"timed out after {timeout_s:g} s waiting for {host}") from None
    finally:
        part.close()


async def _position(resp: Any, part: PartFile, offset: int, host: str) -> int | None:
    """Line the part file up with what the server sends; returns the total size."""
    validators = {k: v for k, v in (("etag", resp.headers.get("ETag")),
                                    ("last_modified", resp.headers.get("Last-Modified")))
                  if v}
    if resp.status == 206 and offset:
        match = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+|\*)",
                             resp.headers.get("Content-Range", "").strip())
        if match and int(match.group(1)) == offset:
            if validators:
                part.remember(validators)
            return None if match.group(3) == "*" else int(match.group(3))
        log.info("%s answered an unexpected range; starting again from zero", host)
        part.restart()
        raise Broken(f"{host} sent an unexpected Content-Range")
    if resp.status == 416 and offset:
        # The part file is already complete (or longer than the file now is).
        match = re.fullmatch(r"bytes \*/(\d+)", resp.headers.get("Content-Range", "").strip())
        if match and int(match.group(1)) == offset:
            return offset
        part.restart()
        raise Broken(f"{host} refused the range; starting again from zero")
    if resp.status == 200:
        if offset:
            log.info("%s ignored the range request; downloading from zero", host)
        part.restart(validators)
        return resp.content_length
    reason = f" {resp.reason}" if resp.reason else ""
    raise DownloadError(f"HTTP {resp.status}{reason} from {host}")


def _resumable(err: Exception) -> bool:
    import aiohttp

    return isinstance(err, aiohttp.ClientPayloadError | aiohttp.ServerDisconnectedError
                      | aiohttp.ClientOSError | aiohttp.ServerTimeoutError)


def _http_problem(err: Exception, host: str, timeout_s: float) -> str:
    import aiohttp

    dns_error = getattr(aiohttp, "ClientConnectorDNSError", ())
    if isinstance(err, aiohttp.ClientConnectorCertificateError):
        return f"TLS certificate of {host} not trusted: {ssl_reason(err.certificate_error)}"
    if isinstance(err, aiohttp.ClientSSLError):
        return f"TLS handshake with {host} failed: {one_line(err)}"
    if dns_error and isinstance(err, dns_error):
        return f"cannot resolve host {host}"
    if isinstance(err, aiohttp.ClientConnectorError):
        cause = err.os_error
        if isinstance(cause, socket.gaierror):
            return f"cannot resolve host {host}"
        if isinstance(cause, ConnectionRefusedError):
            return f"connection refused by {host}:{err.port}"
        return f"cannot connect to {host}:{err.port}: {cause.strerror or cause}"
    if isinstance(err, aiohttp.ServerTimeoutError):
        return f"timed out after {timeout_s:g} s waiting for {host}"
    if isinstance(err, aiohttp.ClientPayloadError | aiohttp.ServerDisconnectedError):
        return f"connection to {host} broken"
    return f"download from {host} failed: {one_line(err)}"


# -- messages ----------------------------------------------------------------------------

def safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{parts.username}:***@{netloc}").geturl()


def ssl_reason(err: BaseException) -> str:
    return getattr(err, "verify_message", None) or one_line(err)


def one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return text or type(err).__name__


def _os_problem(err: OSError, where: Path) -> str:
    return f"cannot write {err.filename or where}: {err.strerror or err}"
