"""`evse-agent bundle <command>`: build, verify, inspect and OCPP-sign firmware bundles.

    build --version V --output FILE [--payload PATH ...] [--hardware ID ...]
          [--min-version V] [--signing-key KEY --signing-cert CERT]
    verify FILE [--root CERT ...] [--production] [--hardware ID] [--current-version V]
    inspect FILE [--json]
    sign-ocpp FILE [--key KEY] [--cert CERT] [--pss]

Without a signing key, build and sign-ocpp use the DEVELOPMENT ONLY material of
firmware-bundle/dev and say so on stderr. Exit codes: 0 done, 1 the bundle or signature
is refused, 2 usage or input errors (missing file, wrong key, certificate/key mismatch).
Every error is one line on stderr.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .errors import BundleError

PROG = "evse-agent bundle"
DEV_WARNING = ("WARNING: signing with the DEVELOPMENT ONLY key of firmware-bundle/dev; "
               "stations with [firmware] production = true refuse it")


class Failure(Exception):
    def __init__(self, text: str, code: int = 2) -> None:
        super().__init__(text)
        self.code = code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="a signed firmware bundle")
    build.add_argument("--version", required=True, help="firmware version of the bundle")
    build.add_argument("--output", required=True, type=Path, help="bundle file to write")
    build.add_argument("--payload", action="append", type=Path, default=[],
                       help="a payload file (repeatable, kept in this order)")
    build.add_argument("--hardware", action="append", default=[],
                       help="a compatible hardware/model id (repeatable; default: any)")
    build.add_argument("--min-version", help="oldest running version it may replace")
    build.add_argument("--signing-key", type=Path, help="PEM private key (EC or RSA)")
    build.add_argument("--signing-cert", type=Path,
                       help="PEM firmware-signing certificate, then its intermediates")
    verify = sub.add_parser("verify", help="verify a bundle as a station would")
    verify.add_argument("file", type=Path)
    verify.add_argument("--root", action="append", type=Path, default=[],
                        help="a ManufacturerRootCertificate PEM (repeatable)")
    verify.add_argument("--production", action="store_true",
                        help="refuse bundles signed with the DEVELOPMENT ONLY key")
    verify.add_argument("--hardware", help="this station's hardware id")
    verify.add_argument("--current-version", help="the running firmware version")
    inspect = sub.add_parser("inspect", help="print the manifest and signer (no checks)")
    inspect.add_argument("file", type=Path)
    inspect.add_argument("--json", action="store_true", help="the manifest as JSON")
    sign = sub.add_parser("sign-ocpp", help="the base64 signature for UpdateFirmware")
    sign.add_argument("file", type=Path)
    sign.add_argument("--key", type=Path, help="PEM private key (default: DEVELOPMENT ONLY)")
    sign.add_argument("--cert", type=Path, help="check that the key matches this certificate")
    sign.add_argument("--pss", action="store_true", help="RSA-PSS instead of PKCS#1 v1.5")
    return parser


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)  # usage errors: argparse exits 2
    try:
        return COMMANDS[args.command](args)
    except BundleError as err:
        print(f"{PROG}: {err.kind}: {err}", file=sys.stderr)
        return 1
    except Failure as err:
        print(f"{PROG}: {err}", file=sys.stderr)
        return err.code


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        raise Failure(f"{what} {path}: {err.strerror or err}") from None


def _key(path: Path) -> Any:
    from .signatures import load_private_key

    try:
        return load_private_key(_read(path, "key"), str(path))
    except BundleError as err:
        raise Failure(str(err)) from None


def _certificate(path: Path) -> str:
    from .signatures import parse_chain

    text = _read(path, "certificate").decode("ascii", "replace")
    try:
        parse_chain(text, str(path))
    except BundleError as err:
        raise Failure(str(err)) from None
    return text


def _signing_material(key_path: Path | None,
                      cert_path: Path | None) -> tuple[Any, str, Path]:
    from . import signatures

    if (key_path is None) != (cert_path is None):
        raise Failure("--signing-key and --signing-cert go together")
    if key_path is None or cert_path is None:
        print(DEV_WARNING, file=sys.stderr)
        key_path = signatures.dev_path(signatures.DEV_SIGNING_KEY)
        cert_path = signatures.dev_path(signatures.DEV_SIGNING_CERT)
    key, chain = _key(key_path), _certificate(cert_path)
    if not signatures.key_matches_certificate(key, chain):
        raise Failure(f"{cert_path} does not match the key {key_path} (wrong key?)")
    return key, chain, cert_path


def _build(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from . import bundle, signatures

    for payload in args.payload:
        if not payload.is_file():
            raise Failure(f"payload {payload}: no such file")
    key, chain, cert_path = _signing_material(args.signing_key, args.signing_cert)
    leaf = signatures.parse_chain(chain, str(cert_path))[0]
    if leaf.not_valid_after_utc < datetime.now(UTC):
        raise Failure(f"{cert_path}: the signing certificate expired on "
                      f"{leaf.not_valid_after_utc:%Y-%m-%d}")
    try:
        manifest = bundle.build(args.output, version=args.version, payloads=args.payload,
                                key=key, chain_pem=chain, hardware=args.hardware,
                                min_version=args.min_version)
    except BundleError as err:
        raise Failure(str(err)) from None
    except OSError as err:
        raise Failure(f"cannot write {args.output}: {err.strerror or err}") from None
    size = sum(p.size for p in manifest.payloads)
    print(f"{args.output}: firmware {manifest.firmware_version} for "
          f"{', '.join(manifest.hardware)}, {len(manifest.payloads)} payload(s), "
          f"{size} bytes")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from . import bundle

    roots = [_certificate(path) for path in args.root]
    if not args.file.is_file():
        raise Failure(f"{args.file}: no such file")
    manifest, signer = bundle.verify_bundle_details(
        args.file, roots, hardware_id=args.hardware, current_version=args.current_version,
        production=args.production)
    development = " (DEVELOPMENT ONLY signature)" if signer.development else ""
    print(f"{args.file}: OK, firmware {manifest.firmware_version}, signed by "
          f"{signer.subject} under {signer.anchor}{development}")
    return 0


def _inspect(args: argparse.Namespace) -> int:
    from . import bundle

    if not args.file.is_file():
        raise Failure(f"{args.file}: no such file")
    seen = bundle.inspect(args.file)
    manifest = seen.manifest
    if args.json:
        print(json.dumps(asdict(manifest), indent=2))
        return 0
    lines = [
        f"file:             {args.file} ({seen.size} bytes)",
        f"format:           {manifest.format_version}",
        f"firmware version: {manifest.firmware_version}",
        f"hardware:         {', '.join(manifest.hardware)}",
        f"min version:      {manifest.min_version or '-'}",
        f"created:          {manifest.created}",
        f"signer:           {seen.signer_subjects[0]} (until {seen.not_after:%Y-%m-%d})",
        *(f"  issued via:     {subject}" for subject in seen.signer_subjects[1:]),
        *(["                  DEVELOPMENT ONLY signature"] if seen.development else []),
        "payloads:",
        *(f"  {p.name}  {p.size} bytes  sha256 {p.sha256}" for p in manifest.payloads),
        "(nothing verified: use `evse-agent bundle verify`)",
    ]
    print("\n".join(lines))
    return 0


def _sign_ocpp(args: argparse.Namespace) -> int:
    from cryptography.hazmat.primitives.asymmetric import rsa

    from . import signatures

    if args.key is None:
        print(DEV_WARNING, file=sys.stderr)
        args.key = signatures.dev_path(signatures.DEV_SIGNING_KEY)
        args.cert = args.cert or signatures.dev_path(signatures.DEV_SIGNING_CERT)
    key = _key(args.key)
    if args.cert is not None and not signatures.key_matches_certificate(
            key, _certificate(args.cert)):
        raise Failure(f"{args.cert} does not match the key {args.key} (wrong key?)")
    if args.pss and not isinstance(key, rsa.RSAPrivateKey):
        raise Failure(f"--pss needs an RSA key; {args.key} is not one")
    try:
        digest = signatures.file_sha256(args.file)
    except OSError as err:
        raise Failure(f"{args.file}: {err.strerror or err}") from None
    signature = signatures.sign_digest(key, digest, pss=args.pss)
    print(base64.b64encode(signature).decode("ascii"))
    return 0


COMMANDS = {"build": _build, "verify": _verify, "inspect": _inspect,
            "sign-ocpp": _sign_ocpp}
