"""`evse-agent keys`: generate, install-root, install-cert, show; one-line errors and
exit codes (0 done, 1 refused, 2 usage / config / file)."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from pki import NOW, Ca, csr_public_key, key, pem

from evse_agent.security.cli import main

SERIAL = "SN-0042"


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    path = tmp_path / "station.toml"
    path.write_text(f"""
[station]
id = "CS-1"
serial_number = "{SERIAL}"
data_dir = "data"

[ocpp]
csms_url = "ws://127.0.0.1:9/ocpp"

[device_model.SecurityCtrlr]
OrganizationName = "Example CPO"
""")
    return path


def run(config: Path, *args: str) -> int:
    return main(["--config", str(config), *args])


def test_generate_install_and_show(config: Path, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert run(config, "generate", "--out", str(tmp_path / "csr.pem")) == 0
    csr = x509.load_pem_x509_csr((tmp_path / "csr.pem").read_bytes())
    assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == SERIAL
    assert csr.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == (
        "Example CPO"
    )
    ca = Ca("Bench Root")
    (tmp_path / "root.pem").write_text(ca.pem)
    (tmp_path / "chain.pem").write_text(pem(ca.issue(csr.public_key(), cn=SERIAL,
                                                     o="Example CPO")))
    assert run(config, "install-root", "CSMSRootCertificate", str(tmp_path / "root.pem")) == 0
    assert run(config, "install-cert", str(tmp_path / "chain.pem")) == 0
    capsys.readouterr()
    assert run(config, "show") == 0
    out = capsys.readouterr().out
    assert "ChargingStationCertificate key: present, NOT encrypted" in out
    assert f"CN={SERIAL}" in out and "days left" in out
    assert "CSMSRootCertificate: subject O=evse-agent,CN=Bench Root" in out
    assert "certificates installed: 2" in out
    assert "PRIVATE KEY" not in out
    key_body = (tmp_path / "data/keys/ChargingStationCertificate.key.pem").read_text()
    assert key_body.splitlines()[1] not in out

    # A second generate keeps the certified key in use: the new one is pending.
    assert run(config, "generate") == 0
    printed = capsys.readouterr().out
    assert printed.startswith("-----BEGIN CERTIFICATE REQUEST-----")
    assert (tmp_path / "data/keys/ChargingStationCertificate.pending.key.pem").is_file()
    renewed = ca.issue(x509.load_pem_x509_csr(printed.encode()).public_key(), cn=SERIAL,
                       o="Example CPO")
    (tmp_path / "renewed.pem").write_text(pem(renewed))
    assert run(config, "install-cert", str(tmp_path / "renewed.pem")) == 0
    assert not (tmp_path / "data/keys/ChargingStationCertificate.pending.key.pem").exists()


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("install-root", "CSMSRootCertificate", "missing.pem"), 2, "missing.pem: no such file"),
        (("install-root", "CSMSRootCertificate", "bad.pem"), 1, "no PEM certificate found"),
        (("install-root", "CSMSRootCertificate", "leaf.pem"), 1, "not a CA certificate"),
        (("install-root", "CSMSRootCertificate", "expired.pem"), 1, "validity period"),
        (("install-cert", "mismatch.pem"), 1, "does not carry this station's public key"),
        (("install-cert", "foreign.pem"), 1, "not issued under an installed"),
        (("install-cert", "bad.pem"), 1, "no PEM certificate found"),
    ],
)
def test_errors_are_one_line_with_an_exit_code(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    args: tuple[str, ...], code: int, message: str,
) -> None:
    assert run(config, "generate", "--out", str(tmp_path / "csr.pem")) == 0
    ours = csr_public_key((tmp_path / "csr.pem").read_text())
    ca = Ca()
    (tmp_path / "root.pem").write_text(ca.pem)
    assert run(config, "install-root", "CSMSRootCertificate", str(tmp_path / "root.pem")) == 0
    (tmp_path / "bad.pem").write_text("not a certificate\n")
    (tmp_path / "leaf.pem").write_text(pem(ca.issue(ours)))
    (tmp_path / "expired.pem").write_text(Ca(not_before=NOW - timedelta(days=9),
                                             not_after=NOW - timedelta(days=1)).pem)
    (tmp_path / "mismatch.pem").write_text(pem(ca.issue(key().public_key(), cn=SERIAL,
                                                        o="Example CPO")))
    (tmp_path / "foreign.pem").write_text(pem(Ca().issue(ours, cn=SERIAL, o="Example CPO")))
    capsys.readouterr()
    args = tuple(str(tmp_path / a) if a.endswith(".pem") else a for a in args)
    assert run(config, *args) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def test_bad_config_and_no_key(tmp_path: Path, config: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    assert run(tmp_path / "nope.toml", "show") == 2
    assert "nope.toml" in capsys.readouterr().err
    (tmp_path / "chain.pem").write_text(Ca().pem)
    assert run(config, "install-cert", str(tmp_path / "chain.pem")) == 2
    err = capsys.readouterr().err
    assert "no key" in err and "generate" in err


def test_command_line_entry_point(config: Path) -> None:
    """Through `evse-agent keys`: no traceback, the exit code of the command."""
    done = subprocess.run(
        [sys.executable, "-m", "evse_agent", "keys", "--config", str(config), "install-root",
         "CSMSRootCertificate", str(config.parent / "missing.pem")],
        capture_output=True, text=True, timeout=30,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().endswith("missing.pem: no such file")
