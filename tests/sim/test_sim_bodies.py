"""Request body validation, without sockets."""

from __future__ import annotations

import pytest

from evse_agent.sim.bodies import (
    BadBody,
    FaultRequest,
    decode,
    ev_charging,
    fault_request,
    plug_args,
    rfid_args,
)


def test_decode() -> None:
    assert decode(b"", allow_empty=True) == {}
    assert decode(b' {"a": 1} ', allow_empty=False) == {"a": 1}
    for raw in (b"", b"null", b"[]", b"{", b"\xff"):
        with pytest.raises(BadBody):
            decode(raw, allow_empty=False)


def test_plug_args_pass_only_what_was_given() -> None:
    assert plug_args({}) == {}
    assert plug_args({"max_current_a": 16, "soc": 0, "iso15118": True, "phases": 1}) == {
        "max_current_a": 16.0,
        "soc": 0.0,
        "iso15118": True,
        "phases": 1,
    }


@pytest.mark.parametrize(
    "body",
    [
        {"max_current_a": True},
        {"max_current_a": -1},
        {"battery_wh": 0},
        {"battery_wh": float("inf")},
        {"soc": -0.1},
        {"soc": float("nan")},
        {"iso15118": "yes"},
        {"phases": 4},
        {"phases": 1.0},
        {"colour": "red"},
    ],
)
def test_plug_args_refused(body: dict[str, object]) -> None:
    with pytest.raises(BadBody):
        plug_args(body)


def test_rfid_args() -> None:
    assert rfid_args({"id_token": "AABBCCDD"}) == ("AABBCCDD", "ISO14443")
    assert rfid_args({"id_token": "A" * 36, "type": "Central"}) == ("A" * 36, "Central")
    for body in ({}, {"id_token": "   "}, {"id_token": "A" * 37}, {"id_token": "A", "type": ""}):
        with pytest.raises(BadBody):
            rfid_args(body)


def test_ev_charging() -> None:
    assert ev_charging({"charging": False}) is False
    for body in ({}, {"charging": 0}, {"charging": True, "soc": 1}):
        with pytest.raises(BadBody):
            ev_charging(body)


def test_fault_request() -> None:
    assert fault_request({"clear": True}) is None
    assert fault_request({"device": "meter", "fault": "offline"}) == FaultRequest(
        "meter", "offline"
    )
    assert fault_request({"device": "lock", "fault": "jammed", "evse": 2}).evse == 2
    for body in (
        {},
        {"clear": 1},
        {"clear": True, "device": "meter"},
        {"device": "meter", "fault": "offline", "evse": True},
        {"device": "meter", "fault": 3},
    ):
        with pytest.raises(BadBody):
            fault_request(body)
