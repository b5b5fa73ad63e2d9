"""The security log (A04.FR.04) and SecurityEventNotification delivery (A04.FR.01-03):
append-only, the OCA list's critical flags, in order, once, never lost across a
restart. Payloads are checked against the official schemas of both OCPP versions."""

from __future__ import annotations

import asyncio
import csv
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from ocpp.messages import get_validator

from evse_agent.ocpp.connection import CallFailed
from evse_agent.ocpp.security_events import SecurityEventSender
from evse_agent.security import events as ev
from evse_agent.security.events import SECURITY_EVENTS, SecurityEventLog
from evse_agent.storage import Storage

DATA = Path(__file__).parent.parent / "data"
T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def open_log(path: Path, clock: Clock | None = None) -> SecurityEventLog:
    return SecurityEventLog(Storage(path / "a.db"), clock or Clock())


def test_event_table_is_the_oca_list() -> None:
    """Names and Critical flags exactly as the OCA appendix (security_events.csv)."""
    with open(DATA / "oca-security-events.csv", encoding="utf-8") as f:
        rows = {r["Security Event"]: r["Critical"] == "Yes" for r in csv.DictReader(f, delimiter=";")}
    assert SECURITY_EVENTS == rows


def test_every_event_is_logged_and_only_critical_ones_queued(tmp_path: Path) -> None:
    """A04.FR.04: every event stored; A04.FR.01: the critical ones become notifications."""
    clock = Clock()
    log = open_log(tmp_path, clock)
    for name in ("StartupOfTheDevice", "InvalidMessages", "ResetOrReboot"):
        log.record(name, f"info {name}")
        clock.now += timedelta(seconds=1)
    assert [e.type for e in log.entries()] == ["StartupOfTheDevice", "InvalidMessages",
                                               "ResetOrReboot"]
    assert [e.critical for e in log.entries()] == [True, False, True]
    pending = log.pending()
    assert [p.payload["type"] for p in pending] == ["StartupOfTheDevice", "ResetOrReboot"]
    assert pending[0].payload == {
        "type": "StartupOfTheDevice", "timestamp": "2026-01-01T12:00:00.000Z",
        "techInfo": "info StartupOfTheDevice",
    }
    for p in pending:  # the same payload serves 2.0.1 and the 1.6 security extension
        get_validator(2, "SecurityEventNotification", "2.0.1").validate(p.payload)
        get_validator(2, "SecurityEventNotification", "1.6").validate(p.payload)


