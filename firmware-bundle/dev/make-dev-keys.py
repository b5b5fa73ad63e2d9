#!/usr/bin/env python3
"""DEVELOPMENT ONLY: make the development firmware root and firmware-signing certificate.

Run once (the results are committed); running it again replaces them, and bundles
signed with the old key stop verifying. The private key is public in this repository:
anything it signs proves nothing. Stations refuse it when `[firmware] production = true`.

    python firmware-bundle/dev/make-dev-keys.py
"""

from __future__ import annotations

import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

HERE = Path(__file__).resolve().parent
ROOT = HERE / "DEVELOPMENT-ONLY-root.pem"
SIGNING_CERT = HERE / "DEVELOPMENT-ONLY-signing.pem"
SIGNING_KEY = HERE / "DEVELOPMENT-ONLY-signing.key"
YEARS = 50


def _name(common_name: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "evse-agent DEVELOPMENT ONLY"),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


def main() -> None:
    start = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)
    end = start.replace(year=start.year + YEARS)
    root_key = ec.generate_private_key(ec.SECP256R1())
    root_name = _name("DEVELOPMENT ONLY firmware root - not for production")
    root = (
        x509.CertificateBuilder()
        .subject_name(root_name).issuer_name(root_name)
        .public_key(root_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=False, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()),
                       critical=False)
        .sign(root_key, hashes.SHA256())
    )
    signing_key = ec.generate_private_key(ec.SECP256R1())
    signing = (
        x509.CertificateBuilder()
        .subject_name(_name("DEVELOPMENT ONLY firmware signing - not for production"))
        .issuer_name(root_name)
        .public_key(signing_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]),
                       critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            root_key.public_key()), critical=False)
        .sign(root_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    ROOT.write_bytes(root.public_bytes(pem))
    SIGNING_CERT.write_bytes(signing.public_bytes(pem))
    SIGNING_KEY.write_bytes(signing_key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    # The root's private key is deliberately not kept: nothing else is ever signed by it.
    print(f"DEVELOPMENT ONLY signing material written to {HERE}")


if __name__ == "__main__":
    main()
