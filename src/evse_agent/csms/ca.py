"""A throw-away certificate authority for the development CSMS and the tests: a root
(installed on a station as CSMSRootCertificate / V2GRootCertificate), optional sub-CAs,
and signing of the CSRs stations send in SignCertificate (2.0.1 A02/A03, 1.6
whitepaper). Development only: keys live in memory, nothing is checked but the CSR's
own signature. Imported only when a CA is asked for (`cryptography` is heavy).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def _name(common_name: str, organization: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
    ])


def pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


@dataclass
class DevCa:
    """A CA: its key, its certificate and the sub-CAs between it and the root."""

    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate
    parents: list[x509.Certificate] = field(default_factory=list)  # issuer first, root last

    @classmethod
    def root(
        cls,
        common_name: str = "evse-agent dev root CA",
        organization: str = "evse-agent dev",
        *,
        not_before: datetime | None = None,
        days: int = 3650,
    ) -> DevCa:
        key = ec.generate_private_key(ec.SECP256R1())
        start = not_before or datetime.now(UTC) - timedelta(hours=1)
        name = _name(common_name, organization)
        builder = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(_ca_usage(), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
        )
        return cls(key, builder.sign(key, hashes.SHA256()))

    @property
    def root_pem(self) -> str:
        """The self-signed certificate at the top (what a station installs)."""
        return pem(self.parents[-1] if self.parents else self.certificate)

    def sub_ca(self, common_name: str = "evse-agent dev sub-CA") -> DevCa:
        key = ec.generate_private_key(ec.SECP256R1())
        certificate = self._issue(
            key.public_key(), _name(common_name, self._organization()), ca=True
        )
        return DevCa(key, certificate, [self.certificate, *self.parents])

    def sign_csr(
        self,
        csr_pem: str,
        *,
        days: int = 365,
        not_before: datetime | None = None,
        subject: x509.Name | None = None,
    ) -> str:
        """The certificate chain for a CSR, PEM: leaf first, then the sub-CAs (the
        root is not sent: the station has it). ValueError for a CSR whose
        signature is wrong."""
        csr = x509.load_pem_x509_csr(csr_pem.encode())
        if not csr.is_signature_valid:
            raise ValueError("the CSR's signature does not verify")
        leaf = self._issue(
            csr.public_key(), subject or csr.subject, ca=False, days=days,
            not_before=not_before,
        )
        return self.chain_pem(leaf)

    def chain_pem(self, leaf: x509.Certificate) -> str:
        return pem(leaf) + "".join(pem(c) for c in [self.certificate, *self.parents][:-1])

    def issue_server(self, host: str = "127.0.0.1", days: int = 30) -> tuple[str, str]:
        """(certificate chain PEM, private key PEM) for a TLS server at `host`."""
        key = ec.generate_private_key(ec.SECP256R1())
        try:
            alt: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host))
        except ValueError:
            alt = x509.DNSName(host)
        leaf = self._issue(key.public_key(), _name(host, self._organization()), ca=False,
                           days=days, alt_names=[alt])
        key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        return self.chain_pem(leaf), key_pem

    def _organization(self) -> str:
        values = self.certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
        return str(values[0].value) if values else "evse-agent dev"

    def _issue(
        self,
        public_key: object,
        subject: x509.Name,
        *,
        ca: bool,
        days: int = 365,
        not_before: datetime | None = None,
        alt_names: list[x509.GeneralName] | None = None,
    ) -> x509.Certificate:
        start = not_before or datetime.now(UTC) - timedelta(minutes=5)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.certificate.subject)
            .public_key(public_key)  # type: ignore[arg-type]
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .add_extension(_ca_usage() if ca else _leaf_usage(), critical=True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
        )
        if alt_names:
            builder = builder.add_extension(x509.SubjectAlternativeName(alt_names),
                                            critical=False)
        return builder.sign(self.key, hashes.SHA256())


def _ca_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=False, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
        encipher_only=False, decipher_only=False,
    )


def _leaf_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=True, key_cert_sign=False, crl_sign=False,
        encipher_only=False, decipher_only=False,
    )
