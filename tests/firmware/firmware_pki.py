"""Firmware-signing test PKI, built with `cryptography` independently of the code under
test: roots, intermediates and signing certificates with EC P-256/P-384 or RSA keys."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

NOW = datetime.now(UTC).replace(microsecond=0)


def new_key(kind: str = "p256") -> Any:
    if kind == "p256":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "p384":
        return ec.generate_private_key(ec.SECP384R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Test Manufacturer")])


class Authority:
    """A CA that issues firmware-signing certificates (and sub-CAs)."""

    def __init__(self, cn: str = "Test Manufacturer Root", kind: str = "p256",
                 parent: Authority | None = None) -> None:
        self.key = new_key(kind)
        self.name = _name(cn)
        issuer = parent or self
        self.cert = _certificate(self.name, self.key.public_key(), issuer.name,
                                 issuer.key, ca=True)

    @property
    def pem(self) -> str:
        return pem(self.cert)

    def signer(self, kind: str = "p256", cn: str = "Test Firmware Signing",
               not_before: datetime | None = None,
               not_after: datetime | None = None) -> tuple[Any, x509.Certificate]:
        key = new_key(kind)
        return key, _certificate(_name(cn), key.public_key(), self.name, self.key, ca=False,
                                 not_before=not_before, not_after=not_after)


def _certificate(subject: x509.Name, public_key: Any, issuer: x509.Name, issuer_key: Any,
                 *, ca: bool, not_before: datetime | None = None,
                 not_after: datetime | None = None) -> x509.Certificate:
    return (x509.CertificateBuilder()
            .subject_name(subject).issuer_name(issuer).public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before or NOW - timedelta(days=1))
            .not_valid_after(not_after or NOW + timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .sign(issuer_key, hashes.SHA256()))


def pem(*certs: x509.Certificate) -> str:
    return "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in certs)


def key_pem(key: Any) -> bytes:
    return bytes(key.private_bytes(serialization.Encoding.PEM,
                                   serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption()))


def write(directory: Path, name: str, data: str | bytes) -> Path:
    path = directory / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path
