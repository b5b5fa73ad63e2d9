"""Firmware signatures: keys, the signing certificate chain and its trust anchors.

Used by bundle.py (the manifest signature) and for UpdateFirmware's own signature over
the downloaded file. Always SHA-256; ECDSA (any NIST curve the certificate names, P-256
and P-384 in practice) and RSA with PKCS#1 v1.5 or PSS. Big inputs are hashed by the
caller while streaming and verified here as a prehashed digest.

The development root (firmware-bundle/dev, DEVELOPMENT ONLY) is trusted beside the
given roots unless `production` is set; in production a chain that ends at it is refused
with kind "DevelopmentSigned" even when someone installed it as a root.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, BinaryIO

from .errors import BundleError

MAX_CHAIN = 5          # certificates in a signing chain, leaf included
READ_SIZE = 1 << 20    # large reads: the hash, not Python, must be the bottleneck
DEV_ROOT = "DEVELOPMENT-ONLY-root.pem"
DEV_SIGNING_CERT = "DEVELOPMENT-ONLY-signing.pem"
DEV_SIGNING_KEY = "DEVELOPMENT-ONLY-signing.key"


def dev_path(name: str) -> Path:
    """A file of the DEVELOPMENT ONLY signing material shipped with the package."""
    return Path(str(resources.files("evse_agent.firmware").joinpath("dev", name)))


@cache
def dev_root_pem() -> str:
    return dev_path(DEV_ROOT).read_text(encoding="ascii")


def sha256_stream(stream: BinaryIO, limit: int | None = None) -> tuple[bytes, int]:
    """(digest, bytes read) of the stream's rest (or its next `limit` bytes), in
    constant memory: one reusable buffer, no copies (hashlib drops the GIL on it)."""
    digest = hashlib.sha256()
    buffer = bytearray(READ_SIZE)
    view = memoryview(buffer)
    total = 0
    while limit is None or total < limit:
        want = READ_SIZE if limit is None else min(READ_SIZE, limit - total)
        n = stream.readinto(view[:want])  # type: ignore[attr-defined]
        if not n:
            break
        digest.update(view[:n])
        total += n
    return digest.digest(), total


def file_sha256(path: Path) -> bytes:
    with open(path, "rb", buffering=0) as stream:
        return sha256_stream(stream)[0]


# -- keys and signing (tooling side) ---------------------------------------------------
def load_private_key(data: bytes, where: str) -> Any:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    if b"ENCRYPTED" in data[:64]:
        raise BundleError("Malformed", f"{where}: encrypted keys are not supported; "
                          "decrypt it first (openssl pkey -in KEY -out PLAIN)")
    try:
        key = serialization.load_pem_private_key(data, None)
    except (ValueError, TypeError):
        # Never echo the library's text: it may quote key bytes.
        raise BundleError("Malformed", f"{where}: not a PEM private key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise BundleError("Malformed", f"{where}: {type(key).__name__} keys are not "
                          "supported (use ECDSA P-256/P-384 or RSA)")
    return key


def sign_digest(key: Any, digest: bytes, *, pss: bool = False) -> bytes:
    """Signature over a SHA-256 digest (DER ECDSA, or RSA PKCS#1 v1.5 / PSS)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, utils

    prehashed = utils.Prehashed(hashes.SHA256())
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return bytes(key.sign(digest, ec.ECDSA(prehashed)))
    pad = (padding.PSS(padding.MGF1(hashes.SHA256()), padding.PSS.DIGEST_LENGTH)
           if pss else padding.PKCS1v15())
    return bytes(key.sign(digest, pad, prehashed))


def key_matches_certificate(key: Any, certificate_pem: str) -> bool:
    from cryptography.hazmat.primitives import serialization

    def der(public_key: Any) -> bytes:
        return bytes(public_key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo))

    return der(parse_chain(certificate_pem, "certificate")[0].public_key()) == \
        der(key.public_key())


# -- verification (station side) -------------------------------------------------------
@dataclass(frozen=True)
class Signer:
    """Who signed: the leaf's subject, the anchor's subject, development or not."""

    subject: str
    anchor: str
    development: bool


def parse_chain(pem: str, what: str) -> list[Any]:
    from cryptography import x509

    if "-----BEGIN CERTIFICATE-----" not in pem:
        raise BundleError("InvalidCertificate", f"{what}: no PEM certificate")
    try:
        chain = x509.load_pem_x509_certificates(pem.encode("ascii", "replace"))
    except ValueError:
        raise BundleError("InvalidCertificate", f"{what}: unparseable certificate") from None
    return chain


