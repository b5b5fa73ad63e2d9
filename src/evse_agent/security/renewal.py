"""When to send a SignCertificate, sans I/O: the back-off when the CSMS accepted a CSR
but no CertificateSigned follows (2.0.1 A02.FR.17-19, A03.FR.17-19; 1.6 whitepaper
CertSigningWaitMinimum / CertSigningRepeatTimes), and renewal of a certificate that
will expire soon (A03.FR.02: "in one month"; `renew_days`).

The adapter tells it what happened (`sent`, `answered`, `received`, `triggered`) and
asks, on every tick, which certificate uses need a SignCertificate now (`due`) and
when to wake up next (`next_wakeup`). No clocks, no sockets: tests feed times.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

RENEW_DAYS = 30.0  # A03.FR.02: "will expire in one month"


@dataclass
class _Waiting:
    """A CSR the CSMS accepted, waiting for its CertificateSigned."""

    deadline: datetime
    wait_s: float
    resends_left: int


class Renewal:
    def __init__(self, renew_days: float = RENEW_DAYS) -> None:
        self.renew_days = renew_days
        self._waiting: dict[str, _Waiting] = {}
        self._resending: set[str] = set()  # a back-off resend is on its way
        self._received: set[str] = set()  # CertificateSigned came since the last CSR went
        self._renewed_for: dict[str, datetime] = {}  # use -> notAfter a renewal began for
        self._retry_at: dict[str, datetime] = {}  # use -> no renewal try before then

    # -- what happened ------------------------------------------------------------------
    def sent(self, use: str) -> None:
        """A SignCertificate is about to go out."""
        self._received.discard(use)

    def answered(
        self, use: str, accepted: bool, now: datetime, wait_minimum_s: float, repeat_times: int
    ) -> None:
        """The CSMS answered a SignCertificate. Accepted: the back-off starts (or, for a
        resend, goes on as `due` already advanced it). Rejected: no retries (A02.FR.20
        spirit: the CSMS must trigger again)."""
        resend = use in self._resending
        self._resending.discard(use)
        if use in self._received:
            return  # the CSMS was quick: its CertificateSigned overtook this answer
        if not accepted:
            self._waiting.pop(use, None)
            return
        if resend and use in self._waiting:
            return
        if wait_minimum_s <= 0:
            self._waiting.pop(use, None)  # CertSigningWaitMinimum 0: no back-off
            return
        # TC_A_23_CS with CertSigningRepeatTimes 1 expects two resends, after W and
        # after 2W: the first wait is not an increment, each doubling is (A02.FR.18/19).
        self._waiting[use] = _Waiting(
            now + timedelta(seconds=wait_minimum_s), wait_minimum_s, max(0, repeat_times) + 1
        )

    def received(self, use: str) -> None:
        """A CertificateSigned for this use arrived (valid or not): stop resending
        (A02.FR.17 applies only while none was received; A02.FR.20 after a Rejected)."""
        self._waiting.pop(use, None)
        self._resending.discard(use)
        self._received.add(use)

    def unsent(self, use: str, retry_at: datetime) -> None:
        """The CSR did not reach the CSMS (offline, or the CALL failed): the renewal
        begun for this certificate is tried again, not before `retry_at` (A03.FR.02)."""
        if self._renewed_for.pop(use, None) is not None:
            self._retry_at[use] = retry_at

    def triggered(self, use: str) -> None:
        """The CSMS asked for a CSR (TriggerMessage): a fresh back-off follows its answer."""
        self._waiting.pop(use, None)
        self._resending.discard(use)

    # -- what to do -----------------------------------------------------------------------
    def due(self, now: datetime, expiries: dict[str, datetime | None]) -> list[str]:
        """The uses to send a SignCertificate for now, in a stable order. `expiries`:
        each installed certificate's notAfter (None: no certificate)."""
        out: list[str] = []
        for use, waiting in list(self._waiting.items()):
            if now < waiting.deadline:
                continue
            if waiting.resends_left <= 0:
                del self._waiting[use]  # A02.FR.19: stop until triggered
                continue
            waiting.resends_left -= 1
            waiting.wait_s *= 2  # A02.FR.18
            waiting.deadline = now + timedelta(seconds=waiting.wait_s)
            self._resending.add(use)
            out.append(use)
        for use, not_after in expiries.items():
            if not_after is None or use in self._waiting or use in out:
                continue
            if self._renewed_for.get(use) == not_after:
                continue  # one renewal per certificate; then the back-off or the CSMS
            if now < self._retry_at.get(use, now):
                continue
            if now >= not_after - timedelta(days=self.renew_days):
                self._renewed_for[use] = not_after
                self._retry_at.pop(use, None)
                out.append(use)
        return out

    def next_wakeup(self, now: datetime, expiries: dict[str, datetime | None]) -> datetime | None:
        wakes = [w.deadline for w in self._waiting.values()]
        for use, not_after in expiries.items():
            if not_after is not None and self._renewed_for.get(use) != not_after:
                wakes.append(max(now, not_after - timedelta(days=self.renew_days),
                                 self._retry_at.get(use, now)))
        return min(wakes, default=None)

    def waiting(self, use: str) -> bool:
        return use in self._waiting
