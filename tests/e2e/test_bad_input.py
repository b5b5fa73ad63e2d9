"""Bad input gets a clear answer and loses nothing: config errors, an unreachable
CSMS, malformed frames (OCPP-J Part 4 §4.3), registration refused (B02, B03)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from e2e_support import STATION, free_port

from evse_agent.csms import DevCsms


def run_config(tmp_path: Path, text: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "bad.toml"
    config.write_text(text)
    return subprocess.run(
        [sys.executable, "-m", "evse_agent", "run", "--config", str(config)],
        capture_output=True, text=True, timeout=20,
    )


GOOD = '[station]\nid = "CS-1"\ndata_dir = "data"\n[ocpp]\ncsms_url = "ws://127.0.0.1:1/ocpp"\n'


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (GOOD + "[ocpp.extra]\n", "ocpp.extra: unknown key"),
        (GOOD.replace('id = "CS-1"', 'id = "CS-1"\nevse_cont = 2'), "station.evse_cont: unknown key"),
        (GOOD.replace('id = "CS-1"\n', ""), "station.id: required"),
        (GOOD.replace("ws://127.0.0.1:1/ocpp", "http//nope"), "ocpp.csms_url: not a ws:// or wss://"),
        (GOOD + "[hal]\nbackend = 3\n", "hal.backend: must be a string"),
        (GOOD + "[device_model.TxCtrlr]\nNoSuch = 1\n", "device_model.TxCtrlr.NoSuch"),
        ("[station\n", "not valid TOML"),
    ],
)
def test_config_errors_are_one_line_and_exit_2(tmp_path: Path, text: str, needle: str) -> None:
    result = run_config(tmp_path, text)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(tmp_path / "bad.toml") in lines[0] and needle in lines[0], lines[0]


def test_missing_config_file(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "evse_agent", "run", "--config", str(tmp_path / "none.toml")],
        capture_output=True, text=True, timeout=20,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == f"evse-agent: {tmp_path / 'none.toml'}: file not found"


async def test_unreachable_csms_is_retried_with_one_line_per_attempt(
    tmp_path: Path, station_factory: Any
) -> None:
    port = free_port()
    st = station_factory(port=port)
    st.start()
    for _ in range(100):
        if st.output().count("cannot reach CSMS") >= 2:
            break
        await asyncio.sleep(0.1)
    out = st.output()
    assert out.count("cannot reach CSMS") >= 2, out
    assert "retrying in" in out and "Traceback" not in out
    late = DevCsms()
    await late.start("127.0.0.1", port)
    try:
        boot = await late.wait_for(STATION, "BootNotification", timeout=15)
        assert boot["reason"] == "PowerUp"
    finally:
        await late.stop()


async def test_malformed_frames_get_callerror_and_the_station_carries_on(
    csms: DevCsms, station_factory: Any
) -> None:
    st = station_factory()
    st.start()
    await csms.wait_for(STATION, "StatusNotification", lambda p: p["evseId"] == 2)
    link = csms.stations[STATION]._connection
    frames = {
        "not json": ("-1", "RpcFrameworkError"),
        '[2, "m1", "Reset", {"type": "Sometimes"}]': ("m1", "PropertyConstraintViolation"),
        '[2, "m2", "Reset", {}]': ("m2", "OccurrenceConstraintViolation"),
        '[2, "m3", "Reset", {"type": 5}]': ("m3", "TypeConstraintViolation"),
        '[2, "m4", "Reset", {"type": "OnIdle", "extra": 1}]': ("m4", "FormatViolation"),
        '[2, "m5", "FlyToTheMoon", {}]': ("m5", "NotImplemented"),
        '[2, "m6", "SetDisplayMessage", {"message": {"id": 1, "priority": "AlwaysFront",'
        ' "message": {"format": "ASCII", "content": "hi"}}}]': ("m6", "NotImplemented"),
        '[7, "m7", {}]': ("m7", "MessageTypeNotSupported"),
        '[2, "m8"]': ("m8", "RpcFrameworkError"),
    }
    for raw in frames:
        await link.send(raw)
    for _ in range(50):
        errors = {m[1]: m[2] for d, m in csms.checker.frames if d == "<-" and m[0] == 4}
        if len(errors) >= len(set(v[0] for v in frames.values())):
            break
        await asyncio.sleep(0.1)
    for raw, (message_id, code) in frames.items():
        if message_id != "-1":
            assert errors.get(message_id) == code, (raw, errors)
    assert errors.get("-1") == "RpcFrameworkError"
    # ... and carries on.
    answer = await csms.call(STATION, "GetVariables", {"getVariableData": [
        {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}]})
    assert answer["getVariableResult"][0]["attributeStatus"] == "Accepted"


async def test_boot_pending_then_accepted(csms: DevCsms, station_factory: Any) -> None:
    csms.boot_status = "Pending"
    csms.boot_interval = 1
    st = station_factory()
    st.start()
    await csms.wait_for(STATION, "BootNotification")
    # B02.FR.01: the CSMS may configure the station while it is Pending.
    answer = await csms.call(STATION, "GetVariables", {"getVariableData": [
        {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}]})
    assert answer["getVariableResult"][0]["attributeStatus"] == "Accepted"
    start = await csms.call(STATION, "RequestStartTransaction", {
        "idToken": {"idToken": "X", "type": "Central"}, "remoteStartId": 1})
    assert start["status"] == "Rejected"  # B02.FR.05
    mark = len(csms.received)
    await csms.wait_for(STATION, "BootNotification", since=mark, timeout=5)  # B02.FR.08
    assert all(r.action == "BootNotification" for r in csms.received)  # B02.FR.02
    state = await st.state()
    assert state["ocpp"]["registration"] == "Pending"
    csms.boot_status = "Accepted"
    await csms.wait_for(STATION, "StatusNotification", timeout=5)


async def test_boot_rejected_sends_nothing_else_and_refuses_requests(
    csms: DevCsms, station_factory: Any
) -> None:
    from evse_agent.csms import StationCallError

    csms.boot_status = "Rejected"
    csms.boot_interval = 2
    st = station_factory()
    st.start()
    await csms.wait_for(STATION, "BootNotification")
    await asyncio.sleep(0.3)  # the answer reaches the station after wait_for sees the call
    with pytest.raises(StationCallError) as refused:
        await csms.call(STATION, "GetVariables", {"getVariableData": [
            {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}]})
    assert refused.value.error == "SecurityError"  # B03.FR.08
    await st.plug(1)
    await asyncio.sleep(2.5)
    assert {r.action for r in csms.received} == {"BootNotification"}  # B03.FR.02
    assert len(csms.received) == 2  # resent after the interval, not before
