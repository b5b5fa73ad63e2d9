"""OCPP 1.6 security extension (whitepaper edition 3): certificate management and
ExtendedTriggerMessage, spelled for 1.6 on top of ocpp/certificate_service.py.

CSMS -> station: CertificateSigned, InstallCertificate, DeleteCertificate,
GetInstalledCertificateIds, ExtendedTriggerMessage. Station -> CSMS: SignCertificate
(a CSR only: 1.6 has one certificate of its own, the ChargePointCertificate).
The configuration keys (CertificateSignedMaxChainSize, CertificateStoreMaxLength,
CpoName, AdditionalRootCertificateCheck, CertSigningWaitMinimum,
CertSigningRepeatTimes) are views of SecurityCtrlr (config/device_model/ocpp16_keys.toml).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .certificate_service import CertificateHandlers
from .connection import CallFailed, Reply

if TYPE_CHECKING:
    from .session import Handler
    from .v16_requests import RequestHandlers16

USE = "ChargingStationCertificate"  # 1.6's ChargePointCertificate, in the store's words
# The security log is one for both versions and speaks the 2.0.1 names (OCA appendix);
# the whitepaper calls this one InvalidChargePointCertificate.
INVALID_EVENT = "InvalidChargingStationCertificate"
ROOT_TYPES = {  # 1.6 CertificateUseEnumType -> the store's (2.0.1) names
    "CentralSystemRootCertificate": "CSMSRootCertificate",
    "ManufacturerRootCertificate": "ManufacturerRootCertificate",
}
# Requested messages the plain TriggerMessage already knows how to send (§5.17).
PLAIN_TRIGGERS = ("BootNotification", "Heartbeat", "MeterValues", "StatusNotification")


class CertificateHandlers16(CertificateHandlers):
    """Registered by V16Adapter.use_certificates; also the service's CSR sender."""

    session: RequestHandlers16

    def handlers(self) -> dict[str, Handler]:
        return {
            "CertificateSigned": self._certificate_signed,
            "InstallCertificate": self._install,
            "DeleteCertificate": self._delete,
            "GetInstalledCertificateIds": self._installed,
            "ExtendedTriggerMessage": self._extended_trigger,
        }

    async def send_sign_certificate(self, use: str, csr: str) -> dict[str, Any]:
        if use != USE:  # a V2G certificate cannot be asked for, nor returned, in 1.6
            raise CallFailed("invalid", f"OCPP 1.6 has no SignCertificate for {use}")
        return await self._call("SignCertificate", {"csr": csr})

    # -- CSMS requests ----------------------------------------------------------------------
    async def _certificate_signed(self, p: dict[str, Any]) -> Reply:
        verdict = self.service.certificate_signed(USE, p["certificateChain"], INVALID_EVENT)
        if not verdict.accepted:
            return Reply({"status": "Rejected"})
        return Reply({"status": "Accepted"}, self._switch_certificate(USE))  # A02/A03.FR.08

    async def _install(self, p: dict[str, Any]) -> Reply:
        verdict = self.service.install(ROOT_TYPES[p["certificateType"]], p["certificate"])
        return Reply({"status": verdict.status})

    async def _delete(self, p: dict[str, Any]) -> Reply:
        return Reply({"status": self.service.delete(p["certificateHashData"]).status})

    async def _installed(self, p: dict[str, Any]) -> Reply:
        found = self.service.installed([ROOT_TYPES[p["certificateType"]]])
        if not found:
            return Reply({"status": "NotFound"})  # M03.FR.02
        return Reply({
            "status": "Accepted",
            "certificateHashData": [entry["certificateHashData"] for entry in found],
        })

    async def _extended_trigger(self, p: dict[str, Any]) -> Reply:
        """Whitepaper §5.5: TriggerMessage with the security extension's messages."""
        what = p["requestedMessage"]
        if what == "SignChargePointCertificate":
            return Reply({"status": "Accepted"}, self.service.triggered(USE))
        if what in PLAIN_TRIGGERS:
            return await self.session._trigger(p)
        connector_id = p.get("connectorId")
        if connector_id not in (None, 0) and connector_id not in self.session.port.evse_ids():
            return Reply({"status": "Rejected"})
        # The log and firmware features answer for themselves; without them nothing runs:
        # Idle, which the whitepaper allows only in answer to this trigger.
        if what == "LogStatusNotification" and self.session.logs is not None:
            return self.session.logs.trigger_log()  # Uploading while one runs (v16_logs.py)
        if what == "LogStatusNotification":
            return self.session.triggered("LogStatusNotification", [{"status": "Idle"}])
        if what == "FirmwareStatusNotification" and self.session.firmware is not None:
            return self.session.firmware.trigger_signed()  # the update's status (v16_firmware)
        if what == "FirmwareStatusNotification":
            return self.session.triggered("SignedFirmwareStatusNotification",
                                          [{"status": "Idle"}])
        return Reply({"status": "NotImplemented"})
