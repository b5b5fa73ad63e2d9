"""OCPP-J framing and the CALLERROR codes of Part 4 §4.3 (2.0.1) and 1.6 §4.2.3."""

from __future__ import annotations

import pytest

from evse_agent.ocpp import rpc


@pytest.mark.parametrize(
    ("raw", "code", "message_id"),
    [
        ("{not json", "RpcFrameworkError", "-1"),
        ('{"a": 1}', "RpcFrameworkError", "-1"),
        ('[2, 5, "Reset", {}]', "RpcFrameworkError", "-1"),
        ('[9, "x", {}]', "MessageTypeNotSupported", "x"),
        ('[2, "x", "Reset"]', "ProtocolError", "x"),
        ('[2, "x"]', "RpcFrameworkError", "x"),
        ('[2, "x", "Reset", []]', "ProtocolError", "x"),
    ],
)
def test_unreadable_frames(raw: str, code: str, message_id: str) -> None:
    with pytest.raises(rpc.RpcError) as err:
        rpc.parse(raw, "2.0.1")
    assert (err.value.code, err.value.message_id) == (code, message_id)


def test_frames_parse() -> None:
    assert rpc.parse('[2,"1","Reset",{"type":"OnIdle"}]', "2.0.1") == rpc.Call(
        "1", "Reset", {"type": "OnIdle"}
    )
    assert rpc.parse('[3,"1",{}]', "2.0.1") == rpc.CallResult("1", {})
    assert rpc.parse('[4,"1","NotImplemented","no",{}]', "2.0.1") == rpc.CallError(
        "1", "NotImplemented", "no", {}
    )


@pytest.mark.parametrize(
    ("payload", "v201", "v16"),
    [
        ({}, "OccurrenceConstraintViolation", "OccurenceConstraintViolation"),
        ({"type": 1}, "TypeConstraintViolation", "TypeConstraintViolation"),
        ({"type": "Sometimes"}, "PropertyConstraintViolation", "PropertyConstraintViolation"),
        ({"type": "Hard", "x": 1}, "FormatViolation", "FormationViolation"),
    ],
)
def test_schema_violations_map_to_the_version_s_codes(
    payload: dict[str, object], v201: str, v16: str
) -> None:
    with pytest.raises(rpc.RpcError) as err:
        rpc.validate("Reset", payload, "2.0.1", request=True)
    assert err.value.code == v201
    with pytest.raises(rpc.RpcError) as err16:
        rpc.validate("Reset", payload, "1.6", request=True)
    assert err16.value.code == v16


def test_unknown_action_is_not_implemented() -> None:
    with pytest.raises(rpc.RpcError) as err:
        rpc.validate("FlyToTheMoon", {}, "2.0.1", request=True)
    assert err.value.code == "NotImplemented"


def test_timestamps_are_rfc3339_utc_with_z() -> None:
    from datetime import datetime, timedelta, timezone

    moment = datetime(2026, 5, 1, 14, 30, 5, 123456, tzinfo=timezone(timedelta(hours=2)))
    assert rpc.timestamp(moment) == "2026-05-01T12:30:05.123Z"
