"""1.6 transaction messages survive outages and kill -9: StartTransaction, MeterValues
with a transactionId and StopTransaction are written before they are sent (§4.8,
§4.10) and replayed in order; the CSMS's transactionId replaces the local one at send
time, so a transaction that started offline gets the id the CSMS gives it later.
Section numbers: OCPP 1.6 edition 2; "errata" is the 1.6 errata sheet v4.x."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from e2e_support import STATION, FrameChecker, booted16, calls

from evse_agent.csms import DevCsms

OFFLINE_OK = {"AuthCtrlr": {"OfflineTxForUnknownIdEnabled": True}}  # AllowOfflineTxForUnknownId


@pytest.fixture
def csms16(csms: DevCsms) -> DevCsms:
    csms.checker.version = "1.6"  # type: ignore[attr-defined]
    return csms


def charging(connector_id: int) -> Any:
    return lambda p: p["connectorId"] == connector_id and p["status"] == "Charging"


def order_of(csms: DevCsms, action: str, predicate: Any = None) -> list[int]:
    return [i for i, r in enumerate(csms.received)
            if r.action == action and (predicate is None or predicate(r.payload))]


async def test_outage_replays_with_the_csms_transaction_ids(
    csms16: DevCsms, station_factory: Any
) -> None:
    """Transaction A starts online and ends offline; transaction B starts and ends
    offline. After the outage everything arrives in order: A's messages with A's id,
    B's StartTransaction first, then B's messages with the id its answer brought."""
    st = station_factory(OFFLINE_OK, version="1.6")
    st.start()
    await booted16(csms16)
    await st.plug(1)
    await st.tap("CARD-A")
    start_a = await csms16.wait_for(STATION, "StartTransaction")
    await csms16.wait_for(STATION, "StatusNotification", charging(1))
    port = csms16.port
    await csms16.stop()  # the network is gone

    await st.plug(2)
    await st.tap("CARD-B")  # Authorize cannot be sent: accepted offline
    await asyncio.sleep(2.5)  # MeterValueSampleInterval 1: MeterValues pile up for both
    state = await st.state()
    assert state["ocpp"]["connected"] is False
    assert state["evses"][0]["transaction_id"] == "1"
    assert state["evses"][1]["contactor_closed"] is True
    assert state["evses"][1]["transaction_id"] is None  # the CSMS has not named it yet
    await st.unplug(1)
    await st.unplug(2)

    back = DevCsms(responses={"StartTransaction": {"transactionId": 4711,
                                                   "idTagInfo": {"status": "Accepted"}}})
    checker = FrameChecker("1.6")
    back.on_frame.append(checker)
    await back.start("127.0.0.1", port)
    try:
        await back.wait_for(STATION, "StopTransaction", lambda p: p["transactionId"] == 4711,
                            timeout=30)
        stops = calls(back, "StopTransaction")
        assert [(s["transactionId"], s["reason"]) for s in stops] == [
            (1, "EVDisconnected"), (4711, "EVDisconnected")
        ]
        starts = calls(back, "StartTransaction")
        assert [(s["connectorId"], s["idTag"]) for s in starts] == [(2, "CARD-B")]
        assert starts[0]["timestamp"] < stops[1]["timestamp"]
        replayed = [p for p in calls(back, "MeterValues") if "transactionId" in p]
        by_connector = {(p["connectorId"], p["transactionId"]) for p in replayed}
        assert by_connector == {(1, 1), (2, 4711)}, by_connector  # substituted at send time
        assert len([p for p in replayed if p["connectorId"] == 2]) >= 2
        # B: StartTransaction before its MeterValues, StopTransaction after them
        b_start = order_of(back, "StartTransaction")[0]
        b_values = order_of(back, "MeterValues", lambda p: p.get("transactionId") == 4711)
        b_stop = order_of(back, "StopTransaction", lambda p: p["transactionId"] == 4711)[0]
        assert b_start < min(b_values) and max(b_values) < b_stop
        assert all(r.action != "BootNotification" for r in back.received)  # not a reboot
        assert start_a["meterStart"] <= stops[0]["meterStop"]
        state = await st.state()
        assert all(e["transaction_id"] is None for e in state["evses"])
        assert checker.problems == []
    finally:
        await back.stop()


async def test_kill_9_during_a_transaction_stops_it_after_restart(
    csms16: DevCsms, station_factory: Any
) -> None:
    """Power loss mid-transaction: after restart and BootNotification the transaction
    is stopped with reason PowerLoss and the id the CSMS gave it (errata 3.36)."""
    st = station_factory(version="1.6")
    st.start()
    await booted16(csms16)
    await st.plug(1)
    await st.tap("CARD-K")
    await csms16.wait_for(STATION, "StartTransaction")
    await csms16.wait_for(STATION, "MeterValues", lambda p: p.get("transactionId") == 1)
    st.kill()
    mark = len(csms16.received)
    st.start()
    await csms16.wait_for(STATION, "BootNotification", since=mark, timeout=15)
    stop = await csms16.wait_for(STATION, "StopTransaction", since=mark, timeout=20)
    assert stop["transactionId"] == 1 and stop["reason"] == "PowerLoss"
    end = stop["transactionData"][-1]["sampledValue"][0]  # StopTxnSampledData
    assert end["context"] == "Transaction.End" and float(end["value"]) > 0
    assert stop["meterStop"] == round(float(end["value"]))  # integer Wh (§6.49)
    await asyncio.sleep(1.5)
    assert len(calls(csms16, "StopTransaction")) == 1
    assert len(calls(csms16, "StartTransaction")) == 1
    state = await st.state()
    assert all(e["transaction_id"] is None for e in state["evses"])


async def test_kill_9_before_start_transaction_is_answered(
    csms16: DevCsms, station_factory: Any
) -> None:
    """The CSMS sits on StartTransaction; the station dies. After restart the same
    StartTransaction (same message id) goes again, and the StopTransaction carries the
    id its answer brings: nothing lost, nothing invented."""
    gate = asyncio.Event()

    async def slow_start(payload: dict[str, Any]) -> dict[str, Any] | None:
        await gate.wait()
        return None  # then the built-in answer

    csms16.responses["StartTransaction"] = slow_start
    st = station_factory({"OCPPCommCtrlr": {"MessageTimeout[Default]": 30}}, version="1.6")
    st.start()
    await booted16(csms16)
    await st.plug(1)
    await st.tap("CARD-S")
    await csms16.wait_for(STATION, "StartTransaction")
    st.kill()
    del csms16.responses["StartTransaction"]
    gate.set()
    mark = len(csms16.received)
    st.start()
    stop = await csms16.wait_for(STATION, "StopTransaction", since=mark, timeout=20)
    frames = csms16.checker.frames  # type: ignore[attr-defined]
    start_ids = [msg[1] for d, msg in frames if d == "<-" and msg[0] == 2
                 and msg[2] == "StartTransaction"]
    assert len(start_ids) == 2 and start_ids[0] == start_ids[1]  # a resend, not a new one
    answered = [msg[2]["transactionId"] for d, msg in frames
                if d == "->" and msg[0] == 3 and msg[1] == start_ids[0]]
    assert stop["transactionId"] == answered[-1]
    assert stop["reason"] == "PowerLoss"


async def test_start_transaction_never_accepted_gives_minus_one(
    csms16: DevCsms, station_factory: Any
) -> None:
    """TransactionMessageAttempts / TransactionMessageRetryInterval (the device
    model's MessageAttempts / MessageAttemptInterval[TransactionEvent]) bound the
    tries; a transaction whose StartTransaction was given up reports transactionId -1
    (errata 3.18)."""
    from ocpp.exceptions import InternalError

    tries: list[str] = []

    def refuse(payload: dict[str, Any]) -> None:
        tries.append(payload["idTag"])
        raise InternalError(description="database down")

    st = station_factory(version="1.6")
    st.start()
    await booted16(csms16)
    for key, value in (("TransactionMessageAttempts", "2"),
                       ("TransactionMessageRetryInterval", "1")):
        answer = await csms16.call(STATION, "ChangeConfiguration", {"key": key, "value": value})
        assert answer["status"] == "Accepted"
    csms16.responses["StartTransaction"] = refuse
    await st.plug(1)
    await st.tap("CARD-R")
    await csms16.wait_for(STATION, "MeterValues", lambda p: "transactionId" in p, timeout=15)
    await st.unplug(1)
    stop = await csms16.wait_for(STATION, "StopTransaction", timeout=15)
    assert tries == ["CARD-R", "CARD-R"]
    assert stop["transactionId"] == -1
    values = [p for p in calls(csms16, "MeterValues") if "transactionId" in p]
    assert values and all(p["transactionId"] == -1 for p in values)
