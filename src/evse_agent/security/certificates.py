"""The station's certificate store under `data_dir/certs/` (2.0.1 A02/A03, M03-M05;
1.6 security whitepaper, the same use cases).

    certs/<CertificateType>/<sha256 fingerprint>.pem   installed roots (InstallCertificate)
    certs/ChargingStationCertificate.pem               our chain: leaf, then sub-CAs
    certs/ChargingStationCertificate.previous.pem      the one it replaced (fallback)
    certs/V2GCertificate.pem                           ISO 15118 SECC chain

One store for both OCPP versions: 1.6's CentralSystemRootCertificate is the 2.0.1
CSMSRootCertificate directory. Files are written atomically; nothing here holds a
private key (security/keystore.py does). `cryptography` is imported on first use.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .keystore import KeyStore, pending, write_atomically

if TYPE_CHECKING:
    from cryptography import x509

log = logging.getLogger("evse_agent.security")

ROOT_TYPES = (
    "CSMSRootCertificate",
    "ManufacturerRootCertificate",
    "V2GRootCertificate",
    "MORootCertificate",
)
STATION_USES = ("ChargingStationCertificate", "V2GCertificate")
# 1.6 whitepaper names -> the store's (2.0.1) names
V16_TYPES = {
    "CentralSystemRootCertificate": "CSMSRootCertificate",
    "ManufacturerRootCertificate": "ManufacturerRootCertificate",
    "ChargePointCertificate": "ChargingStationCertificate",
}
# The hierarchy a signed station certificate must chain up to (A02.FR.06).
TRUST_FOR_USE = {
    "ChargingStationCertificate": "CSMSRootCertificate",
    "V2GCertificate": "V2GRootCertificate",
}


@dataclass(frozen=True)
class Verdict:
    """The answer to an install or a CertificateSigned, and why (for the log)."""

    status: str  # Accepted, Rejected, Failed
    reason: str = ""
    code: str = "InvalidCertificate"  # statusInfo.reasonCode (2.0.1 appendix reason codes)

    @property
    def accepted(self) -> bool:
        return self.status == "Accepted"


class CertificateStore:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    # -- reading ------------------------------------------------------------------------
    def trusted_pem(self, certificate_type: str) -> str:
        """Concatenated PEM of the installed roots of that type; "" when none."""
        return "".join(p.read_text() for p in self._root_files(certificate_type))

    def station_chain_pem(self, use: str = "ChargingStationCertificate") -> str | None:
        path = self._chain_path(use)
        return path.read_text() if path.is_file() else None

    def previous_chain_pem(self, use: str = "ChargingStationCertificate") -> str | None:
        path = self._chain_path(use, previous=True)
        return path.read_text() if path.is_file() else None

    def discard_previous(self, use: str = "ChargingStationCertificate") -> None:
        """The new certificate works (A02.FR.10, errata 2025-01): the old one goes."""
        self._chain_path(use, previous=True).unlink(missing_ok=True)

    def count(self) -> int:
        """CertificateEntries: the roots plus our own certificates."""
        roots = sum(len(list(self._root_files(t))) for t in ROOT_TYPES)
        return roots + sum(1 for use in STATION_USES if self._chain_path(use).is_file())

    def roots(self, certificate_type: str) -> list[x509.Certificate]:
        from . import x509util

        out = []
        for path in self._root_files(certificate_type):
            try:
                out += x509util.parse_chain(path.read_text())[:1]
            except x509util.CertificateError:
                log.error("%s: unreadable certificate ignored", path)
        return out

    def station_chain(self, use: str = "ChargingStationCertificate") -> list[x509.Certificate]:
        from . import x509util

        pem = self.station_chain_pem(use)
        return x509util.parse_chain(pem) if pem else []

    def installed(self, types: list[str] | None = None) -> list[dict[str, Any]]:
        """CertificateHashDataChainType entries (GetInstalledCertificateIds, M03): each
        root of the asked types; "V2GCertificateChain": our V2G leaf with its sub-CAs as
        childCertificateHashData (M03.FR.05). No types: all of them."""
        wanted = types or [*ROOT_TYPES, "V2GCertificateChain"]
        out: list[dict[str, Any]] = []
        for certificate_type in wanted:
            if certificate_type in ROOT_TYPES:
                for root in self.roots(certificate_type):
                    out.append({
                        "certificateType": certificate_type,
                        "certificateHashData": self.hash_data(root),
                    })
            elif certificate_type == "V2GCertificateChain":
                chain = self.station_chain("V2GCertificate")
                if chain:
                    entry: dict[str, Any] = {
                        "certificateType": certificate_type,
                        "certificateHashData": self.hash_data(chain[0], chain[1:]),
                    }
                    children = [self.hash_data(c, chain[i + 2:]) for i, c in enumerate(chain[1:])]
                    if children:
                        entry["childCertificateHashData"] = children
                    out.append(entry)
        return out

    def hash_data(
        self, certificate: x509.Certificate, candidates: list[x509.Certificate] | None = None
    ) -> dict[str, str]:
        """Hash data of `certificate`, its issuer found among `candidates`, the installed
        roots, or itself when self-signed."""
        from . import x509util

        issuer = self._issuer_of(certificate, candidates or [])
        return x509util.hash_data(certificate, issuer if issuer is not None else certificate)

    # -- InstallCertificate (M05) --------------------------------------------------------
    def install_root(
        self,
        certificate_type: str,
        pem: str,
        now: datetime,
        max_entries: int | None,
        additional_root_check: bool = False,
    ) -> Verdict:
        from . import x509util

        if certificate_type not in ROOT_TYPES:
            return Verdict("Rejected", f"unknown certificate type {certificate_type}")
        try:
            chain = x509util.parse_chain(pem)
        except x509util.CertificateError as err:
            return Verdict("Rejected", str(err))  # M05.FR.07
        if len(chain) != 1:
            return Verdict("Rejected", "one certificate expected, got a chain")
        certificate = chain[0]
        if not x509util.is_ca(certificate):
            return Verdict("Rejected", "not a CA certificate (basicConstraints CA false)")
        if not x509util.valid_at(certificate, now):
            return Verdict("Rejected", "outside its validity period")
        path = self._root_path(certificate_type, x509util.fingerprint(certificate))
        replacing = path.is_file()  # M05.FR.17: the same certificate again replaces it
        old: list[Path] = []
        if additional_root_check and certificate_type == "CSMSRootCertificate" and not replacing:
            current = [(p, x509util.parse_chain(p.read_text())[0])
                       for p in self._root_files(certificate_type)]
            if current and not any(x509util.signed_by(certificate, c) for _, c in current):
                return Verdict("Rejected", "not signed by the CSMS root it replaces (M05.FR.11)")
            old = [p for p, _ in current]
        if not replacing and max_entries and self.count() >= max_entries:
            return Verdict("Rejected", f"certificate store full ({max_entries})",
                           "TooManyElements")  # M05.FR.06
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(path, x509util.to_pem(certificate).encode(), 0o644)
            # M05.FR.12: the replaced root stays as fallback until a connection with the
            # new one succeeds (discard_fallback_roots).
            for p in old:
                os.replace(p, p.with_suffix(".fallback"))
        except OSError as err:
            return Verdict("Failed", f"cannot store: {err.strerror}")  # M05.FR.03
        log.info("installed %s %s", certificate_type, certificate.subject.rfc4514_string())
        return Verdict("Accepted")

    def fallback_pem(self, certificate_type: str = "CSMSRootCertificate") -> str:
        folder = self.directory / certificate_type
        return "".join(p.read_text() for p in sorted(folder.glob("*.fallback")))

    def discard_fallback_roots(self, certificate_type: str = "CSMSRootCertificate") -> None:
        """M05.FR.13: connected with the new root: the old one goes."""
        for p in (self.directory / certificate_type).glob("*.fallback"):
            p.unlink(missing_ok=True)

    # -- DeleteCertificate (M04) --------------------------------------------------------
    def delete(self, hash_data: dict[str, Any], csms_root_in_use: bool = True) -> Verdict:
        """`csms_root_in_use`: the CSMS roots verify the connection (profile 2 or 3),
        so the last one is never deleted (1.6 M04.FR.06; 2.0.1 M04.FR.03 note). Over
        profile 0/1 nothing uses them and TC_M_20_CS deletes the only one."""
        from . import x509util

        for use in STATION_USES:
            chain = self.station_chain(use)
            if chain and x509util.same_hash(self.hash_data(chain[0], chain[1:]), hash_data):
                if use == "ChargingStationCertificate":
                    return Verdict("Failed", "the station certificate is not deletable (M04.FR.06)")
                self._chain_path(use).unlink()
                return Verdict("Accepted")
        for certificate_type in ROOT_TYPES:
            files = self._root_files(certificate_type)
            for path in files:
                root = x509util.parse_chain(path.read_text())[0]
                if not x509util.same_hash(self.hash_data(root), hash_data):
                    continue
                last = certificate_type == "CSMSRootCertificate" and len(files) == 1
                if last and csms_root_in_use:
                    # M04.FR.03 note (2.0.1), M04.FR.06 (1.6): never lock the station out.
                    return Verdict("Failed", "the last CSMS root certificate is in use")
                try:
                    path.unlink()
                except OSError as err:
                    return Verdict("Failed", f"cannot delete: {err.strerror}")
                log.info("deleted %s %s", certificate_type, root.subject.rfc4514_string())
                return Verdict("Accepted")
        return Verdict("NotFound")

    # -- CertificateSigned (A02/A03) ----------------------------------------------------
    def accept_signed(
        self,
        use: str,
        chain_pem: str,
        keys: KeyStore,
        now: datetime,
        *,
        common_name: str | None,
        organization: str | None,
        max_chain_size: int = 0,
    ) -> Verdict:
        """Check a signed chain for our key (A02.FR.06, A02.FR.16); store it on success,
        the chain it replaces kept as the previous one, and make its key current."""
        verdict, key_name = self.check_signed(
            use, chain_pem, keys, now, common_name=common_name, organization=organization,
            max_chain_size=max_chain_size,
        )
        if not verdict.accepted:
            return verdict
        from . import x509util

        chain = x509util.parse_chain(chain_pem)
        path = self._chain_path(use)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            if path.is_file() and key_name != use:
                os.replace(path, self._chain_path(use, previous=True))
            write_atomically(path, "".join(x509util.to_pem(c) for c in chain).encode(), 0o644)
            if key_name != use:
                keys.promote(use)
        except OSError as err:
            return Verdict("Rejected", f"cannot store: {err.strerror}")
        log.info("new %s %s valid until %s", use, chain[0].subject.rfc4514_string(),
                 chain[0].not_valid_after_utc.isoformat())
        return verdict

    def check_signed(
        self,
        use: str,
        chain_pem: str,
        keys: KeyStore,
        now: datetime,
        *,
        common_name: str | None,
        organization: str | None,
        max_chain_size: int = 0,
    ) -> tuple[Verdict, str]:
        """(verdict, name of the key the leaf carries)."""
        from . import x509util

        def no(reason: str) -> tuple[Verdict, str]:
            return Verdict("Rejected", reason), ""

        if use not in STATION_USES:
            return no(f"unknown certificate use {use}")
        if max_chain_size and len(chain_pem) > max_chain_size:
            return Verdict("Rejected", f"chain of {len(chain_pem)} characters exceeds "
                           f"MaxCertificateChainSize {max_chain_size}", "TooLargeElement"), ""
        try:
            chain = x509util.parse_chain(chain_pem)
        except x509util.CertificateError as err:
            return no(str(err))
        leaf = chain[0]
        for certificate in chain:
            if not x509util.valid_at(certificate, now):
                return no(f"{certificate.subject.rfc4514_string()} is outside its validity"
                          " period")
        if x509util.is_ca(leaf):
            return no("the leaf is a CA certificate")
        for child, parent in zip(chain, chain[1:], strict=False):
            if not x509util.signed_by(child, parent):
                return no(f"{child.subject.rfc4514_string()} is not signed by the next"
                          " certificate of the chain")
        roots = [r for r in self.roots(TRUST_FOR_USE[use]) if x509util.valid_at(r, now)]
        top = chain[-1]
        if not any(x509util.fingerprint(r) == x509util.fingerprint(top)
                   or x509util.signed_by(top, r) for r in roots):
            return no(f"not issued under an installed {TRUST_FOR_USE[use]}")
        if common_name is not None and x509util.common_name(leaf) != common_name:
            return no(f"CN {x509util.common_name(leaf)!r} is not the serial number"
                      f" {common_name!r} (A00.FR.511)")
        if organization is not None and x509util.organization(leaf) != organization:
            return no(f"O {x509util.organization(leaf)!r} is not {organization!r} (A00.FR.509)")
        leaf_pem = x509util.to_pem(leaf)
        for name in (pending(use), use):
            if keys.has_key(name) and keys.public_key_matches(name, leaf_pem):
                return Verdict("Accepted"), name
        return no("the certificate does not carry this station's public key")

    # -- paths ----------------------------------------------------------------------------
    def _root_files(self, certificate_type: str) -> list[Path]:
        folder = self.directory / certificate_type
        return sorted(folder.glob("*.pem")) if folder.is_dir() else []

    def _root_path(self, certificate_type: str, fingerprint: str) -> Path:
        return self.directory / certificate_type / f"{fingerprint}.pem"

    def _chain_path(self, use: str, previous: bool = False) -> Path:
        return self.directory / (f"{use}.previous.pem" if previous else f"{use}.pem")

    def _all_certificates(self) -> Iterator[x509.Certificate]:
        for certificate_type in ROOT_TYPES:
            yield from self.roots(certificate_type)

    def _issuer_of(
        self, certificate: x509.Certificate, candidates: list[x509.Certificate]
    ) -> x509.Certificate | None:
        from . import x509util

        for issuer in (*candidates, *self._all_certificates()):
            if issuer.subject == certificate.issuer and x509util.signed_by(certificate, issuer):
                return issuer
        return None
