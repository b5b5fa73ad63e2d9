"""TLS and HTTP Basic authentication on the development CSMS's side: serve wss:// with
a server certificate (security profile 2), require a client certificate signed by a
given CA (profile 3, A00.FR.403), and check the Basic auth password of profiles 1-2
(A00.FR.324). For tests and bench work: the checks a real CSMS makes, nothing more."""

from __future__ import annotations

import base64
import binascii
import hmac
import ssl
from pathlib import Path

from websockets.asyncio.server import ServerConnection

OCPP_SERVER_CIPHERS = ":".join((
    "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384",
    "AES128-GCM-SHA256", "AES256-GCM-SHA384",
))


def server_ssl_context(
    cert_file: str | Path, key_file: str | Path, client_ca: str | Path | None = None
) -> ssl.SSLContext:
    """TLS 1.2+ with the OCPP cipher suites; with `client_ca`, a client certificate
    signed by it is required (mutual TLS, security profile 3)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.options |= ssl.OP_NO_COMPRESSION
    ctx.set_ciphers(OCPP_SERVER_CIPHERS)
    ctx.load_cert_chain(str(cert_file), str(key_file))
    if client_ca is not None:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(cafile=str(client_ca))
    return ctx


def basic_auth_ok(header: str | None, station_id: str, password: str) -> bool:
    """`Authorization: Basic base64(<station id>:<password>)` as A00.FR.303/304 say."""
    if not header or not header.lower().startswith("basic "):
        return False
    try:
        user, _, given = base64.b64decode(header[6:].strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    return user == station_id and hmac.compare_digest(given.encode(), password.encode())


def auth_method(connection: ServerConnection, basic: bool) -> str:
    """How the station authenticated, for the log: client certificate (subject CN, O),
    Basic auth, or none; and the TLS version and cipher."""
    parts = []
    sslobj = connection.transport.get_extra_info("ssl_object") if connection.transport else None
    if sslobj is not None:
        peer = sslobj.getpeercert()
        if peer:
            subject = {k: v for rdn in peer.get("subject", ()) for k, v in rdn}
            parts.append(f"client certificate CN={subject.get('commonName', '?')} "
                         f"O={subject.get('organizationName', '?')}")
        cipher = sslobj.cipher()
        parts.append(f"{sslobj.version()} {cipher[0] if cipher else '?'}")
    if basic:
        parts.append("basic auth")
    return ", ".join(parts) or "no authentication"
