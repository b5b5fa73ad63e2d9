"""The firmware bundle (firmware-bundle/FORMAT.md) and UpdateFirmware's signature check.

Bundles are real files on disk, tampered with byte by byte; the OCPP signatures are made
here with `cryptography` directly, independently of the code under test (L01.FR.03,
L01.FR.04: signing certificate and signature over the firmware file).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import subprocess
import sys
import tarfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from firmware_pki import NOW, Authority, pem

from evse_agent.firmware import signatures
from evse_agent.firmware.bundle import (
    BundleError,
    Manifest,
    build,
    extract_payloads,
    inspect,
    verify_bundle,
    verify_ocpp_signature,
    version_key,
)

ROOT = Authority()
OTHER_ROOT = Authority("Another Manufacturer Root")
SIGNER_KEY, SIGNER_CERT = ROOT.signer()
SIGNER_PEM = pem(SIGNER_CERT)
HW = "acme-ac22"


def make(tmp_path: Path, version: str = "1.2.0", *, key: Any = SIGNER_KEY,
         chain: str = SIGNER_PEM, hardware: tuple[str, ...] = (HW,),
         min_version: str | None = None, payloads: dict[str, bytes] | None = None,
         name: str = "fw.bundle") -> Path:
    files = []
    if payloads is None:
        payloads = {"rootfs.img": b"R" * 3000 + bytes(range(256)), "app.tar": b"application"}
    for file_name, data in payloads.items():
        path = tmp_path / file_name
        path.write_bytes(data)
        files.append(path)
    out = tmp_path / name
    build(out, version=version, payloads=files, key=key, chain_pem=chain,
          hardware=hardware, min_version=min_version)
    return out


def check(path: Path, roots: list[str] | None = None, *, hardware: str | None = HW,
          current: str | None = "1.0.0", production: bool = False, **kw: Any) -> Manifest:
    return verify_bundle(path, [ROOT.pem] if roots is None else roots, hardware_id=hardware,
                         current_version=current, production=production, **kw)


def refused(kind: str, path: Path, **kw: Any) -> str:
    with pytest.raises(BundleError) as err:
        check(path, **kw)
    assert err.value.kind == kind, str(err.value)
    assert "\n" not in str(err.value)
    return str(err.value)


def patch(path: Path, find: bytes, replace: bytes) -> None:
    data = path.read_bytes()
    assert data.count(find) == 1 and len(find) == len(replace)
    path.write_bytes(data.replace(find, replace))


# -- round trip ------------------------------------------------------------------------
def test_build_verify_extract_round_trip(tmp_path: Path) -> None:
    bundle = make(tmp_path, min_version="1.0.0")
    manifest = check(bundle)
    assert manifest.firmware_version == "1.2.0"
    assert manifest.hardware == (HW,) and manifest.min_version == "1.0.0"
    names = [p.name for p in manifest.payloads]
    assert names == ["rootfs.img", "app.tar"]
    assert manifest.payloads[1].sha256 == hashlib.sha256(b"application").hexdigest()
    # A standard tar reader sees the documented layout.
    with tarfile.open(bundle) as tar:
        assert tar.getnames() == ["manifest.json", "manifest.sig", "signer.pem",
                                  "payload/rootfs.img", "payload/app.tar"]
        document = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
    assert document["format"] == 1 and document["firmware_version"] == "1.2.0"
    out = tmp_path / "slot"
    extract_payloads(bundle, out, expected=manifest)
    assert (out / "app.tar").read_bytes() == b"application"
    assert (out / "rootfs.img").read_bytes() == (tmp_path / "rootfs.img").read_bytes()
    assert sorted(p.name for p in out.iterdir()) == ["app.tar", "rootfs.img"]
    seen = inspect(bundle)
    assert seen.manifest == manifest and not seen.development


def test_intermediate_chain_and_rsa_signer(tmp_path: Path) -> None:
    sub = Authority("Firmware Sub-CA", parent=ROOT)
    key, cert = sub.signer("rsa")
    bundle = make(tmp_path, key=key, chain=pem(cert, sub.cert))
    assert check(bundle).firmware_version == "1.2.0"
    # Without the intermediate the chain does not reach the root.
    lone = make(tmp_path, key=key, chain=pem(cert), name="lone.bundle")
    refused("InvalidCertificate", lone)


def test_empty_bundle_and_any_hardware(tmp_path: Path) -> None:
    bundle = make(tmp_path, hardware=("*",), payloads={})
    assert check(bundle, hardware="whatever").payloads == ()


# -- tampering -------------------------------------------------------------------------
def test_tampered_payload_byte_is_hash_mismatch(tmp_path: Path) -> None:
    bundle = make(tmp_path)
    data = bytearray(bundle.read_bytes())
    at = data.index(b"application")
    data[at] ^= 0x01
    bundle.write_bytes(bytes(data))
    assert "app.tar" in refused("HashMismatch", bundle)
    with pytest.raises(BundleError) as err:
        extract_payloads(bundle, tmp_path / "slot")
    assert err.value.kind == "HashMismatch"
    assert not (tmp_path / "slot" / "app.tar").exists()
    assert not list((tmp_path / "slot").glob("*.part"))


def test_tampered_manifest_is_invalid_signature(tmp_path: Path) -> None:
    bundle = make(tmp_path)
    patch(bundle, b'"firmware_version":"1.2.0"', b'"firmware_version":"9.2.0"')
    refused("InvalidSignature", bundle)


def test_swapped_signature_is_invalid_signature(tmp_path: Path) -> None:
    one, two = make(tmp_path, "1.2.0", name="a.bundle"), make(tmp_path, "1.3.0",
                                                                name="b.bundle")
    with tarfile.open(two) as tar:
        other_sig = tar.extractfile("manifest.sig").read()  # type: ignore[union-attr]
    swapped = tmp_path / "swapped.bundle"
    with tarfile.open(one) as src, tarfile.open(swapped, "w",
                                                format=tarfile.USTAR_FORMAT) as dst:
        for member in src.getmembers():
            data = src.extractfile(member).read()  # type: ignore[union-attr]
            if member.name == "manifest.sig":
                data = other_sig
            member.size = len(data)
            dst.addfile(member, io.BytesIO(data))
    refused("InvalidSignature", swapped)


def test_truncated_extra_and_foreign_files_are_malformed(tmp_path: Path) -> None:
    bundle = make(tmp_path)
    data = bundle.read_bytes()
    cut = tmp_path / "cut.bundle"
    cut.write_bytes(data[: len(data) // 2 + 100])
    refused("Malformed", cut)
    extra = tmp_path / "extra.bundle"
    with tarfile.open(bundle) as src, tarfile.open(extra, "w", format=tarfile.USTAR_FORMAT) as dst:
        for member in src.getmembers():
            dst.addfile(member, src.extractfile(member))
        info = tarfile.TarInfo("payload/evil.sh")
        info.size = 4
        dst.addfile(info, io.BytesIO(b"evil"))
    assert "evil" in refused("Malformed", extra)
    junk = tmp_path / "junk.bundle"
    junk.write_bytes(bytes(range(256)) * 8)
    refused("Malformed", junk)
    empty = tmp_path / "empty.bundle"
    empty.write_bytes(b"")
    refused("Malformed", empty)


def test_symlink_member_is_refused(tmp_path: Path) -> None:
    evil = tmp_path / "link.bundle"
    with tarfile.open(evil, "w", format=tarfile.USTAR_FORMAT) as tar:
        info = tarfile.TarInfo("manifest.json")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(info)
    assert "regular file" in refused("Malformed", evil)


# -- trust -----------------------------------------------------------------------------
def test_signer_from_another_root_is_invalid_certificate(tmp_path: Path) -> None:
    key, cert = OTHER_ROOT.signer()
    bundle = make(tmp_path, key=key, chain=pem(cert))
    assert "ManufacturerRootCertificate" in refused("InvalidCertificate", bundle)
    assert check(bundle, roots=[ROOT.pem, OTHER_ROOT.pem]).firmware_version == "1.2.0"


def test_expired_signer_is_invalid_certificate(tmp_path: Path) -> None:
    key, cert = ROOT.signer(not_before=NOW - timedelta(hours=20),
                            not_after=NOW - timedelta(hours=1))
    bundle = make(tmp_path, key=key, chain=pem(cert))
    assert "validity" in refused("InvalidCertificate", bundle)
    # ... but it was fine while the certificate was valid.
    assert check(bundle, now=NOW - timedelta(hours=2)).firmware_version == "1.2.0"


def test_signer_certificate_not_a_ca_cannot_issue(tmp_path: Path) -> None:
    key, cert = ROOT.signer()
    # A leaf "issued" by another leaf: the middle certificate is not a CA.
    from firmware_pki import _certificate, new_key
    leaf_key = new_key()
    leaf = _certificate(cert.subject, leaf_key.public_key(), cert.subject, key, ca=False)
    bundle = make(tmp_path, key=leaf_key, chain=pem(leaf, cert))
    refused("InvalidCertificate", bundle)


def test_development_signed(tmp_path: Path) -> None:
    dev_key = signatures.load_private_key(
        signatures.dev_path(signatures.DEV_SIGNING_KEY).read_bytes(), "dev key")
    dev_chain = signatures.dev_path(signatures.DEV_SIGNING_CERT).read_text()
    bundle = make(tmp_path, key=dev_key, chain=dev_chain)
    # Trusted beside the installed roots when not in production ...
    assert check(bundle).firmware_version == "1.2.0"
    assert inspect(bundle).development
    # ... refused in production, even with the development root installed as a root.
    assert "DEVELOPMENT" in refused("DevelopmentSigned", bundle, production=True)
    refused("DevelopmentSigned", bundle, production=True,
            roots=[ROOT.pem, signatures.dev_root_pem()])
    # A manufacturer-signed bundle is fine in production.
    assert check(make(tmp_path, name="prod.bundle"), production=True)


# -- compatibility ---------------------------------------------------------------------
def test_hardware_mismatch_is_incompatible(tmp_path: Path) -> None:
    bundle = make(tmp_path, hardware=("acme-ac22", "acme-ac11"))
    assert check(bundle, hardware="acme-ac11")
    assert "acme-dc50" in refused("Incompatible", bundle, hardware="acme-dc50")


def test_downgrade_below_running_and_min_version(tmp_path: Path) -> None:
    bundle = make(tmp_path, "1.2.0", min_version="1.1.0")
    assert check(bundle, current="1.1.0")
    assert check(bundle, current="1.2.0")          # re-install of the running version
    assert "older" in refused("Downgrade", bundle, current="1.10.0")
    assert "1.1.0" in refused("Downgrade", bundle, current="1.0.9")
    # Hash check is still done when compatibility is not asked for.
    assert check(bundle, hardware=None, current=None)


@pytest.mark.parametrize(("low", "high"), [
    ("1.2", "1.10"), ("1.2.0-rc.1", "1.2.0"), ("1.2.0-rc.1", "1.2.0-rc.2"),
    ("1.9.9", "2"), ("0.9", "v1.0"), ("1.0.0-alpha", "1.0.0-beta"), ("1.0", "1.0.1"),
    ("1.2.a", "1.2.b"), ("1.2.0", "1.2.a"),
])
def test_version_order(low: str, high: str) -> None:
    assert version_key(low) < version_key(high)


def test_version_equivalence() -> None:
    assert version_key("1.2") == version_key("1.2.0") == version_key("v1.2.0+build.7")


def test_extract_refuses_a_bundle_changed_after_verification(tmp_path: Path) -> None:
    first = make(tmp_path, "1.2.0", name="one.bundle")
    manifest = check(first)
    second = make(tmp_path, "1.3.0", name="two.bundle")
    with pytest.raises(BundleError) as err:
        extract_payloads(second, tmp_path / "slot", expected=manifest)
    assert err.value.kind == "HashMismatch"


# -- UpdateFirmware signature (2.0.1 L01.FR.03/.04, 1.6 SignedUpdateFirmware) ------------
OCPP = {kind: ROOT.signer(kind.split("-")[0]) for kind in ("p256", "p384", "rsa-pkcs1",
                                                             "rsa-pss")}


def ocpp_sign(kind: str, data: bytes) -> str:
    key = OCPP[kind][0]
    if isinstance(key, ec.EllipticCurvePrivateKey):
        signature = key.sign(data, ec.ECDSA(hashes.SHA256()))
    elif kind == "rsa-pss":
        assert isinstance(key, rsa.RSAPrivateKey)
        signature = key.sign(data, padding.PSS(padding.MGF1(hashes.SHA256()),
                                               padding.PSS.MAX_LENGTH), hashes.SHA256())
    else:
        signature = key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(signature).decode()


@pytest.mark.parametrize("kind", list(OCPP))
def test_ocpp_signature_good_and_bad(tmp_path: Path, kind: str) -> None:
    bundle = make(tmp_path)
    data = bundle.read_bytes()
    good = ocpp_sign(kind, data)
    cert = pem(OCPP[kind][1])
    verify_ocpp_signature(bundle, cert, good, [ROOT.pem])
    # The same signature over a file one byte different
    changed = tmp_path / "changed.bundle"
    changed.write_bytes(data[:-1] + b"\x01")
    with pytest.raises(BundleError) as err:
        verify_ocpp_signature(changed, cert, good, [ROOT.pem])
    assert err.value.kind == "InvalidSignature"
    # A signature by another key of the same kind
    other_key, other_cert = ROOT.signer(kind.split("-")[0])
    with pytest.raises(BundleError) as err:
        verify_ocpp_signature(bundle, pem(other_cert), good, [ROOT.pem])
    assert err.value.kind == "InvalidSignature"
    # The right signature, but the certificate is not under an installed root
    with pytest.raises(BundleError) as err:
        verify_ocpp_signature(bundle, cert, good, [OTHER_ROOT.pem])
    assert err.value.kind == "InvalidCertificate"


def test_ocpp_signature_garbage_and_expired(tmp_path: Path) -> None:
    bundle = make(tmp_path)
    cert = pem(OCPP["p256"][1])
    for junk in ("not base64!", "", base64.b64encode(b"\x30\x02\x01\x01").decode()):
        with pytest.raises(BundleError) as err:
            verify_ocpp_signature(bundle, cert, junk, [ROOT.pem])
        assert err.value.kind == "InvalidSignature"
    with pytest.raises(BundleError) as err:
        verify_ocpp_signature(bundle, "no certificate here", ocpp_sign("p256", b"x"),
                              [ROOT.pem])
    assert err.value.kind == "InvalidCertificate"
    good = ocpp_sign("p256", bundle.read_bytes())
    with pytest.raises(BundleError) as err:
        verify_ocpp_signature(bundle, cert, good, [ROOT.pem], now=NOW + timedelta(days=400))
    assert err.value.kind == "InvalidCertificate"


def test_ocpp_signature_development_root(tmp_path: Path) -> None:
    bundle = make(tmp_path)
    dev_key = signatures.load_private_key(
        signatures.dev_path(signatures.DEV_SIGNING_KEY).read_bytes(), "dev key")
    signature = base64.b64encode(dev_key.sign(bundle.read_bytes(),
                                              ec.ECDSA(hashes.SHA256()))).decode()
    dev_cert = signatures.dev_path(signatures.DEV_SIGNING_CERT).read_text()
    verify_ocpp_signature(bundle, dev_cert, signature, [ROOT.pem], production=False)
    with pytest.raises(BundleError) as err:
        verify_ocpp_signature(bundle, dev_cert, signature, [ROOT.pem], production=True)
    assert err.value.kind == "DevelopmentSigned"


def test_importing_the_bundle_module_does_not_load_cryptography() -> None:
    code = ("import sys, evse_agent.firmware.bundle, evse_agent.firmware.cli; "
            "print('cryptography' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"
