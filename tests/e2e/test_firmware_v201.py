"""Signed firmware updates over OCPP 2.0.1, end to end (block L, L01): a real
`evse-agent run` with the slot installer under its data_dir, the development CSMS, and
bundles served over HTTP on loopback. Every frame is checked against the schemas.

Part 6 test cases: TC_L_01_CS (installation successful), TC_L_02_CS (InstallScheduled),
TC_L_05_CS (InvalidCertificate), TC_L_06_CS (InvalidSignature), TC_L_08_CS
(InstallVerificationFailed / InstallationFailed), TC_L_13_CS (ongoing transaction,
EVSEs Unavailable), TC_L_18_CS (no signing certificate), L01.FR.24 (AcceptedCanceled),
L01.FR.25/26 (TriggerMessage).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from e2e_support import STATION, calls
from firmware_support import (
    RUNNING,
    FileServer,
    OtherRoot,
    files,
    future,
    fw_statuses,
    make_bundle,
    past,
    tampered,
    update_request,
    wait_security_event,
    wait_status,
    with_firmware,
)

from evse_agent.csms import DevCsms

__all__ = ["files"]  # the fixture


async def start(csms: DevCsms, station_factory: Any, **firmware: Any) -> Any:
    st = station_factory()
    with_firmware(st, **firmware)
    st.start()
    await csms.wait_for(STATION, "BootNotification", timeout=15)
    await csms.wait_for(STATION, "StatusNotification", lambda p: p["evseId"] == 2)
    return st


def boots(csms: DevCsms, since: int = 0) -> list[dict[str, Any]]:
    return calls(csms, "BootNotification", since)


async def trigger(csms: DevCsms) -> dict[str, Any]:
    mark = len(csms.received)
    answer = await csms.call(STATION, "TriggerMessage",
                             {"requestedMessage": "FirmwareStatusNotification"})
    assert answer["status"] == "Accepted"
    return await csms.wait_for(STATION, "FirmwareStatusNotification", since=mark)


async def test_good_update_all_states_restart_new_version(
    csms: DevCsms, station_factory: Any, files: FileServer, tmp_path: Path
) -> None:
    """TC_L_01_CS: Downloading, Downloaded, SignatureVerified, connectors Unavailable,
    Installing, InstallRebooting; the agent restarts in place (same pid) into the new
    slot: BootNotification reason FirmwareUpdate with the new firmwareVersion, connectors
    Available, Installed with the same requestId (L01.FR.10/32), security event
    FirmwareUpdated (L01.FR.31); a trigger then answers Idle (L01.FR.25)."""
    st = await start(csms, station_factory)
    assert boots(csms)[0]["chargingStation"]["firmwareVersion"] == RUNNING
    pid = st.proc.pid
    data = make_bundle(tmp_path, "0.2.0")
    mark = len(csms.received)
    answer = await csms.call(STATION, "UpdateFirmware",
                             update_request(files.add("fw.bundle", data), data, 101))
    assert answer["status"] == "Accepted"
    await wait_status(csms, "Installed", 101, since=mark, timeout=20)
    assert fw_statuses(csms, since=mark) == [
        "Downloading", "Downloaded", "SignatureVerified", "Installing", "InstallRebooting",
        "Installed",
    ]
    assert all(r.payload.get("requestId") == 101 for r in csms.received[mark:]
               if r.action == "FirmwareStatusNotification")
    boot = boots(csms, mark)
    assert len(boot) == 1
    assert boot[0]["reason"] == "FirmwareUpdate"
    assert boot[0]["chargingStation"]["firmwareVersion"] == "0.2.0"
    assert st.proc.pid == pid and st.proc.poll() is None  # re-exec in place
    # Unavailable before installing, Available again from the new version
    seen = [(r.payload["evseId"], r.payload["connectorStatus"])
            for r in csms.received[mark:] if r.action == "StatusNotification"]
    assert (1, "Unavailable") in seen and (2, "Unavailable") in seen
    booted = next(i for i, r in enumerate(csms.received) if i >= mark
                  and r.action == "BootNotification")
    for evse in (1, 2):
        await csms.wait_for(STATION, "StatusNotification",
                            lambda p, e=evse: (p["evseId"], p["connectorStatus"])
                            == (e, "Available"), since=booted)
    await wait_security_event(csms, "FirmwareUpdated", since=mark)
    assert await trigger(csms) == {"status": "Idle"}  # L01.FR.25: no requestId


async def test_download_scheduled_cut_halfway_resumed_install_scheduled(
    csms: DevCsms, station_factory: Any, files: FileServer, tmp_path: Path
) -> None:
    """retrieveDateTime ahead: DownloadScheduled, then Downloading when it comes
    (TC_L_03_CS, L01.FR.13); a transfer cut halfway resumes with a Range request (the
    part file is kept and hashed on); installDateTime ahead: InstallScheduled (TC_L_02_CS,
    L01.FR.16); a trigger repeats the last status with its requestId (L01.FR.26)."""
    st = await start(csms, station_factory)
    data = make_bundle(tmp_path, "0.3.0", size=256 * 1024)
    url = files.add("cut.bundle", data)
    files.cut_once.add("cut.bundle")
    mark = len(csms.received)
    request = update_request(url, data, 102, install=future(1))
    request["firmware"]["retrieveDateTime"] = future(3 / 3600)  # in 2-3 seconds
    answer = await csms.call(STATION, "UpdateFirmware", request)
    assert answer["status"] == "Accepted"
    await wait_status(csms, "DownloadScheduled", 102, since=mark)
    assert files.requests == []
    await wait_status(csms, "InstallScheduled", 102, since=mark)
    assert fw_statuses(csms, since=mark) == [
        "DownloadScheduled", "Downloading", "Downloaded", "SignatureVerified",
        "InstallScheduled"]
    ranges = [r for name, r in files.requests if name == "cut.bundle"]
    assert ranges[0] is None and ranges[1] is not None and ranges[1].startswith("bytes=")
    assert int(ranges[1][6:].rstrip("-")) > 0
    assert await trigger(csms) == {"status": "InstallScheduled", "requestId": 102}
    assert st.proc.poll() is None


async def tampered_file_invalid_signature(
    csms: DevCsms, files: FileServer, tmp_path: Path
) -> None:
    """TC_L_06_CS: the signature does not cover the downloaded bytes: InvalidSignature
    and security event InvalidFirmwareSignature (L01.FR.03). Also a CSMS that signed the
    tampered file itself: the bundle's own hashes catch it."""
    good = make_bundle(tmp_path, "0.4.0")
    bad = tampered(good)
    mark = len(csms.received)
    request = update_request(files.add("bad.bundle", bad), good, 103)  # signed: the good
    assert (await csms.call(STATION, "UpdateFirmware", request))["status"] == "Accepted"
    await wait_status(csms, "InvalidSignature", 103, since=mark)
    assert fw_statuses(csms, since=mark) == ["Downloading", "Downloaded", "InvalidSignature"]
    event = await wait_security_event(csms, "InvalidFirmwareSignature", since=mark)
    assert event["techInfo"]

    mark = len(csms.received)
    request = update_request(files.add("bad2.bundle", bad), bad, 104)  # signed: the bad
    assert (await csms.call(STATION, "UpdateFirmware", request))["status"] == "Accepted"
    await wait_status(csms, "InvalidSignature", 104, since=mark)
    assert fw_statuses(csms, since=mark) == ["Downloading", "Downloaded", "InvalidSignature"]
    await wait_security_event(csms, "InvalidFirmwareSignature", since=mark)


