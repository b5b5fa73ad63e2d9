"""Plug & Charge in the core (OCPP 2.0.1 C07): a contract the EV presents is an IdToken
of type eMAID for that EVSE, authorized like a card online; offline, C07.FR.07."""

from __future__ import annotations

import itertools

from evse_hal.clock import FakeClock
from evse_hal.interfaces import PilotChanged

from evse_agent.core import messages as m
from evse_agent.core.station import Station
from evse_agent.device_model.model import DeviceModel, VariableKey

CONTRACT = m.IdToken("DEABCC12345678X", "eMAID")


class Harness:
    def __init__(self, online: bool = True, **settings: str) -> None:
        self.clock = FakeClock()
        self.dm = DeviceModel()
        self.dm.load_standard()
        for label, value in settings.items():
            comp, var = label.split("__")
            assert self.dm.set_from_csms(VariableKey(comp, var), value) == "Accepted"
        ids = (f"tx-{n}" for n in itertools.count(1))
        self.station = Station(2, self.dm, lambda: next(ids))
        self.actions: list[m.Action] = []
        self.send(m.ConnectionChanged(online))

    def send(self, event: m.Event) -> list[m.Action]:
        out = self.station.handle(event, self.clock.now())
        self.actions += out
        return out

    def started(self) -> list[m.TransactionEventAction]:
        return [a for a in self.actions
                if isinstance(a, m.TransactionEventAction) and a.id_token is not None]


def test_contract_is_authorized_for_the_evse_of_the_ev() -> None:
    """C07.FR.01: online, the contract goes to the CSMS; Accepted: the session on the
    EVSE the EV is plugged into starts with the eMAID (even with EVSE 1 free)."""
    h = Harness()
    h.send(PilotChanged(2, "B"))
    h.send(PilotChanged(1, "B"))  # another EV waits on EVSE 1: the contract is EVSE 2's
    out = h.send(m.ContractPresented(2, CONTRACT))
    ask = [a for a in out if isinstance(a, m.SendAuthorize)]
    assert [a.id_token for a in ask] == [CONTRACT]
    h.send(m.AuthorizeResult(ask[0].request_id, CONTRACT, "Accepted"))
    assert h.station.evses[2].auth == CONTRACT and h.station.evses[1].auth is None


def test_refused_contract_does_not_authorize() -> None:
    h = Harness()
    h.send(PilotChanged(1, "B"))
    ask = [a for a in h.send(m.ContractPresented(1, CONTRACT)) if isinstance(a, m.SendAuthorize)]
    h.send(m.AuthorizeResult(ask[0].request_id, CONTRACT, "Invalid"))
    assert h.station.evses[1].auth is None


def test_offline_contract_refused_without_contract_validation_offline() -> None:
    """C07.FR.07: offline and ContractValidationOffline false: no charging, even where
    an unknown card would be allowed (OfflineTxForUnknownIdEnabled)."""
    h = Harness(online=False, AuthCtrlr__OfflineTxForUnknownIdEnabled="true")
    h.send(PilotChanged(1, "B"))
    h.send(m.ContractPresented(1, CONTRACT))
    assert h.station.evses[1].auth is None


def test_offline_contract_follows_offline_rules_with_contract_validation_offline() -> None:
    """C07.FR.08/12: ContractValidationOffline true: the unknown eMAID is allowed when
    OfflineTxForUnknownIdEnabled."""
    h = Harness(online=False, AuthCtrlr__OfflineTxForUnknownIdEnabled="true",
                ISO15118Ctrlr__ContractValidationOffline="true")
    h.send(PilotChanged(1, "B"))
    h.send(m.ContractPresented(1, CONTRACT))
    assert h.station.evses[1].auth == CONTRACT


def test_contract_on_an_authorized_evse_changes_nothing() -> None:
    """A driver who tapped a card keeps the session; presenting the same eMAID again
    is not a local stop (that is the card reader's gesture, C01.FR.03)."""
    h = Harness(AuthCtrlr__Enabled="false")
    h.send(PilotChanged(1, "B"))  # authorization disabled: NoAuthorization at once
    before = h.station.evses[1].auth
    assert before is not None
    out = h.send(m.ContractPresented(1, CONTRACT))
    assert not [a for a in out if isinstance(a, m.SendAuthorize)]
    assert h.station.evses[1].auth == before and h.station.evses[1].stop_trigger is None
