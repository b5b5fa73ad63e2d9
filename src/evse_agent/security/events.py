"""The security log (2.0.1 A04; 1.6 security whitepaper "Security Events").

Every security event is appended to SQLite (A04.FR.04); a critical one is, in the same
commit, put on the security outbox, from which ocpp/security_events.py sends it as a
SecurityEventNotification when the station is online (A04.FR.01/02: queued while
offline, guaranteed delivery). The log is append-only: a trigger refuses updates, and
the only deletes are the rolling retention below (A04.FR.04 note: "a rolling format"),
which never drops an event the CSMS has not confirmed yet.

Event names and which ones are critical: the OCA appendix "Security Events" list
(security_events.csv of the v1.4 appendices), copied into SECURITY_EVENTS below; the
test tests/unit/test_security_events.py checks the copy against tests/data.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..storage import Storage

log = logging.getLogger("evse_agent.security")

# name -> critical (OCPP 2.0.1 appendices v1.4, "Security Events")
SECURITY_EVENTS: dict[str, bool] = {
    "FirmwareUpdated": True,
    "FailedToAuthenticateAtCsms": False,
    "CsmsFailedToAuthenticate": False,
    "SettingSystemTime": True,
    "StartupOfTheDevice": True,
    "ResetOrReboot": True,
    "SecurityLogWasCleared": True,
    "ReconfigurationOfSecurityParameters": False,
    "MemoryExhaustion": True,
    "InvalidMessages": False,
    "AttemptedReplayAttacks": False,
    "TamperDetectionActivated": True,
    "InvalidFirmwareSignature": True,
    "InvalidFirmwareSigningCertificate": True,
    "InvalidCsmsCertificate": True,
    "InvalidChargingStationCertificate": True,
    "InvalidTLSVersion": True,
    "InvalidTLSCipherSuite": True,
    "MaintenanceLoginAccepted": True,
    "MaintenanceLoginFailed": True,
}

TYPE_MAX = 50  # SecurityEventNotification.type, both versions
TECH_INFO_MAX = 255  # techInfo, both versions
RETAINED = 10_000  # rows kept by the rolling log
_TRIM_EVERY = 100


@dataclass(frozen=True)
class SecurityEvent:
    id: int  # order of recording
    timestamp: datetime
    type: str
    tech_info: str | None
    critical: bool


@dataclass(frozen=True)
class PendingNotification:
    """A critical event the CSMS has not confirmed: its message, identical on every try."""

    event_id: int
    message_id: str
    attempts: int
    payload: dict[str, str]


def is_critical(type: str) -> bool:
    return SECURITY_EVENTS.get(type, False)


def timestamp_text(moment: datetime) -> str:
    """RFC 3339 UTC with milliseconds and 'Z', as every message of the station."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{moment.microsecond // 1000:03d}Z"
    )


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class SecurityEventLog:
    def __init__(self, storage: Storage, now: Callable[[], datetime]) -> None:
        self.storage = storage
        self._now = now
        self._listeners: list[Callable[[], None]] = []

    def subscribe(self, callback: Callable[[], None]) -> None:
        """`callback()` after a critical event was queued (wakes the sender)."""
        self._listeners.append(callback)

    def record(self, type: str, tech_info: str | None = None) -> None:
        """Append to the SQLite security log (append-only); if the event is critical
        (OCA appendix security events CSV), queue a SecurityEventNotification durably
        (sent when online, in order, never lost). Safe to call from any module, on
        the event loop's thread (it shares the agent's SQLite connection)."""
        if type not in SECURITY_EVENTS:
            log.warning("security event %r is not in the OCPP list: recorded as non-critical",
                        type)
        type = type[:TYPE_MAX]
        if tech_info is not None:
            tech_info = tech_info[:TECH_INFO_MAX]
        critical = is_critical(type)
        when = timestamp_text(self._now())
        with self.storage.transaction() as db:
            cur = db.execute(
                "INSERT INTO security_log (timestamp, type, tech_info, critical)"
                " VALUES (?, ?, ?, ?)",
                (when, type, tech_info, int(critical)),
            )
            event_id = int(cur.lastrowid or 0)
            if critical:
                db.execute(
                    "INSERT INTO security_outbox (event_id, message_id) VALUES (?, ?)",
                    (event_id, str(uuid.uuid4())),
                )
        log.info("security event %s%s%s", type, " (critical)" if critical else "",
                 f": {tech_info}" if tech_info else "")
        if event_id % _TRIM_EVERY == 0:
            self._trim()
        if critical:
            for callback in self._listeners:
                callback()

    def entries(
        self, oldest: datetime | None = None, latest: datetime | None = None
    ) -> list[SecurityEvent]:
        """The log in recording order, optionally limited to [oldest, latest] (GetLog
        SecurityLog: oldestTimestamp / latestTimestamp)."""
        rows = self.storage.db.execute(
            "SELECT id, timestamp, type, tech_info, critical FROM security_log ORDER BY id"
        ).fetchall()
        events = [SecurityEvent(r[0], _parse(r[1]), r[2], r[3], bool(r[4])) for r in rows]
        return [
            e for e in events
            if (oldest is None or e.timestamp >= oldest)
            and (latest is None or e.timestamp <= latest)
        ]

    # -- the security outbox (ocpp/security_events.py) ---------------------------------
    def pending(self) -> list[PendingNotification]:
        rows = self.storage.db.execute(
            "SELECT o.event_id, o.message_id, o.attempts, l.timestamp, l.type, l.tech_info"
            " FROM security_outbox o JOIN security_log l ON l.id = o.event_id"
            " ORDER BY o.event_id"
        ).fetchall()
        out = []
        for event_id, message_id, attempts, when, type, tech_info in rows:
            payload = {"type": type, "timestamp": when}
            if tech_info:
                payload["techInfo"] = tech_info
            out.append(PendingNotification(event_id, message_id, attempts, payload))
        return out

    def confirmed(self, event_id: int) -> None:
        """The CSMS answered the notification (A04.FR.03): it leaves the outbox."""
        with self.storage.transaction() as db:
            db.execute("DELETE FROM security_outbox WHERE event_id=?", (event_id,))

    def failed_attempt(self, event_id: int) -> None:
        with self.storage.transaction() as db:
            db.execute(
                "UPDATE security_outbox SET attempts=attempts+1 WHERE event_id=?", (event_id,)
            )

    def _trim(self) -> None:
        """Rolling log: keep the newest RETAINED rows, never an unconfirmed one."""
        with self.storage.transaction() as db:
            db.execute(
                "DELETE FROM security_log WHERE id <= (SELECT MAX(id) FROM security_log) - ?"
                " AND id NOT IN (SELECT event_id FROM security_outbox)",
                (RETAINED,),
            )
