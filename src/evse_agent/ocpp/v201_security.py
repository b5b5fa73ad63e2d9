"""OCPP 2.0.1 certificate management messages (A02, A03, M03, M04, M05): how 2.0.1
spells what ocpp/certificate_service.py does.

CSMS -> station: CertificateSigned, InstallCertificate, DeleteCertificate,
GetInstalledCertificateIds, TriggerMessage SignChargingStationCertificate /
SignV2GCertificate. Station -> CSMS: SignCertificate.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .certificate_service import CertificateHandlers
from .connection import Reply

if TYPE_CHECKING:
    from .session import Handler

TRIGGERS = {
    "SignChargingStationCertificate": "ChargingStationCertificate",
    "SignV2GCertificate": "V2GCertificate",
}
INVALID_EVENT = "InvalidChargingStationCertificate"


class CertificateHandlers201(CertificateHandlers):
    """Registered by V201Adapter.use_certificates; also the service's CSR sender."""

    def handlers(self) -> dict[str, Handler]:
        return {
            "CertificateSigned": self._certificate_signed,
            "InstallCertificate": self._install,
            "DeleteCertificate": self._delete,
            "GetInstalledCertificateIds": self._installed,
        }

    def trigger(self, requested: str) -> Reply | None:
        """TriggerMessage for a CSR (A02.FR.02: the key pair and the CSR come after the
        response); None when `requested` is not ours."""
        use = TRIGGERS.get(requested)
        if use is None:
            return None
        return Reply({"status": "Accepted"}, self.service.triggered(use))

    async def send_sign_certificate(self, use: str, csr: str) -> dict[str, Any]:
        return await self._call("SignCertificate", {"csr": csr, "certificateType": use})

    # -- CSMS requests ----------------------------------------------------------------------
    async def _certificate_signed(self, p: dict[str, Any]) -> Reply:
        use = p.get("certificateType", "ChargingStationCertificate")
        verdict = self.service.certificate_signed(use, p["certificateChain"], INVALID_EVENT)
        out = {"status": "Accepted" if verdict.accepted else "Rejected"}
        if not verdict.accepted:
            return Reply({**out, "statusInfo": _info(verdict.code, verdict.reason)})
        return Reply(out, self._switch_certificate(use))

    async def _install(self, p: dict[str, Any]) -> Reply:
        verdict = self.service.install(p["certificateType"], p["certificate"])
        out: dict[str, Any] = {"status": verdict.status}
        if verdict.reason:
            out["statusInfo"] = _info(verdict.code if verdict.status == "Rejected"
                                      else "InternalError", verdict.reason)
        return Reply(out)

    async def _delete(self, p: dict[str, Any]) -> Reply:
        verdict = self.service.delete(p["certificateHashData"])
        out: dict[str, Any] = {"status": verdict.status}
        if verdict.reason:
            out["statusInfo"] = _info("NotSupported", verdict.reason)
        return Reply(out)

    async def _installed(self, p: dict[str, Any]) -> Reply:
        found = self.service.installed(p.get("certificateType") or None)
        if not found:
            return Reply({"status": "NotFound"})  # M03.FR.02
        return Reply({"status": "Accepted", "certificateHashDataChain": found})  # M03.FR.03/04


def _info(reason_code: str, text: str) -> dict[str, str]:
    return {"reasonCode": reason_code, "additionalInfo": text[:512]}