async def test_signing_certificate_of_another_root(
    csms: DevCsms, station_factory: Any, files: FileServer, tmp_path: Path
) -> None:
    """TC_L_05_CS: a signing certificate that does not chain to a
    ManufacturerRootCertificate: InvalidCertificate and security event
    InvalidFirmwareSigningCertificate (L01.FR.21/22). TC_L_18_CS: none at all:
    Rejected. Once that root is installed (InstallCertificate), the same update is
    Accepted and verified (bundle and OCPP signature by that manufacturer)."""
    await start(csms, station_factory)
    other = OtherRoot()
    data = make_bundle(tmp_path, "0.5.0", key=other.signing_key, chain_pem=other.signing_pem)
    url = files.add("other.bundle", data)
    request = update_request(url, data, 105, key=other.signing_key, cert=other.signing_pem,
                             install=future(1))
    mark = len(csms.received)
    answer = await csms.call(STATION, "UpdateFirmware", request)
    assert answer["status"] == "InvalidCertificate"
    await wait_security_event(csms, "InvalidFirmwareSigningCertificate", since=mark)
    assert fw_statuses(csms, since=mark) == []
    assert files.requests == []  # nothing downloaded

    unsigned = {"requestId": 106, "firmware": {"location": url, "retrieveDateTime": future(0)}}
    assert (await csms.call(STATION, "UpdateFirmware", unsigned))["status"] == "Rejected"

    installed = await csms.call(STATION, "InstallCertificate", {
        "certificateType": "ManufacturerRootCertificate", "certificate": other.pem})
    assert installed["status"] == "Accepted"
    mark = len(csms.received)
    assert (await csms.call(STATION, "UpdateFirmware", request))["status"] == "Accepted"
    await wait_status(csms, "InstallScheduled", 105, since=mark)
    assert fw_statuses(csms, since=mark) == [
        "Downloading", "Downloaded", "SignatureVerified", "InstallScheduled"]


