"""Certificate management through the OCPP 1.6 security extension (whitepaper ed. 3),
end to end: SignCertificate / CertificateSigned (A02), InstallCertificate (M05),
GetInstalledCertificateIds (M03), DeleteCertificate (M04), ExtendedTriggerMessage, and
the 1.6 configuration keys that are views of SecurityCtrlr."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from e2e_support import STATION, booted16, calls

from evse_agent.csms import DevCsms
from evse_agent.csms.ca import DevCa


@pytest.fixture
def csms16(csms: DevCsms) -> DevCsms:
    csms.checker.version = "1.6"  # type: ignore[attr-defined]
    return csms


async def start16(csms: DevCsms, station_factory: Any) -> Any:
    st = station_factory(version="1.6")
    st.start()
    await booted16(csms)
    return st


def hash_of(cert: x509.Certificate) -> dict[str, str]:
    point = cert.public_key().public_bytes(  # type: ignore[union-attr]
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return {
        "hashAlgorithm": "SHA256",
        "issuerNameHash": hashlib.sha256(cert.issuer.public_bytes()).hexdigest(),
        "issuerKeyHash": hashlib.sha256(point).hexdigest(),
        "serialNumber": f"{cert.serial_number:x}",
    }


async def response_to(csms: DevCsms, frames_before: int, action: str) -> Any:
    frames = csms.checker.frames  # type: ignore[attr-defined]
    async with asyncio.timeout(10):
        while True:
            ids = {m[1] for d, m in frames[frames_before:]
                   if d == "->" and m[0] == 2 and m[2] == action}
            for d, m in frames[frames_before:]:
                if d == "<-" and m[0] == 3 and m[1] in ids:
                    return m[2]
            await asyncio.sleep(0.05)


async def test_configuration_keys_install_and_sign(
    csms16: DevCsms, station_factory: Any, tmp_path: Path
) -> None:
    """CpoName is the O of the CSR (A02.FR.13); CertificateStoreMaxLength and
    CertificateSignedMaxChainSize report the limits; ExtendedTriggerMessage
    SignChargePointCertificate -> SignCertificate -> CertificateSigned Accepted."""
    csms = csms16
    await start16(csms, station_factory)
    keys = ["CertificateSignedMaxChainSize", "CertificateStoreMaxLength", "CpoName",
            "AdditionalRootCertificateCheck"]
    config = await csms.call(STATION, "GetConfiguration", {"key": keys})
    values = {k["key"]: (k.get("value"), k["readonly"]) for k in config["configurationKey"]}
    assert values == {
        "CertificateSignedMaxChainSize": ("10000", True),
        "CertificateStoreMaxLength": ("24", True),
        "CpoName": ("evse-agent", False),
        "AdditionalRootCertificateCheck": ("false", True),
    }
    change = await csms.call(STATION, "ChangeConfiguration", {"key": "CpoName",
                                                              "value": "Example CPO"})
    assert change["status"] == "Accepted"

    ca = DevCa.root(organization="Example CPO")
    root = x509.load_pem_x509_certificate(ca.root_pem.encode())
    assert (await csms.call(STATION, "GetInstalledCertificateIds", {
        "certificateType": "CentralSystemRootCertificate"}))["status"] == "NotFound"
    answer = await csms.call(STATION, "InstallCertificate", {
        "certificateType": "CentralSystemRootCertificate", "certificate": ca.root_pem})
    assert answer == {"status": "Accepted"}
    ids = await csms.call(STATION, "GetInstalledCertificateIds", {
        "certificateType": "CentralSystemRootCertificate"})
    assert ids == {"status": "Accepted", "certificateHashData": [hash_of(root)]}

    csms.certificate_authority = ca
    mark, frames = len(csms.received), len(csms.checker.frames)  # type: ignore[attr-defined]
    answer = await csms.call(STATION, "ExtendedTriggerMessage",
                             {"requestedMessage": "SignChargePointCertificate"})
    assert answer == {"status": "Accepted"}
    request = await csms.wait_for(STATION, "SignCertificate", since=mark)
    assert set(request) == {"csr"}
    csr = x509.load_pem_x509_csr(request["csr"].encode())
    assert csr.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == (
        "Example CPO"
    )
    assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == STATION
    assert await response_to(csms, frames, "CertificateSigned") == {"status": "Accepted"}
    assert (tmp_path / "data/certs/ChargingStationCertificate.pem").is_file()

    # A chain for a key that is not ours: Rejected, and discarded (A02.FR.07).
    foreign = ec.generate_private_key(ec.SECP256R1())
    other = (x509.CertificateSigningRequestBuilder().subject_name(csr.subject)
             .sign(foreign, hashes.SHA256()))
    answer = await csms.call(STATION, "CertificateSigned", {
        "certificateChain": ca.sign_csr(other.public_bytes(serialization.Encoding.PEM).decode())})
    assert answer == {"status": "Rejected"}
    event = await csms.wait_for(STATION, "SecurityEventNotification",
                                lambda p: "Certificate" in p["type"], since=mark)
    assert "public key" in event["techInfo"]
    # Whitepaper M04.FR.05: the Charge Point certificate cannot be deleted; a manufacturer
    # root can (M04.FR.02), once (M04.FR.04).
    leaf_pem = (tmp_path / "data/certs/ChargingStationCertificate.pem").read_text()
    leaf = x509.load_pem_x509_certificate(leaf_pem.encode())
    own = hash_of(leaf) | {"issuerKeyHash": hash_of(root)["issuerKeyHash"]}
    assert (await csms.call(STATION, "DeleteCertificate", {"certificateHashData": own}))[
        "status"] == "Failed"
    maker = DevCa.root("Maker root")
    await csms.call(STATION, "InstallCertificate", {
        "certificateType": "ManufacturerRootCertificate", "certificate": maker.root_pem})
    maker_hash = hash_of(x509.load_pem_x509_certificate(maker.root_pem.encode()))
    for expected in ("Accepted", "NotFound"):
        answer = await csms.call(STATION, "DeleteCertificate",
                                 {"certificateHashData": maker_hash})
        assert answer == {"status": expected}
    # Invalid (not a CA) is Rejected (whitepaper M05.FR.06).
    leaf_only, _ = ca.issue_server("cs.example")
    answer = await csms.call(STATION, "InstallCertificate", {
        "certificateType": "CentralSystemRootCertificate", "certificate": leaf_only})
    assert answer == {"status": "Rejected"}


TRIGGERS = [
    ("Heartbeat", "Accepted", "Heartbeat", {}),
    ("LogStatusNotification", "Accepted", "LogStatusNotification", {"status": "Idle"}),
    ("FirmwareStatusNotification", "Accepted", "SignedFirmwareStatusNotification",
     {"status": "Idle"}),
    ("BootNotification", "Rejected", None, None),  # already Accepted (errata 3.35)
]


async def test_extended_trigger_message(csms16: DevCsms, station_factory: Any) -> None:
    """Whitepaper §5.5: the response first, then the requested message; no log upload
    or signed firmware update runs, so their notifications say Idle."""
    await start16(csms16, station_factory)
    for requested, status, sent, payload in TRIGGERS:
        mark = len(csms16.received)
        answer = await csms16.call(STATION, "ExtendedTriggerMessage",
                                   {"requestedMessage": requested})
        assert answer == {"status": status}, requested
        if sent is not None:
            assert await csms16.wait_for(STATION, sent, since=mark) == payload
    mark = len(csms16.received)
    answer = await csms16.call(STATION, "ExtendedTriggerMessage",
                               {"requestedMessage": "StatusNotification", "connectorId": 2})
    assert answer == {"status": "Accepted"}
    status_2 = await csms16.wait_for(STATION, "StatusNotification", since=mark)
    assert status_2["connectorId"] == 2
    await asyncio.sleep(0.3)
    assert calls(csms16, "StatusNotification", mark) == [status_2]
    answer = await csms16.call(STATION, "ExtendedTriggerMessage",
                               {"requestedMessage": "MeterValues", "connectorId": 7})
    assert answer == {"status": "Rejected"}  # no such connector


async def test_profile_3_switches_to_the_signed_certificate(tmp_path: Path) -> None:
    """Whitepaper A02.FR.08 / A03.FR.08: on profile 3 the station switches to the new
    ChargePointCertificate: after CertificateSigned Accepted it reconnects with it (the
    new one carries the CpoName set before the CSR, the provisioned one did not)."""
    from tls_support import Bench, install_root, provision_station_certificate, sign_csr

    bench = Bench(tmp_path)
    try:
        csms = await bench.csms(bench.server_context(client_ca=True), version="1.6")
        st = bench.station(f"wss://localhost:{csms.port}/ocpp", security_profile=3,
                           version="1.6")
        install_root(st.config, bench.ca)
        provision_station_certificate(st.config, bench.ca, bench.tmp)
        st.start()
        await booted16(csms)
        assert "O=evse-agent," in csms.auth_log[0][1]
        change = await csms.call(STATION, "ChangeConfiguration",
                                 {"key": "CpoName", "value": "Example CPO"})
        assert change["status"] == "Accepted"
        mark = len(csms.received)
        answer = await csms.call(STATION, "ExtendedTriggerMessage",
                                 {"requestedMessage": "SignChargePointCertificate"})
        assert answer == {"status": "Accepted"}
        request = await csms.wait_for(STATION, "SignCertificate", since=mark)
        answer = await csms.call(STATION, "CertificateSigned", {
            "certificateChain": sign_csr(bench.ca, request["csr"].encode())})
        assert answer == {"status": "Accepted"}
        async with asyncio.timeout(20):
            while len(csms.auth_log) < 2 or STATION not in csms.stations:
                await asyncio.sleep(0.1)
        assert f"client certificate CN={STATION} O=Example CPO" in csms.auth_log[1][1]
    finally:
        await bench.close()
