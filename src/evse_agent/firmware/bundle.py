"""The firmware bundle (firmware-bundle/FORMAT.md): build, inspect, verify, extract.

A bundle is an uncompressed POSIX (ustar) tar: manifest.json, manifest.sig, signer.pem,
then one member per payload in manifest order. Everything is read front to back with
one reusable buffer, so verifying a 500 MB bundle takes the same memory as a 5 kB one,
and nothing of a payload is trusted before the manifest signature has verified.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .errors import KINDS, BundleError
from .signatures import (
    Signer,
    decode_signature,
    dev_root_pem,
    file_sha256,
    key_matches_certificate,
    normalized_chain,
    parse_chain,
    sha256_stream,
    sign_digest,
    verify_chain,
    verify_digest,
)
from .ustar import (
    BLOCK,
    Reader,
    copy_hashed,
    malformed,
    member_name,
    open_bundle,
    padding,
    write_header,
)

__all__ = ["KINDS", "BundleError", "Inspection", "Manifest", "Payload", "build",
           "check_compatible", "extract_payloads", "inspect", "verify_bundle",
           "verify_bundle_details", "verify_ocpp_signature", "version_key"]

FORMAT_VERSION = 1
MANIFEST, SIGNATURE, SIGNER = "manifest.json", "manifest.sig", "signer.pem"
PAYLOAD_DIR = "payload/"
ANY_HARDWARE = "*"
LIMITS = {MANIFEST: 1 << 20, SIGNATURE: 16 << 10, SIGNER: 64 << 10}
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}")
VERSION = re.compile(r"[0-9A-Za-z][0-9A-Za-z.+_~-]{0,63}")


@dataclass(frozen=True)
class Payload:
    name: str
    size: int
    sha256: str  # lower-case hex


@dataclass(frozen=True)
class Manifest:
    format_version: int
    firmware_version: str
    hardware: tuple[str, ...]
    created: str           # RFC 3339 UTC, e.g. 2026-11-25T14:50:00Z
    min_version: str | None
    payloads: tuple[Payload, ...]

    def to_bytes(self) -> bytes:
        """The canonical JSON the signature covers: sorted keys, no spaces, ASCII."""
        document = {
            "format": self.format_version,
            "firmware_version": self.firmware_version,
            "hardware": list(self.hardware),
            "created": self.created,
            "min_version": self.min_version,
            "payloads": [{"name": p.name, "size": p.size, "sha256": p.sha256}
                         for p in self.payloads],
        }
        return json.dumps(document, sort_keys=True, separators=(",", ":")).encode("ascii")

    @classmethod
    def from_bytes(cls, data: bytes) -> Manifest:
        try:
            doc = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise malformed("manifest.json is not JSON") from None
        if not isinstance(doc, dict):
            raise malformed("manifest.json is not a JSON object")
        if doc.get("format") != FORMAT_VERSION:
            raise malformed(f"manifest format {doc.get('format')!r} is not supported "
                             f"(this station reads format {FORMAT_VERSION})")
        unknown = set(doc) - {"format", "firmware_version", "hardware", "created",
                              "min_version", "payloads"}
        if unknown:
            raise malformed(f"manifest has unknown keys {sorted(unknown)}")
        version, hardware, created = (doc.get("firmware_version"), doc.get("hardware"),
                                      doc.get("created"))
        min_version, payloads = doc.get("min_version"), doc.get("payloads")
        if not isinstance(version, str) or not VERSION.fullmatch(version):
            raise malformed(f"manifest firmware_version {version!r} is not a version")
        if min_version is not None and (not isinstance(min_version, str)
                                        or not VERSION.fullmatch(min_version)):
            raise malformed(f"manifest min_version {min_version!r} is not a version")
        if (not isinstance(hardware, list) or not hardware
                or not all(isinstance(h, str) and h for h in hardware)):
            raise malformed("manifest hardware must be a non-empty list of ids")
        if not isinstance(created, str):
            raise malformed("manifest created is missing")
        if not isinstance(payloads, list):
            raise malformed("manifest payloads must be a list")
        items = []
        for entry in payloads:
            if not isinstance(entry, dict) or set(entry) != {"name", "size", "sha256"}:
                raise malformed("a manifest payload needs exactly name, size and sha256")
            name, size, digest = entry["name"], entry["size"], entry["sha256"]
            if not isinstance(name, str) or not NAME.fullmatch(name):
                raise malformed(f"payload name {name!r} is not allowed")
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                raise malformed(f"payload {name}: bad size {size!r}")
            if not isinstance(digest, str) or not re.fullmatch(r"[0-9a-f]{64}", digest):
                raise malformed(f"payload {name}: sha256 must be 64 lower-case hex digits")
            items.append(Payload(name, size, digest))
        if len({p.name for p in items}) != len(items):
            raise malformed("manifest names a payload twice")
        return cls(FORMAT_VERSION, version, tuple(hardware), created, min_version,
                   tuple(items))


def version_key(v: str) -> tuple[Any, ...]:
    """Order of firmware versions, as FORMAT.md defines it (semantic-version-like).

    Dot-separated parts compare numerically when numeric, text after numbers;
    trailing ".0" parts do not count (1.2 == 1.2.0); a "-pre" suffix sorts before the
    release (1.2.0-rc1 < 1.2.0); "+build" is ignored; a leading "v" is ignored.
    """
    text = v.strip()
    if text[:1] in ("v", "V") and text[1:2].isdigit():
        text = text[1:]
    text = text.partition("+")[0]
    release, dash, pre = text.partition("-")

    def parts(s: str) -> list[tuple[int, int, str]]:
        return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in s.split(".") if p]

    main = parts(release)
    while main and main[-1] == (0, 0, ""):
        main.pop()
    return (tuple(main), (0, tuple(parts(pre))) if dash else (1, ()))


def check_compatible(manifest: Manifest, hardware_id: str | None,
                     current_version: str | None) -> None:
    """Hardware and anti-rollback rules of FORMAT.md; None skips a check."""
    if hardware_id is not None and ANY_HARDWARE not in manifest.hardware \
            and hardware_id not in manifest.hardware:
        raise BundleError("Incompatible", f"bundle {manifest.firmware_version} is for "
                          f"hardware {', '.join(manifest.hardware)}, not {hardware_id}")
    if current_version is None:
        return
    if version_key(manifest.firmware_version) < version_key(current_version):
        raise BundleError("Downgrade", f"bundle {manifest.firmware_version} is older than "
                          f"the running {current_version} (anti-rollback)")
    if manifest.min_version is not None \
            and version_key(current_version) < version_key(manifest.min_version):
        raise BundleError("Downgrade", f"bundle {manifest.firmware_version} may replace "
                          f"{manifest.min_version} or later, this station runs "
                          f"{current_version}")


# -- building ---------------------------------------------------------------------------
def build(output: Path, *, version: str, payloads: Iterable[Path], key: Any,
          chain_pem: str, hardware: Iterable[str] = (ANY_HARDWARE,),
          min_version: str | None = None, created: datetime | None = None) -> Manifest:
    """Write a signed bundle to `output` (atomically); returns its manifest.

    `key` is a cryptography private key, `chain_pem` its certificate (leaf first, then
    intermediates). Raises BundleError("Malformed", ...) for bad input."""
    paths = [Path(p) for p in payloads]
    hardware = tuple(hardware) or (ANY_HARDWARE,)
    if not VERSION.fullmatch(version):
        raise malformed(f"version {version!r} is not a version (letters, digits, . - + _)")
    if min_version is not None:
        if not VERSION.fullmatch(min_version):
            raise malformed(f"min-version {min_version!r} is not a version")
        if version_key(min_version) > version_key(version):
            raise malformed(f"min-version {min_version} is above the version {version}")
    if not all(h and h.strip() == h for h in hardware):
        raise malformed("hardware ids must be non-empty, without surrounding spaces")
    names = [p.name for p in paths]
    for path, name in zip(paths, names, strict=True):
        if not path.is_file():
            raise malformed(f"{path}: no such payload file")
        if not NAME.fullmatch(name):
            raise malformed(f"{path}: payload file names are letters, digits and . _ + - "
                             "(at most 64)")
    if len(set(names)) != len(names):
        raise malformed("two payloads have the same file name")
    if not key_matches_certificate(key, chain_pem):
        raise malformed("the signing certificate does not match the signing key")
    items = []
    for path in paths:
        with open(path, "rb", buffering=0) as stream:
            digest, size = sha256_stream(stream)
        items.append(Payload(path.name, size, digest.hex()))
    stamp = (created or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    manifest = Manifest(FORMAT_VERSION, version, hardware,
                        stamp.strftime("%Y-%m-%dT%H:%M:%SZ"), min_version, tuple(items))
    manifest_bytes = manifest.to_bytes()
    signature = sign_digest(key, hashlib.sha256(manifest_bytes).digest())
    output = Path(output)
    part = output.with_name(output.name + ".part")
    mtime = int(stamp.timestamp())
    try:
        with open(part, "wb") as out:
            for name, data in ((MANIFEST, manifest_bytes), (SIGNATURE, signature),
                               (SIGNER, normalized_chain(chain_pem, "signing chain"))):
                write_header(out, name, len(data), mtime)
                out.write(data + padding(len(data)))
            for path, item in zip(paths, items, strict=True):
                write_header(out, PAYLOAD_DIR + item.name, item.size, mtime)
                with open(path, "rb", buffering=0) as stream:
                    digest, size = copy_hashed(stream, out, item.size)
                if (size, digest.hex()) != (item.size, item.sha256):
                    raise malformed(f"{path} changed while the bundle was built")
                out.write(padding(size))
            out.write(bytes(2 * BLOCK))
        os.replace(part, output)
    finally:
        part.unlink(missing_ok=True)
    return manifest


# -- reading ----------------------------------------------------------------------------
def _head(reader: Reader) -> tuple[bytes, bytes, str]:
    parts = []
    for expected in (MANIFEST, SIGNATURE, SIGNER):
        info = reader.next()
        if info is None:
            raise malformed(f"{expected} is missing (not a firmware bundle?)")
        parts.append(reader.small(info, expected, LIMITS[expected]))
    try:
        signer = parts[2].decode("ascii")
    except UnicodeDecodeError:
        raise BundleError("InvalidCertificate", "signer.pem is not PEM text") from None
    return parts[0], parts[1], signer


def _payloads(reader: Reader, manifest: Manifest, dest: Path | None) -> None:
    for expected in manifest.payloads:
        info = reader.next()
        if info is None:
            raise malformed(f"payload {expected.name} is missing")
        if info.name != PAYLOAD_DIR + expected.name:
            raise malformed(f"member {member_name(info)} where payload {expected.name} belongs")
        if info.size != expected.size:
            raise BundleError("HashMismatch", f"payload {expected.name} has {info.size} "
                              f"bytes, the manifest says {expected.size}")
        if dest is None:
            digest, _ = reader.payload(info, None)
        else:
            target = dest / expected.name
            part = target.with_name(target.name + ".part")
            try:
                with open(part, "wb") as out:
                    digest, _ = reader.payload(info, out)
                if digest.hex() == expected.sha256:
                    os.replace(part, target)
            finally:
                part.unlink(missing_ok=True)
        if digest.hex() != expected.sha256:
            raise BundleError("HashMismatch", f"payload {expected.name}: SHA-256 "
                              f"{digest.hex()[:16]}... does not match the manifest")
    extra = reader.next()
    if extra is not None:
        raise malformed(f"unexpected member {member_name(extra)} after the payloads")


def verify_bundle_details(path: Path, roots_pem: list[str], *, hardware_id: str | None,
                          current_version: str | None, production: bool,
                          now: datetime | None = None) -> tuple[Manifest, Signer]:
    """verify_bundle, also saying who signed it (for `bundle verify`)."""
    with open_bundle(path) as stream:
        reader = Reader(stream)
        manifest_bytes, signature, signer_pem = _head(reader)
        leaf, signer = verify_chain(signer_pem, roots_pem, production=production, now=now)
        verify_digest(leaf, signature, hashlib.sha256(manifest_bytes).digest())
        manifest = Manifest.from_bytes(manifest_bytes)
        check_compatible(manifest, hardware_id, current_version)
        _payloads(reader, manifest, None)
    return manifest, signer


def verify_bundle(path: Path, roots_pem: list[str], *, hardware_id: str | None,
                  current_version: str | None, production: bool,
                  now: datetime | None = None) -> Manifest:
    """The bundle's manifest once everything FORMAT.md asks has been checked, in one
    streaming pass: signer chain to one of `roots_pem` (plus the DEVELOPMENT ONLY root
    unless `production`), manifest signature, hardware, anti-rollback, every payload's
    size and SHA-256, nothing after the payloads. Raises BundleError (see KINDS)."""
    return verify_bundle_details(path, roots_pem, hardware_id=hardware_id,
                                 current_version=current_version, production=production,
                                 now=now)[0]


def verify_ocpp_signature(path: Path, signing_certificate_pem: str, signature_b64: str,
                          roots_pem: list[str], *, production: bool = False,
                          now: datetime | None = None) -> None:
    """UpdateFirmware's signingCertificate + signature over the exact file bytes.

    The certificate (optionally followed by intermediates) must chain to one of
    `roots_pem` (ManufacturerRootCertificate); the DEVELOPMENT ONLY root is trusted too
    unless `production`. The file is hashed streaming (SHA-256), then the signature
    (base64; ECDSA DER, RSA PKCS#1 v1.5 or PSS) is checked against the digest.
    Raises BundleError "InvalidCertificate", "DevelopmentSigned" or "InvalidSignature".
    """
    signature = decode_signature(signature_b64)
    leaf, _ = verify_chain(signing_certificate_pem, roots_pem, production=production,
                           now=now)
    try:
        digest = file_sha256(Path(path))
    except OSError as err:
        raise malformed(f"cannot read {path}: {err.strerror or err}") from None
    verify_digest(leaf, signature, digest)


def extract_payloads(path: Path, dest: Path, *, expected: Manifest | None = None) -> None:
    """Write each payload to dest/NAME, checking size and SHA-256 while writing.

    Call after verify_bundle and pass its manifest as `expected`: the bundle on disk
    must still carry exactly that manifest (nothing swapped in between)."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    with open_bundle(path) as stream:
        reader = Reader(stream)
        manifest = Manifest.from_bytes(_head(reader)[0])
        if expected is not None and manifest != expected:
            raise BundleError("HashMismatch", "the bundle changed after it was verified")
        _payloads(reader, manifest, dest)


@dataclass(frozen=True)
class Inspection:
    manifest: Manifest
    signer_subjects: tuple[str, ...]   # leaf first
    not_after: datetime                # of the leaf
    development: bool                  # signed under the DEVELOPMENT ONLY root
    size: int


def inspect(path: Path) -> Inspection:
    """What the bundle says about itself; nothing is verified."""
    from ..security import x509util

    with open_bundle(path) as stream:
        manifest_bytes, _, signer_pem = _head(Reader(stream))
    manifest = Manifest.from_bytes(manifest_bytes)
    chain = parse_chain(signer_pem, "signer.pem")
    dev_root = parse_chain(dev_root_pem(), "development root")[0]
    top = chain[-1]
    development = x509util.fingerprint(top) == x509util.fingerprint(dev_root) or (
        top.issuer == dev_root.subject and x509util.signed_by(top, dev_root))
    return Inspection(manifest, tuple(c.subject.rfc4514_string() for c in chain),
                      chain[0].not_valid_after_utc, development, Path(path).stat().st_size)

