"""Version negotiation: `[ocpp] version = "auto"` offers ocpp2.0.1 then ocpp1.6 and
speaks whichever the CSMS accepts (OCPP-J 1.6 §3.1.2, 2.0.1 Part 4 §3.1.2); the choice
shows in /api/state and the log, and a CSMS that changes its mind gets the other
adapter."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from e2e_support import STATION, FrameChecker, booted16

from evse_agent.csms import DevCsms, server
from evse_agent.csms.station_v16 import StationV16


async def csms_16_only(monkeypatch: pytest.MonkeyPatch, port: int = 0) -> tuple[DevCsms, Any]:
    """A development CSMS that accepts only the ocpp1.6 subprotocol."""
    monkeypatch.setattr(server, "SESSION_CLASSES", {"ocpp1.6": StationV16})
    only16 = DevCsms()
    checker = FrameChecker("1.6")
    only16.on_frame.append(checker)
    await only16.start("127.0.0.1", port)
    return only16, checker


async def test_auto_prefers_2_0_1(csms: DevCsms, station_factory: Any) -> None:
    st = station_factory(version="auto")
    st.start()
    boot = await csms.wait_for(STATION, "BootNotification")
    assert boot["reason"] == "PowerUp"  # a 2.0.1 BootNotification
    state = await st.state()
    assert state["ocpp"]["version"] == "2.0.1"
    assert "(OCPP 2.0.1)" in st.output()


async def test_auto_speaks_1_6_to_a_1_6_csms(
    monkeypatch: pytest.MonkeyPatch, station_factory: Any
) -> None:
    only16, checker = await csms_16_only(monkeypatch)
    try:
        st = station_factory(port=only16.port, version="auto")
        st.start()
        await booted16(only16)
        state = await st.state()
        assert state["ocpp"] == {"connected": True, "version": "1.6", "registration": "Accepted"}
        assert "(OCPP 1.6)" in st.output()
        await st.plug(1)
        await st.tap("CARD-AUTO")
        start = await only16.wait_for(STATION, "StartTransaction")
        assert start["idTag"] == "CARD-AUTO"
        assert checker.problems == []
    finally:
        await only16.stop()


async def test_auto_follows_a_csms_that_changes_version(
    monkeypatch: pytest.MonkeyPatch, csms: DevCsms, station_factory: Any
) -> None:
    st = station_factory(version="auto")
    st.start()
    await csms.wait_for(STATION, "StatusNotification", lambda p: p.get("evseId") == 2)
    port = csms.port
    await csms.stop()
    only16, checker = await csms_16_only(monkeypatch, port)
    try:
        await booted16(only16)
        state = await st.state()
        assert state["ocpp"]["version"] == "1.6"
        assert "the CSMS chose OCPP 1.6" in st.output()
        assert checker.problems == []
        # A restart starts with the version the CSMS chose last.
        assert await st.terminate() == 0
        mark = len(only16.received)
        st.start()
        await booted16(only16, since=mark)
        assert "switching" not in st.output().split("evse_agent: connected")[-1]
    finally:
        await only16.stop()


async def test_1_6_station_and_a_2_0_1_only_csms(
    monkeypatch: pytest.MonkeyPatch, station_factory: Any
) -> None:
    """No common subprotocol: one clear line per attempt, no traceback."""
    from evse_agent.csms.station_v201 import StationV201

    monkeypatch.setattr(server, "SESSION_CLASSES", {"ocpp2.0.1": StationV201})
    only201 = DevCsms()
    await only201.start("127.0.0.1", 0)
    try:
        st = station_factory(port=only201.port, version="1.6")
        st.start()
        for _ in range(100):
            if st.output().count("cannot reach CSMS") >= 2:
                break
            await asyncio.sleep(0.1)
        assert st.output().count("cannot reach CSMS") >= 2, st.output()
        assert only201.received == []
    finally:
        await only201.stop()


async def test_queue_in_the_other_version_is_dropped_loudly(
    monkeypatch: pytest.MonkeyPatch, csms: DevCsms, station_factory: Any
) -> None:
    """TransactionEvents queued for a 2.0.1 CSMS cannot be sent to the 1.6 CSMS that
    replaced it: dropped with an error line, and the station goes on in 1.6."""
    st = station_factory({"AuthCtrlr": {"OfflineTxForUnknownIdEnabled": True}}, version="auto")
    st.start()
    await csms.wait_for(STATION, "StatusNotification", lambda p: p.get("evseId") == 2)
    port = csms.port
    await csms.stop()
    await st.plug(1)
    await st.tap("CARD-Q")  # accepted offline: TransactionEvents pile up for 2.0.1
    await asyncio.sleep(1.5)
    only16, checker = await csms_16_only(monkeypatch, port)
    try:
        await booted16(only16)
        assert "queued OCPP 2.0.1 message(s) cannot be sent over OCPP 1.6: discarded" in (
            st.output())
        status1 = [r.payload for r in only16.received if r.action == "StatusNotification"
                   and r.payload["connectorId"] == 1]
        assert status1[-1]["status"] == "Charging"  # the session goes on, in 1.6 words
        await st.unplug(1)
        await asyncio.sleep(0.5)
        assert [r for r in only16.received if r.action in (
            "StartTransaction", "StopTransaction")] == []  # 1.6 never saw it start
        assert checker.problems == []
    finally:
        await only16.stop()
