"""FileKeyStore: PKCS#8 files, 0600 in a 0700 directory, atomic writes, passphrase from
a systemd credential, CSR contents (A00.FR.509/511, A02.FR.03), keys never echoed."""

from __future__ import annotations

import logging
import os
import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from pki import Ca, csr_public_key, pem

from evse_agent.security import keystore
from evse_agent.security.keystore import (
    PASSPHRASE_CREDENTIAL,
    FileKeyStore,
    KeyStoreError,
    pending,
    previous,
)

NAME = "ChargingStationCertificate"


@pytest.fixture(autouse=True)
def no_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)


def credential(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, secret: bytes) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / PASSPHRASE_CREDENTIAL).write_bytes(secret)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))


def test_generate_writes_pkcs8_ec_p256_0600_in_0700(tmp_path: Path) -> None:
    keys = FileKeyStore(tmp_path / "keys")
    assert not keys.has_key(NAME)
    keys.generate(NAME)
    path = keys.path(NAME)
    assert keys.has_key(NAME)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    data = path.read_bytes()
    assert data.startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8, not SEC1
    key = serialization.load_pem_private_key(data, None)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left


def test_unencrypted_key_warns_without_echoing_the_key(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    keys = FileKeyStore(tmp_path / "keys")
    keys.generate(NAME)
    assert any("unencrypted" in r.getMessage() and PASSPHRASE_CREDENTIAL in r.getMessage()
               for r in caplog.records if r.levelno == logging.WARNING)
    body = keys.path(NAME).read_text().splitlines()[1]
    assert body not in caplog.text


def test_passphrase_from_systemd_credential_encrypts_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    credential(tmp_path, monkeypatch, b"correct horse battery\n")  # trailing newline dropped
    keys = FileKeyStore(tmp_path / "keys")
    keys.generate(NAME)
    data = keys.path(NAME).read_bytes()
    assert data.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert keys.encrypted(NAME)
    with pytest.raises(TypeError):
        serialization.load_pem_private_key(data, None)
    serialization.load_pem_private_key(data, b"correct horse battery")
    # A fresh store (a restart) reads the same credential and can use the key.
    again = FileKeyStore(tmp_path / "keys")
    csr = again.csr(NAME, "SN-1", "Org")
    assert "BEGIN CERTIFICATE REQUEST" in csr


def test_encrypted_key_without_or_with_a_wrong_passphrase_is_one_clear_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    credential(tmp_path, monkeypatch, b"right")
    FileKeyStore(tmp_path / "keys").generate(NAME)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY")
    with pytest.raises(KeyStoreError, match="encrypted but no passphrase") as err:
        FileKeyStore(tmp_path / "keys").csr(NAME, "SN-1", "Org")
    assert str(keys_path := FileKeyStore(tmp_path / "keys").path(NAME)) in str(err.value)
    assert "\n" not in str(err.value)
    wrong = FileKeyStore(tmp_path / "keys", passphrase=b"wrong")
    with pytest.raises(KeyStoreError, match="wrong passphrase") as err:
        wrong.sign(NAME, b"x")
    assert keys_path.read_text().splitlines()[1] not in str(err.value)


def test_empty_credential_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    credential(tmp_path, monkeypatch, b"\n")
    with pytest.raises(KeyStoreError, match="empty"):
        FileKeyStore(tmp_path / "keys").generate(NAME)


def test_damaged_key_file_is_named(tmp_path: Path) -> None:
    keys = FileKeyStore(tmp_path / "keys")
    keys.generate(NAME)
    keys.path(NAME).write_text("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    with pytest.raises(KeyStoreError, match="not a PEM private key"):
        FileKeyStore(tmp_path / "keys").sign(NAME, b"x")
    with pytest.raises(KeyStoreError, match="no such key"):
        keys.csr("V2GCertificate", "SN", "O")


def test_atomic_write_keeps_the_old_key_when_the_rename_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = FileKeyStore(tmp_path / "keys")
    keys.generate(NAME)
    before = keys.path(NAME).read_bytes()
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(keystore.os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))

    def crash(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(keystore.os, "replace", crash)
    with pytest.raises(OSError):
        keys.generate(NAME)
    assert keys.path(NAME).read_bytes() == before
    assert [p.name for p in keys.path(NAME).parent.iterdir()] == [keys.path(NAME).name]
    assert synced  # the data was flushed to disk before the rename was tried
    monkeypatch.undo()
    synced.clear()
    monkeypatch.setattr(keystore.os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    keys.generate(NAME)
    assert keys.path(NAME).read_bytes() != before
    assert len(synced) == 2  # the file, then its directory


def test_csr_carries_serial_number_organization_and_our_key(tmp_path: Path) -> None:
    keys = FileKeyStore(tmp_path / "keys")
    keys.generate(NAME)
    csr = x509.load_pem_x509_csr(keys.csr(NAME, "SN-0042", "Example CPO").encode())
    assert csr.is_signature_valid
    assert csr.signature_hash_algorithm is not None
    assert csr.signature_hash_algorithm.name == "sha256"
    assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "SN-0042"
    assert csr.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == (
        "Example CPO"
    )
    data = keys.path(NAME).read_bytes()
    ours = serialization.load_pem_private_key(data, None).public_key()
    der = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    assert csr.public_key().public_bytes(*der) == ours.public_bytes(*der)


def test_sign_and_public_key_match(tmp_path: Path) -> None:
    keys = FileKeyStore(tmp_path / "keys")
    keys.generate(NAME)
    public = csr_public_key(keys.csr(NAME, "SN-1", "O"))
    signature = keys.sign(NAME, b"firmware digest")
    public.verify(signature, b"firmware digest", ec.ECDSA(hashes.SHA256()))
    ca = Ca()
    assert keys.public_key_matches(NAME, pem(ca.issue(public)))
    assert not keys.public_key_matches(NAME, pem(ca.issue(ca.key.public_key())))
    assert not keys.public_key_matches("V2GCertificate", pem(ca.issue(public)))


@pytest.mark.parametrize("passphrase", [None, b"secret"])
def test_load_into_an_ssl_context(tmp_path: Path, passphrase: bytes | None) -> None:
    """Profile 3: the client chain and the (possibly encrypted) key into an SSLContext."""
    keys = FileKeyStore(tmp_path / "keys", passphrase=passphrase)
    keys.generate(NAME)
    ca = Ca()
    sub = ca.sub()
    chain = pem(sub.issue(csr_public_key(keys.csr(NAME, "SN-1", "O"))), sub.cert)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    keys.load_into(ctx, NAME, chain)
    with pytest.raises(KeyStoreError, match="cannot use key"):
        keys.load_into(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT), NAME, pem(ca.cert))
    if passphrase:  # never an OpenSSL passphrase prompt on the terminal
        blind = FileKeyStore(tmp_path / "keys", use_credential=False)
        with pytest.raises(KeyStoreError, match="no passphrase"):
            blind.load_into(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT), NAME, chain)


def test_promote_pending_keeps_the_previous_key(tmp_path: Path) -> None:
    keys = FileKeyStore(tmp_path / "keys")
    keys.generate(NAME)
    old = keys.path(NAME).read_bytes()
    keys.generate(pending(NAME))
    new_csr = keys.csr(pending(NAME), "SN", "O")
    keys.promote(NAME)
    assert not keys.has_key(pending(NAME))
    assert keys.path(previous(NAME)).read_bytes() == old
    # the promoted key is the one the pending CSR carried
    der = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    assert (x509.load_pem_x509_csr(keys.csr(NAME, "SN", "O").encode()).public_key()
            .public_bytes(*der)) == csr_public_key(new_csr).public_bytes(*der)
    with pytest.raises(KeyStoreError, match="no pending key"):
        keys.promote(NAME)


def test_rsa_is_optional(tmp_path: Path) -> None:
    keys = FileKeyStore(tmp_path / "keys", key_type="rsa")
    keys.generate(NAME)
    key = serialization.load_pem_private_key(keys.path(NAME).read_bytes(), None)
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size >= 2048  # A00.FR.502
    with pytest.raises(ValueError):
        FileKeyStore(tmp_path, key_type="dsa")
