"""CertificateStore: install (M05), delete (M04), installed ids (M03) with hash data
computed here independently, and CertificateSigned chain checks (A02.FR.06/07/16)."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from pki import NOW, Ca, certificate, csr_public_key, key, name, pem

from evse_agent.security.certificates import CertificateStore
from evse_agent.security.keystore import FileKeyStore, pending, previous

USE = "ChargingStationCertificate"
SN, ORG = "SN-0042", "evse-agent"


def der_bit_string_value(spki: bytes) -> bytes:
    """The subjectPublicKey BIT STRING's content (no unused-bits byte) from a DER
    SubjectPublicKeyInfo, parsed by hand: SEQUENCE { AlgorithmIdentifier, BIT STRING }."""

    def header(data: bytes, at: int) -> tuple[int, int, int]:  # tag, length, content start
        tag, first = data[at], data[at + 1]
        if first < 0x80:
            return tag, first, at + 2
        n = first & 0x7F
        return tag, int.from_bytes(data[at + 2:at + 2 + n], "big"), at + 2 + n

    tag, _, inner = header(spki, 0)
    assert tag == 0x30
    tag, length, start = header(spki, inner)  # AlgorithmIdentifier
    tag, length, start = header(spki, start + length)
    assert tag == 0x03 and spki[start] == 0  # BIT STRING, no unused bits
    return spki[start + 1:start + length]


def expected_hash(cert: object, issuer: object) -> dict[str, str]:
    spki = issuer.public_key().public_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return {
        "hashAlgorithm": "SHA256",
        "issuerNameHash": hashlib.sha256(cert.issuer.public_bytes()).hexdigest(),  # type: ignore[attr-defined]
        "issuerKeyHash": hashlib.sha256(der_bit_string_value(spki)).hexdigest(),
        "serialNumber": hex(cert.serial_number)[2:],  # type: ignore[attr-defined]
    }


@pytest.fixture
def store(tmp_path: Path) -> CertificateStore:
    return CertificateStore(tmp_path / "certs")


@pytest.fixture
def keys(tmp_path: Path) -> FileKeyStore:
    keys = FileKeyStore(tmp_path / "keys", passphrase=b"pw")
    keys.generate(USE)
    return keys


def our_public_key(keys: FileKeyStore, name_: str = USE) -> object:
    return csr_public_key(keys.csr(name_, SN, ORG))


def install(store: CertificateStore, pem_text: str, kind: str = "CSMSRootCertificate",
            limit: int | None = None, check: bool = False) -> str:
    return store.install_root(kind, pem_text, NOW, limit, check).status


# -- InstallCertificate ------------------------------------------------------------------
def test_install_root_and_read_it_back(store: CertificateStore) -> None:
    """M05.FR.02; trusted_pem is what the TLS context trusts."""
    ca, v2g = Ca(), Ca("V2G Root")
    assert install(store, ca.pem) == "Accepted"
    assert install(store, v2g.pem, "V2GRootCertificate") == "Accepted"
    assert store.trusted_pem("CSMSRootCertificate") == ca.pem
    assert store.trusted_pem("MORootCertificate") == ""
    assert store.count() == 2


@pytest.mark.parametrize(
    ("case", "make"),
    [
        ("non-CA", lambda: Ca(ca=False).pem),
        ("expired", lambda: Ca(not_before=NOW - timedelta(days=30),
                               not_after=NOW - timedelta(days=1)).pem),
        ("not yet valid", lambda: Ca(not_before=NOW + timedelta(days=1)).pem),
        ("garbage", lambda: "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"),
        ("no PEM", lambda: "hello"),
        ("chain", lambda: Ca().pem + Ca().pem),
    ],
)
def test_install_rejects_invalid_certificates(store: CertificateStore, case: str, make: object) -> None:
    """M05.FR.07 (1.6 M05.FR.06): invalid -> Rejected, nothing stored."""
    assert install(store, make()) == "Rejected", case  # type: ignore[operator]
    assert store.count() == 0


def test_install_respects_certificate_entries_max_limit(store: CertificateStore) -> None:
    """M05.FR.06 (1.6 M05.FR.03, CertificateStoreMaxLength)."""
    first = Ca()
    assert install(store, first.pem, limit=2) == "Accepted"
    assert install(store, Ca().pem, "ManufacturerRootCertificate", limit=2) == "Accepted"
    assert install(store, Ca().pem, limit=2) == "Rejected"
    assert install(store, first.pem, limit=2) == "Accepted"  # M05.FR.17: replaces itself
    assert store.count() == 2


def test_additional_root_certificate_check(store: CertificateStore) -> None:
    """M05.FR.10-12: the new CSMS root must be signed by the old one, which stays as
    fallback until a connection with the new one worked."""
    old = Ca("Old Root")
    assert install(store, old.pem, check=True) == "Accepted"
    assert install(store, Ca("Stranger").pem, check=True) == "Rejected"  # M05.FR.11
    new_key = key()
    new = certificate(name("New Root"), new_key.public_key(), (old.name, old.key), ca=True)
    assert install(store, pem(new), check=True) == "Accepted"
    assert store.trusted_pem("CSMSRootCertificate") == pem(new)
    assert store.fallback_pem() == old.pem
    store.discard_fallback_roots()
    assert store.fallback_pem() == ""


# -- GetInstalledCertificateIds ----------------------------------------------------------
def test_hash_data_matches_an_independent_computation(store: CertificateStore) -> None:
    """M03.FR.04: issuerNameHash over the DER issuer name, issuerKeyHash over the issuer's
    subjectPublicKey value, serial in hex without leading zeroes."""
    root_key = key()
    root = certificate(name("Zero Root"), root_key.public_key(), ca=True, signing_key=root_key,
                       serial=0x0ABC)
    assert install(store, pem(root)) == "Accepted"
    found = store.installed(["CSMSRootCertificate"])
    assert found == [{"certificateType": "CSMSRootCertificate",
                      "certificateHashData": expected_hash(root, root)}]
    assert found[0]["certificateHashData"]["serialNumber"] == "abc"
    assert store.installed(["V2GRootCertificate"]) == []


def test_v2g_chain_reports_sub_cas_as_children(
    store: CertificateStore, keys: FileKeyStore
) -> None:
    """M03.FR.05: V2GCertificateChain: the leaf, sub-CAs as childCertificateHashData."""
    root = Ca("V2G Root")
    sub = root.sub("V2G Sub")
    keys.generate("V2GCertificate")
    leaf = sub.issue(our_public_key(keys, "V2GCertificate"), cn=SN)
    install(store, root.pem, "V2GRootCertificate")
    verdict = store.accept_signed("V2GCertificate", pem(leaf, sub.cert), keys, NOW,
                                  common_name=SN, organization=ORG)
    assert verdict.accepted, verdict.reason
    [entry] = store.installed(["V2GCertificateChain"])
    assert entry["certificateHashData"] == expected_hash(leaf, sub.cert)
    assert entry["childCertificateHashData"] == [expected_hash(sub.cert, root.cert)]


# -- DeleteCertificate -------------------------------------------------------------------
def test_delete_by_hash_data(store: CertificateStore) -> None:
    """M04.FR.02/04 (TC_M_20_CS, TC_M_22_CS); the last CSMS root, in use with profile
    2/3, is refused (M04.FR.03 note; 1.6 M04.FR.06)."""
    a, b, m = Ca("A"), Ca("B"), Ca("M")
    for ca in (a, b):
        install(store, ca.pem)
    install(store, m.pem, "ManufacturerRootCertificate")
    assert store.delete(expected_hash(a.cert, a.cert)).status == "Accepted"
    assert store.delete(expected_hash(a.cert, a.cert)).status == "NotFound"
    last = store.delete(expected_hash(b.cert, b.cert))
    assert last.status == "Failed" and "last CSMS root" in last.reason
    upper = {k: v.upper() for k, v in expected_hash(m.cert, m.cert).items()}
    upper["hashAlgorithm"] = "SHA256"
    assert store.delete(upper).status == "Accepted"  # hex is case-insensitive
    assert store.trusted_pem("CSMSRootCertificate") == b.pem
    # Over profile 0/1 no root verifies the connection: the last one may go (TC_M_20_CS).
    assert store.delete(expected_hash(b.cert, b.cert), csms_root_in_use=False).accepted


def test_the_station_certificate_cannot_be_deleted(
    store: CertificateStore, keys: FileKeyStore
) -> None:
    """M04.FR.06 (1.6 M04.FR.05)."""
    ca = Ca()
    install(store, ca.pem)
    leaf = ca.issue(our_public_key(keys), cn=SN)
    assert store.accept_signed(USE, pem(leaf), keys, NOW, common_name=SN,
                               organization=ORG).accepted
    assert store.delete(expected_hash(leaf, ca.cert)).status == "Failed"
    assert store.station_chain_pem() == pem(leaf)


# -- CertificateSigned -------------------------------------------------------------------
def test_signed_chain_for_the_pending_key_becomes_current(
    store: CertificateStore, keys: FileKeyStore
) -> None:
    """A02.FR.06/08: valid -> stored, its key current; the old chain and key kept as
    fallback (A02.FR.10)."""
    ca = Ca()
    sub = ca.sub()
    install(store, ca.pem)
    first = ca.issue(our_public_key(keys), cn=SN)
    assert store.accept_signed(USE, pem(first), keys, NOW, common_name=SN,
                               organization=ORG).accepted
    keys.generate(pending(USE))
    renewed = sub.issue(our_public_key(keys, pending(USE)), cn=SN)
    verdict = store.accept_signed(USE, pem(renewed, sub.cert), keys, NOW, common_name=SN,
                                  organization=ORG, max_chain_size=10000)
    assert verdict.accepted, verdict.reason
    assert store.station_chain_pem() == pem(renewed, sub.cert)
    assert store.previous_chain_pem() == pem(first)
    assert not keys.has_key(pending(USE)) and keys.has_key(previous(USE))
    assert keys.public_key_matches(USE, pem(renewed))


def cases(ca: Ca, keys: FileKeyStore) -> dict[str, str]:
    ours = our_public_key(keys)
    sub = ca.sub()
    stranger = Ca("Stranger")
    return {
        "wrong CA": pem(stranger.issue(ours, cn=SN)),
        "expired": pem(ca.issue(ours, cn=SN, not_before=NOW - timedelta(days=10),
                                not_after=NOW - timedelta(seconds=1))),
        "not yet valid": pem(ca.issue(ours, cn=SN, not_before=NOW + timedelta(hours=1))),
        "key mismatch": pem(ca.issue(key().public_key(), cn=SN)),
        "CN is not the serial number": pem(ca.issue(ours, cn="SOMEONE-ELSE")),
        "O is not OrganizationName": pem(ca.issue(ours, cn=SN, o="Other CPO")),
        "chain out of order": pem(sub.cert, sub.issue(ours, cn=SN)),
        "sub-CA missing": pem(sub.issue(ours, cn=SN)),
        "leaf is a CA": pem(ca.issue(ours, cn=SN, ca=True)),
        "unparseable": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    }


@pytest.mark.parametrize("case", [
    "wrong CA", "expired", "not yet valid", "key mismatch", "CN is not the serial number",
    "O is not OrganizationName", "chain out of order", "sub-CA missing", "leaf is a CA",
    "unparseable",
])
def test_invalid_signed_chains_are_rejected_and_discarded(
    store: CertificateStore, keys: FileKeyStore, case: str
) -> None:
    """A02.FR.06/07 (errata 2025-01: no future validity start)."""
    ca = Ca()
    install(store, ca.pem)
    verdict = store.accept_signed(USE, cases(ca, keys)[case], keys, NOW, common_name=SN,
                                  organization=ORG)
    assert verdict.status == "Rejected", case
    assert verdict.reason
    assert store.station_chain_pem() is None
    assert keys.has_key(USE)


def test_chain_longer_than_max_certificate_chain_size_is_rejected(
    store: CertificateStore, keys: FileKeyStore
) -> None:
    """A02.FR.16."""
    ca = Ca()
    install(store, ca.pem)
    chain = pem(ca.issue(our_public_key(keys), cn=SN))
    verdict = store.accept_signed(USE, chain, keys, NOW, common_name=SN, organization=ORG,
                                  max_chain_size=len(chain) - 1)
    assert verdict.status == "Rejected" and "MaxCertificateChainSize" in verdict.reason
    assert store.accept_signed(USE, chain, keys, NOW, common_name=SN, organization=ORG,
                               max_chain_size=len(chain)).accepted


def test_no_installed_root_means_no_trust(store: CertificateStore, keys: FileKeyStore) -> None:
    ca = Ca()
    chain = pem(ca.issue(our_public_key(keys), cn=SN))
    assert store.accept_signed(USE, chain, keys, NOW, common_name=SN,
                               organization=ORG).status == "Rejected"
