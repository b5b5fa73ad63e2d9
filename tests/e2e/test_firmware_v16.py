"""Firmware updates over OCPP 1.6, end to end: the Firmware Management profile's
UpdateFirmware (§5.19, FirmwareStatusNotification §4.5, no OCPP signature: the bundle's
own manifest signature must verify) and the security whitepaper's SignedUpdateFirmware
with SignedFirmwareStatusNotification and ExtendedTriggerMessage (use case L01 there,
as 2.0.1's: compare TC_L_01_CS, TC_L_05_CS, TC_L_06_CS). Section numbers: OCPP 1.6
edition 2."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from e2e_support import STATION, booted16, calls
from firmware_support import (
    RUNNING,
    FileServer,
    OtherRoot,
    files,
    fw_statuses,
    make_bundle,
    past,
    tampered,
    update_request,
    wait_security_event,
    wait_status,
)

from evse_agent.csms import DevCsms

__all__ = ["files"]  # the fixture
SIGNED = "SignedFirmwareStatusNotification"


@pytest.fixture
def csms16(csms: DevCsms) -> DevCsms:
    csms.checker.version = "1.6"  # type: ignore[attr-defined]
    return csms


async def start16(csms: DevCsms, station_factory: Any) -> Any:
    st = station_factory(version="1.6")
    st.start()
    await booted16(csms)
    return st


def legacy(url: str) -> dict[str, Any]:
    return {"location": url, "retrieveDate": past(), "retries": 1, "retryInterval": 1}


async def test_update_firmware_installs_and_restarts(
    csms16: DevCsms, station_factory: Any, files: FileServer, tmp_path: Path
) -> None:
    """§5.19 / §4.5: bundles that do not verify end in InstallationFailed (see
    refused_bundles); a good one: Downloading, Downloaded, Installing, the agent restarts
    into the new slot (BootNotification firmwareVersion), Installed; connectors
    Unavailable while installing; a TriggerMessage afterwards answers Idle (§6.17)."""
    csms = csms16
    st = await start16(csms, station_factory)
    await refused_bundles(csms, files, tmp_path)
    data = make_bundle(tmp_path, "1.6.1")
    mark = len(csms.received)
    assert await csms.call(STATION, "UpdateFirmware", legacy(files.add("a.bundle", data))) == {}
    await wait_status(csms, "Installed", since=mark, timeout=20)
    assert fw_statuses(csms, since=mark) == ["Downloading", "Downloaded", "Installing",
                                             "Installed"]
    boot = calls(csms, "BootNotification", mark)
    assert [b["firmwareVersion"] for b in boot] == ["1.6.1"]
    assert any(p["connectorId"] == 1 and p["status"] == "Unavailable"
               for p in calls(csms, "StatusNotification", mark))
    await wait_security_event(csms, "FirmwareUpdated", since=mark)
    assert st.proc.poll() is None

    mark = len(csms.received)
    answer = await csms.call(STATION, "TriggerMessage",
                             {"requestedMessage": "FirmwareStatusNotification"})
    assert answer == {"status": "Accepted"}
    assert await csms.wait_for(STATION, "FirmwareStatusNotification", since=mark) == {
        "status": "Idle"}


async def refused_bundles(csms: DevCsms, files: FileServer, tmp_path: Path) -> None:
    """No OCPP signature in 1.6 UpdateFirmware: a tampered bundle and one signed by an
    unknown manufacturer end in InstallationFailed, with security events
    InvalidFirmwareSignature / InvalidFirmwareSigningCertificate; the station keeps its
    version."""
    other = OtherRoot()
    for name, data, event in [
        ("tampered.bundle", tampered(make_bundle(tmp_path, "1.6.2")),
         "InvalidFirmwareSignature"),
        ("other.bundle", make_bundle(tmp_path, "1.6.3", key=other.signing_key,
                                     chain_pem=other.signing_pem),
         "InvalidFirmwareSigningCertificate"),
    ]:
        mark = len(csms.received)
        assert await csms.call(STATION, "UpdateFirmware", legacy(files.add(name, data))) == {}
        await wait_status(csms, "InstallationFailed", since=mark)
        assert fw_statuses(csms, since=mark) == ["Downloading", "Downloaded",
                                                 "InstallationFailed"]
        await wait_security_event(csms, event, since=mark)
    assert [b["firmwareVersion"] for b in calls(csms, "BootNotification")] == [RUNNING]


async def test_signed_update_firmware_installs_with_request_id(
    csms16: DevCsms, station_factory: Any, files: FileServer, tmp_path: Path
) -> None:
    """Whitepaper L01: SignedUpdateFirmware with a certificate of an unknown root is
    InvalidCertificate (+ InvalidFirmwareSigningCertificate); a good one goes through
    SignedFirmwareStatusNotification Downloading ... InstallRebooting, restart, Installed
    (same requestId); ExtendedTriggerMessage then answers Idle."""
    csms = csms16
    st = await start16(csms, station_factory)
    other = OtherRoot()
    data = make_bundle(tmp_path, "1.7.0")
    url = files.add("s.bundle", data)
    mark = len(csms.received)
    refused = update_request(url, data, 7, key=other.signing_key, cert=other.signing_pem)
    answer = await csms.call(STATION, "SignedUpdateFirmware", refused)
    assert answer["status"] == "InvalidCertificate"
    await wait_security_event(csms, "InvalidFirmwareSigningCertificate", since=mark)

    mark = len(csms.received)
    answer = await csms.call(STATION, "SignedUpdateFirmware", update_request(url, data, 8))
    assert answer["status"] == "Accepted"
    await wait_status(csms, "Installed", 8, since=mark, timeout=20, action=SIGNED)
    assert fw_statuses(csms, 8, since=mark, action=SIGNED) == [
        "Downloading", "Downloaded", "SignatureVerified", "Installing", "InstallRebooting",
        "Installed"]
    assert [b["firmwareVersion"] for b in calls(csms, "BootNotification", mark)] == ["1.7.0"]
    await wait_security_event(csms, "FirmwareUpdated", since=mark)
    assert st.proc.poll() is None

    mark = len(csms.received)
    answer = await csms.call(STATION, "ExtendedTriggerMessage",
                             {"requestedMessage": "FirmwareStatusNotification"})
    assert answer == {"status": "Accepted"}
    assert await csms.wait_for(STATION, SIGNED, since=mark) == {"status": "Idle"}
