"""ISO 15118 certificate traffic between the EV bridge and the CSMS (OCPP 2.0.1):
- Plug & Charge (C07): the contract an EV presents becomes an IdToken of type eMAID for
  the core; its Authorize carries iso15118CertificateHashData (C07.FR.02) and, when
  CentralContractValidationAllowed, the contract chain itself (C07.FR.06); the answer's
  certificateStatus goes back to the bridge.
- Contract certificate installation / update (M01.FR.01, M02.FR.01): the EV's EXI
  request passed through untouched as Get15118EVCertificate, the CSMS's exiResponse
  passed back to the bridge.
- OCSP status (M06): the bridge's OCSP request as GetCertificateStatus, the ocspResult
  back; Accepted results are cached for a week (M06.FR.10: refreshed at least weekly),
  in SQLite so a restart does not ask again.
The station does not validate contract certificates itself (it has no MO roots to
check them against); offline, C07.FR.07 applies in the core (ContractValidationOffline).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from evse_hal.interfaces import (
    CertificateStatusRequested,
    ContractCertificatePresented,
    EvCertificateRequested,
    OcspRequestData,
)

from ..core import messages as m
from ..device_model.model import DeviceModel
from ..storage import Storage
from .connection import CallFailed

log = logging.getLogger("evse_agent.ocpp")

Iso15118Event = ContractCertificatePresented | EvCertificateRequested | CertificateStatusRequested
ISO15118_EVENTS = (ContractCertificatePresented, EvCertificateRequested,
                   CertificateStatusRequested)
Call = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]

OCSP_CACHE_KEY = "ocsp_cache"
OCSP_CACHE_TTL = timedelta(days=7)  # M06.FR.10
HASH_DATA_MAX = 4  # Authorize.iso15118CertificateHashData: 1..4 entries
CERTIFICATE_MAX = 5500  # Authorize.certificate


def ocsp_payload(d: OcspRequestData) -> dict[str, str]:
    """OCSPRequestDataType."""
    return {
        "hashAlgorithm": d.hash_algorithm,
        "issuerNameHash": d.issuer_name_hash,
        "issuerKeyHash": d.issuer_key_hash,
        "serialNumber": d.serial_number,
        "responderURL": d.responder_url,
    }


def _cache_key(d: OcspRequestData) -> str:
    return ":".join((d.hash_algorithm, d.issuer_name_hash, d.issuer_key_hash, d.serial_number))


class Iso15118:
    def __init__(
        self,
        dm: DeviceModel,
        storage: Storage,
        now: Callable[[], datetime],
        call: Call,
    ) -> None:
        self.dm = dm
        self.storage = storage
        self._now = now
        self._call = call
        self.bridge_for: Callable[[int], Any] = lambda evse_id: None  # set by the agent
        self._contracts: dict[str, ContractCertificatePresented] = {}  # by eMAID
        self._tasks: set[asyncio.Task[None]] = set()

    def _setting(self, variable: str) -> bool:
        return bool(self.dm.get("ISO15118Ctrlr", variable))

    # -- from the bridge ---------------------------------------------------------------
    def hal_event(self, event: Iso15118Event) -> m.Event | None:
        """Handle an ISO 15118 event; returns the core event it stands for, if any."""
        match event:
            case ContractCertificatePresented():
                if not self._setting("PnCEnabled"):
                    log.info("EVSE %d: contract %s presented but PnCEnabled is false:"
                             " the driver authorizes otherwise", event.evse_id, event.emaid)
                    return None
                self._contracts[event.emaid] = event
                return m.ContractPresented(event.evse_id, m.IdToken(event.emaid, "eMAID"))
            case EvCertificateRequested():
                self._spawn(self._ev_certificate(event))
            case CertificateStatusRequested():
                self._spawn(self._certificate_status(event))
        return None

    # -- Plug & Charge (C07) -------------------------------------------------------------
    def contract_for(self, token: m.IdToken) -> ContractCertificatePresented | None:
        if token.type != "eMAID":
            return None
        return self._contracts.get(token.id_token)

    def authorize_payload(self, contract: ContractCertificatePresented) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "idToken": {"idToken": contract.emaid, "type": "eMAID"},
            "iso15118CertificateHashData": [  # C07.FR.02
                ocsp_payload(d) for d in contract.ocsp_request_data[:HASH_DATA_MAX]
            ],
        }
        if not payload["iso15118CertificateHashData"]:
            del payload["iso15118CertificateHashData"]
        chain = contract.certificate_chain_pem
        if (chain and len(chain) <= CERTIFICATE_MAX
                and self._setting("CentralContractValidationAllowed")):
            payload["certificate"] = chain  # C07.FR.06: the station has no MO root to check
        return payload

    async def authorize(
        self, contract: ContractCertificatePresented
    ) -> tuple[str | None, tuple[int, ...]]:
        """Authorize the contract online; (None, ()) when there is no answer (the core
        then applies C07.FR.07)."""
        try:
            response = await self._call("Authorize", self.authorize_payload(contract))
        except CallFailed as failure:
            log.warning("Authorize of contract %s failed: %s", contract.emaid, failure)
            return None, ()
        info = response["idTokenInfo"]
        status: str = info["status"]
        certificate_status = response.get("certificateStatus")
        if certificate_status not in (None, "Accepted") and status == "Accepted":
            # C07.FR.13-17: a contract whose certificate is not Accepted does not charge.
            log.warning("contract %s: idTokenInfo Accepted but certificateStatus %s:"
                        " refused", contract.emaid, certificate_status)
            status = "Invalid"
        self._tell(contract.evse_id, "contract_authorization", status, certificate_status)
        return status, tuple(info.get("evseId", ()))

    # -- contract certificate installation (M01 / M02) -----------------------------------
    async def _ev_certificate(self, event: EvCertificateRequested) -> None:
        status, exi = "Failed", ""
        if not self._setting("ContractCertificateInstallationEnabled"):
            log.info("EVSE %d: EV asked to %s its contract certificate;"
                     " ContractCertificateInstallationEnabled is false", event.evse_id,
                     event.action.lower())
        else:
            try:
                response = await self._call("Get15118EVCertificate", {
                    "iso15118SchemaVersion": event.iso15118_schema_version,
                    "action": event.action,
                    "exiRequest": event.exi_request,
                })
                status, exi = response["status"], response.get("exiResponse", "")
            except CallFailed as failure:
                log.warning("Get15118EVCertificate failed: %s", failure)
        self._tell(event.evse_id, "ev_certificate_response", status, exi)

    # -- OCSP (M06) ----------------------------------------------------------------------
    def cached_ocsp(self, data: OcspRequestData) -> str | None:
        entry = self.storage.get(OCSP_CACHE_KEY, {}).get(_cache_key(data))
        if entry is None:
            return None
        fetched = datetime.fromisoformat(entry["fetched"])
        if self._now() - fetched > OCSP_CACHE_TTL:
            return None
        return str(entry["ocspResult"])

    def _cache_ocsp(self, data: OcspRequestData, result: str) -> None:
        now = self._now()
        cache = {
            k: v for k, v in self.storage.get(OCSP_CACHE_KEY, {}).items()
            if now - datetime.fromisoformat(v["fetched"]) <= OCSP_CACHE_TTL
        }
        cache[_cache_key(data)] = {"ocspResult": result, "fetched": now.isoformat()}
        self.storage.put(OCSP_CACHE_KEY, cache)

    async def _certificate_status(self, event: CertificateStatusRequested) -> None:
        data = event.ocsp_request_data
        cached = self.cached_ocsp(data)
        if cached is not None:
            log.info("OCSP status of certificate %s from the cache", data.serial_number)
            self._tell(event.evse_id, "certificate_status_response", data, "Accepted", cached)
            return
        status, result = "Failed", None
        try:
            response = await self._call(
                "GetCertificateStatus", {"ocspRequestData": ocsp_payload(data)}
            )
            status, result = response["status"], response.get("ocspResult")
        except CallFailed as failure:
            log.warning("GetCertificateStatus failed: %s", failure)
        if status == "Accepted" and result:
            self._cache_ocsp(data, result)  # M06.FR.06
        else:
            status, result = "Failed", None
        log.info("OCSP status of certificate %s: %s", data.serial_number, status)
        self._tell(event.evse_id, "certificate_status_response", data, status, result)

    # -- helpers -------------------------------------------------------------------------
    def _tell(self, evse_id: int, method: str, *args: Any) -> None:
        """Pass an answer to the EVSE's bridge; a bridge without Plug & Charge support
        lacks the method and is told nothing."""
        handler = getattr(self.bridge_for(evse_id), method, None)
        if handler is None:
            log.warning("EVSE %d: the EV bridge cannot take %s", evse_id, method)
            return
        handler(*args)

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def refuse_on_16(event: Iso15118Event, bridge: Any) -> None:
    """OCPP 1.6 has no ISO 15118 messages (the 1.6 Plug & Charge whitepaper's
    DataTransfer mapping is not implemented): requests fail, contracts are ignored and
    the driver authorizes with a card."""
    log.info("%s on EVSE %d: not available over OCPP 1.6", type(event).__name__,
             event.evse_id)
    if isinstance(event, EvCertificateRequested) and bridge is not None:
        bridge.ev_certificate_response("Failed", "")
    elif isinstance(event, CertificateStatusRequested) and bridge is not None:
        bridge.certificate_status_response(event.ocsp_request_data, "Failed", None)
