"""Real bundles for the installer tests, built with firmware.bundle.build and a throwaway
signing key (extracting does not check the signature; verify_bundle does, elsewhere)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from evse_agent.firmware.bundle import Manifest, build

_KEY = ec.generate_private_key(ec.SECP256R1())
_NAME = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "installer test signer")])
_NOW = datetime.now(UTC)
_CERT = (x509.CertificateBuilder().subject_name(_NAME).issuer_name(_NAME)
         .public_key(_KEY.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(_NOW - timedelta(minutes=5)).not_valid_after(_NOW + timedelta(days=1))
         .sign(_KEY, hashes.SHA256()))
_CHAIN = _CERT.public_bytes(serialization.Encoding.PEM).decode("ascii")


def make_bundle(where: Path, version: str, files: dict[str, bytes]) -> tuple[Path, Manifest]:
    src = where / f"src-{version}"
    src.mkdir(parents=True)
    paths = []
    for name, data in files.items():
        (src / name).write_bytes(data)
        paths.append(src / name)
    out = where / f"fw-{version}.bundle"
    manifest = build(out, version=version, payloads=paths, key=_KEY, chain_pem=_CHAIN)
    return out, manifest
