"""Security profiles 2 and 3 on the wire (2.0.1 Part 2 A00 §1.3.5-1.3.6; Part 6 TC_A_04,
TC_A_05, TC_A_06, TC_A_07): a real `evse-agent run` against the development CSMS over
TLS / mutual TLS on loopback, certificates made in the test (tls_support.py).

A CSMS that cannot be trusted is refused before a byte of OCPP flows; the security event
(InvalidCsmsCertificate, InvalidTLSVersion, InvalidTLSCipherSuite) is in the station's
security log at once and reaches the CSMS once a trustworthy one is there (A00.FR.310,
A00.FR.316 note: once, not per attempt)."""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from e2e_support import STATION
from tls_support import (
    PASSWORD,
    Bench,
    install_root,
    make_ca,
    provision_station_certificate,
    security_log,
    server_cert,
    wait_output,
)

FAST = {"OCPPCommCtrlr": {"RetryBackOffWaitMinimum": 1, "RetryBackOffRepeatTimes": 0}}


@pytest.fixture
async def bench(tmp_path: Path) -> AsyncIterator[Bench]:
    b = Bench(tmp_path)
    yield b
    await b.close()


async def get_variable(csms: Any, component: str, variable: str) -> dict[str, Any]:
    answer = await csms.call(STATION, "GetVariables", {"getVariableData": [
        {"component": {"name": component}, "variable": {"name": variable}}]})
    return dict(answer["getVariableResult"][0])


async def test_profile_2_basic_auth_over_tls(bench: Bench) -> None:
    """TC_A_04_CS / A00.FR.301-313: wss, the CSMS verified against the installed root
    and its host name, Basic auth with the station id; TLS 1.2 or better."""
    csms = await bench.csms(bench.server_context(), password=PASSWORD)
    st = bench.station(f"wss://localhost:{csms.port}/ocpp", security_profile=2,
                       basic_auth_password=PASSWORD)
    install_root(st.config, bench.ca)
    st.start()
    await csms.wait_for(STATION, "BootNotification", timeout=15)
    station_id, method = csms.auth_log[0]
    assert station_id == STATION
    assert "basic auth" in method and "client certificate" not in method
    assert method.startswith(("TLSv1.2", "TLSv1.3"))
    assert (await get_variable(csms, "SecurityCtrlr", "SecurityProfile"))["attributeValue"] == "2"
    password = await get_variable(csms, "SecurityCtrlr", "BasicAuthPassword")
    assert password["attributeStatus"] == "Rejected" and "attributeValue" not in password
    assert "security profile 2" in st.output()


async def test_profile_3_mutual_tls(bench: Bench) -> None:
    """TC_A_07_CS / A00.FR.401-405: the ChargingStationCertificate (CN = serial number,
    O = OrganizationName) is the TLS client certificate; no password is sent."""
    csms = await bench.csms(bench.server_context(client_ca=True))
    st = bench.station(f"wss://localhost:{csms.port}/ocpp", security_profile=3)
    install_root(st.config, bench.ca, cli=True)  # as on the bench: evse-agent keys ...
    provision_station_certificate(st.config, bench.ca, bench.tmp, cli=True)
    st.start()
    await csms.wait_for(STATION, "BootNotification", timeout=15)
    _, method = csms.auth_log[0]
    assert f"client certificate CN={STATION} O=evse-agent" in method
    assert "basic auth" not in method
    assert (await get_variable(csms, "SecurityCtrlr", "SecurityProfile"))["attributeValue"] == "3"


async def test_profile_3_without_station_certificate_is_one_line_at_start(bench: Bench) -> None:
    st = bench.station("wss://localhost:1/ocpp", security_profile=3)
    install_root(st.config, bench.ca)
    st.start()
    assert st.proc is not None
    assert await asyncio.to_thread(st.proc.wait, 15) == 2
    out = st.output().strip().splitlines()
    assert len(out) == 1 and "ocpp.security_profile" in out[0]
    assert "ChargingStationCertificate" in out[0]


def _bad_server(bench: Bench, kind: str) -> ssl.SSLContext:
    if kind == "wrong CA":
        other = make_ca(bench.tmp / "other", "Some Other Root")
        return bench.server_context(server_cert(bench.tmp / "other", other))
    if kind == "wrong host name":  # A00.FR.309: valid chain, but not for "localhost"
        return bench.server_context(server_cert(bench.tmp / "pki", bench.ca, "csms.example",
                                                stem="other-host"))
    assert kind == "expired"
    return bench.server_context(server_cert(bench.tmp / "pki", bench.ca, expired=True,
                                            stem="expired"))


