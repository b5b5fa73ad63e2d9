"""Upload one file to the location a GetLog / GetDiagnostics names (N01.FR.14, 1.6
§5.9): http(s) PUT or POST (multipart form, N01.FR.18/19) through aiohttp, ftp / ftps
(passive, as N01 asks) through the standard library's ftplib on a worker thread.

The location is a directory (1.6 GetDiagnostics.location: "directory URI"), so the
file goes there under its own name; a location with a query string (a pre-signed URL)
or, for PUT, one whose last segment has a dot is taken as the file's own URL. For POST
the form names the file (Content-Disposition, N01.FR.19). A server that answers 405 or
501 to the configured method gets the other one.

A failure raises UploadError with the LogStatusNotification status it stands for
(PermissionDenied for refused credentials or access, NotSupportedOperation for a scheme
not supported, BadMessage for a location that is not a URL, else UploadFailure) and one
line saying what went wrong. Credentials in the location never appear in a message.
"""

from __future__ import annotations

import asyncio
import base64
import ftplib
import posixpath
import ssl
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

SCHEMES = ("http", "https", "ftp", "ftps")
TIMEOUT_S = 30.0  # connect / read inactivity limit of one attempt
FORM_FIELD = "uploadfile"  # N01.FR.19's example


class UploadError(Exception):
    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status


def without_credentials(url: str) -> str:
    """The location as it may be logged: user kept, password replaced by ***."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable location>"
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def tls_context(roots_pem: str = "") -> ssl.SSLContext:
    """The operating system's CAs (N01.FR.16) and the CSMS trust chain (N01.FR.15)."""
    ctx = ssl.create_default_context()
    if roots_pem.strip():
        try:
            ctx.load_verify_locations(cadata=roots_pem)
        except (ssl.SSLError, ValueError):  # the store's business; the system CAs remain
            pass
    return ctx


def target(url: str, filename: str, method: str = "PUT") -> str:
    """Where the file goes for an http(s) location (see the module text)."""
    parts = urlsplit(url)
    last = parts.path.rsplit("/", 1)[-1]
    if parts.query or method == "POST" or (last and "." in last):
        return url
    path = parts.path if parts.path.endswith("/") else parts.path + "/"
    return urlunsplit(parts._replace(path=path + quote(filename)))


async def upload(
    path: Path,
    location: str,
    filename: str,
    *,
    method: str = "PUT",
    ssl_context: ssl.SSLContext | None = None,
    timeout_s: float = TIMEOUT_S,
) -> None:
    """Upload `path` as `filename` to `location`; UploadError on failure."""
    try:
        parts = urlsplit(location)
        _ = parts.port
    except ValueError as err:
        raise UploadError("BadMessage", f"not a valid location: {err}") from None
    scheme = parts.scheme.lower()
    if not parts.hostname or scheme not in SCHEMES:
        if scheme and parts.hostname:
            raise UploadError("NotSupportedOperation",
                              f"{scheme}:// uploads are not supported (only {', '.join(SCHEMES)})")
        raise UploadError("BadMessage", f"not an upload URL: {without_credentials(location)}")
    if scheme in ("ftp", "ftps"):
        await asyncio.to_thread(
            _ftp_store, path, location, filename,
            (ssl_context or tls_context()) if scheme == "ftps" else None, timeout_s,
        )
        return
    await _http(path, location, filename, method.upper(), ssl_context, timeout_s)


async def _http(
    path: Path, location: str, filename: str, method: str,
    ssl_context: ssl.SSLContext | None, timeout_s: float,
) -> None:
    import aiohttp

    parts = urlsplit(location)
    auth: dict[str, str] = {}
    if parts.username is not None:  # N01.FR.17: user:password@ in the location
        token = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        auth["Authorization"] = "Basic " + base64.b64encode(token.encode()).decode()
        host = parts.hostname or ""
        netloc = f"[{host}]" if ":" in host else host
        if parts.port:
            netloc += f":{parts.port}"
        location = urlunsplit(parts._replace(netloc=netloc))
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=timeout_s, sock_read=timeout_s)
    where = without_credentials(location)
    methods = [method, "POST" if method == "PUT" else "PUT"]
    try:
        async with aiohttp.ClientSession(timeout=timeout) as http:
            for attempt, verb in enumerate(methods):
                status, reason = await _send(http, verb, path, location, filename, auth,
                                             ssl_context)
                if 200 <= status < 300:
                    return
                if status in (405, 501) and attempt == 0:
                    continue  # the server takes the other method (N01.FR.18)
                kind = "PermissionDenied" if status in (401, 403) else "UploadFailure"
                raise UploadError(kind, f"HTTP {status} {reason} from {verb} {where}")
    except (aiohttp.ClientError, OSError, TimeoutError) as err:
        text = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise UploadError("UploadFailure", f"{where}: {text[:200]}") from None


async def _send(
    http: Any, verb: str, path: Path, url: str, filename: str, auth: dict[str, str],
    ssl_context: ssl.SSLContext | None,
) -> tuple[int, str]:
    import aiohttp

    ssl_arg: Any = ssl_context if ssl_context is not None else True
    with path.open("rb") as body:  # streamed from disk by aiohttp
        if verb == "POST":
            form = aiohttp.FormData()
            form.add_field(FORM_FIELD, body, filename=filename,
                           content_type="application/octet-stream")
            request = http.post(url, data=form, headers=auth, ssl=ssl_arg)
        else:
            request = http.put(target(url, filename), data=body, ssl=ssl_arg,
                               headers={**auth, "Content-Type": "application/octet-stream"})
        async with request as resp:
            await resp.read()
            return resp.status, resp.reason or ""


def _ftp_store(
    path: Path, location: str, filename: str, ssl_context: ssl.SSLContext | None,
    timeout_s: float,
) -> None:
    """STOR in passive mode; runs on a worker thread."""
    parts = urlsplit(location)
    where = without_credentials(location)
    ftp: ftplib.FTP = (
        ftplib.FTP_TLS(context=ssl_context, timeout=timeout_s) if ssl_context is not None
        else ftplib.FTP(timeout=timeout_s)
    )
    try:
        ftp.connect(parts.hostname or "", parts.port or 21)
        ftp.login(unquote(parts.username or "anonymous"), unquote(parts.password or ""))
        if isinstance(ftp, ftplib.FTP_TLS):
            ftp.prot_p()
        ftp.set_pasv(True)
        name = filename
        directory = unquote(parts.path)
        if directory not in ("", "/"):
            try:
                ftp.cwd(directory)
            except ftplib.error_perm:  # not a directory: the location names the file
                head, name = posixpath.split(directory.rstrip("/"))
                if head:
                    ftp.cwd(head)
        with path.open("rb") as body:
            ftp.storbinary(f"STOR {name}", body)
        ftp.quit()
    except ftplib.error_perm as err:
        code = str(err)[:3]
        kind = "PermissionDenied" if code in ("530", "532", "550", "553") else "UploadFailure"
        raise UploadError(kind, f"FTP {str(err).splitlines()[0][:200]} at {where}") from None
    except (ftplib.Error, OSError, EOFError) as err:
        text = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise UploadError("UploadFailure", f"FTP {where}: {text[:200]}") from None
    finally:
        ftp.close()
