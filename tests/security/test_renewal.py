"""The SignCertificate schedule, sans I/O: back-off A02.FR.17-19 (TC_A_23_CS timing),
stop after a Rejected or a received certificate, renewal before expiry (A03.FR.02)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from evse_agent.security.renewal import Renewal

T0 = datetime(2026, 1, 1, tzinfo=UTC)
USE = "ChargingStationCertificate"
NONE: dict[str, datetime | None] = {USE: None}


def s(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_backoff_doubles_and_stops_tc_a_23() -> None:
    """TC_A_23_CS (CertSigningRepeatTimes 1): resent after W, then after 2W more; then
    no more until the CSMS triggers again (A02.FR.19)."""
    r = Renewal()
    r.answered(USE, True, T0, 60, 1)
    assert r.next_wakeup(T0, NONE) == s(60)
    assert r.due(s(59), NONE) == []
    assert r.due(s(60), NONE) == [USE]
    r.answered(USE, True, s(61), 60, 1)  # the resend's answer does not restart the clock
    assert r.next_wakeup(s(61), NONE) == s(180)
    assert r.due(s(179), NONE) == []
    assert r.due(s(180), NONE) == [USE]
    r.answered(USE, True, s(180), 60, 1)
    assert r.next_wakeup(s(180), NONE) == s(420)
    assert r.due(s(420), NONE) == []  # increments used up
    assert r.next_wakeup(s(420), NONE) is None
    r.triggered(USE)
    r.answered(USE, True, s(500), 60, 1)  # a trigger starts a fresh back-off
    assert r.next_wakeup(s(500), NONE) == s(560)


def test_rejected_or_received_stops_the_backoff() -> None:
    """A02.FR.17 only while no CertificateSigned came; a Rejected SignCertificate
    waits for the CSMS (TC_A_15_CS)."""
    r = Renewal()
    r.answered(USE, False, T0, 60, 3)
    assert r.next_wakeup(T0, NONE) is None
    r.answered(USE, True, T0, 60, 3)
    r.received(USE)
    assert r.due(s(1000), NONE) == [] and r.next_wakeup(s(1000), NONE) is None
    r.answered(USE, True, T0, 0, 3)  # CertSigningWaitMinimum 0: no back-off at all
    assert r.next_wakeup(T0, NONE) is None


def test_renewal_one_month_before_expiry_once_per_certificate() -> None:
    """A03.FR.02: a certificate expiring within `renew_days` gets one renewal CSR; a new
    certificate (new notAfter) will get its own in time."""
    r = Renewal(renew_days=30)
    not_after = T0 + timedelta(days=40)
    expiries: dict[str, datetime | None] = {USE: not_after}
    assert r.next_wakeup(T0, expiries) == T0 + timedelta(days=10)
    assert r.due(T0 + timedelta(days=9), expiries) == []
    assert r.due(T0 + timedelta(days=10), expiries) == [USE]
    assert r.due(T0 + timedelta(days=11), expiries) == []
    assert r.next_wakeup(T0 + timedelta(days=11), expiries) is None
    renewed: dict[str, datetime | None] = {USE: not_after + timedelta(days=365)}
    assert r.next_wakeup(T0 + timedelta(days=12), renewed) == not_after + timedelta(days=335)
    # already inside the window at start: due now
    late = Renewal(renew_days=30)
    assert late.next_wakeup(T0, {USE: T0 + timedelta(days=1)}) == T0
    assert late.due(T0, {USE: T0 + timedelta(days=1)}) == [USE]


def test_certificate_signed_before_the_sign_certificate_answer() -> None:
    """The CSMS may send CertificateSigned before its SignCertificateResponse is read:
    no back-off starts for a CSR already answered with a certificate."""
    r = Renewal()
    r.sent(USE)
    r.received(USE)
    r.answered(USE, True, T0, 60, 3)
    assert r.next_wakeup(T0, NONE) is None
    r.sent(USE)  # the next CSR waits for its own certificate again
    r.answered(USE, True, T0, 60, 3)
    assert r.next_wakeup(T0, NONE) == s(60)


def test_renewal_not_sent_is_tried_again() -> None:
    """A03.FR.02: a renewal CSR that never reached the CSMS (offline, CALL failed) does
    not count as the certificate's one renewal; the retry waits until `retry_at`."""
    r = Renewal(renew_days=30)
    expiries: dict[str, datetime | None] = {USE: T0 + timedelta(days=10)}
    assert r.due(T0, expiries) == [USE]
    r.unsent(USE, s(60))
    assert r.next_wakeup(T0, expiries) == s(60)
    assert r.due(s(59), expiries) == []
    assert r.due(s(60), expiries) == [USE]
    assert r.due(s(61), expiries) == []  # sent this time: once per certificate again
    r.unsent("V2GCertificate", s(9999))  # no renewal begun for it: nothing changes
    assert r.next_wakeup(s(61), {**expiries, "V2GCertificate": None}) is None