@pytest.mark.parametrize("kind", ["wrong CA", "wrong host name", "expired"])
async def test_untrusted_csms_refused_and_reported_once_connected(
    bench: Bench, kind: str
) -> None:
    """TC_A_05_CS / A00.FR.310/311: the connection is refused, one log line per attempt,
    InvalidCsmsCertificate recorded once (not per attempt) and sent when a trustworthy
    CSMS answers on the same address."""
    bad = await bench.csms(_bad_server(bench, kind), password=PASSWORD)
    port = bad.port
    st = bench.station(f"wss://localhost:{port}/ocpp", security_profile=2,
                       basic_auth_password=PASSWORD, settings=FAST)
    install_root(st.config, bench.ca)
    st.start()
    out = await wait_output(st, "cannot reach CSMS", count=2)
    assert bad.received == [] and bad.auth_log == []  # no OCPP, not even a handshake
    refused = [line for line in out.splitlines() if "cannot reach CSMS" in line]
    assert "CERTIFICATE_VERIFY_FAILED" in refused[0] or "certificate" in refused[0].lower()
    events = [t for t, _ in security_log(st)]
    assert events.count("InvalidCsmsCertificate") == 1

    await bad.stop()  # the operator fixes the CSMS
    good = await bench.csms(bench.server_context(), port=port, password=PASSWORD)
    sent = await good.wait_for(STATION, "SecurityEventNotification",
                               lambda p: p["type"] == "InvalidCsmsCertificate", timeout=20)
    assert sent["techInfo"]
    await good.wait_for(STATION, "BootNotification")
    await asyncio.sleep(1)
    assert [r.payload["type"] for r in good.received if r.action == "SecurityEventNotification"
            ].count("InvalidCsmsCertificate") == 1


class OldTlsServer:
    """A TLS endpoint that only speaks what the station must refuse (a TLS version below
    1.2, or cipher suites OCPP does not allow). asyncio's TLS server drops the socket
    without the alert; this blocking one sends it, as nginx or OpenSSL s_server do."""

    def __init__(self, ctx: ssl.SSLContext) -> None:
        self.ctx = ctx
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            conn.settimeout(5)
            try:
                self.ctx.wrap_socket(conn, server_side=True).close()
            except (ssl.SSLError, OSError) as err:
                self.errors.append(str(err))
            finally:
                conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


def _tls11_only(bench: Bench) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # OpenSSL 3 needs level 0 for TLS 1.0/1.1
    with pytest.warns(DeprecationWarning):
        ctx.minimum_version = ssl.TLSVersion.TLSv1_1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    ctx.load_cert_chain(bench.server.cert_file, bench.server.key_file)
    return ctx


def _weak_ciphers_only(bench: Bench) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2  # TLS 1.3 suites cannot be narrowed so
    ctx.set_ciphers("ECDHE-ECDSA-AES128-SHA")  # CBC with SHA-1: not an OCPP suite
    ctx.load_cert_chain(bench.server.cert_file, bench.server.key_file)
    return ctx


@pytest.mark.parametrize("make, event", [
    (_tls11_only, "InvalidTLSVersion"),  # TC_A_06_CS, A00.FR.313/316
    (_weak_ciphers_only, "InvalidTLSCipherSuite"),  # A00.FR.320/323
])
async def test_tls_below_ocpp_minimum_refused(
    bench: Bench, make: Callable[[Bench], ssl.SSLContext], event: str
) -> None:
    server = OldTlsServer(make(bench))
    try:
        st = bench.station(f"wss://localhost:{server.port}/ocpp", security_profile=2,
                           basic_auth_password=PASSWORD, settings=FAST)
        install_root(st.config, bench.ca)
        st.start()
        await wait_output(st, "cannot reach CSMS", count=2)
    finally:
        server.close()
    assert server.errors, "the station never tried the old server"
    assert [t for t, _ in security_log(st)].count(event) == 1
    good = await bench.csms(bench.server_context(), port=server.port, password=PASSWORD)
    await good.wait_for(STATION, "SecurityEventNotification", lambda p: p["type"] == event,
                        timeout=20)


