"""ocpp/iso15118.py without a socket: the messages it builds are valid against the
2.0.1 schemas (Authorize C07.FR.02/06, Get15118EVCertificate M01.FR.01/M02.FR.01,
GetCertificateStatus M06), certificateStatus handling (C07.FR.13-17), the OCSP cache
(M06.FR.06, refreshed weekly M06.FR.10), and the mock EV bridge's side."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from evse_hal.interfaces import (
    CertificateStatusRequested,
    ContractCertificatePresented,
    EvCertificateRequested,
)
from evse_hal.mock import pki
from evse_hal.mock.evse import MockEvse
from ocpp.messages import get_validator

from evse_agent.core import messages as m
from evse_agent.device_model.model import DeviceModel, VariableKey
from evse_agent.ocpp.connection import CallFailed
from evse_agent.ocpp.iso15118 import Iso15118, refuse_on_16
from evse_agent.storage import Storage

EMAID = "DEABCC12345678X"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


class FakeBridge:
    def __init__(self) -> None:
        self.told: list[tuple[str, tuple[Any, ...]]] = []

    def ev_certificate_response(self, *args: Any) -> None:
        self.told.append(("ev_certificate_response", args))

    def contract_authorization(self, *args: Any) -> None:
        self.told.append(("contract_authorization", args))

    def certificate_status_response(self, *args: Any) -> None:
        self.told.append(("certificate_status_response", args))


class FakeCsms:
    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, dict[str, Any]]] = []

    async def call(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        get_validator(2, action, "2.0.1").validate(payload)
        self.calls.append((action, payload))
        answer = self.answers[action]
        if isinstance(answer, Exception):
            raise answer
        get_validator(3, action, "2.0.1").validate(answer)
        return dict(answer)


def make(tmp_path: Path, answers: dict[str, Any], **settings: str) -> tuple[
    Iso15118, FakeCsms, FakeBridge, list[datetime]
]:
    dm = DeviceModel()
    dm.load_standard()
    for name, value in settings.items():
        assert dm.set_from_csms(VariableKey("ISO15118Ctrlr", name), value) == "Accepted"
    csms, bridge, clock = FakeCsms(answers), FakeBridge(), [T0]
    iso = Iso15118(dm, Storage(tmp_path / "a.db"), lambda: clock[0], csms.call)
    iso.bridge_for = lambda evse_id: bridge
    return iso, csms, bridge, clock


def contract() -> ContractCertificatePresented:
    chain = pki.contract_chain(EMAID)
    return ContractCertificatePresented(1, EMAID, chain.ocsp_request_data, chain.pem)


async def settle(iso: Iso15118) -> None:
    for _ in range(20):
        await asyncio.sleep(0)
    await asyncio.gather(*iso._tasks)


def test_contract_becomes_an_emaid_token_only_with_pnc_enabled(tmp_path: Path) -> None:
    iso, *_ = make(tmp_path, {})
    assert iso.hal_event(contract()) is None  # PnCEnabled false (default)
    iso, *_ = make(tmp_path, {}, PnCEnabled="true")
    assert iso.hal_event(contract()) == m.ContractPresented(1, m.IdToken(EMAID, "eMAID"))
    assert iso.contract_for(m.IdToken(EMAID, "eMAID")) == contract()
    assert iso.contract_for(m.IdToken(EMAID, "ISO14443")) is None


async def test_authorize_carries_hash_data_and_certificate_when_allowed(tmp_path: Path) -> None:
    """C07.FR.02 hash data always; C07.FR.06 the chain with CentralContractValidationAllowed."""
    answer = {"idTokenInfo": {"status": "Accepted"}, "certificateStatus": "Accepted"}
    iso, csms, bridge, _ = make(tmp_path, {"Authorize": answer}, PnCEnabled="true")
    assert await iso.authorize(contract()) == ("Accepted", ())
    payload = csms.calls[0][1]
    assert "certificate" not in payload
    assert len(payload["iso15118CertificateHashData"]) == 2
    assert bridge.told == [("contract_authorization", ("Accepted", "Accepted"))]

    iso, csms, _, _ = make(tmp_path, {"Authorize": answer}, PnCEnabled="true",
                           CentralContractValidationAllowed="true")
    await iso.authorize(contract())
    assert csms.calls[0][1]["certificate"] == contract().certificate_chain_pem


async def test_certificate_status_other_than_accepted_refuses(tmp_path: Path) -> None:
    for certificate_status in ("CertificateRevoked", "CertChainError", "ContractCancelled"):
        answer = {"idTokenInfo": {"status": "Accepted"}, "certificateStatus": certificate_status}
        iso, _, bridge, _ = make(tmp_path, {"Authorize": answer})
        status, _ = await iso.authorize(contract())
        assert status == "Invalid"
        assert bridge.told == [("contract_authorization", ("Invalid", certificate_status))]


async def test_no_answer_leaves_the_decision_to_the_core(tmp_path: Path) -> None:
    iso, _, bridge, _ = make(tmp_path, {"Authorize": CallFailed("closed", "offline")})
    assert await iso.authorize(contract()) == (None, ())
    assert bridge.told == []


async def test_ev_certificate_passed_through_both_ways(tmp_path: Path) -> None:
    """M01.FR.01 / M02.FR.01: the EXI goes as it is, the exiResponse comes back as it is."""
    answers = {"Get15118EVCertificate": {"status": "Accepted", "exiResponse": "QUJD"}}
    iso, csms, bridge, _ = make(tmp_path, answers, ContractCertificateInstallationEnabled="true")
    for action in ("Install", "Update"):
        iso.hal_event(EvCertificateRequested(1, action, "urn:iso:15118:2:2013:MsgDef", "RVhJ"))
        await settle(iso)
    assert [c[1] for c in csms.calls] == [
        {"iso15118SchemaVersion": "urn:iso:15118:2:2013:MsgDef", "action": a,
         "exiRequest": "RVhJ"} for a in ("Install", "Update")]
    assert bridge.told == [("ev_certificate_response", ("Accepted", "QUJD"))] * 2


async def test_ev_certificate_refused_when_installation_disabled(tmp_path: Path) -> None:
    iso, csms, bridge, _ = make(tmp_path, {})
    iso.hal_event(EvCertificateRequested(1, "Install", "urn:iso:15118:2:2013:MsgDef", "RVhJ"))
    await settle(iso)
    assert csms.calls == [] and bridge.told == [("ev_certificate_response", ("Failed", ""))]


async def test_ocsp_status_cached_for_a_week(tmp_path: Path) -> None:
    """M06.FR.06: cached; M06.FR.10: asked again once the week is over; Failed is not
    cached."""
    answers = {"GetCertificateStatus": {"status": "Accepted", "ocspResult": "T0NTUA=="}}
    iso, csms, bridge, clock = make(tmp_path, answers)
    data = pki.secc_chain().ocsp_request_data[0]
    request = CertificateStatusRequested(1, data)
    iso.hal_event(request)
    await settle(iso)
    clock[0] = T0 + timedelta(days=6)
    iso.hal_event(request)
    await settle(iso)
    assert len(csms.calls) == 1
    assert csms.calls[0][1]["ocspRequestData"]["serialNumber"] == data.serial_number
    assert bridge.told == [("certificate_status_response", (data, "Accepted", "T0NTUA=="))] * 2
    clock[0] = T0 + timedelta(days=7, seconds=1)
    csms.answers["GetCertificateStatus"] = {"status": "Failed"}
    iso.hal_event(request)
    await settle(iso)
    assert len(csms.calls) == 2
    assert bridge.told[-1] == ("certificate_status_response", (data, "Failed", None))
    assert iso.cached_ocsp(data) is None


def test_ocpp16_refuses_certificate_requests() -> None:
    bridge = FakeBridge()
    data = pki.secc_chain().ocsp_request_data[0]
    refuse_on_16(EvCertificateRequested(1, "Install", "v", "RVhJ"), bridge)
    refuse_on_16(CertificateStatusRequested(1, data), bridge)
    refuse_on_16(contract(), bridge)
    assert bridge.told == [("ev_certificate_response", ("Failed", "")),
                           ("certificate_status_response", (data, "Failed", None))]


def test_mock_bridge_plays_the_iso15118_steps() -> None:
    """The simulated EV: OCSP for the SECC chain, then the contract; with a
    certificate_request, the request first and the contract only once Accepted."""
    from evse_hal.clock import FakeClock

    events: list[Any] = []
    evse = MockEvse(1, FakeClock())
    asyncio.run(evse.ev_bridge.start(events.append))
    evse.plug(iso15118=True, emaid=EMAID)
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["CertificateStatusRequested", "ContractCertificatePresented"]
    assert events[1] == contract()
    evse.unplug()
    events.clear()
    evse.plug(iso15118=True, emaid=EMAID, certificate_request="Install")
    assert [type(e).__name__ for e in events] == [
        "CertificateStatusRequested", "EvCertificateRequested"]
    evse.ev_bridge.ev_certificate_response("Failed", "")
    assert len(events) == 2
    evse.ev_bridge.ev_certificate_response("Accepted", "QUJD")
    assert isinstance(events[-1], ContractCertificatePresented)
    assert evse.snapshot()["ev"]["iso15118_certificates"]["certificate_response"] == "Accepted"
    evse.unplug()
    events.clear()
    evse.plug(iso15118=True)  # no contract: external identification (card) as before
    assert events == [] or all(type(e).__name__ == "PilotChanged" for e in events)


def test_plug_body_contract_fields() -> None:
    """POST /api/evse/{n}/plug: "emaid" and "certificate_request" need an ISO 15118 EV."""
    from evse_agent.sim.bodies import BadBody, plug_args

    assert plug_args({"iso15118": True, "emaid": EMAID, "certificate_request": "Update"}) == {
        "iso15118": True, "emaid": EMAID, "certificate_request": "Update"}
    for body, needle in (
        ({"emaid": EMAID}, "iso15118"),
        ({"iso15118": True, "emaid": "X" * 37}, "at most 36"),
        ({"iso15118": True, "certificate_request": "Install"}, "emaid"),
        ({"iso15118": True, "emaid": EMAID, "certificate_request": "Delete"}, "Install"),
    ):
        with pytest.raises(BadBody, match=needle):
            plug_args(body)


def test_sim_client_plug_with_contract() -> None:
    from evse_agent.sim import client

    args = client._parser().parse_args(
        ["plug", "2", "--emaid", EMAID, "--certificate-request", "Update"])
    assert client._route(args) == ("POST", "/api/evse/2/plug", {
        "iso15118": True, "emaid": EMAID, "certificate_request": "Update"})
