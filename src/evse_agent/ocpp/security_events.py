"""SecurityEventNotification delivery (2.0.1 A04; 1.6 security extension, same
payload: type, timestamp, techInfo), from the security outbox in SQLite.

Why not the transaction queue (ocpp/outbox.py)? Its rules are E13's for transaction
messages: a message is discarded after MessageAttempts failures (E13.FR.04), and the
queue is dropped when the OCPP version changes. A04.FR.02 asks for *guaranteed*
delivery of critical security events, and their payload is the same in both versions,
so they have their own queue: never discarded, kept across a version change, and they
neither wait behind transaction messages nor hold them up.

The event is in SQLite before it is sent (SecurityEventLog.record); it leaves the
outbox when the CSMS answered (A04.FR.03). Events go one at a time, oldest first; a
resend (after a lost connection or a kill -9) is the same frame with the same message
id, so a CSMS that saw the first copy can recognise it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from .connection import CallFailed

if TYPE_CHECKING:
    from ..security.events import PendingNotification, SecurityEventLog

log = logging.getLogger("evse_agent.ocpp")

ACTION = "SecurityEventNotification"
RETRY_MAX_S = 300.0

Send = Callable[[str, dict[str, Any], str], Awaitable[dict[str, Any]]]

# The log keeps 2.0.1's names; the 1.6 security whitepaper (ed. 3, "Security events")
# spells these four differently, and a 1.6 CSMS knows only its own spelling.
V16_NAMES = {
    "FailedToAuthenticateAtCsms": "FailedToAuthenticationAtCentralSystem",
    "CsmsFailedToAuthenticate": "CentralSystemFailedToAuthentication",
    "InvalidCsmsCertificate": "InvalidCentralSystemCertificate",
    "InvalidChargingStationCertificate": "InvalidChargePointCertificate",
}


def payload_for(version: str, payload: dict[str, Any]) -> dict[str, Any]:
    """The notification as `version` spells it."""
    if version == "1.6" and payload.get("type") in V16_NAMES:
        return {**payload, "type": V16_NAMES[payload["type"]]}
    return payload


class SecurityEventSender:
    retry_floor_s = 1.0  # MessageAttemptInterval 0 must not spin on a NotImplemented

    def __init__(self, events: SecurityEventLog, retry_interval: Callable[[], float]) -> None:
        self.events = events
        self._interval = retry_interval
        self._wake = asyncio.Event()
        self.delivered = 0
        self._generation = 0
        events.subscribe(self.notify)

    def notify(self) -> None:
        self._wake.set()

    async def drain(self, send: Send) -> None:
        """Deliver pending notifications until the connection drops (CallFailed
        'closed' propagates); waits for new ones when none is pending. A newer drain
        (the next connection) retires this one, so one copy is in flight at a time."""
        self._generation += 1
        generation = self._generation
        while generation == self._generation:
            pending = self.events.pending()
            if not pending:
                self._wake.clear()
                await self._wake.wait()
                continue
            note = pending[0]
            try:
                await send(ACTION, note.payload, note.message_id)
            except CallFailed as failure:
                if failure.kind == "closed":
                    raise
                await self._failed(note, failure)
                continue
            self.events.confirmed(note.event_id)
            self.delivered += 1

    async def _failed(self, note: PendingNotification, failure: CallFailed) -> None:
        """Kept, and tried again later (A04.FR.02): a CSMS without the 1.6 security
        extension answers NotImplemented forever, so the wait grows to RETRY_MAX_S."""
        self.events.failed_attempt(note.event_id)
        wait = min(RETRY_MAX_S, max(self.retry_floor_s, self._interval()) * (note.attempts + 1))
        log.warning("%s %s failed (%s); trying again in %g s", ACTION, note.payload["type"],
                    failure, wait)
        await asyncio.sleep(wait)


# CALLERROR codes the station answers a malformed or schema-breaking frame with (both
# versions' spellings); NotImplemented, NotSupported, SecurityError, InternalError and
# GenericError are about what the station does, not about the message.
INVALID_MESSAGE_CODES = frozenset({
    "FormatViolation", "FormationViolation", "OccurrenceConstraintViolation",
    "OccurenceConstraintViolation", "PropertyConstraintViolation", "TypeConstraintViolation",
    "ProtocolError", "RpcFrameworkError", "MessageTypeNotSupported",
})
INVALID_MESSAGES_WINDOW_S = 60.0


class InvalidMessageAudit:
    """Watches the frames the station sends: a CALLERROR for an invalid CSMS message is
    an InvalidMessages security event. At most one per INVALID_MESSAGES_WINDOW_S, so a
    CSMS that floods garbage cannot flood the log; the next entry counts the rest."""

    def __init__(
        self, events: SecurityEventLog, monotonic: Callable[[], float],
        inner: Callable[[str, str], None] | None = None,
    ) -> None:
        self.events = events
        self._monotonic = monotonic
        self._inner = inner
        self._last: float | None = None
        self._suppressed = 0

    def __call__(self, direction: str, frame: str) -> None:
        if self._inner is not None:
            self._inner(direction, frame)
        if direction != "->" or not frame.startswith("[4,"):
            return
        try:
            _, message_id, code, description, _details = json.loads(frame)
        except ValueError:
            return
        if code not in INVALID_MESSAGE_CODES:
            return
        now = self._monotonic()
        if self._last is not None and now - self._last < INVALID_MESSAGES_WINDOW_S:
            self._suppressed += 1
            return
        self._last = now
        more = f" (+{self._suppressed} more since the last entry)" if self._suppressed else ""
        self._suppressed = 0
        self.events.record("InvalidMessages", f"{code} for message {message_id}: "
                           f"{description}{more}")