async def test_wrong_password_is_failed_to_authenticate(bench: Bench) -> None:
    """HTTP 401 from the CSMS: FailedToAuthenticateAtCsms in the security log (not a
    critical event, so not sent); the station keeps retrying with back-off."""
    csms = await bench.csms(bench.server_context(), password="another-password-of-20")
    st = bench.station(f"wss://localhost:{csms.port}/ocpp", security_profile=2,
                       basic_auth_password=PASSWORD, settings=FAST)
    install_root(st.config, bench.ca)
    st.start()
    out = await wait_output(st, "cannot reach CSMS", count=2)
    assert "401" in out
    assert [t for t, _ in security_log(st)].count("FailedToAuthenticateAtCsms") == 1
    csms.basic_auth_password = PASSWORD  # the CSMS learns the right one
    await csms.wait_for(STATION, "BootNotification", timeout=20)


def test_client_context_is_tls12_minimum_with_ocpp_ciphers(tmp_path: Path) -> None:
    """A00.FR.313/318-321 on the context itself: TLS 1.2 minimum, no compression, the
    OCPP cipher suites (and TLS 1.3's), the installed root only, host name checked."""
    from evse_agent.security.certificates import CertificateStore
    from evse_agent.security.tls import client_ssl_context

    ca = make_ca(tmp_path / "pki")

    class Sec:
        certificates = CertificateStore(tmp_path / "certs")
        keys = None

    from datetime import UTC, datetime

    assert Sec.certificates.install_root(
        "CSMSRootCertificate", ca.cert_file.read_text(), datetime.now(UTC), None).accepted
    ctx = client_ssl_context(2, Sec)  # type: ignore[arg-type]
    assert ctx is not None
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    assert ctx.check_hostname and ctx.verify_mode == ssl.CERT_REQUIRED
    assert ctx.options & ssl.OP_NO_COMPRESSION
    tls12 = {c["name"] for c in ctx.get_ciphers() if c["protocol"] == "TLSv1.2"}
    assert {"ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
            "AES128-GCM-SHA256", "AES256-GCM-SHA384"} <= tls12
    assert all("GCM" in name for name in tls12)
    assert [c["subject"] for c in ctx.get_ca_certs()] == [
        ((("commonName", "Test CSMS Root"),), (("organizationName", "evse-agent tests"),))]
    assert client_ssl_context(1, Sec) is None  # type: ignore[arg-type]


async def test_new_client_certificate_refused_falls_back_to_previous(bench: Bench) -> None:
    """A02.FR.08 + A02.FR.28 (errata 2025-09): after CertificateSigned the station
    reconnects with the new certificate; when the CSMS refuses it, the one it replaced
    is used, so the station is not stranded."""
    csms = await bench.csms(bench.server_context(client_ca=True))  # trusts bench.ca only
    st = bench.station(f"wss://localhost:{csms.port}/ocpp", security_profile=3,
                       settings=FAST)
    install_root(st.config, bench.ca)
    provision_station_certificate(st.config, bench.ca, bench.tmp)
    other = make_ca(bench.tmp / "other", "Second CSMS Root")  # the station trusts it too
    install_root(st.config, other)
    st.start()
    await csms.wait_for(STATION, "StatusNotification", timeout=15)  # Accepted by now
    mark = len(csms.received)
    answer = await csms.call(STATION, "TriggerMessage",
                             {"requestedMessage": "SignChargingStationCertificate"})
    assert answer["status"] == "Accepted"
    request = await csms.wait_for(STATION, "SignCertificate", since=mark)
    from tls_support import sign_csr

    answer = await csms.call(STATION, "CertificateSigned", {
        "certificateChain": sign_csr(other, request["csr"].encode()),
        "certificateType": "ChargingStationCertificate"})
    assert answer["status"] == "Accepted"
    await wait_output(st, "trying the previous one", timeout=20)
    for _ in range(200):  # connected again, with the old certificate
        if len(csms.auth_log) >= 2 and STATION in csms.stations:
            break
        await asyncio.sleep(0.1)
    assert len(csms.auth_log) >= 2, st.output()[-2000:]
    assert f"client certificate CN={STATION}" in csms.auth_log[-1][1]


