"""A throw-away PKI for the TLS tests, made with `cryptography`: a test CA, a CSMS server
certificate for localhost / 127.0.0.1, and the station's client certificate signed from
the CSR the station's own key store makes (`evse-agent keys generate`)."""

from __future__ import annotations

import ipaddress
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass
class Issued:
    cert: x509.Certificate
    key: Any
    cert_file: Path
    key_file: Path


def _name(cn: str, org: str = "evse-agent tests") -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, cn),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
    ])


def _write(directory: Path, stem: str, cert: x509.Certificate, key: Any) -> Issued:
    directory.mkdir(parents=True, exist_ok=True)
    cert_file, key_file = directory / f"{stem}.pem", directory / f"{stem}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ))
    return Issued(cert, key, cert_file, key_file)


def make_ca(directory: Path, name: str = "Test CSMS Root") -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(name)).issuer_name(_name(name))
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    return _write(directory, name.replace(" ", "-").lower(), cert, key)


def cross_signed_root(directory: Path, old: Issued, name: str = "New CSMS Root") -> Issued:
    """A new CSMS root signed by the old one (M05.FR.10: AdditionalRootCertificateCheck)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(name)).issuer_name(old.cert.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
        .sign(old.key, hashes.SHA256())
    )
    return _write(directory, name.replace(" ", "-").lower(), cert, key)


def server_cert(
    directory: Path, ca: Issued, host: str = "localhost", expired: bool = False,
    stem: str = "server",
) -> Issued:
    """A CSMS certificate for `host` (DNS) and 127.0.0.1 (IP), signed by `ca`."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    start, end = ((now - timedelta(days=30), now - timedelta(days=1)) if expired
                  else (now - timedelta(days=1), now + timedelta(days=30)))
    names: list[x509.GeneralName] = [x509.DNSName(host)]
    if host == "localhost":
        names.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(host)).issuer_name(ca.cert.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(end)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca.key, hashes.SHA256())
    )
    return _write(directory, stem, cert, key)


def sign_csr(ca: Issued, csr_pem: bytes, days: int = 30) -> str:
    """The station's certificate from its CSR (subject as the station asked), as the
    CSMS's CA would issue it for TLS client authentication."""
    csr = x509.load_pem_x509_csr(csr_pem)
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(csr.subject).issuer_name(ca.cert.subject)
        .public_key(csr.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=days))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca.key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def keys_cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`evse-agent keys --config FILE ...` as an operator runs it on the bench."""
    return subprocess.run(
        [sys.executable, "-m", "evse_agent", "keys", "--config", str(config), *args],
        capture_output=True, text=True, timeout=30,
    )


def install_root(config: Path, ca: Issued, cli: bool = False) -> None:
    """The CSMS root into the station's store: with `evse-agent keys install-root`, or
    (faster) the same store API in this process."""
    if cli:
        done = keys_cli(config, "install-root", "CSMSRootCertificate", str(ca.cert_file))
        assert done.returncode == 0, done.stderr
        return
    from evse_agent.security import CertificateStore

    store = CertificateStore(config.parent / "data" / "certs")
    verdict = store.install_root("CSMSRootCertificate", ca.cert_file.read_text(),
                                 datetime.now(UTC), None)
    assert verdict.accepted, verdict.reason


def provision_station_certificate(config: Path, ca: Issued, work: Path,
                                  cli: bool = False) -> None:
    """Profile 3 on the bench: key + CSR on the station, signed by the CA, installed
    (CN = serial number = station id, O = the default OrganizationName)."""
    if cli:
        csr = work / "station.csr"
        done = keys_cli(config, "generate", "--out", str(csr))
        assert done.returncode == 0, done.stderr
        chain = work / "station-chain.pem"
        chain.write_text(sign_csr(ca, csr.read_bytes()))
        done = keys_cli(config, "install-cert", str(chain))
        assert done.returncode == 0, done.stderr
        return
    from evse_agent.security import CertificateStore, FileKeyStore

    data = config.parent / "data"
    keys = FileKeyStore(data / "keys", use_credential=False)
    keys.generate("ChargingStationCertificate")
    csr_pem = keys.csr("ChargingStationCertificate", "CS-E2E", "evse-agent")
    verdict = CertificateStore(data / "certs").accept_signed(
        "ChargingStationCertificate", sign_csr(ca, csr_pem.encode()), keys,
        datetime.now(UTC), common_name="CS-E2E", organization="evse-agent")
    assert verdict.accepted, verdict.reason


# -- CSMS and station helpers -------------------------------------------------------------
PASSWORD = "s3cret-Pa55word-0123"  # 20 characters: profiles 1 and 2


class Bench:
    """The CSMSs and stations of one test (stopped at teardown), with a test CA whose
    root the station trusts and a server certificate for localhost."""

    def __init__(self, tmp: Path) -> None:
        from e2e_support import FrameChecker  # noqa: F401 - imported for the type

        self.tmp = tmp
        self.ca = make_ca(tmp / "pki")
        self.server = server_cert(tmp / "pki", self.ca)
        self.csmss: list[Any] = []
        self.stations: list[Any] = []

    def server_context(self, issued: Issued | None = None, client_ca: bool = False) -> Any:
        from evse_agent.csms.tls import server_ssl_context

        issued = issued or self.server
        ctx = server_ssl_context(issued.cert_file, issued.key_file,
                                 self.ca.cert_file if client_ca else None)
        return ctx

    async def csms(self, ssl: Any = None, port: int = 0, password: str | None = None,
                   version: str = "2.0.1") -> Any:
        from e2e_support import FrameChecker

        from evse_agent.csms import DevCsms

        server = DevCsms()
        server.basic_auth_password = password
        checker = FrameChecker(version)
        server.on_frame.append(checker)
        await server.start("127.0.0.1", port, api_port=0, ssl=ssl)
        server.checker = checker  # type: ignore[attr-defined]
        self.csmss.append(server)
        return server

    def station(self, url: str, **ocpp: Any) -> Any:
        from e2e_support import Station

        settings = ocpp.pop("settings", None)
        version = ocpp.pop("version", None)
        st = Station(self.tmp, 0, settings, version=version, ocpp={"csms_url": url, **ocpp})
        self.stations.append(st)
        return st

    async def close(self) -> None:
        for st in self.stations:
            if st.proc is not None and st.proc.poll() is None:
                await st.terminate()
        for server in self.csmss:
            await server.stop()
        for server in self.csmss:
            assert server.checker.problems == [], server.checker.problems
        for st in self.stations:
            assert "Traceback" not in st.output(), st.output()[-3000:]


async def wait_output(station: Any, text: str, timeout: float = 20, count: int = 1) -> str:
    """Wait until the station's log holds `text` (`count` times)."""
    import asyncio

    for _ in range(int(timeout * 10)):
        out = station.output()
        if out.count(text) >= count:
            return out
        await asyncio.sleep(0.1)
    raise AssertionError(f"{text!r} not in the station's log:\n{station.output()[-3000:]}")


def security_log(station: Any) -> list[tuple[str, str | None]]:
    """(type, techInfo) of every entry in the station's security log (SQLite)."""
    import sqlite3

    db = sqlite3.connect(station.tmp / "data" / "evse-agent.db")
    try:
        return [(t, i) for t, i in db.execute("SELECT type, tech_info FROM security_log")]
    finally:
        db.close()
