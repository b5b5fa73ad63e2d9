"""Certificate management over OCPP 2.0.1, end to end: a real `evse-agent run` against
the development CSMS acting as certificate authority (csms/ca.py, csms/signing.py).
Part 6 test cases: TC_A_11_CS / TC_A_12_CS (renewal by trigger), TC_A_14_CS (invalid
certificate), TC_A_15_CS (SignCertificate Rejected), TC_A_23_CS (CertificateSigned
timeout back-off), TC_M_*_CS (install, delete, get installed ids)."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from e2e_support import STATION, calls

from evse_agent.csms import DevCsms
from evse_agent.csms.ca import DevCa

ORG = "evse-agent"  # SecurityCtrlr.OrganizationName factory value


async def start(csms: DevCsms, station_factory: Any, settings: Any = None) -> Any:
    st = station_factory(settings)
    st.start()
    await csms.wait_for(STATION, "BootNotification", timeout=15)
    await csms.wait_for(STATION, "StatusNotification", lambda p: p["evseId"] == 2)
    return st


def hash_of(cert: x509.Certificate, issuer: x509.Certificate) -> dict[str, str]:
    point = issuer.public_key().public_bytes(  # type: ignore[union-attr]
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return {
        "hashAlgorithm": "SHA256",
        "issuerNameHash": hashlib.sha256(cert.issuer.public_bytes()).hexdigest(),
        "issuerKeyHash": hashlib.sha256(point).hexdigest(),
        "serialNumber": f"{cert.serial_number:x}",
    }


def root_cert(ca: DevCa) -> x509.Certificate:
    return x509.load_pem_x509_certificate(ca.root_pem.encode())


async def sign_requests(csms: DevCsms, count: int, since: int, timeout: float = 10) -> list[Any]:
    async with asyncio.timeout(timeout):
        while len(found := calls(csms, "SignCertificate", since)) < count:
            await asyncio.sleep(0.05)
    return found


async def signed_answers(csms: DevCsms, since_frames: int, count: int = 1) -> list[Any]:
    """The station's CertificateSigned responses after frame `since_frames`."""
    frames = csms.checker.frames  # type: ignore[attr-defined]
    async with asyncio.timeout(10):
        while True:
            ids = {m[1] for d, m in frames[since_frames:]
                   if d == "->" and m[0] == 2 and m[2] == "CertificateSigned"}
            answers = [m[2] for d, m in frames[since_frames:]
                       if d == "<-" and m[0] == 3 and m[1] in ids]
            if len(answers) >= count:
                return answers
            await asyncio.sleep(0.05)


async def test_install_get_ids_trigger_csr_and_certificate_signed(
    csms: DevCsms, station_factory: Any, tmp_path: Path
) -> None:
    """TC_M_05_CS-style install (M05), M03 ids, then TC_A_11_CS: TriggerMessage
    SignChargingStationCertificate -> SignCertificate (CN = serial number, O =
    OrganizationName, A00.FR.511) -> CertificateSigned Accepted, stored on disk."""
    ca = DevCa.root(organization=ORG)
    st = await start(csms, station_factory)

    assert (await csms.call(STATION, "GetInstalledCertificateIds", {}))["status"] == "NotFound"
    answer = await csms.call(STATION, "InstallCertificate", {
        "certificateType": "CSMSRootCertificate", "certificate": ca.root_pem})
    assert answer["status"] == "Accepted"
    ids = await csms.call(STATION, "GetInstalledCertificateIds",
                          {"certificateType": ["CSMSRootCertificate"]})
    root = root_cert(ca)
    assert ids == {"status": "Accepted", "certificateHashDataChain": [
        {"certificateType": "CSMSRootCertificate", "certificateHashData": hash_of(root, root)}]}
    entries = await csms.call(STATION, "GetVariables", {"getVariableData": [
        {"component": {"name": "SecurityCtrlr"}, "variable": {"name": "CertificateEntries"}}]})
    assert entries["getVariableResult"][0]["attributeValue"] == "1"

    csms.certificate_authority = ca
    mark, frames = len(csms.received), len(csms.checker.frames)  # type: ignore[attr-defined]
    answer = await csms.call(STATION, "TriggerMessage",
                             {"requestedMessage": "SignChargingStationCertificate"})
    assert answer["status"] == "Accepted"
    [request] = await sign_requests(csms, 1, mark)
    assert request["certificateType"] == "ChargingStationCertificate"
    csr = x509.load_pem_x509_csr(request["csr"].encode())
    assert csr.is_signature_valid
    assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == STATION
    assert csr.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == ORG
    assert isinstance(csr.public_key(), ec.EllipticCurvePublicKey)
    assert await signed_answers(csms, frames) == [{"status": "Accepted"}]

    stored = (tmp_path / "data/certs/ChargingStationCertificate.pem").read_text()
    leaf = x509.load_pem_x509_certificate(stored.encode())
    assert leaf.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) == csr.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    # TC_M_23_CS (M04.FR.06): the station certificate cannot be deleted.
    delete = await csms.call(STATION, "DeleteCertificate",
                             {"certificateHashData": hash_of(leaf, root)})
    assert delete["status"] == "Failed"
    # TC_M_20_CS: over profile 0 no root is in use: even the last one can go.
    delete = await csms.call(STATION, "DeleteCertificate",
                             {"certificateHashData": hash_of(root, root)})
    assert delete["status"] == "Accepted"
    found = await csms.call(STATION, "GetInstalledCertificateIds",
                            {"certificateType": ["CSMSRootCertificate"]})
    assert found == {"status": "NotFound"}  # TC_M_19_CS
    await st.terminate()

    # The private key never reaches the log (frames are logged at -v).
    key_file = tmp_path / "data/keys/ChargingStationCertificate.key.pem"
    body = [line for line in key_file.read_text().splitlines() if "-----" not in line]
    output = st.output()
    assert body and not any(line in output for line in body)
    assert "PRIVATE KEY" not in output