async def test_refused_updates_tampered_other_hardware_downgrade_missing(
    csms: DevCsms, station_factory: Any, files: FileServer, tmp_path: Path
) -> None:
    """On one station, updates that must not install: a tampered file (TC_L_06_CS, see
    tampered_file_invalid_signature); authentic bundles for another hardware model and
    with a minimum version above the running one (anti-rollback): signature verified,
    then InstallationFailed; a location that does not exist: DownloadFailed after the
    retries (TC_L_07_CS, L01.FR.30). The station keeps running its version."""
    st = await start(csms, station_factory)
    await tampered_file_invalid_signature(csms, files, tmp_path)
    mark = len(csms.received)
    data = make_bundle(tmp_path, "0.6.1")
    request = update_request(files.url("missing.bundle"), data, 113)
    assert (await csms.call(STATION, "UpdateFirmware", request))["status"] == "Accepted"
    await wait_status(csms, "DownloadFailed", 113, since=mark)
    assert fw_statuses(csms, since=mark) == ["Downloading", "DownloadFailed"]
    missing = [name for name, _ in files.requests if name == "missing.bundle"]
    assert len(missing) == 2  # retries: 1
    for request_id, data in [
        (107, make_bundle(tmp_path, "0.6.0", hardware=("other-model",))),
        (108, make_bundle(tmp_path, "9.0.0", min_version="5.0.0")),
    ]:
        mark = len(csms.received)
        request = update_request(files.add(f"{request_id}.bundle", data), data, request_id)
        assert (await csms.call(STATION, "UpdateFirmware", request))["status"] == "Accepted"
        await wait_status(csms, "InstallationFailed", request_id, since=mark)
        assert fw_statuses(csms, since=mark) == [
            "Downloading", "Downloaded", "SignatureVerified", "InstallationFailed"]
    assert st.proc.poll() is None and len(boots(csms)) == 1


async def test_new_version_fails_its_trial_and_rolls_back(
    csms: DevCsms, station_factory: Any, files: FileServer, tmp_path: Path
) -> None:
    """The new slot cannot register (the CSMS rejects it) within trial_timeout_s: the
    previous slot comes back by itself, the station boots the old version, and the
    update ends in InstallVerificationFailed (L01.FR.29, TC_L_08_CS)."""
    st = await start(csms, station_factory, trial_timeout_s=3)
    data = make_bundle(tmp_path, "0.7.0")
    def refuse_new_version(p: dict[str, Any]) -> dict[str, Any] | None:
        if p["chargingStation"]["firmwareVersion"] != "0.7.0":
            return None  # the usual answer: Accepted
        return {"currentTime": past(0), "interval": 300, "status": "Rejected"}

    csms.responses["BootNotification"] = refuse_new_version
    mark = len(csms.received)
    request = update_request(files.add("trial.bundle", data), data, 109)
    assert (await csms.call(STATION, "UpdateFirmware", request))["status"] == "Accepted"
    await wait_status(csms, "InstallRebooting", 109, since=mark, timeout=15)
    await csms.wait_for(STATION, "BootNotification",
                        lambda p: p["chargingStation"]["firmwareVersion"] == "0.7.0",
                        since=mark, timeout=15)
    await wait_status(csms, "InstallVerificationFailed", 109, since=mark, timeout=20)
    versions = [b["chargingStation"]["firmwareVersion"] for b in boots(csms, mark)]
    assert versions[0] == "0.7.0" and versions[-1] == RUNNING
    assert fw_statuses(csms, since=mark)[-2:] == ["InstallRebooting",
                                                  "InstallVerificationFailed"]
    assert "Installed" not in fw_statuses(csms, since=mark)
    assert st.proc.poll() is None


