"""`evse-agent bundle build | verify | inspect | sign-ocpp`: the tool a release engineer
and a CSMS operator use. Errors are one line on stderr and a non-zero exit."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding
from firmware_pki import Authority, key_pem, pem, write

from evse_agent.cli import main
from evse_agent.firmware.bundle import verify_ocpp_signature
from evse_agent.firmware.signatures import DEV_SIGNING_CERT, dev_path

ROOT = Authority()
EC_KEY, EC_CERT = ROOT.signer("p256")
RSA_KEY, RSA_CERT = ROOT.signer("rsa")


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, Path]:
    return {
        "root": write(tmp_path, "root.pem", ROOT.pem),
        "key": write(tmp_path, "signing.key", key_pem(EC_KEY)),
        "cert": write(tmp_path, "signing.pem", pem(EC_CERT)),
        "rsa_key": write(tmp_path, "rsa.key", key_pem(RSA_KEY)),
        "rsa_cert": write(tmp_path, "rsa.pem", pem(RSA_CERT)),
        "payload": write(tmp_path, "rootfs.img", b"\x7fELF" + bytes(5000)),
        "out": tmp_path / "fw.bundle",
    }


def run(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    code = main(["bundle", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str) -> str:
    lines = [line for line in err.splitlines() if not line.startswith("WARNING")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_build_verify_inspect_with_own_key(capsys: pytest.CaptureFixture[str],
                                           pki: dict[str, Path]) -> None:
    code, out, err = run(capsys, "build", "--version", "2.1.0", "--output", pki["out"],
                         "--payload", pki["payload"], "--hardware", "acme-ac22",
                         "--min-version", "2.0.0", "--signing-key", pki["key"],
                         "--signing-cert", pki["cert"])
    assert code == 0, err
    assert "DEVELOPMENT" not in err and "2.1.0" in out
    code, out, err = run(capsys, "verify", pki["out"], "--root", pki["root"], "--production",
                         "--hardware", "acme-ac22", "--current-version", "2.0.5")
    assert code == 0, err
    assert "OK" in out and "DEVELOPMENT" not in out
    code, out, _ = run(capsys, "inspect", pki["out"])
    assert code == 0
    assert "2.1.0" in out and "acme-ac22" in out and "rootfs.img" in out and "5004" in out
    # Refusals: exit 1 and the kind
    code, _, err = run(capsys, "verify", pki["out"], "--production")
    assert code == 1 and "InvalidCertificate" in one_line_error(err)
    code, _, err = run(capsys, "verify", pki["out"], "--root", pki["root"],
                       "--hardware", "acme-dc50")
    assert code == 1 and "Incompatible" in one_line_error(err)
    code, _, err = run(capsys, "verify", pki["out"], "--root", pki["root"],
                       "--current-version", "1.9")
    assert code == 1 and "Downgrade" in one_line_error(err)


def test_build_without_key_uses_development_material(capsys: pytest.CaptureFixture[str],
                                                     pki: dict[str, Path]) -> None:
    code, _, err = run(capsys, "build", "--version", "1.0.0", "--output", pki["out"],
                       "--payload", pki["payload"])
    assert code == 0
    assert "DEVELOPMENT" in err
    code, out, _ = run(capsys, "verify", pki["out"])
    assert code == 0 and "DEVELOPMENT ONLY" in out
    code, out, _ = run(capsys, "inspect", pki["out"])
    assert "DEVELOPMENT ONLY" in out
    code, _, err = run(capsys, "verify", pki["out"], "--production")
    assert code == 1 and "DevelopmentSigned" in one_line_error(err)


def test_tampered_and_corrupt_bundles(capsys: pytest.CaptureFixture[str],
                                      pki: dict[str, Path]) -> None:
    assert run(capsys, "build", "--version", "1.0.0", "--output", pki["out"], "--payload",
               pki["payload"], "--signing-key", pki["key"], "--signing-cert", pki["cert"])[0] == 0
    data = bytearray(pki["out"].read_bytes())
    data[data.index(b"\x7fELF") + 100] ^= 0xFF
    pki["out"].write_bytes(bytes(data))
    code, _, err = run(capsys, "verify", pki["out"], "--root", pki["root"])
    assert code == 1 and "HashMismatch" in one_line_error(err)
    pki["out"].write_bytes(b"this is not a bundle" * 40)
    for command in ("verify", "inspect"):
        code, _, err = run(capsys, command, pki["out"], *(["--root", pki["root"]]
                                                           if command == "verify" else []))
        assert code == 1 and "Malformed" in one_line_error(err)
    code, _, err = run(capsys, "verify", pki["out"].with_name("absent.bundle"))
    assert code == 2 and "absent.bundle" in one_line_error(err)


def test_wrong_key_mismatched_cert_missing_payload(capsys: pytest.CaptureFixture[str],
                                                   pki: dict[str, Path]) -> None:
    base = ("build", "--version", "1.0.0", "--output", pki["out"])
    # The key file is not a key at all
    code, _, err = run(capsys, *base, "--signing-key", pki["payload"], "--signing-cert",
                       pki["cert"])
    assert code == 2 and "not a PEM private key" in one_line_error(err)
    # A real key, but not the one the certificate is for
    code, _, err = run(capsys, *base, "--signing-key", pki["rsa_key"], "--signing-cert",
                       pki["cert"])
    assert code == 2 and "does not match" in one_line_error(err)
    # The certificate is not a certificate
    code, _, err = run(capsys, *base, "--signing-key", pki["key"], "--signing-cert",
                       pki["key"])
    assert code == 2 and "no PEM certificate" in one_line_error(err)
    code, _, err = run(capsys, *base, "--payload", pki["payload"].with_name("gone.img"),
                       "--signing-key", pki["key"], "--signing-cert", pki["cert"])
    assert code == 2 and "gone.img" in one_line_error(err)
    code, _, err = run(capsys, *base, "--signing-key", pki["key"])
    assert code == 2 and "go together" in one_line_error(err)
    code, _, err = run(capsys, *base, "--version", "1.0 beta", "--signing-key", pki["key"],
                       "--signing-cert", pki["cert"])
    assert code == 2 and "not a version" in one_line_error(err)
    assert not pki["out"].exists()


def test_sign_ocpp_ecdsa_and_rsa(capsys: pytest.CaptureFixture[str],
                                 pki: dict[str, Path]) -> None:
    firmware = pki["payload"]
    code, out, err = run(capsys, "sign-ocpp", firmware, "--key", pki["key"], "--cert",
                         pki["cert"])
    assert code == 0, err
    signature = out.strip()
    # Checked independently, over the exact file bytes.
    EC_CERT.public_key().verify(base64.b64decode(signature), firmware.read_bytes(),
                                ec.ECDSA(hashes.SHA256()))
    verify_ocpp_signature(firmware, pem(EC_CERT), signature, [ROOT.pem])
    for extra, pad in (([], padding.PKCS1v15()),
                       (["--pss"], padding.PSS(padding.MGF1(hashes.SHA256()),
                                               padding.PSS.AUTO))):
        code, out, err = run(capsys, "sign-ocpp", firmware, "--key", pki["rsa_key"], *extra)
        assert code == 0, err
        RSA_CERT.public_key().verify(base64.b64decode(out.strip()), firmware.read_bytes(),
                                     pad, hashes.SHA256())
        verify_ocpp_signature(firmware, pem(RSA_CERT), out.strip(), [ROOT.pem])
    code, _, err = run(capsys, "sign-ocpp", firmware, "--key", pki["key"], "--pss")
    assert code == 2 and "RSA" in one_line_error(err)
    code, _, err = run(capsys, "sign-ocpp", firmware, "--key", pki["rsa_key"], "--cert",
                       pki["cert"])
    assert code == 2 and "does not match" in one_line_error(err)
    code, _, err = run(capsys, "sign-ocpp", firmware, "--key", pki["cert"])
    assert code == 2 and "not a PEM private key" in one_line_error(err)
    # Development key by default, with a warning; verifies against the dev certificate.
    code, out, err = run(capsys, "sign-ocpp", firmware)
    assert code == 0 and "DEVELOPMENT" in err
    verify_ocpp_signature(firmware, dev_path(DEV_SIGNING_CERT).read_text(), out.strip(), [])


def test_real_command_line(pki: dict[str, Path]) -> None:
    """Through the installed entry point: exit code and one stderr line."""
    result = subprocess.run([sys.executable, "-m", "evse_agent", "bundle", "build", "--version", "1.0.0", "--output",
                             str(pki["out"]), "--payload", str(pki["payload"]),
                             "--signing-key", str(pki["rsa_key"]), "--signing-cert",
                             str(pki["cert"])], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "does not match" in result.stderr


def test_output_into_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    """`evse-agent bundle inspect F | head -1`: the reader leaves early; no traceback."""
    out = tmp_path / "b.bundle"
    assert main(["bundle", "build", "--version", "1.0.0", "--output", str(out)]) == 0
    read, write = os.pipe()
    os.close(read)  # nobody reads: the first write raises BrokenPipeError
    proc = subprocess.run(
        [sys.executable, "-m", "evse_agent", "bundle", "inspect", str(out)],
        stdout=write, stderr=subprocess.PIPE, text=True, timeout=60,
    )
    os.close(write)
    assert "Traceback" not in proc.stderr
    assert proc.returncode == 141
