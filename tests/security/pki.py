"""Test certificates, built here with `cryptography` independently of the code under
test: roots, sub-CAs, leaves with any subject, validity, key and CA flag."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

NOW = datetime.now(UTC).replace(microsecond=0)


def name(cn: str, o: str = "evse-agent") -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, o)])


def key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def certificate(
    subject: x509.Name,
    public_key: Any,
    issuer: tuple[x509.Name, Any] | None = None,  # (issuer name, issuer private key)
    *,
    ca: bool = False,
    serial: int | None = None,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    signing_key: Any = None,
) -> x509.Certificate:
    issuer_name, issuer_key = issuer if issuer else (subject, signing_key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(public_key)
        .serial_number(serial or x509.random_serial_number())
        .not_valid_before(not_before or NOW - timedelta(days=1))
        .not_valid_after(not_after or NOW + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    return builder.sign(issuer_key, hashes.SHA256())


class Ca:
    def __init__(self, cn: str = "Test Root", ca: bool = True, **kw: Any) -> None:
        self.key = key()
        self.name = name(cn)
        self.cert = certificate(self.name, self.key.public_key(), ca=ca,
                                signing_key=self.key, **kw)

    @property
    def pem(self) -> str:
        return pem(self.cert)

    def sub(self, cn: str = "Test Sub-CA", **kw: Any) -> Ca:
        sub = Ca.__new__(Ca)
        sub.key, sub.name = key(), name(cn)
        sub.cert = certificate(sub.name, sub.key.public_key(), (self.name, self.key), ca=True,
                               **kw)
        return sub

    def issue(self, public_key: Any, cn: str = "SN-1", o: str = "evse-agent",
              **kw: Any) -> x509.Certificate:
        return certificate(name(cn, o), public_key, (self.name, self.key), **kw)


def pem(*certs: x509.Certificate) -> str:
    return "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in certs)


def csr_public_key(csr_pem: str) -> Any:
    return x509.load_pem_x509_csr(csr_pem.encode()).public_key()
