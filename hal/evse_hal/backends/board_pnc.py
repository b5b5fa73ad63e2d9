"""Plug & Charge traffic between the EV-communication module and the station, as long
payloads of the board-support port (a kind byte, then UTF-8 JSON with the field names of
evse_hal.interfaces' dataclasses).

From the module:
- CERTIFICATE_HASH_DATA: the EV presented its contract -> ContractCertificatePresented
  `{"emaid": str, "ocsp_request_data": [OCSP, ...], "certificate_chain_pem": str|null}`
- EV_CERTIFICATE_REQUEST: CertificateInstallationReq / CertificateUpdateReq ->
  EvCertificateRequested `{"action": "Install"|"Update", "iso15118_schema_version": str,
  "exi_request": base64}`
- CERTIFICATE_STATUS_REQUEST: OCSP status wanted -> CertificateStatusRequested
  `{"ocsp_request_data": OCSP}`
To the module (the station's answers):
- EV_CERTIFICATE_RESPONSE `{"status": str, "exi_response": base64}`
- CONTRACT_AUTHORIZATION `{"status": str, "certificate_status": str|null}`
- CERTIFICATE_STATUS_RESPONSE `{"ocsp_request_data": OCSP, "status": str,
  "ocsp_result": base64|null}`
where OCSP is `{"hash_algorithm", "issuer_name_hash", "issuer_key_hash",
"serial_number", "responder_url"}`.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from evse_hal.backends.board_messages import DataKind, Iso15118Data
from evse_hal.interfaces import (
    CertificateStatusRequested,
    ContractCertificatePresented,
    EvCertificateRequested,
    OcspRequestData,
)

PncEvent = ContractCertificatePresented | EvCertificateRequested | CertificateStatusRequested
OCSP_FIELDS = tuple(f.name for f in dataclasses.fields(OcspRequestData))


class BadPayload(ValueError):
    """A Plug & Charge payload from the module that does not follow the format."""


def event_from_data(evse_id: int, data: Iso15118Data) -> PncEvent | None:
    """The HAL event a module payload stands for; None for kinds that are not Plug &
    Charge requests. Raises BadPayload for a malformed one."""
    if data.kind not in (DataKind.CERTIFICATE_HASH_DATA, DataKind.EV_CERTIFICATE_REQUEST,
                         DataKind.CERTIFICATE_STATUS_REQUEST):
        return None
    body = _json(data.data)
    try:
        match data.kind:
            case DataKind.CERTIFICATE_HASH_DATA:
                chain = body.get("certificate_chain_pem")
                return ContractCertificatePresented(
                    evse_id,
                    _str(body, "emaid"),
                    tuple(_ocsp(d) for d in body.get("ocsp_request_data", [])),
                    chain if isinstance(chain, str) else None,
                )
            case DataKind.EV_CERTIFICATE_REQUEST:
                action = _str(body, "action")
                if action not in ("Install", "Update"):
                    raise BadPayload(f"action must be Install or Update, got {action!r}")
                return EvCertificateRequested(
                    evse_id, action, _str(body, "iso15118_schema_version"),
                    _str(body, "exi_request"),
                )
            case _:
                return CertificateStatusRequested(evse_id, _ocsp(body.get("ocsp_request_data")))
    except (TypeError, AttributeError) as err:
        raise BadPayload(str(err)) from None


def ev_certificate_response(status: str, exi_response: str) -> Iso15118Data:
    return _data(DataKind.EV_CERTIFICATE_RESPONSE,
                 {"status": status, "exi_response": exi_response})


def contract_authorization(status: str, certificate_status: str | None) -> Iso15118Data:
    return _data(DataKind.CONTRACT_AUTHORIZATION,
                 {"status": status, "certificate_status": certificate_status})


def certificate_status_response(
    request: OcspRequestData, status: str, ocsp_result: str | None
) -> Iso15118Data:
    return _data(DataKind.CERTIFICATE_STATUS_RESPONSE, {
        "ocsp_request_data": dataclasses.asdict(request),
        "status": status,
        "ocsp_result": ocsp_result,
    })


def _data(kind: DataKind, body: dict[str, Any]) -> Iso15118Data:
    return Iso15118Data(kind, json.dumps(body, separators=(",", ":")).encode())


def _json(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as err:
        raise BadPayload(f"not UTF-8 JSON: {err}") from None
    if not isinstance(body, dict):
        raise BadPayload("not a JSON object")
    return body


def _str(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str):
        raise BadPayload(f"{key} must be a string")
    return value


def _ocsp(body: Any) -> OcspRequestData:
    if not isinstance(body, dict):
        raise BadPayload("ocsp_request_data must be an object")
    return OcspRequestData(**{name: _str(body, name) for name in OCSP_FIELDS})
