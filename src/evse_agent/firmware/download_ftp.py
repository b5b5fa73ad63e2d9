"""ftp:// and ftps:// (explicit TLS: AUTH TLS, then PROT P) for download.py: stdlib
ftplib in a worker thread, resumed with REST from the part file."""

from __future__ import annotations

import asyncio
import contextlib
import ftplib
import logging
import socket
import ssl
import threading
from urllib.parse import unquote, urlsplit

from .download import (
    CHUNK,
    Broken,
    DownloadError,
    PartFile,
    Progress,
    one_line,
    safe_url,
    ssl_reason,
)

log = logging.getLogger(__name__)


async def fetch(url: str, part: PartFile, timeout_s: float, ctx: ssl.SSLContext | None,
               on_progress: Progress | None) -> None:
    cancel = threading.Event()
    loop = asyncio.get_running_loop()

    def progress(done: int, total: int | None) -> None:
        if on_progress is not None:
            loop.call_soon_threadsafe(on_progress, done, total)

    try:
        await asyncio.to_thread(_ftp_blocking, url, part, timeout_s, ctx, progress, cancel)
    except asyncio.CancelledError:
        cancel.set()  # the worker stops at its next chunk
        raise


def _ftp_blocking(url: str, part: PartFile, timeout_s: float, ctx: ssl.SSLContext | None,
                  progress: Progress, cancel: threading.Event) -> None:
    parts = urlsplit(url)
    host = parts.hostname or "?"
    port = parts.port or 21
    # RFC 1738: the path is relative to the login directory; "//abs" gives "/abs".
    path = unquote(parts.path[1:] if parts.path.startswith("/") else parts.path)
    if not path:
        raise DownloadError(f"no file name in {safe_url(url)}")
    ftp: ftplib.FTP
    if parts.scheme.lower() == "ftps":
        ftp = ftplib.FTP_TLS(context=ctx or ssl.create_default_context(), timeout=timeout_s)
    else:
        ftp = ftplib.FTP(timeout=timeout_s)
    start = 0
    try:
        ftp.connect(host, port)
        ftp.login(unquote(parts.username or "anonymous"),
                  unquote(parts.password or "anonymous@"))
        if isinstance(ftp, ftplib.FTP_TLS):
            ftp.prot_p()
        ftp.voidcmd("TYPE I")
        total: int | None
        try:
            total = ftp.size(path)
        except ftplib.error_perm:
            total = None
        offset = start = part.resume_point()
        if total is not None and offset > total:
            offset = start = part.restart()
        if total is not None and offset == total:
            return

        def take(chunk: bytes) -> None:
            if cancel.is_set():
                raise DownloadError("download cancelled")
            part.write(chunk)
            progress(part.size, total)

        try:
            ftp.retrbinary(f"RETR {path}", take, blocksize=CHUNK, rest=offset or None)
        except ftplib.error_perm as err:
            if not offset or not str(err).startswith(("500", "501", "502", "504", "554")):
                raise
            log.info("%s refused REST; downloading from zero", host)
            start = part.restart()
            ftp.retrbinary(f"RETR {path}", take, blocksize=CHUNK)
        if total is not None and part.size != total:
            raise Broken(f"FTP transfer from {host} ended after {part.size} of "
                         f"{total} bytes")
    except (Broken, DownloadError):
        raise
    except ftplib.error_perm as err:
        raise DownloadError(f"FTP server {host} refused: {one_line(err)}") from None
    except ftplib.Error as err:
        problem = f"FTP error from {host}: {one_line(err)}"
        if part.size > start:
            raise Broken(problem) from None
        raise DownloadError(problem) from None
    except ssl.SSLCertVerificationError as err:
        raise DownloadError(f"TLS certificate of {host} not trusted: "
                            f"{ssl_reason(err)}") from None
    except ssl.SSLError as err:
        problem = f"TLS error with {host}: {one_line(err)}"
        if part.size > start:
            raise Broken(problem) from None
        raise DownloadError(problem) from None
    except socket.gaierror:
        raise DownloadError(f"cannot resolve host {host}") from None
    except ConnectionRefusedError:
        raise DownloadError(f"connection refused by {host}:{port}") from None
    except (OSError, EOFError) as err:
        if isinstance(err, TimeoutError):
            problem = f"timed out after {timeout_s:g} s waiting for {host}"
        elif isinstance(err, ConnectionError | EOFError):
            problem = f"connection to {host} broken"
        else:
            problem = f"cannot reach {host}:{port}: {err.strerror or one_line(err)}"
        if part.size > start:
            raise Broken(problem) from None
        raise DownloadError(problem) from None
    finally:
        part.close()
        with contextlib.suppress(Exception):
            ftp.close()
