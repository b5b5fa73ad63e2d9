"""`evse-agent keys --config FILE <command>`: key and certificate provisioning on the
bench, against the same data_dir the station uses.

    generate [--out FILE] [--rsa] [--use USE]   new key pair + CSR (CN = serial number,
                                                O = SecurityCtrlr.OrganizationName)
    install-root TYPE FILE                      a CA certificate (CSMSRootCertificate, ...)
    install-cert FILE [--use USE]               our signed chain, checked as CertificateSigned
    show                                        what is installed and when it expires

Exit codes: 0 done, 1 refused (bad certificate, key mismatch, ...), 2 usage, config or
file errors. Every error is one line on stderr; key material is never printed.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

from .. import __version__
from ..config import Config, ConfigError, load
from ..device_model.model import DeviceModel
from ..storage import Storage
from .certificates import ROOT_TYPES, STATION_USES, CertificateStore
from .keystore import FileKeyStore, KeyStoreError, pending, write_atomically

PROG = "evse-agent keys"
V16_ROOT_NAMES = {"CentralSystemRootCertificate": "CSMSRootCertificate"}


class Failure(Exception):
    """One line for stderr, and the exit code."""

    def __init__(self, text: str, code: int = 1) -> None:
        super().__init__(text)
        self.code = code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, type=Path, help="the station's TOML file")
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="new key pair and a CSR for it")
    gen.add_argument("--out", type=Path, help="write the CSR here (default: print it)")
    gen.add_argument("--rsa", action="store_true", help="RSA 3072 instead of EC P-256")
    gen.add_argument("--use", choices=STATION_USES, default=STATION_USES[0])
    root = sub.add_parser("install-root", help="install a CA certificate")
    root.add_argument("type", choices=[*ROOT_TYPES, *V16_ROOT_NAMES])
    root.add_argument("file", type=Path)
    cert = sub.add_parser("install-cert", help="install our signed certificate chain")
    cert.add_argument("file", type=Path)
    cert.add_argument("--use", choices=STATION_USES, default=STATION_USES[0])
    sub.add_parser("show", help="what is installed, and when it expires")
    return parser


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)  # usage errors: argparse exits 2
    try:
        cfg = load(args.config)
        return COMMANDS[args.command](args, cfg)
    except ConfigError as err:
        print(f"{PROG}: {err}", file=sys.stderr)
        return 2
    except KeyStoreError as err:
        print(f"{PROG}: {err}", file=sys.stderr)
        return 2
    except Failure as err:
        print(f"{PROG}: {err}", file=sys.stderr)
        return err.code


def _stores(cfg: Config, key_type: str = "ec") -> tuple[FileKeyStore, CertificateStore]:
    return (FileKeyStore(cfg.data_dir / "keys", key_type=key_type),
            CertificateStore(cfg.data_dir / "certs"))


def _device_model(cfg: Config) -> DeviceModel:
    """The station's device model as the agent sees it (TOML, then the CSMS's values)."""
    from ..device_model.setup import build_device_model

    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    storage = Storage(cfg.data_dir / "evse-agent.db")
    try:
        return build_device_model(cfg, storage, __version__, lambda: "")
    finally:
        storage.close()


def _subject(cfg: Config, use: str) -> tuple[str, str]:
    from ..ocpp.certificate_service import certificate_subject

    return certificate_subject(_device_model(cfg), cfg.serial_number[:25], use)


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        raise Failure(f"{path}: no such file", 2) from None
    except (OSError, UnicodeDecodeError) as err:
        raise Failure(f"{path}: cannot read: {getattr(err, 'strerror', None) or err}", 2) from None


# -- commands ---------------------------------------------------------------------------
def _generate(args: argparse.Namespace, cfg: Config) -> int:
    keys, _ = _stores(cfg, "rsa" if args.rsa else "ec")
    # A key with a certificate stays in use until the new certificate is installed.
    name = pending(args.use) if keys.has_key(args.use) else args.use
    common_name, organization = _subject(cfg, args.use)
    if not organization:
        raise Failure("SecurityCtrlr.OrganizationName is empty: set it in the config", 2)
    keys.generate(name)
    csr = keys.csr(name, common_name, organization)
    if args.out:
        try:
            write_atomically(args.out, csr.encode(), 0o644)
        except OSError as err:
            raise Failure(f"{args.out}: cannot write: {err.strerror}", 2) from None
        print(f"CSR for {args.use} (CN={common_name}, O={organization}) written to {args.out}")
    else:
        print(csr, end="")
    return 0


def _install_root(args: argparse.Namespace, cfg: Config) -> int:
    from ..device_model.model import VariableKey

    certificate_type = V16_ROOT_NAMES.get(args.type, args.type)
    _, certs = _stores(cfg)
    dm = _device_model(cfg)
    var = dm.find(VariableKey("SecurityCtrlr", "CertificateEntries"))
    capacity = int(var.max_limit) if var is not None and var.max_limit else None
    verdict = certs.install_root(
        certificate_type, _read(args.file), datetime.now(UTC), capacity,
        bool(dm.get("SecurityCtrlr", "AdditionalRootCertificateCheck")),
    )
    if not verdict.accepted:
        raise Failure(f"{args.file}: not installed: {verdict.reason}")
    print(f"installed {args.file} as {certificate_type}")
    return 0


def _install_cert(args: argparse.Namespace, cfg: Config) -> int:
    keys, certs = _stores(cfg)
    if not (keys.has_key(args.use) or keys.has_key(pending(args.use))):
        raise Failure(f"{keys.path(args.use)}: no key: run `{PROG} generate` first", 2)
    common_name, organization = _subject(cfg, args.use)
    dm = _device_model(cfg)
    verdict = certs.accept_signed(
        args.use, _read(args.file), keys, datetime.now(UTC),
        common_name=common_name, organization=organization or None,
        max_chain_size=int(dm.get("SecurityCtrlr", "MaxCertificateChainSize") or 0),
    )
    if not verdict.accepted:
        raise Failure(f"{args.file}: not installed: {verdict.reason}")
    print(f"installed {args.file} as {args.use}")
    return 0


def _show(args: argparse.Namespace, cfg: Config) -> int:
    from . import x509util

    keys, certs = _stores(cfg)
    now = datetime.now(UTC)
    for use in STATION_USES:
        for name, label in ((use, "key"), (pending(use), "pending key")):
            if keys.has_key(name):
                state = "encrypted" if keys.encrypted(name) else "NOT encrypted"
                print(f"{use} {label}: present, {state} ({keys.path(name)})")
        if not keys.has_key(use):
            print(f"{use} key: none")
        chain = certs.station_chain(use)
        if chain:
            _line(use, x509util.summary(chain[0]), now)
    for certificate_type in ROOT_TYPES:
        for root in certs.roots(certificate_type):
            _line(certificate_type, x509util.summary(root), now)
    print(f"certificates installed: {certs.count()}")
    return 0


def _line(kind: str, s: object, now: datetime) -> None:
    from .x509util import Summary

    assert isinstance(s, Summary)
    left = s.days_left(now)
    state = f"{left} days left" if left >= 0 else f"EXPIRED {-left} days ago"
    print(f"{kind}: subject {s.subject}; issuer {s.issuer}; notAfter "
          f"{s.not_after:%Y-%m-%d %H:%M}Z ({state})")


COMMANDS = {
    "generate": _generate,
    "install-root": _install_root,
    "install-cert": _install_cert,
    "show": _show,
}