def test_log_is_append_only(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    log.record("StartupOfTheDevice")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        with log.storage.transaction() as db:
            db.execute("UPDATE security_log SET type='Nothing'")
    assert log.entries()[0].type == "StartupOfTheDevice"


def test_limits_of_the_message_are_kept(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    log.record("TamperDetectionActivated", "x" * 400)
    log.record("VendorSpecificSomething" * 5)  # not in the list: logged, not critical
    payload = log.pending()[0].payload
    assert len(payload["techInfo"]) == 255
    get_validator(2, "SecurityEventNotification", "2.0.1").validate(payload)
    assert len(log.entries()[1].type) == 50 and not log.entries()[1].critical
    assert len(log.pending()) == 1


def test_entries_between_times(tmp_path: Path) -> None:
    """What GetLog SecurityLog needs: oldestTimestamp / latestTimestamp."""
    clock = Clock()
    log = open_log(tmp_path, clock)
    for minute in range(5):
        clock.now = T0 + timedelta(minutes=minute)
        log.record("InvalidMessages", str(minute))
    got = log.entries(T0 + timedelta(minutes=1), T0 + timedelta(minutes=3))
    assert [e.tech_info for e in got] == ["1", "2", "3"]
    assert got[0].timestamp == T0 + timedelta(minutes=1)


def test_pending_survives_restart_with_the_same_message(tmp_path: Path) -> None:
    """A04.FR.02: queued durably; a resend after a restart is the same frame."""
    log = open_log(tmp_path)
    log.record("StartupOfTheDevice")
    log.record("ResetOrReboot", "Immediate")
    before = log.pending()
    log.storage.close()
    again = open_log(tmp_path)
    assert again.pending() == before
    again.confirmed(before[0].event_id)
    assert [p.payload["type"] for p in again.pending()] == ["ResetOrReboot"]
    assert len(again.entries()) == 2  # confirming does not remove it from the log


def test_rolling_retention_keeps_unconfirmed_events(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setattr(ev, "RETAINED", 10)
    log = open_log(tmp_path)
    log.record("StartupOfTheDevice")  # critical, never confirmed
    for _ in range(199):
        log.record("InvalidMessages")
    kept = log.entries()
    assert kept[0].type == "StartupOfTheDevice" and kept[0].id == 1
    assert len(kept) == 11
    assert [p.event_id for p in log.pending()] == [1]


class FakeCsms:
    def __init__(self, fail_first: int = 0, kind: str = "error") -> None:
        self.got: list[tuple[str, dict[str, Any], str]] = []
        self.fail = fail_first
        self.kind = kind

    async def send(self, action: str, payload: dict[str, Any], mid: str) -> dict[str, Any]:
        self.got.append((action, payload, mid))
        if self.fail:
            self.fail -= 1
            raise CallFailed(self.kind, "no", "NotImplemented" if self.kind == "error" else None)
        return {}


async def _drain_until(sender: SecurityEventSender, csms: FakeCsms, count: int) -> None:
    task = asyncio.ensure_future(sender.drain(csms.send))
    for _ in range(200):
        if sender.delivered >= count:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_sender_delivers_in_order_once(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    for name in ("StartupOfTheDevice", "InvalidMessages", "ResetOrReboot", "FirmwareUpdated"):
        log.record(name)
    sender = SecurityEventSender(log, lambda: 0)
    csms = FakeCsms()
    await _drain_until(sender, csms, 3)
    assert [g[1]["type"] for g in csms.got] == [
        "StartupOfTheDevice", "ResetOrReboot", "FirmwareUpdated"]
    assert {g[0] for g in csms.got} == {"SecurityEventNotification"}
    assert log.pending() == []


async def test_sender_wakes_for_new_events(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    sender = SecurityEventSender(log, lambda: 0)
    csms = FakeCsms()
    task = asyncio.ensure_future(sender.drain(csms.send))
    await asyncio.sleep(0.02)
    log.record("TamperDetectionActivated")
    for _ in range(100):
        if sender.delivered:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert [g[1]["type"] for g in csms.got] == ["TamperDetectionActivated"]


async def test_closed_connection_keeps_the_event_and_resends_it_identically(
    tmp_path: Path,
) -> None:
    log = open_log(tmp_path)
    log.record("StartupOfTheDevice")
    sender = SecurityEventSender(log, lambda: 0)
    csms = FakeCsms(fail_first=1, kind="closed")
    with pytest.raises(CallFailed):
        await sender.drain(csms.send)
    assert len(log.pending()) == 1
    await _drain_until(sender, csms, 1)
    assert csms.got[0] == csms.got[1]  # same message id, same payload
    assert log.pending() == []


async def test_callerror_is_retried_never_discarded(tmp_path: Path) -> None:
    """A04.FR.02 guaranteed delivery, unlike E13.FR.04's MessageAttempts discard."""
    log = open_log(tmp_path)
    log.record("StartupOfTheDevice")
    sender = SecurityEventSender(log, lambda: 0)
    sender.retry_floor_s = 0.01
    csms = FakeCsms(fail_first=5)
    await _drain_until(sender, csms, 1)
    assert len(csms.got) == 6 and log.pending() == []


async def test_a_newer_drain_retires_the_old_one(tmp_path: Path) -> None:
    """A drain left behind by a dropped connection never sends a second copy."""
    log = open_log(tmp_path)
    sender = SecurityEventSender(log, lambda: 0)
    old, new = FakeCsms(), FakeCsms()
    first = asyncio.ensure_future(sender.drain(old.send))
    await asyncio.sleep(0.01)
    second = asyncio.ensure_future(sender.drain(new.send))
    await asyncio.sleep(0.01)
    log.record("StartupOfTheDevice")
    for _ in range(100):
        if sender.delivered:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    assert first.done() and old.got == []
    assert [g[1]["type"] for g in new.got] == ["StartupOfTheDevice"]
    second.cancel()
    await asyncio.gather(second, return_exceptions=True)


def test_v16_spells_the_whitepaper_names() -> None:
    """1.6 security whitepaper ed. 3, "Security events": four events have 1.6 names;
    the rest are spelled alike, and 2.0.1 keeps the OCA appendix names."""
    from evse_agent.ocpp.security_events import payload_for

    note = {"type": "InvalidCsmsCertificate", "timestamp": "2026-01-01T00:00:00Z"}
    assert payload_for("1.6", note)["type"] == "InvalidCentralSystemCertificate"
    assert payload_for("2.0.1", note)["type"] == "InvalidCsmsCertificate"
    assert payload_for("1.6", {"type": "FailedToAuthenticateAtCsms"})["type"] == (
        "FailedToAuthenticationAtCentralSystem"
    )
    assert payload_for("1.6", {"type": "InvalidChargingStationCertificate"})["type"] == (
        "InvalidChargePointCertificate"
    )
    assert payload_for("1.6", {"type": "StartupOfTheDevice"})["type"] == "StartupOfTheDevice"
