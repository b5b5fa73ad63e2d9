"""The station's TLS client context for security profiles 2 and 3 (2.0.1 A00 §1.3.5-1.3.6;
1.6 security whitepaper §2.4-2.5).

Profile 2: the CSMS certificate is verified against the installed CSMSRootCertificate(s)
only (never the system store) and its host name checked (A00.FR.308/309); profile 3 adds
our ChargingStationCertificate chain and key as the client certificate (A00.FR.402).
TLS 1.2 is the minimum (A00.FR.313/416), no TLS compression (A00.FR.321/424), and the
TLS 1.2 cipher suites are the ones OCPP names (A00.FR.318-319/421-422) plus their
ECDHE-RSA forward-secret siblings; TLS 1.3 keeps OpenSSL's (all AEAD) suites.
"""

from __future__ import annotations

import _ssl
import ssl
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from . import Security

# OpenSSL names of TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, ..._AES_256_GCM_SHA384,
# TLS_ECDHE_RSA_WITH_AES_{128,256}_GCM_*, TLS_RSA_WITH_AES_128_GCM_SHA256, ..._256_GCM_SHA384.
OCPP_CIPHERS = ":".join((
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "AES128-GCM-SHA256",
    "AES256-GCM-SHA384",
))
CSMS_ROOT = "CSMSRootCertificate"  # 1.6 CentralSystemRootCertificate: the same store
STATION_CERTIFICATE = "ChargingStationCertificate"  # key name and chain use (S1's store)


class TlsSetupError(Exception):
    """The station cannot build its TLS context (no root, no certificate): one line."""


def client_ssl_context(
    profile: int,
    security: Security,
    roots_pem: str | None = None,
    previous: bool = False,
    allow_wildcards: bool = False,
) -> ssl.SSLContext | None:
    """The context for `profile`; None for profiles 0 and 1 (plain ws). `roots_pem`
    replaces the installed CSMS roots (the fallback root of M05.FR.14/16); `previous`
    uses the station certificate (and key) a CertificateSigned replaced (A02.FR.28);
    `allow_wildcards`: SecurityCtrlr.AllowCSMSTLSWildcards (errata 2025-02: a wildcard
    CSMS certificate is refused unless it is true)."""
    if profile < 2:
        return None
    trusted = security.certificates.trusted_pem(CSMS_ROOT) if roots_pem is None else roots_pem
    if not trusted.strip():
        raise TlsSetupError(
            f"security profile {profile} needs a {CSMS_ROOT}: none installed "
            "(evse-agent keys install-root CSMSRootCertificate FILE, or InstallCertificate)"
        )
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # check_hostname and CERT_REQUIRED on
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.options |= ssl.OP_NO_COMPRESSION
    # An installed CSMS root need not be self-signed (a new root signed by the old one,
    # M05.FR.10; 1.6 whitepaper §7.1 note: partial chain verification): it is a trust
    # anchor because the operator installed it.
    ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    ctx.set_ciphers(OCPP_CIPHERS)
    if not allow_wildcards:  # OpenSSL's X509_CHECK_FLAG_NO_WILDCARDS for the host check
        ctx._host_flags |= _ssl.HOSTFLAG_NO_WILDCARDS  # type: ignore[attr-defined]
    try:
        ctx.load_verify_locations(cadata=trusted)
    except ssl.SSLError as err:
        raise TlsSetupError(f"installed {CSMS_ROOT} unusable: {err}") from None
    if profile >= 3:
        key_name = STATION_CERTIFICATE
        if previous:
            from .keystore import previous as previous_name

            key_name = previous_name(STATION_CERTIFICATE)
            chain = security.certificates.previous_chain_pem(STATION_CERTIFICATE)
        else:
            chain = security.certificates.station_chain_pem(STATION_CERTIFICATE)
        if not chain or not security.keys.has_key(key_name):
            raise TlsSetupError(
                f"security profile 3 needs a {STATION_CERTIFICATE} and its key: none "
                "installed (evse-agent keys generate / install-cert, or SignCertificate)"
            )
        try:
            security.keys.load_into(ctx, key_name, chain)
        except Exception as err:  # KeyStoreError: names the key file, never its content
            raise TlsSetupError(str(err)) from None
    return ctx


def can_use_profile(profile: int, security: Security) -> str | None:
    """Why the station cannot connect with `profile` now (A05.FR.02/03 2.0.1;
    1.6 A05.FR.03/04), or None when it can."""
    try:
        client_ssl_context(profile, security)
    except TlsSetupError as err:
        return str(err)
    return None


def tls_failure_event(err: BaseException) -> str | None:
    """The security event a failed TLS handshake stands for (2.0.1 names; OCA appendix
    security events): a CSMS certificate that does not verify (wrong CA, expired, host
    name), a TLS version below 1.2, or no common cipher suite."""
    if isinstance(err, ssl.SSLCertVerificationError):
        return "InvalidCsmsCertificate"  # A00.FR.310/413
    if isinstance(err, ssl.SSLError):
        reason = (err.reason or "").upper()
        # Not WRONG_VERSION_NUMBER: that is a peer that speaks no TLS at all.
        if any(r in reason for r in ("PROTOCOL_VERSION", "UNSUPPORTED_PROTOCOL",
                                     "NO_PROTOCOLS_AVAILABLE")):
            return "InvalidTLSVersion"  # A00.FR.316/419
        if "CIPHER" in reason or reason == "SSLV3_ALERT_HANDSHAKE_FAILURE":
            return "InvalidTLSCipherSuite"  # A00.FR.323/426
    return None
