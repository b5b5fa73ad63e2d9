"""The development CSMS as a certificate authority: a SignCertificate it accepts is
answered, right after, by a CertificateSigned with the CSR signed by
`DevCsms.certificate_authority` (2.0.1 A02/A03, 1.6 whitepaper A02/A03). Off unless a
test or `evse-agent csms --sign-csrs FILE` sets one; then a station that installed
the CA's root can run the whole certificate loop against it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import CsmsError
from .session import LOGGER

if TYPE_CHECKING:
    from .server import DevCsms


async def send_signed(
    csms: DevCsms, station_id: str, version: str, csr: str, certificate_type: str | None
) -> None:
    ca = csms.certificate_authority
    if ca is None:
        return
    try:
        chain = ca.sign_csr(csr)
    except ValueError as error:
        LOGGER.warning("%s: CSR not signed: %s", station_id, error)
        return
    payload: dict[str, Any] = {"certificateChain": chain}
    if version == "2.0.1" and certificate_type:
        payload["certificateType"] = certificate_type  # A02.FR.14
    try:
        answer = await csms.call(station_id, "CertificateSigned", payload)
    except CsmsError as error:
        LOGGER.warning("%s: CertificateSigned failed: %s", station_id, error)
        return
    LOGGER.info("%s: CertificateSigned %s", station_id, answer.get("status"))