async def test_update_during_transaction_waits_evses_unavailable(
    csms: DevCsms, station_factory: Any, files: FileServer, tmp_path: Path
) -> None:
    """TC_L_13_CS (L01.FR.06/07/34): a transaction runs on EVSE 1; the update downloads
    and verifies, the free EVSE 2 turns Unavailable, InstallScheduled; nothing installs
    while the transaction runs; when it ends, EVSE 1 turns Unavailable too, Installing,
    restart, Installed."""
    st = await start(csms, station_factory)
    await st.plug(1)
    await st.tap("AABBCCDD")
    await csms.wait_for(STATION, "TransactionEvent",
                        lambda p: p["triggerReason"] == "ChargingStateChanged"
                        or p["eventType"] == "Started")
    data = make_bundle(tmp_path, "0.8.0")
    mark = len(csms.received)
    request = update_request(files.add("tx.bundle", data), data, 110)
    assert (await csms.call(STATION, "UpdateFirmware", request))["status"] == "Accepted"
    await wait_status(csms, "InstallScheduled", 110, since=mark)
    await csms.wait_for(STATION, "StatusNotification",
                        lambda p: p["evseId"] == 2 and p["connectorStatus"] == "Unavailable",
                        since=mark)
    await asyncio.sleep(0.5)
    assert fw_statuses(csms, since=mark) == [
        "Downloading", "Downloaded", "SignatureVerified", "InstallScheduled"]
    state = await st.state()
    assert state["evses"][0]["transaction_id"] is not None
    assert state["evses"][0]["connector_status"] == "Occupied"

    await st.tap("AABBCCDD")  # the driver ends the session
    await csms.wait_for(STATION, "TransactionEvent", lambda p: p["eventType"] == "Ended",
                        since=mark)
    await st.unplug(1)
    await wait_status(csms, "Installed", 110, since=mark, timeout=20)
    assert fw_statuses(csms, since=mark) == [
        "Downloading", "Downloaded", "SignatureVerified", "InstallScheduled", "Installing",
        "InstallRebooting", "Installed"]
    ended = next(i for i, r in enumerate(csms.received) if i >= mark
                 and r.action == "TransactionEvent" and r.payload["eventType"] == "Ended")
    installing = next(i for i, r in enumerate(csms.received) if i >= mark
                      and r.action == "FirmwareStatusNotification"
                      and r.payload["status"] == "Installing")
    assert ended < installing
    assert boots(csms, mark)[0]["chargingStation"]["firmwareVersion"] == "0.8.0"


async def test_new_request_cancels_running_update_accepted_canceled(
    csms: DevCsms, station_factory: Any, files: FileServer, tmp_path: Path
) -> None:
    """L01.FR.24: a second UpdateFirmware while the first is downloading: AcceptedCanceled,
    the first ends with DownloadFailed (its requestId), the second runs. The update is
    durable: after a kill -9 the restarted station carries it on (same requestId)."""
    st = await start(csms, station_factory)
    first = make_bundle(tmp_path, "0.9.0")
    second = make_bundle(tmp_path, "0.9.1")
    files.hold.add("slow.bundle")  # the first download never gets its bytes
    mark = len(csms.received)
    r1 = update_request(files.add("slow.bundle", first), first, 111)
    assert (await csms.call(STATION, "UpdateFirmware", r1))["status"] == "Accepted"
    await wait_status(csms, "Downloading", 111, since=mark)
    for _ in range(50):
        if files.requests:
            break
        await asyncio.sleep(0.05)
    r2 = update_request(files.add("fast.bundle", second), second, 112, install=future(1))
    assert (await csms.call(STATION, "UpdateFirmware", r2))["status"] == "AcceptedCanceled"
    await wait_status(csms, "InstallScheduled", 112, since=mark)
    assert fw_statuses(csms, 111, since=mark) == ["Downloading", "DownloadFailed"]
    assert fw_statuses(csms, 112, since=mark) == [
        "Downloading", "Downloaded", "SignatureVerified", "InstallScheduled"]

    st.kill()  # power cut while the install waits for its installDateTime
    mark = len(csms.received)
    st.start()
    # (an InstallScheduled the CSMS had not answered before the kill is sent again first)
    again = ["Downloading", "Downloaded", "SignatureVerified", "InstallScheduled"]
    async with asyncio.timeout(15):
        while fw_statuses(csms, since=mark)[-4:] != again:
            await asyncio.sleep(0.05)
    assert fw_statuses(csms, since=mark) in (again, ["InstallScheduled", *again])
    assert all(r.payload["requestId"] == 112 for r in csms.received[mark:]
               if r.action == "FirmwareStatusNotification")
