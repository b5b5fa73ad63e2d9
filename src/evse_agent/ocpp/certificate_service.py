"""Certificate management shared by both OCPP versions: CSRs and their back-off and
renewal (2.0.1 A02/A03; 1.6 whitepaper A02/A03), CertificateSigned checks, the
root store (M03-M05). The version adapters (v201_security.py, v16_security.py) only
spell the messages; one CertificateService lives as long as the agent, across
version switches, so a back-off or a renewal survives a change of adapter.

Sans I/O apart from `send`: the agent asks `next_wakeup` and calls `tick`; the
adapter in use registers itself as the sender (`attach`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from ..device_model.model import DeviceModel, VariableKey
from ..security.certificates import STATION_USES, Verdict
from ..security.keystore import KeyStoreError, pending
from ..security.renewal import RENEW_DAYS, Renewal
from . import rpc
from .connection import CallFailed

if TYPE_CHECKING:
    from ..security import Security
    from .session import Session

log = logging.getLogger("evse_agent.ocpp")

OFFLINE_POLL = timedelta(seconds=60)  # due CSRs wait for a connection; look again then
# Reading our certificate's notAfter loads `cryptography` (~0.1 s): not during boot.
FIRST_LOOK = timedelta(seconds=10)
RENEWAL_DAYS = ("SecurityCtrlr", "CertificateRenewalDays")  # evse-agent's own variable


def certificate_subject(dm: DeviceModel, serial_number: str, use: str) -> tuple[str, str]:
    """(CN, O) of our certificate for `use`: the serial number BootNotification reports
    and SecurityCtrlr.OrganizationName (A00.FR.511, A00.FR.509; 1.6 A02.FR.13 CpoName);
    for V2G the SECC's ISO15118Ctrlr SeccId / OrganizationName when set."""
    organization = str(dm.get("SecurityCtrlr", "OrganizationName") or "")
    common_name = serial_number
    if use == "V2GCertificate":
        organization = _optional(dm, "ISO15118Ctrlr", "OrganizationName") or organization
        common_name = _optional(dm, "ISO15118Ctrlr", "SeccId") or common_name
    return common_name, organization


def _optional(dm: DeviceModel, component: str, variable: str) -> str:
    try:
        return str(dm.get(component, variable) or "")
    except KeyError:
        return ""


class CsrSender(Protocol):
    """The adapter in use: sends a SignCertificate spelled for its version."""

    online: bool

    async def send_sign_certificate(self, use: str, csr: str) -> dict[str, Any]: ...