def _handshake(client: ssl.SSLContext, server: ssl.SSLContext, host: str) -> None:
    """A TLS handshake in memory (no DNS needed for made-up host names); raises what
    the client raises."""
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    c = client.wrap_bio(c_in, c_out, server_hostname=host)
    s = server.wrap_bio(s_in, s_out, server_side=True)
    done = [False, False]
    for _ in range(10):
        for i, side in enumerate((c, s)):
            if not done[i]:
                try:
                    side.do_handshake()
                    done[i] = True
                except ssl.SSLWantReadError:
                    pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if all(done):
            return
    raise AssertionError("handshake did not finish")


@pytest.mark.parametrize("allow", [False, True])
def test_wildcard_csms_certificate_only_when_allowed(tmp_path: Path, allow: bool) -> None:
    """Errata 2025-02 AllowCSMSTLSWildcards (TC_A_05_CS before-steps): a CSMS
    certificate for *.ocpp.example is refused for csms.ocpp.example unless the variable
    is true;
    a certificate naming the host exactly is fine either way."""
    from datetime import UTC, datetime

    from evse_agent.csms.tls import server_ssl_context
    from evse_agent.security.certificates import CertificateStore
    from evse_agent.security.tls import client_ssl_context

    ca = make_ca(tmp_path / "pki")

    class Sec:
        certificates = CertificateStore(tmp_path / "certs")
        keys = None

    assert Sec.certificates.install_root(
        "CSMSRootCertificate", ca.cert_file.read_text(), datetime.now(UTC), None).accepted
    client = client_ssl_context(2, Sec, allow_wildcards=allow)  # type: ignore[arg-type]
    assert client is not None
    host = "csms.ocpp.example"
    wild = server_cert(tmp_path / "pki", ca, "*.ocpp.example", stem="wild")
    exact = server_cert(tmp_path / "pki", ca, host, stem="exact")
    _handshake(client, server_ssl_context(exact.cert_file, exact.key_file), host)
    wildcard_server = server_ssl_context(wild.cert_file, wild.key_file)
    if allow:
        _handshake(client, wildcard_server, host)
    else:
        with pytest.raises(ssl.SSLCertVerificationError):
            _handshake(client, wildcard_server, host)


async def test_new_csms_root_with_fallback_to_the_old_one(bench: Bench) -> None:
    """M05.FR.12-14 with AdditionalRootCertificateCheck: a new CSMS root signed by the
    old one replaces it, the old one kept as fallback; a CSMS still on the old hierarchy
    is verified with the fallback (M05.FR.14); once a connection verifies with the new
    root, the fallback is removed (M05.FR.13)."""
    from tls_support import cross_signed_root

    csms = await bench.csms(bench.server_context(), password=PASSWORD)
    port = csms.port
    st = bench.station(f"wss://localhost:{port}/ocpp", security_profile=2,
                       basic_auth_password=PASSWORD, settings={
                           **FAST, "SecurityCtrlr": {"AdditionalRootCertificateCheck": True}})
    install_root(st.config, bench.ca)
    st.start()
    await csms.wait_for(STATION, "StatusNotification", timeout=15)
    new_root = cross_signed_root(bench.tmp / "pki", bench.ca)
    answer = await csms.call(STATION, "InstallCertificate", {
        "certificateType": "CSMSRootCertificate",
        "certificate": new_root.cert_file.read_text()})
    assert answer["status"] == "Accepted"
    roots = st.tmp / "data" / "certs" / "CSMSRootCertificate"
    assert len(list(roots.glob("*.fallback"))) == 1

    await csms.stop()  # the CSMS restarts, still with its old certificate
    csms = await bench.csms(bench.server_context(), port=port, password=PASSWORD)
    await wait_output(st, "trying the previous one (M05.FR.14)")
    for _ in range(100):
        if STATION in csms.stations:
            break
        await asyncio.sleep(0.1)
    assert STATION in csms.stations
    assert len(list(roots.glob("*.fallback"))) == 1  # still needed

    await csms.stop()  # now with a certificate from the new root
    renewed = server_cert(bench.tmp / "pki", new_root, stem="server-new")
    csms = await bench.csms(bench.server_context(renewed), port=port, password=PASSWORD)
    await wait_output(st, "connected with the new CSMS root: the previous one is removed")
    assert list(roots.glob("*.fallback")) == []
    assert "InvalidCsmsCertificate" not in [t for t, _ in security_log(st)]
