"""All X.509, CSR, key and signature work, with `cryptography`.

This is the only module of the package that imports `cryptography` at its top; the
others import it inside functions, so `evse_agent.agent` starts without it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.x509.oid import NameOID

from .keystore import KeyStoreError

RSA_BITS = 3072  # A00.FR.502 asks >= 2048; 3072 matches P-256's 128-bit strength


class CertificateError(Exception):
    """A certificate or chain that cannot be used; the text says why, in one line."""


# -- keys ------------------------------------------------------------------------------
def new_private_key(key_type: str) -> Any:
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
    return ec.generate_private_key(ec.SECP256R1())


def private_key_pem(key: Any, passphrase: bytes | None) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    return bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    ))


def load_private_key(data: bytes, passphrase: bytes | None, where: str) -> Any:
    encrypted = b"ENCRYPTED" in data[:64]
    if encrypted and passphrase is None:
        raise KeyStoreError(
            f"{where}: the key is encrypted but no passphrase credential was given"
        )
    try:
        return serialization.load_pem_private_key(data, passphrase if encrypted else None)
    except (ValueError, TypeError):
        # Never echo the library's message: it could quote the key's bytes.
        problem = "wrong passphrase or damaged key" if encrypted else "not a PEM private key"
        raise KeyStoreError(f"{where}: {problem}") from None


def build_csr(key: Any, common_name: str, organization: str) -> str:
    subject = x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
    ])
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def _public_der(public_key: Any) -> bytes:
    return bytes(public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ))


def public_key_matches(key: Any, certificate_pem: str) -> bool:
    certificate = parse_chain(certificate_pem)[0]
    return _public_der(certificate.public_key()) == _public_der(key.public_key())


def sign(key: Any, data: bytes) -> bytes:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return bytes(key.sign(data, ec.ECDSA(hashes.SHA256())))
    if isinstance(key, rsa.RSAPrivateKey):
        return bytes(key.sign(data, padding.PKCS1v15(), hashes.SHA256()))
    raise KeyStoreError(f"unsupported key type {type(key).__name__}")


# -- certificates ----------------------------------------------------------------------
def parse_chain(pem: str) -> list[x509.Certificate]:
    """The certificates of a PEM text, leaf first. CertificateError when none or bad."""
    if "-----BEGIN CERTIFICATE-----" not in pem:
        raise CertificateError("no PEM certificate found")
    try:
        certificates = x509.load_pem_x509_certificates(pem.encode())
    except ValueError:
        raise CertificateError("unparseable PEM certificate") from None
    if not certificates:
        raise CertificateError("no PEM certificate found")
    return certificates


def to_pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def fingerprint(certificate: x509.Certificate) -> str:
    return certificate.fingerprint(hashes.SHA256()).hex()


def is_ca(certificate: x509.Certificate) -> bool:
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    except x509.ExtensionNotFound:
        return False
    return bool(constraints.value.ca)


def signed_by(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    """`certificate` names `issuer` as its issuer and carries its valid signature."""
    try:
        certificate.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def valid_at(certificate: x509.Certificate, now: datetime) -> bool:
    return certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc


def name_attribute(name: x509.Name, oid: x509.ObjectIdentifier) -> str | None:
    values = name.get_attributes_for_oid(oid)
    return str(values[0].value) if values else None


def common_name(certificate: x509.Certificate) -> str | None:
    return name_attribute(certificate.subject, NameOID.COMMON_NAME)


def organization(certificate: x509.Certificate) -> str | None:
    return name_attribute(certificate.subject, NameOID.ORGANIZATION_NAME)


def issuer_key_bytes(issuer: x509.Certificate) -> bytes:
    """The subjectPublicKey BIT STRING's value (no tag, length or unused-bits byte),
    as OCPP's issuerKeyHash and OCSP's CertID define it."""
    key = issuer.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        return bytes(key.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        ))
    if isinstance(key, rsa.RSAPublicKey):
        return bytes(key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.PKCS1
        ))
    if isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        return bytes(key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))
    raise CertificateError(f"unsupported issuer key type {type(key).__name__}")


def hash_data(certificate: x509.Certificate, issuer: x509.Certificate) -> dict[str, str]:
    """CertificateHashDataType (2.0.1 §2.6; 1.6 whitepaper CertificateHashDataType)."""
    return {
        "hashAlgorithm": "SHA256",
        "issuerNameHash": hashlib.sha256(certificate.issuer.public_bytes()).hexdigest(),
        "issuerKeyHash": hashlib.sha256(issuer_key_bytes(issuer)).hexdigest(),
        "serialNumber": format(certificate.serial_number, "x"),
    }


def same_hash(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Hash data equality, case-insensitive hex and serial without leading zeroes."""
    return (
        a.get("hashAlgorithm") == b.get("hashAlgorithm")
        and str(a.get("issuerNameHash", "")).lower() == str(b.get("issuerNameHash", "")).lower()
        and str(a.get("issuerKeyHash", "")).lower() == str(b.get("issuerKeyHash", "")).lower()
        and str(a.get("serialNumber", "")).lower().lstrip("0")
        == str(b.get("serialNumber", "")).lower().lstrip("0")
    )


@dataclass(frozen=True)
class Summary:
    """What `evse-agent keys show` prints about one certificate."""

    subject: str
    issuer: str
    not_after: datetime
    serial: str

    def days_left(self, now: datetime) -> int:
        return (self.not_after - now).days


def summary(certificate: x509.Certificate) -> Summary:
    return Summary(
        certificate.subject.rfc4514_string(),
        certificate.issuer.rfc4514_string(),
        certificate.not_valid_after_utc,
        format(certificate.serial_number, "x"),
    )
