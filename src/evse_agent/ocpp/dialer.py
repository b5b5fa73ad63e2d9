"""Dialing the CSMS for one network profile: the URL with the station id, HTTP Basic
auth for security profiles 1 and 2, the TLS context for 2 and 3, the fallbacks the spec
allows (the previous CSMS root, M05.FR.14; the previous station certificate, A02.FR.28),
and the security event a failed attempt stands for."""

from __future__ import annotations

import logging
import socket
import ssl
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection

from .connection import basic_auth_header, failure_event, open_connection, station_url

log = logging.getLogger("evse_agent.ocpp")


def _first_line(err: BaseException) -> str:
    return (str(err) or type(err).__name__).splitlines()[0][:200]


class Dialer:
    """Opens the websocket for one network profile: the URL with the station id, Basic
    auth for profiles 1 and 2 (and 0 when a password is set), the TLS context for 2 and
    3. A failed attempt that stands for a security event records it once per kind until
    a connection succeeds again (A00.FR.316 note: no flood of repeated events); the
    SecurityEventLog sends the critical ones once connected."""

    def __init__(
        self,
        station_id: str,
        password: Callable[[], str],
        security: Any,  # security.Security (None: profiles 0 and 1 only)
        allow_wildcards: Callable[[], bool] = lambda: False,  # AllowCSMSTLSWildcards
    ) -> None:
        self.station_id = station_id
        self._allow_wildcards = allow_wildcards
        self._password = password
        self.security = security
        self._reported: set[str] = set()
        self._used_fallback_root = False
        self._cached: tuple[tuple[int, str, str | None, bool], ssl.SSLContext] | None = None

    async def dial(
        self, profile: Any, ping_interval: float | None, open_timeout: float
    ) -> tuple[ClientConnection, str]:
        url = station_url(profile.csms_url, self.station_id)
        headers: dict[str, str] = {}
        password = self._password()
        if profile.security_profile in (1, 2) or (profile.security_profile == 0 and password):
            if not password and profile.security_profile in (1, 2):
                raise ValueError(f"security profile {profile.security_profile} needs a "
                                 "BasicAuthPassword: none set")
            headers = basic_auth_header(self.station_id, password)
        versions = list(profile.versions)
        tls = self._context(profile.security_profile)
        self._used_fallback_root = False
        try:
            return await open_connection(url, versions, headers, ping_interval, open_timeout, tls)
        except ssl.SSLCertVerificationError as err:
            fallback = self._fallback_root_context(profile.security_profile)
            if fallback is None:
                self._record(err)
                raise
            log.warning("CSMS certificate does not verify with the new CSMS root (%s): "
                        "trying the previous one (M05.FR.14)", err.verify_message)
            try:
                connected = await open_connection(
                    url, versions, headers, ping_interval, open_timeout, fallback
                )
            except Exception as again:
                self._record(again)
                raise
            self._used_fallback_root = True
            return connected
        except Exception as err:
            self._record(err)
            unreachable = isinstance(err, (ConnectionRefusedError, TimeoutError, socket.gaierror))
            old = None if unreachable else self._previous_certificate_context(
                profile.security_profile)
            if old is None:
                raise
            # A02.FR.28: the certificate a CertificateSigned replaced, as fallback.
            log.warning("connection with the current ChargingStationCertificate failed (%s): "
                        "trying the previous one", _first_line(err))
            try:
                return await open_connection(url, versions, headers, ping_interval,
                                             open_timeout, old)
            except Exception as again:
                self._record(again)
                raise err from None

    def _previous_certificate_context(self, profile: int) -> ssl.SSLContext | None:
        if self.security is None or profile < 3:
            return None
        if not self.security.certificates.previous_chain_pem("ChargingStationCertificate"):
            return None
        from ..security.tls import TlsSetupError, client_ssl_context

        try:
            return client_ssl_context(profile, self.security, previous=True,
                                      allow_wildcards=bool(self._allow_wildcards()))
        except TlsSetupError:
            return None

    def connected(self) -> None:
        """The connection is up: events may be recorded again; a new CSMS root that
        verified replaces its fallback (M05.FR.13)."""
        self._reported.clear()
        if self.security is not None and not self._used_fallback_root:
            if self.security.certificates.fallback_pem("CSMSRootCertificate"):
                self.security.certificates.discard_fallback_roots("CSMSRootCertificate")
                log.info("connected with the new CSMS root: the previous one is removed")

    def _context(self, profile: int) -> ssl.SSLContext | None:
        """Built again whenever the installed roots or our certificate changed (read at
        each attempt: InstallCertificate / CertificateSigned count at once); loading the
        key is what costs, so an unchanged context is reused."""
        if profile < 2:
            return None
        from ..security.tls import CSMS_ROOT, STATION_CERTIFICATE, client_ssl_context

        if self.security is None:
            raise ValueError("security profiles 2 and 3 need the security store")
        certificates = self.security.certificates
        chain = certificates.station_chain_pem(STATION_CERTIFICATE) if profile >= 3 else None
        wildcards = bool(self._allow_wildcards())
        signature = (profile, certificates.trusted_pem(CSMS_ROOT), chain, wildcards)
        if self._cached is None or self._cached[0] != signature:
            context = client_ssl_context(profile, self.security, allow_wildcards=wildcards)
            assert context is not None
            self._cached = (signature, context)
        return self._cached[1]

    def _fallback_root_context(self, profile: int) -> ssl.SSLContext | None:
        if self.security is None or profile < 2:
            return None
        roots = self.security.certificates.fallback_pem("CSMSRootCertificate")
        if not roots:
            return None
        from ..security.tls import client_ssl_context

        return client_ssl_context(profile, self.security, roots_pem=roots,
                                  allow_wildcards=bool(self._allow_wildcards()))

    def _record(self, err: BaseException) -> None:
        event = failure_event(err)
        if event is None or event in self._reported or self.security is None:
            return
        self._reported.add(event)
        detail = getattr(err, "verify_message", None) or getattr(err, "reason", None) or err
        self.security.events.record(event, str(detail)[:255])
