"""ISO 15118 certificate messages end to end over OCPP 2.0.1, through the mock EV
bridge: Plug & Charge (C07), contract certificate installation (M01.FR.01) and OCSP
status (M06). The mock EV's contract chain is a real X.509 chain; the test recomputes
the OCSP hash data from the certificate the station sends (C07.FR.06) and compares."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from e2e_support import STATION, tx_events

from evse_agent.csms import DevCsms

EMAID = "DEABCC12345678X"
PNC = {"ISO15118Ctrlr": {"PnCEnabled": True, "CentralContractValidationAllowed": True}}
# A real DER OCSPResponse (M06.FR.08/09); the dev CSMS has no responder to sign one.
OCSP_RESULT = base64.b64encode(
    ocsp.OCSPResponseBuilder.build_unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED)
    .public_bytes(Encoding.DER)
).decode()


def contract_answer(certificate_status: str = "Accepted", status: str = "Accepted") -> Any:
    def answer(p: dict[str, Any]) -> dict[str, Any] | None:
        if p["idToken"]["type"] != "eMAID":
            return None
        return {"idTokenInfo": {"status": status}, "certificateStatus": certificate_status}

    return answer


async def logged(st: Any, needle: str, timeout: float = 10) -> None:
    for _ in range(int(timeout * 10)):
        if needle in st.output():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{needle!r} not in the log:\n{st.output()[-3000:]}")


def charging(p: dict[str, Any]) -> bool:
    return p["transactionInfo"].get("chargingState") == "Charging"


async def test_plug_and_charge_authorize_with_certificate_hash_data(
    csms: DevCsms, station_factory: Any
) -> None:
    """TC_C_52_CS: C07.FR.01/02 Authorize with idToken type eMAID and the OCSP data of
    the contract chain; C07.FR.06 the chain in `certificate`; Accepted: the transaction
    runs with the eMAID (C07.FR.14). TC_M_24_CS: the bridge's OCSP request as
    GetCertificateStatus, the answer cached (M06.FR.06/10): a second session does not
    ask again."""
    csms.responses["Authorize"] = contract_answer()
    csms.responses["GetCertificateStatus"] = {"status": "Accepted", "ocspResult": OCSP_RESULT}
    st = station_factory(PNC)
    st.start()
    await csms.wait_for(STATION, "StatusNotification", lambda p: p["evseId"] == 2)
    await st.plug(1, iso15118=True, emaid=EMAID)

    auth = await csms.wait_for(STATION, "Authorize", lambda p: p["idToken"]["type"] == "eMAID")
    assert auth["idToken"] == {"idToken": EMAID, "type": "eMAID"}
    leaf, sub = x509.load_pem_x509_certificates(auth["certificate"].encode())
    assert leaf.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == EMAID
    req = ocsp.OCSPRequestBuilder().add_certificate(leaf, sub, hashes.SHA256()).build()
    leaf_data, sub_data = auth["iso15118CertificateHashData"]
    assert leaf_data == {
        "hashAlgorithm": "SHA256",
        "issuerNameHash": req.issuer_name_hash.hex(),
        "issuerKeyHash": req.issuer_key_hash.hex(),
        "serialNumber": format(leaf.serial_number, "x"),
        "responderURL": "http://ocsp.mo.mock.invalid/",
    }
    # the sub-CA's issuer (the MO root) is not in the chain: its hashes cannot be
    # recomputed here, its serial number and name can
    assert sub_data["serialNumber"] == format(sub.serial_number, "x")
    assert sub_data["issuerNameHash"] == hashlib.sha256(sub.issuer.public_bytes()).hexdigest()

    started = await csms.wait_for(STATION, "TransactionEvent", charging, timeout=15)
    events = tx_events(csms)
    assert any(e.get("idToken") == {"idToken": EMAID, "type": "eMAID"} for e in events)
    assert started["evse"]["id"] == 1

    status_req = await csms.wait_for(STATION, "GetCertificateStatus")
    assert status_req["ocspRequestData"]["responderURL"] == "http://ocsp.cpo.mock.invalid/"
    await logged(st, f"OCSP status of certificate "
                     f"{status_req['ocspRequestData']['serialNumber']}: Accepted")
    size = len(base64.b64decode(OCSP_RESULT))
    await logged(st, f"Accepted ({size} bytes)")  # what the mock bridge got back

    await st.unplug(1)
    await csms.wait_for(STATION, "TransactionEvent", lambda p: p["eventType"] == "Ended")
    since = len(csms.received)
    await st.plug(1, iso15118=True, emaid=EMAID)
    await csms.wait_for(STATION, "Authorize", since=since)
    await logged(st, "from the cache")
    assert not [r for r in csms.received[since:] if r.action == "GetCertificateStatus"]


async def test_revoked_contract_does_not_charge(csms: DevCsms, station_factory: Any) -> None:
    """TC_C_53_CS-like (C07.FR.16): certificateStatus CertificateRevoked; even with
    idTokenInfo Accepted the station does not charge, and the bridge hears the refusal."""
    csms.responses["Authorize"] = contract_answer("CertificateRevoked")
    st = station_factory(PNC)
    st.start()
    await csms.wait_for(STATION, "StatusNotification", lambda p: p["evseId"] == 2)
    await st.plug(1, iso15118=True, emaid=EMAID)
    await csms.wait_for(STATION, "Authorize", lambda p: p["idToken"]["type"] == "eMAID")
    await logged(st, "contract authorization Invalid (certificateStatus CertificateRevoked)")
    await asyncio.sleep(1.0)
    assert not any(charging(e) for e in tx_events(csms))
    state = await st.state()
    assert state["evses"][0]["contactor_closed"] is False


async def test_contract_certificate_installation_round_trip(
    csms: DevCsms, station_factory: Any
) -> None:
    """TC_M_26_CS / M01.FR.01: the EV's CertificateInstallationReq (EXI, base64) goes to
    the CSMS as Get15118EVCertificate action Install, untouched; the exiResponse goes
    back to the EV, which then presents its new contract (Authorize eMAID).
    TC_M_29_CS / M02.FR.01: action Update; Failed: no Authorize follows (TC_M_27_CS)."""
    exi_response = base64.b64encode(b"mock-exi:CertificateInstallationRes").decode()
    csms.responses["Get15118EVCertificate"] = {"status": "Accepted", "exiResponse": exi_response}
    csms.responses["Authorize"] = contract_answer()
    st = station_factory({"ISO15118Ctrlr": {
        "PnCEnabled": True, "ContractCertificateInstallationEnabled": True}})
    st.start()
    await csms.wait_for(STATION, "StatusNotification", lambda p: p["evseId"] == 2)
    await st.plug(2, iso15118=True, emaid=EMAID, certificate_request="Install")
    request = await csms.wait_for(STATION, "Get15118EVCertificate")
    assert request["action"] == "Install"
    assert request["iso15118SchemaVersion"] == "urn:iso:15118:2:2013:MsgDef"
    assert base64.b64decode(request["exiRequest"]) == f"mock-exi:Install:{EMAID}".encode()
    await logged(st, "EVSE 2: EV certificate Accepted")
    auth = await csms.wait_for(STATION, "Authorize", lambda p: p["idToken"]["type"] == "eMAID")
    assert "certificate" not in auth  # CentralContractValidationAllowed is false
    await csms.wait_for(STATION, "TransactionEvent", charging, timeout=15)

    csms.responses["Get15118EVCertificate"] = {"status": "Failed", "exiResponse": ""}
    await st.unplug(2)
    since = len(csms.received)
    await st.plug(2, iso15118=True, emaid=EMAID, certificate_request="Update")
    update = await csms.wait_for(STATION, "Get15118EVCertificate", since=since)
    assert update["action"] == "Update"  # M02.FR.01
    await logged(st, "EVSE 2: EV certificate Failed")
    await asyncio.sleep(0.5)
    assert not [r for r in csms.received[since:] if r.action == "Authorize"]


async def test_pnc_disabled_ignores_the_contract(csms: DevCsms, station_factory: Any) -> None:
    """PnCEnabled false (the default): no contract Authorize; the driver taps a card."""
    st = station_factory()
    st.start()
    await csms.wait_for(STATION, "StatusNotification", lambda p: p["evseId"] == 2)
    await st.plug(1, iso15118=True, emaid=EMAID)
    await logged(st, "PnCEnabled is false")
    await st.tap("CARD-1")
    auth = await csms.wait_for(STATION, "Authorize")
    assert auth["idToken"]["type"] == "ISO14443"