def normalized_chain(pem: str, what: str) -> bytes:
    """The chain's certificates as plain PEM (no comments or other text between)."""
    from cryptography.hazmat.primitives import serialization

    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in parse_chain(pem, what))


def decode_signature(signature_b64: str) -> bytes:
    try:
        return base64.b64decode(signature_b64.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise BundleError("InvalidSignature", "the signature is not valid base64") from None


def verify_chain(chain_pem: str, roots_pem: list[str], *, production: bool,
                 now: datetime | None = None) -> tuple[Any, Signer]:
    """The signing certificate (leaf) once its chain leads to a trusted root.

    `chain_pem`: leaf first, then intermediates (the root itself may close it).
    Raises BundleError "InvalidCertificate" or, in production, "DevelopmentSigned".
    """
    from cryptography import x509

    from ..security import x509util

    now = now or datetime.now(UTC)
    chain = parse_chain(chain_pem, "signing certificate")
    if len(chain) > MAX_CHAIN:
        raise BundleError("InvalidCertificate", f"signing chain of {len(chain)} "
                          f"certificates (at most {MAX_CHAIN})")
    leaf = chain[0]
    for certificate in chain:
        if not x509util.valid_at(certificate, now):
            raise BundleError("InvalidCertificate", f"{_name(certificate)} is outside its "
                              f"validity ({certificate.not_valid_before_utc:%Y-%m-%d} to "
                              f"{certificate.not_valid_after_utc:%Y-%m-%d})")
    try:
        usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
        if not usage.digital_signature:
            raise BundleError("InvalidCertificate",
                              f"{_name(leaf)} is not allowed to sign (keyUsage)")
    except x509.ExtensionNotFound:
        pass
    for child, parent in zip(chain, chain[1:], strict=False):
        if not x509util.is_ca(parent) or not x509util.signed_by(child, parent):
            raise BundleError("InvalidCertificate", f"{_name(child)} is not issued by "
                              f"the next certificate of the chain")
    top = chain[-1]
    dev_root = parse_chain(dev_root_pem(), "development root")[0]
    dev_fingerprint = x509util.fingerprint(dev_root)
    roots = []
    for index, text in enumerate(roots_pem):
        if text.strip():
            roots += parse_chain(text, f"root certificate {index + 1}")
    # In production the development root is never an anchor, even if installed.
    roots = [r for r in roots if x509util.fingerprint(r) != dev_fingerprint]
    if not production:
        roots.append(dev_root)
    for root in roots:
        if not x509util.valid_at(root, now):
            continue
        if x509util.fingerprint(root) == x509util.fingerprint(top) or (
                root.subject == top.issuer and x509util.signed_by(top, root)):
            development = x509util.fingerprint(root) == dev_fingerprint
            return leaf, Signer(_name(leaf), _name(root), development)
    if production and (x509util.fingerprint(top) == dev_fingerprint
                       or x509util.signed_by(top, dev_root)):
        raise BundleError("DevelopmentSigned", "signed with the DEVELOPMENT ONLY key; "
                          "refused because [firmware] production = true")
    raise BundleError("InvalidCertificate", f"{_name(leaf)} does not chain to an "
                      "installed ManufacturerRootCertificate")


def verify_digest(certificate: Any, signature: bytes, digest: bytes) -> None:
    """The certificate's key signed this SHA-256 digest, else "InvalidSignature"."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

    key = certificate.public_key()
    prehashed = utils.Prehashed(hashes.SHA256())
    attempts: list[tuple[Any, ...]]
    if isinstance(key, ec.EllipticCurvePublicKey):
        attempts = [(ec.ECDSA(prehashed),)]
    elif isinstance(key, rsa.RSAPublicKey):
        attempts = [(padding.PKCS1v15(), prehashed),
                    (padding.PSS(padding.MGF1(hashes.SHA256()), padding.PSS.AUTO), prehashed)]
    else:
        raise BundleError("InvalidCertificate",
                          f"unsupported signing key type {type(key).__name__}")
    for arguments in attempts:
        try:
            key.verify(signature, digest, *arguments)
            return
        except (InvalidSignature, ValueError):
            continue
    raise BundleError("InvalidSignature", f"the signature does not verify with the key of "
                      f"{_name(certificate)}")


def _name(certificate: Any) -> str:
    from cryptography.x509.oid import NameOID

    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return f"'{names[0].value}'" if names else certificate.subject.rfc4514_string()
