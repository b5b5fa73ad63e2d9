"""CertificateService with a fake CSMS side: what the timers see, resends for the same
key (A02.FR.17), renewal with a new key (A03.FR.02), nothing sent while offline, and the
fallback clean-up after a working connection (A02.FR.10, M05.FR.13)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pki import Ca, csr_public_key, pem

from evse_agent.device_model.model import DeviceModel, VariableKey
from evse_agent.ocpp.certificate_service import FIRST_LOOK, OFFLINE_POLL, CertificateService
from evse_agent.security import Security
from evse_agent.security.certificates import CertificateStore
from evse_agent.security.keystore import FileKeyStore, pending, previous

USE = "ChargingStationCertificate"


class Events:
    def __init__(self) -> None:
        self.recorded: list[tuple[str, str | None]] = []

    def record(self, type: str, tech_info: str | None = None) -> None:
        self.recorded.append((type, tech_info))


class Csms:
    def __init__(self) -> None:
        self.online = True
        self.csrs: list[str] = []
        self.status = "Accepted"

    async def send_sign_certificate(self, use: str, csr: str) -> dict[str, Any]:
        self.csrs.append(csr)
        return {"status": self.status}


def service(tmp_path: Path, clock: list[datetime]) -> tuple[CertificateService, Csms, Events]:
    dm = DeviceModel()
    dm.load_standard()
    dm.set_factory(VariableKey("SecurityCtrlr", "CertSigningWaitMinimum"), 60)
    dm.set_factory(VariableKey("SecurityCtrlr", "CertSigningRepeatTimes"), 0)
    events = Events()
    security = Security(FileKeyStore(tmp_path / "keys", passphrase=b"pw"),
                        CertificateStore(tmp_path / "certs"), events)  # type: ignore[arg-type]
    svc = CertificateService(security, dm, "SN-1", lambda: clock[0])
    csms = Csms()
    svc.attach(csms)
    return svc, csms, events


async def test_resend_keeps_the_key_and_entries_are_counted(tmp_path: Path) -> None:
    clock = [datetime.now(UTC)]
    svc, csms, _ = service(tmp_path, clock)
    assert svc.dm.get("SecurityCtrlr", "CertificateEntries") == 0
    assert svc.next_wakeup(clock[0]) == clock[0] + FIRST_LOOK  # boot never parses certs
    svc.tick(clock[0])  # the first look: no certificate, nothing to renew
    assert svc.next_wakeup(clock[0]) is None
    assert await svc.triggered(USE)() is None
    assert svc.next_wakeup(clock[0]) == clock[0] + timedelta(seconds=60)
    clock[0] += timedelta(seconds=60)
    svc.tick(clock[0])
    for task in list(svc._tasks):
        await task
    assert len(csms.csrs) == 2
    first, again = (csr_public_key(c) for c in csms.csrs)
    assert first == again  # the CSR of the same key pair
    root = Ca()
    assert svc.install("CSMSRootCertificate", root.pem).accepted
    assert svc.dm.get("SecurityCtrlr", "CertificateEntries") == 1


async def test_renewal_uses_a_new_key_and_waits_for_a_connection(tmp_path: Path) -> None:
    clock = [datetime.now(UTC)]
    svc, csms, events = service(tmp_path, clock)
    root = Ca()
    svc.install("CSMSRootCertificate", root.pem)
    await svc.triggered(USE)()
    leaf = root.issue(csr_public_key(csms.csrs[0]), cn="SN-1",
                      not_after=clock[0] + timedelta(days=10))
    assert svc.certificate_signed(USE, pem(leaf), "InvalidChargingStationCertificate").accepted
    assert events.recorded == []
    csms.online = False
    assert svc.next_wakeup(clock[0]) == clock[0] + OFFLINE_POLL
    svc.tick(clock[0])
    assert len(csms.csrs) == 1
    csms.online = True
    svc.tick(clock[0])
    for task in list(svc._tasks):
        await task
    assert len(csms.csrs) == 2 and csr_public_key(csms.csrs[1]) != csr_public_key(csms.csrs[0])
    # A certificate for a key that is not ours: Rejected and a security event.
    stranger = root.issue(Ca().key.public_key(), cn="SN-1")
    verdict = svc.certificate_signed(USE, pem(stranger), "InvalidChargingStationCertificate")
    assert verdict.status == "Rejected"
    assert events.recorded == [("InvalidChargingStationCertificate", verdict.reason)]


async def test_fallbacks_go_once_the_new_ones_worked(tmp_path: Path) -> None:
    clock = [datetime.now(UTC)]
    svc, csms, _ = service(tmp_path, clock)
    root = Ca()
    svc.install("CSMSRootCertificate", root.pem)
    keys = svc.security.keys
    for _ in range(2):
        await svc.triggered(USE)()
        leaf = root.issue(csr_public_key(csms.csrs[-1]), cn="SN-1")
        assert svc.certificate_signed(USE, pem(leaf), "x").accepted
    assert keys.has_key(previous(USE)) and not keys.has_key(pending(USE))
    assert svc.security.certificates.previous_chain_pem() is not None
    svc.connected_with_current(client_certificate=True, new_root=True)
    assert not keys.has_key(previous(USE))
    assert svc.security.certificates.previous_chain_pem() is None
    assert svc.security.certificates.station_chain_pem() == pem(leaf)


async def test_renewal_that_did_not_get_through_is_tried_again(tmp_path: Path) -> None:
    """A03.FR.02: the renewal CSR is retried when the sender went offline before the task
    ran, and when SignCertificate failed (CALLERROR), paced by OFFLINE_POLL."""
    from evse_agent.ocpp.connection import CallFailed

    clock = [datetime.now(UTC)]
    svc, csms, _ = service(tmp_path, clock)
    root = Ca()
    svc.install("CSMSRootCertificate", root.pem)
    await svc.triggered(USE)()
    leaf = root.issue(csr_public_key(csms.csrs[0]), cn="SN-1",
                      not_after=clock[0] + timedelta(days=10))
    assert svc.certificate_signed(USE, pem(leaf), "x").accepted

    async def run_tick() -> None:
        svc.tick(clock[0])
        for task in list(svc._tasks):
            await task

    svc.tick(clock[0])  # the renewal task is scheduled; the link drops before it runs
    csms.online = False
    for task in list(svc._tasks):
        await task
    csms.online = True
    assert len(csms.csrs) == 1
    assert svc.next_wakeup(clock[0]) == clock[0] + OFFLINE_POLL
    clock[0] += OFFLINE_POLL

    async def refuse(use: str, csr: str) -> dict[str, Any]:
        csms.csrs.append(csr)
        raise CallFailed("error", "busy", "InternalError")

    send = csms.send_sign_certificate
    csms.send_sign_certificate = refuse  # type: ignore[method-assign]
    await run_tick()
    assert len(csms.csrs) == 2
    assert svc.next_wakeup(clock[0]) == clock[0] + OFFLINE_POLL  # paced, not at once
    clock[0] += OFFLINE_POLL
    csms.send_sign_certificate = send  # type: ignore[method-assign]
    await run_tick()
    assert len(csms.csrs) == 3
    await run_tick()
    assert len(csms.csrs) == 3  # it got through: once per certificate