async def test_invalid_certificates_and_roots(csms: DevCsms, station_factory: Any) -> None:
    """TC_A_14_CS: a CertificateSigned for another key is Rejected and reported as the
    critical security event InvalidChargingStationCertificate (A02.FR.07). M05.FR.07:
    a non-CA certificate is not installed. M04: delete Accepted / NotFound."""
    ca = DevCa.root(organization=ORG)
    await start(csms, station_factory)
    await csms.call(STATION, "InstallCertificate", {
        "certificateType": "CSMSRootCertificate", "certificate": ca.root_pem})

    foreign = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, STATION),
                                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORG)]))
           .sign(foreign, hashes.SHA256()))
    chain = ca.sign_csr(csr.public_bytes(serialization.Encoding.PEM).decode())
    mark = len(csms.received)
    answer = await csms.call(STATION, "CertificateSigned", {
        "certificateChain": chain, "certificateType": "ChargingStationCertificate"})
    assert answer["status"] == "Rejected"
    event = await csms.wait_for(STATION, "SecurityEventNotification",
                                lambda p: p["type"] == "InvalidChargingStationCertificate",
                                since=mark)
    assert "public key" in event.get("techInfo", "")

    leaf_pem, _ = ca.issue_server("csms.example")  # a leaf, not a CA: not a root
    answer = await csms.call(STATION, "InstallCertificate", {
        "certificateType": "CSMSRootCertificate", "certificate": leaf_pem})
    assert answer["status"] == "Rejected"
    manufacturer = DevCa.root("Maker root")
    answer = await csms.call(STATION, "InstallCertificate", {
        "certificateType": "ManufacturerRootCertificate", "certificate": manufacturer.root_pem})
    assert answer["status"] == "Accepted"
    maker = root_cert(manufacturer)
    delete = {"certificateHashData": hash_of(maker, maker)}
    assert (await csms.call(STATION, "DeleteCertificate", delete))["status"] == "Accepted"
    assert (await csms.call(STATION, "DeleteCertificate", delete))["status"] == "NotFound"


async def test_sign_certificate_rejected_is_not_retried(
    csms: DevCsms, station_factory: Any
) -> None:
    """TC_A_15_CS: SignCertificate Rejected: no CertificateSigned, no resend."""
    await start(csms, station_factory, {"SecurityCtrlr": {"CertSigningWaitMinimum": 1}})
    csms.responses["SignCertificate"] = {"status": "Rejected"}
    mark = len(csms.received)
    answer = await csms.call(STATION, "TriggerMessage",
                             {"requestedMessage": "SignChargingStationCertificate"})
    assert answer["status"] == "Accepted"
    await sign_requests(csms, 1, mark)
    await asyncio.sleep(1.8)  # the back-off would have resent after 1 s
    assert len(calls(csms, "SignCertificate", mark)) == 1


