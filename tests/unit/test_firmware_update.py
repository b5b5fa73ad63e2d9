"""The firmware update machine (firmware/update.py), sans-I/O: events in, actions out,
with a fake clock. Requirement ids: OCPP 2.0.1 part 2, block L (L01)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from evse_agent.firmware import update as u

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def req(request_id: int = 7, **kw: object) -> u.UpdateRequest:
    fields: dict[str, object] = {"request_id": request_id, "location": "http://x/fw.bundle",
                                 "retrieve_at": T0 - timedelta(hours=2)}
    fields.update(kw)
    return u.UpdateRequest(**fields)  # type: ignore[arg-type]


def statuses(actions: list[u.Action]) -> list[str]:
    return [a.status for a in actions if isinstance(a, u.Notify)]


def kinds(actions: list[u.Action]) -> list[type]:
    return [type(a) for a in actions if not isinstance(a, u.Log)]


def to_verified(fw: u.FirmwareUpdate, request: u.UpdateRequest | None = None,
                now: datetime = T0) -> list[u.Action]:
    out = fw.handle(u.Requested(request or req()), now)
    out += fw.handle(u.DownloadDone("/d/7.bundle"), now)
    out += fw.handle(u.VerifyDone("2.0.0"), now)
    return out


def test_happy_flow_states_in_order_then_installed_after_restart() -> None:
    """TC_L_01_CS: Downloading, Downloaded, SignatureVerified, (EVSEs Unavailable),
    Installing, InstallRebooting; the new process sends Installed once Accepted
    (L01.FR.01, L01.FR.10 same requestId, L01.FR.32 (a))."""
    fw = u.FirmwareUpdate()
    out = fw.handle(u.Requested(req()), T0)
    assert fw.answer == "Accepted"
    assert statuses(out) == ["Downloading"]
    assert isinstance(out[-1], u.StartDownload)
    out = fw.handle(u.DownloadDone("/d/7.bundle"), T0)
    assert statuses(out) == ["Downloaded"] and isinstance(out[-1], u.Verify)
    out = fw.handle(u.VerifyDone("2.0.0"), T0)
    assert kinds(out) == [u.Notify, u.SetUnavailable, u.Notify, u.Install]
    assert statuses(out) == ["SignatureVerified", "Installing"]
    out = fw.handle(u.InstallDone(), T0)
    assert statuses(out) == ["InstallRebooting"]
    assert out[-1] == u.Activate("2.0.0")

    # the process restarts: the snapshot is all that survives
    saved = json.loads(json.dumps(fw.snapshot()))
    fw = u.FirmwareUpdate()
    fw.restore(saved)
    assert fw.handle(u.Booted("2.0.0"), T0) == []
    assert fw.triggered_status() == ("InstallRebooting", 7)
    out = fw.handle(u.Accepted(), T0)
    assert out == [u.Notify("Installed", 7, "v201")]
    assert not fw.active
    assert fw.triggered_status() == ("Idle", None)  # L01.FR.25


def test_new_version_did_not_stay_is_install_verification_failed() -> None:
    """L01.FR.29: after the restart the old version runs (the trial failed, rollback)."""
    fw = u.FirmwareUpdate()
    to_verified(fw)
    fw.handle(u.InstallDone(), T0)
    again = u.FirmwareUpdate()
    again.restore(fw.snapshot())
    out = again.handle(u.Booted("1.0.0"), T0)
    assert statuses(out) == ["InstallVerificationFailed"]
    assert again.triggered_status() == ("InstallVerificationFailed", 7)  # L01.FR.26


def test_confirming_survives_a_second_restart_then_rollback() -> None:
    fw = u.FirmwareUpdate()
    to_verified(fw)
    fw.handle(u.InstallDone(), T0)
    fw.handle(u.Booted("2.0.0"), T0)  # on trial, not yet Accepted
    later = u.FirmwareUpdate()
    later.restore(fw.snapshot())
    assert statuses(later.handle(u.Booted("1.0.0"), T0)) == ["InstallVerificationFailed"]


def test_retrieve_date_time_ahead_is_download_scheduled() -> None:
    """TC_L_03_CS, L01.FR.13."""
    fw = u.FirmwareUpdate()
    out = fw.handle(u.Requested(req(retrieve_at=T0 + timedelta(seconds=60))), T0)
    assert statuses(out) == ["DownloadScheduled"]
    assert fw.next_wakeup(T0) == T0 + timedelta(seconds=60)
    assert fw.handle(u.Tick(), T0 + timedelta(seconds=59)) == []
    out = fw.handle(u.Tick(), T0 + timedelta(seconds=60))
    assert statuses(out) == ["Downloading"] and isinstance(out[-1], u.StartDownload)


def test_install_date_time_ahead_is_install_scheduled() -> None:
    """TC_L_02_CS, L01.FR.16."""
    fw = u.FirmwareUpdate()
    at = T0 + timedelta(minutes=5)
    out = to_verified(fw, req(install_at=at))
    assert statuses(out)[-2:] == ["SignatureVerified", "InstallScheduled"]
    assert fw.next_wakeup(T0) == at
    out = fw.handle(u.Tick(), at)
    assert kinds(out) == [u.SetUnavailable, u.Notify, u.Install]
    assert statuses(out) == ["Installing"]


def test_retries_then_download_failed() -> None:
    """L01.FR.30: DownloadFailed once every retry failed; retryInterval between."""
    fw = u.FirmwareUpdate()
    fw.handle(u.Requested(req(retries=2, retry_interval_s=10)), T0)
    t = T0
    for attempt in range(2):
        out = fw.handle(u.DownloadFailed("connection refused"), t)
        assert statuses(out) == []
        assert fw.next_wakeup(t) == t + timedelta(seconds=10)
        t += timedelta(seconds=10)
        out = fw.handle(u.Tick(), t)
        assert kinds(out) == [u.StartDownload], attempt  # Downloading is not repeated
    out = fw.handle(u.DownloadFailed("connection refused"), t)
    assert statuses(out) == ["DownloadFailed"]
    assert not fw.active


def test_invalid_signature_and_certificate_security_events() -> None:
    """TC_L_06_CS (L01.FR.03) and a signing certificate refused at verification."""
    for kind, event in [("InvalidSignature", "InvalidFirmwareSignature"),
                        ("HashMismatch", "InvalidFirmwareSignature"),
                        ("InvalidCertificate", "InvalidFirmwareSigningCertificate")]:
        fw = u.FirmwareUpdate()
        fw.handle(u.Requested(req()), T0)
        fw.handle(u.DownloadDone("/d"), T0)
        out = fw.handle(u.VerifyFailed(kind, "bad"), T0)
        assert statuses(out) == ["InvalidSignature"], kind
        assert [a.type for a in out if isinstance(a, u.SecurityEvent)] == [event]
        assert not fw.active


def test_other_hardware_or_downgrade_is_installation_failed() -> None:
    for kind in ("Incompatible", "Downgrade"):
        fw = u.FirmwareUpdate()
        fw.handle(u.Requested(req()), T0)
        fw.handle(u.DownloadDone("/d"), T0)
        out = fw.handle(u.VerifyFailed(kind, "not for this station"), T0)
        assert statuses(out) == ["SignatureVerified", "InstallationFailed"]
        assert not any(isinstance(a, u.SecurityEvent) for a in out)


def test_installation_waits_for_transactions_evses_unavailable_meanwhile() -> None:
    """L01.FR.06/07 (TC_L_13_CS): Unavailable at once (the busy EVSE when it frees),
    InstallScheduled (L01.FR.34), Installing when the last transaction ended."""
    fw = u.FirmwareUpdate()
    fw.handle(u.Busy(True), T0)
    out = to_verified(fw)
    assert kinds(out)[-3:] == [u.Notify, u.SetUnavailable, u.Notify]
    assert statuses(out)[-2:] == ["SignatureVerified", "InstallScheduled"]
    assert not any(isinstance(a, u.Install) for a in out)
    assert fw.handle(u.Tick(), T0 + timedelta(hours=1)) == []
    out = fw.handle(u.Busy(False), T0 + timedelta(hours=1))
    assert kinds(out) == [u.Notify, u.Install]  # Unavailable was set already
    assert statuses(out) == ["Installing"]


def test_new_request_cancels_running_one_accepted_canceled() -> None:
    """L01.FR.24: AcceptedCanceled; the old download stops, its last word is
    DownloadFailed, the new one starts with its own requestId."""
    fw = u.FirmwareUpdate()
    fw.handle(u.Requested(req(1)), T0)
    out = fw.handle(u.Requested(req(2)), T0)
    assert fw.answer == "AcceptedCanceled"
    assert isinstance(out[0], u.CancelDownload)
    notes = [(a.status, a.request_id) for a in out if isinstance(a, u.Notify)]
    assert notes == [("DownloadFailed", 1), ("Downloading", 2)]
    # a late result of the cancelled download does not touch the new one
    assert fw.run is not None and fw.run.request.request_id == 2


def test_cancel_while_waiting_for_transactions_restores_availability() -> None:
    fw = u.FirmwareUpdate()
    fw.handle(u.Busy(True), T0)
    to_verified(fw, req(1))
    out = fw.handle(u.Requested(req(2)), T0)
    assert fw.answer == "AcceptedCanceled"
    assert kinds(out)[:2] == [u.RestoreAvailability, u.Notify]
    assert statuses(out) == ["InstallationFailed", "Downloading"]


def test_request_while_installing_is_rejected() -> None:
    """L01.FR.27: the inactive slot is being written: Rejected, the update goes on."""
    fw = u.FirmwareUpdate()
    to_verified(fw, req(1))
    out = fw.handle(u.Requested(req(2)), T0)
    assert fw.answer == "Rejected" and statuses(out) == []
    assert fw.run is not None and fw.run.request.request_id == 1


def test_install_failed_restores_availability() -> None:
    fw = u.FirmwareUpdate()
    to_verified(fw)
    out = fw.handle(u.InstallFailed("disk full"), T0)
    assert kinds(out) == [u.RestoreAvailability, u.Notify]
    assert statuses(out) == ["InstallationFailed"]


def test_interrupted_download_starts_over_after_restart() -> None:
    fw = u.FirmwareUpdate()
    fw.handle(u.Requested(req(retries=1, retry_interval_s=3)), T0)
    again = u.FirmwareUpdate()
    again.restore(json.loads(json.dumps(fw.snapshot())))
    out = again.handle(u.Booted("1.0.0"), T0)
    assert statuses(out) == ["Downloading"] and isinstance(out[-1], u.StartDownload)
    assert again.run is not None and again.run.request.retry_interval_s == 3


def test_trigger_without_update_is_idle() -> None:
    """L01.FR.25/26, L01.FR.20: Idle carries no requestId."""
    fw = u.FirmwareUpdate()
    assert fw.triggered_status() == ("Idle", None)
    fw.handle(u.Requested(req(3)), T0)
    assert fw.triggered_status() == ("Downloading", 3)
    fw.handle(u.DownloadFailed("x"), T0)  # retries default: waiting, still Downloading
    assert fw.triggered_status() == ("Downloading", 3)


def test_allow_new_sessions_pending_firmware_update() -> None:
    """TC_L_12_CS: with AllowNewSessionsPendingFirmwareUpdate the free EVSEs stay
    available while installation waits; Unavailable only when it can start."""
    fw = u.FirmwareUpdate()
    fw.allow_new_sessions = True
    fw.handle(u.Busy(True), T0)
    out = to_verified(fw)
    assert not any(isinstance(a, u.SetUnavailable) for a in out)
    assert statuses(out)[-1] == "InstallScheduled"
    out = fw.handle(u.Busy(False), T0)
    assert kinds(out) == [u.SetUnavailable, u.Notify, u.Install]