class CertificateHandlers:
    """What the 1.6 and 2.0.1 certificate handlers (v16_security.py, v201_security.py)
    share: the session they speak on, `online` for the service, their own CALLs, and
    the switch to a new client certificate."""

    def __init__(self, service: CertificateService, session: Session) -> None:
        self.service = service
        self.session = session

    @property
    def online(self) -> bool:
        return self.session.connected and self.session.registration is not None

    async def _call(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        endpoint = self.session._endpoint
        if endpoint is None:
            raise CallFailed("closed")
        return await self.session._call(endpoint, action, payload, rpc.new_message_id())

    def _switch_certificate(self, use: str) -> Callable[[], Awaitable[None]] | None:
        """2.0.1 A02.FR.08 (errata 2025-01), 1.6 whitepaper A02.FR.08 / A03.FR.08: with a
        client certificate in use (profile 3) the station reconnects to use the new one."""
        if use != "ChargingStationCertificate":
            return None
        if int(self.session.dm.get("SecurityCtrlr", "SecurityProfile") or 0) != 3:
            return None

        async def reconnect() -> None:
            endpoint = self.session._endpoint
            if endpoint is not None:
                log.info("new ChargingStationCertificate: reconnecting to use it (A02.FR.08)")
                await endpoint.ws.close()

        return reconnect


class CertificateService:
    def __init__(
        self,
        security: Security,
        dm: DeviceModel,
        serial_number: str,
        now: Callable[[], datetime],
        rearm: Callable[[], None] = lambda: None,
    ) -> None:
        self.security = security
        self.dm = dm
        self.serial_number = serial_number
        self._now = now
        self._rearm = rearm
        self.renewal = Renewal(self._renew_days())
        self.sender: CsrSender | None = None
        self._expiries: dict[str, datetime | None] | None = None  # read lazily
        self._tasks: set[asyncio.Task[Any]] = set()
        # CertificateEntries counts what is installed now (its maxLimit is the capacity).
        dm.set_getter(VariableKey("SecurityCtrlr", "CertificateEntries"),
                      security.certificates.count)

    def attach(self, sender: CsrSender) -> None:
        self.sender = sender

    def subject(self, use: str) -> tuple[str, str]:
        return certificate_subject(self.dm, self.serial_number, use)

    def _renew_days(self) -> float:
        try:
            return float(self.dm.get(*RENEWAL_DAYS))
        except (KeyError, TypeError, ValueError):
            return RENEW_DAYS

    # -- SignCertificate ------------------------------------------------------------------
    def triggered(self, use: str) -> Callable[[], Awaitable[None]]:
        """TriggerMessage Sign...Certificate: the CSR goes out after the response
        (A02.FR.02), with a fresh back-off."""

        async def go() -> None:
            self.renewal.triggered(use)
            await self.request_csr(use, new_key=True)

        return go

    async def request_csr(self, use: str, new_key: bool) -> bool:
        """A new key pair (A02.FR.02; `new_key`, else the pending one of the CSR being
        resent, A02.FR.17) and its CSR in a SignCertificate (A02.FR.03). True when
        the CSMS accepted it."""
        sender = self.sender
        if sender is None or not sender.online:
            log.warning("SignCertificate for %s not sent: offline", use)
            self._unsent(use)
            return False
        common_name, organization = self.subject(use)
        keys = self.security.keys
        try:
            if new_key or not keys.has_key(pending(use)):
                await asyncio.to_thread(keys.generate, pending(use))  # RSA takes a while
            csr = keys.csr(pending(use), common_name, organization)
        except (KeyStoreError, OSError, ValueError) as err:
            log.error("cannot make a CSR for %s: %s", use, err)
            return False
        self.renewal.sent(use)
        try:
            response = await sender.send_sign_certificate(use, csr)
        except CallFailed as failure:
            log.warning("SignCertificate for %s failed: %s", use, failure)
            self.renewal.answered(use, False, self._now(), 0, 0)
            self._unsent(use)
            return False
        accepted = response.get("status") == "Accepted"
        log.info("SignCertificate for %s: %s", use, response.get("status"))
        self.renewal.answered(
            use, accepted, self._now(),
            float(self.dm.get("SecurityCtrlr", "CertSigningWaitMinimum") or 0),
            int(self.dm.get("SecurityCtrlr", "CertSigningRepeatTimes") or 0),
        )
        self._rearm()
        return accepted

    def _unsent(self, use: str) -> None:
        """A renewal whose CSR did not get through is tried again (A03.FR.02), at the
        offline poll's pace so a CSMS answering CALLERROR is not flooded."""
        self.renewal.unsent(use, self._now() + OFFLINE_POLL)
        self._rearm()

    # -- timers ----------------------------------------------------------------------------
    def expiries(self) -> dict[str, datetime | None]:
        if self._expiries is None:
            self._expiries = {use: self._not_after(use) for use in STATION_USES}
        return self._expiries

    def _not_after(self, use: str) -> datetime | None:
        if self.security.certificates.station_chain_pem(use) is None:
            return None  # no certificate: nothing to renew, no cryptography import
        try:
            return self.security.certificates.station_chain(use)[0].not_valid_after_utc
        except Exception as err:  # noqa: BLE001 - a damaged file must not stop the agent
            log.error("%s: unreadable certificate: %s", use, err)
            return None

    def next_wakeup(self, now: datetime) -> datetime | None:
        expiries = self._expiries if self._expiries is not None else {}
        wake = self.renewal.next_wakeup(now, expiries)
        if self._expiries is None:  # tick() reads them
            wake = min(now + FIRST_LOOK, wake or now + FIRST_LOOK)
        if wake is not None and wake <= now and not (self.sender and self.sender.online):
            return now + OFFLINE_POLL
        return wake

    def tick(self, now: datetime) -> None:
        expiries = self.expiries()
        if self.sender is None or not self.sender.online:
            return
        self.renewal.renew_days = self._renew_days()
        for use in self.renewal.due(now, expiries):
            resend = self.renewal.waiting(use)
            if resend:
                log.info("no CertificateSigned for %s yet: sending the CSR again", use)
            else:
                log.info("%s expires within %g days: renewing", use, self.renewal.renew_days)
            task = asyncio.ensure_future(self.request_csr(use, new_key=not resend))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    # -- CertificateSigned ------------------------------------------------------------------
    def certificate_signed(self, use: str, chain_pem: str, invalid_event: str) -> Verdict:
        """A02.FR.06/07/16: check, store, make current; on failure Rejected and the
        security event (`invalid_event`: the version's name for it)."""
        self.renewal.received(use)
        common_name, organization = self.subject(use)
        verdict = self.security.certificates.accept_signed(
            use, chain_pem, self.security.keys, self._now(),
            common_name=common_name, organization=organization or None,
            max_chain_size=int(self.dm.get("SecurityCtrlr", "MaxCertificateChainSize") or 0),
        )
        if verdict.accepted:
            self._expiries = None
            self.expiries()  # cryptography is loaded by now
            self._rearm()
        else:
            log.warning("CertificateSigned for %s rejected: %s", use, verdict.reason)
            self.security.events.record(invalid_event, verdict.reason[:255])
        return verdict

    def connected_with_current(self, client_certificate: bool, new_root: bool) -> None:
        """For the connection code: a TLS connection succeeded with the current client
        certificate (profile 3) and/or the newest CSMS root (not the fallback). What was
        kept for a fallback goes: the old client certificate and key (A02.FR.10, errata
        2025-01), the replaced CSMS root (M05.FR.13)."""
        from ..security.keystore import previous

        if client_certificate:
            use = "ChargingStationCertificate"
            self.security.certificates.discard_previous(use)
            delete = getattr(self.security.keys, "delete", None)
            if delete is not None:
                delete(previous(use))
        if new_root:
            self.security.certificates.discard_fallback_roots()

    # -- roots -------------------------------------------------------------------------------
    def install(self, certificate_type: str, pem: str) -> Verdict:
        verdict = self.security.certificates.install_root(
            certificate_type, pem, self._now(), self.max_entries(),
            additional_root_check=bool(
                self.dm.get("SecurityCtrlr", "AdditionalRootCertificateCheck")
            ),
        )
        if not verdict.accepted:
            log.warning("InstallCertificate %s: %s (%s)", certificate_type, verdict.status,
                        verdict.reason)
        return verdict

    def max_entries(self) -> int | None:
        var = self.dm.find(VariableKey("SecurityCtrlr", "CertificateEntries"))
        return int(var.max_limit) if var is not None and var.max_limit else None

    def delete(self, hash_data: dict[str, Any]) -> Verdict:
        in_use = int(self.dm.get("SecurityCtrlr", "SecurityProfile") or 0) >= 2
        verdict = self.security.certificates.delete(hash_data, csms_root_in_use=in_use)
        if verdict.status == "Failed":
            log.warning("DeleteCertificate refused: %s", verdict.reason)
        return verdict

    def installed(self, types: list[str] | None) -> list[dict[str, Any]]:
        return self.security.certificates.installed(types)