async def test_certificate_signed_timeout_backoff_then_v2g(
    csms: DevCsms, station_factory: Any
) -> None:
    """TC_A_23_CS: CertSigningWaitMinimum W, CertSigningRepeatTimes 1: the CSR is sent
    again after W and after 2W more (A02.FR.17/18), for the same key pair, which the
    certificate then carries. TC_A_12_CS: the same for the V2G certificate."""
    ca = DevCa.root(organization=ORG)
    await start(csms, station_factory, {"SecurityCtrlr": {
        "CertSigningWaitMinimum": 1, "CertSigningRepeatTimes": 1}})
    await csms.call(STATION, "InstallCertificate", {
        "certificateType": "CSMSRootCertificate", "certificate": ca.root_pem})
    loop = asyncio.get_running_loop()
    mark, t0 = len(csms.received), loop.time()
    await csms.call(STATION, "TriggerMessage",
                    {"requestedMessage": "SignChargingStationCertificate"})
    first, second = await sign_requests(csms, 2, mark)
    t1 = loop.time()
    third = (await sign_requests(csms, 3, mark))[2]
    t2 = loop.time()
    # not before W, then not before 2W (the doubling); generous upper bounds for slow CI
    assert 0.8 <= t1 - t0 <= 4.5 and 1.8 <= t2 - t1 <= 6, (t1 - t0, t2 - t1)
    key = x509.load_pem_x509_csr(first["csr"].encode()).public_key()
    for again in (second, third):
        assert x509.load_pem_x509_csr(again["csr"].encode()).public_key() == key
    frames = len(csms.checker.frames)  # type: ignore[attr-defined]
    answer = await csms.call(STATION, "CertificateSigned", {
        "certificateChain": ca.sign_csr(first["csr"]),
        "certificateType": "ChargingStationCertificate"})
    assert answer["status"] == "Accepted"  # the first CSR's key, kept through the resends

    # TC_A_12_CS: the V2G certificate chains up to an installed V2G root.
    v2g = DevCa.root("V2G root", organization=ORG)
    v2g_sub = v2g.sub_ca("V2G sub-CA")
    await csms.call(STATION, "InstallCertificate", {
        "certificateType": "V2GRootCertificate", "certificate": v2g.root_pem})
    csms.certificate_authority = v2g_sub
    mark = len(csms.received)
    answer = await csms.call(STATION, "TriggerMessage", {"requestedMessage": "SignV2GCertificate"})
    assert answer["status"] == "Accepted"
    request = await csms.wait_for(STATION, "SignCertificate", since=mark)
    assert request["certificateType"] == "V2GCertificate"
    assert await signed_answers(csms, frames, 2) == [{"status": "Accepted"}] * 2
    ids = await csms.call(STATION, "GetInstalledCertificateIds",
                          {"certificateType": ["V2GCertificateChain"]})
    [chain] = ids["certificateHashDataChain"]
    sub = x509.load_pem_x509_certificate(v2g_sub.chain_pem(v2g_sub.certificate).encode())
    assert chain["childCertificateHashData"] == [hash_of(sub, root_cert(v2g))]


async def test_renewal_before_expiry(csms: DevCsms, station_factory: Any) -> None:
    """A03.FR.02: a certificate that expires within CertificateRenewalDays is renewed
    by the station itself: a new key pair and a SignCertificate, without a trigger."""
    ca = DevCa.root(organization=ORG)
    st = await start(csms, station_factory, {"SecurityCtrlr": {"CertificateRenewalDays": 30}})
    await csms.call(STATION, "InstallCertificate", {
        "certificateType": "CSMSRootCertificate", "certificate": ca.root_pem})
    mark = len(csms.received)
    await csms.call(STATION, "TriggerMessage",
                    {"requestedMessage": "SignChargingStationCertificate"})
    request = await csms.wait_for(STATION, "SignCertificate", since=mark)
    answer = await csms.call(STATION, "CertificateSigned", {
        "certificateChain": ca.sign_csr(request["csr"], days=20)})
    assert answer["status"] == "Accepted"
    try:
        renewal = (await sign_requests(csms, 2, mark, timeout=15))[1]
    except TimeoutError:
        raise AssertionError(st.output()[-5000:]) from None
    assert renewal["certificateType"] == "ChargingStationCertificate"
    assert renewal["csr"] != request["csr"]
    old = x509.load_pem_x509_csr(request["csr"].encode()).public_key()
    assert x509.load_pem_x509_csr(renewal["csr"].encode()).public_key() != old


async def test_last_csms_root_in_use_is_not_deleted(tmp_path: Path) -> None:
    """M04.FR.03 (its note) / 1.6 M04.FR.06: over TLS (profile 2) the CSMS roots verify
    the connection: the last one is refused (Failed) and stays installed; another root
    can be deleted (M04.FR.02). PKI and TLS CSMS from tls_support (S2's)."""
    from tls_support import PASSWORD, Bench, install_root

    bench = Bench(tmp_path)
    try:
        csms = await bench.csms(bench.server_context(), password=PASSWORD)
        st = bench.station(f"wss://localhost:{csms.port}/ocpp", security_profile=2,
                           basic_auth_password=PASSWORD)
        install_root(st.config, bench.ca)
        st.start()
        await csms.wait_for(STATION, "StatusNotification", timeout=15)
        spare = DevCa.root("Spare root")
        answer = await csms.call(STATION, "InstallCertificate", {
            "certificateType": "CSMSRootCertificate", "certificate": spare.root_pem})
        assert answer["status"] == "Accepted"
        spare_cert = root_cert(spare)
        delete = await csms.call(STATION, "DeleteCertificate",
                                 {"certificateHashData": hash_of(spare_cert, spare_cert)})
        assert delete["status"] == "Accepted"
        in_use = bench.ca.cert
        delete = await csms.call(STATION, "DeleteCertificate",
                                 {"certificateHashData": hash_of(in_use, in_use)})
        assert delete["status"] == "Failed"
        assert delete["statusInfo"]["additionalInfo"] == "the last CSMS root certificate is in use"
        ids = await csms.call(STATION, "GetInstalledCertificateIds",
                              {"certificateType": ["CSMSRootCertificate"]})
        assert [c["certificateHashData"] for c in ids["certificateHashDataChain"]] == [
            hash_of(in_use, in_use)]
    finally:
        await bench.close()
