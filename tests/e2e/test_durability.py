"""Transaction messages survive outages and kill -9: written before sent, resent in
order, nothing lost, any duplicate identical (E11/E12, E13). OCPP 2.0.1 Part 2."""

from __future__ import annotations

import asyncio
from typing import Any

from e2e_support import STATION, FrameChecker, tx_events

from evse_agent.csms import DevCsms


def ended(p: dict[str, Any]) -> bool:
    return p["eventType"] == "Ended"


def charging(p: dict[str, Any]) -> bool:
    return p["transactionInfo"].get("chargingState") == "Charging"


def merge_copies(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per seqNo; a resent copy must be identical to the first."""
    by_seq: dict[int, dict[str, Any]] = {}
    for e in events:
        first = by_seq.setdefault(e["seqNo"], e)
        assert first == e, f"resend differs from the first copy:\n{first}\n{e}"
    return [by_seq[k] for k in sorted(by_seq)]


async def start_charging(csms: DevCsms, st: Any) -> str:
    st.start()
    await csms.wait_for(STATION, "StatusNotification", lambda p: p["evseId"] == 2)
    await st.plug(1)
    await st.tap("CARD-1")
    started = await csms.wait_for(STATION, "TransactionEvent")
    await csms.wait_for(STATION, "TransactionEvent", charging)
    return str(started["transactionInfo"]["transactionId"])


async def test_outage_during_transaction_is_replayed_in_order(
    csms: DevCsms, station_factory: Any
) -> None:
    st = station_factory()
    tx_id = await start_charging(csms, st)
    port = csms.port
    await csms.stop()  # the network is gone
    await asyncio.sleep(2.5)  # TxUpdatedInterval = 1: Updated events pile up offline
    await st.unplug(1)
    state = await st.state()
    assert state["ocpp"]["connected"] is False
    assert state["evses"][0]["transaction_id"] is None  # the session ended while offline

    back = DevCsms()
    checker = FrameChecker()
    back.on_frame.append(checker)
    await back.start("127.0.0.1", port)
    try:
        await back.wait_for(STATION, "TransactionEvent", ended, timeout=20)
        before = tx_events(csms)
        after = tx_events(back)
        events = merge_copies(before + after)
        assert [e["seqNo"] for e in events] == list(range(len(events)))  # no gap, no loss
        assert {e["transactionInfo"]["transactionId"] for e in events} == {tx_id}
        replayed = [e for e in after if e["seqNo"] > max(x["seqNo"] for x in before)]
        assert len(replayed) >= 3
        assert all(e.get("offline") is True for e in replayed)  # E12.FR.02
        assert replayed[-1]["transactionInfo"]["stoppedReason"] == "EVDisconnected"
        # a reconnect is not a reboot: no new BootNotification
        assert all(r.action != "BootNotification" for r in back.received)
        assert checker.problems == []
    finally:
        await back.stop()


async def test_kill_9_during_transaction_ends_it_on_restart(
    csms: DevCsms, station_factory: Any
) -> None:
    st = station_factory()
    tx_id = await start_charging(csms, st)
    await csms.wait_for(STATION, "TransactionEvent", lambda p: p["triggerReason"] ==
                        "MeterValuePeriodic")
    st.kill()
    mark = len(csms.received)
    st.start()
    boot = await csms.wait_for(STATION, "BootNotification", since=mark)
    assert boot["reason"] == "PowerUp"
    end = await csms.wait_for(STATION, "TransactionEvent", ended, since=mark, timeout=20)
    assert end["transactionInfo"]["transactionId"] == tx_id
    assert end["transactionInfo"]["stoppedReason"] == "PowerLoss"
    assert end["triggerReason"] == "AbnormalCondition"
    events = merge_copies(tx_events(csms))
    assert [e["seqNo"] for e in events] == list(range(len(events)))
    energy = end["meterValue"][0]["sampledValue"][0]
    assert energy["context"] == "Transaction.End" and energy["value"] > 0
    await asyncio.sleep(1.5)
    assert len([e for e in tx_events(csms) if e["eventType"] == "Ended"]) == 1
    state = await st.state()
    assert all(e["transaction_id"] is None for e in state["evses"])


async def test_csms_callerror_is_retried_then_discarded(
    csms: DevCsms, station_factory: Any
) -> None:
    from ocpp.exceptions import InternalError

    attempts: list[int] = []

    def refuse(payload: dict[str, Any]) -> None:
        if payload["seqNo"] == 0:
            attempts.append(payload["seqNo"])
            raise InternalError(description="database down")
        return None

    csms.responses["TransactionEvent"] = refuse
    st = station_factory({"OCPPCommCtrlr": {"MessageAttempts[TransactionEvent]": 3}})
    await start_charging(csms, st)
    await csms.wait_for(STATION, "TransactionEvent", lambda p: p["seqNo"] == 2, timeout=20)
    assert attempts == [0, 0, 0]  # E13.FR.02: MessageAttempts tries, then E13.FR.04
    seqs = [e["seqNo"] for e in tx_events(csms)]
    assert seqs[:4] == [0, 0, 0, 1]


async def test_csms_that_never_answers_gets_message_timeout_and_a_resend(
    tmp_path: Any, station_factory: Any
) -> None:
    """A CSMS that swallows the first TransactionEvent: after MessageTimeout (3 s here)
    the station sends the same message again (E13) and carries on."""
    import json

    from websockets.asyncio.server import serve

    received: list[list[Any]] = []

    async def handler(ws: Any) -> None:
        async for raw in ws:
            msg = json.loads(raw)
            received.append(msg)
            if msg[0] != 2:
                continue
            action = msg[2]
            if action == "TransactionEvent" and len(
                [m for m in received if m[0] == 2 and m[2] == "TransactionEvent"]
            ) == 1:
                continue  # swallowed: never answered
            answer: dict[str, Any] = {}
            if action == "BootNotification":
                answer = {"currentTime": "2026-01-01T00:00:00Z", "interval": 300,
                          "status": "Accepted"}
            elif action == "Authorize":
                answer = {"idTokenInfo": {"status": "Accepted"}}
            await ws.send(json.dumps([3, msg[1], answer]))

    async with serve(handler, "127.0.0.1", 0, subprotocols=["ocpp2.0.1"]) as server:  # type: ignore[list-item]
        port = server.sockets[0].getsockname()[1]
        st = station_factory(port=port)
        st.start()
        await st.plug(1)
        await st.tap("CARD-1")
        for _ in range(100):
            events = [m for m in received if m[0] == 2 and m[2] == "TransactionEvent"]
            if len(events) >= 3:
                break
            await asyncio.sleep(0.1)
    assert len(events) >= 3, received
    assert events[0][1] == events[1][1]  # the same message id, resent after MessageTimeout
    assert events[0][3] == events[1][3]  # and the same content
    assert events[0][3]["eventType"] == "Started" and events[2][3]["seqNo"] == 1
    assert "not answered in 3 s" in st.output()
