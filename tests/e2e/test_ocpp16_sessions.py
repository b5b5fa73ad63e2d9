"""A mock station process on OCPP 1.6-J against the development CSMS: boot, status,
local and remote sessions, the CSMS's transactionId in every transaction message.
Section numbers: OCPP 1.6 edition 2; "errata" is the 1.6 errata sheet v4.x."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from e2e_support import STATION, booted16, calls

from evse_agent.csms import DevCsms


@pytest.fixture
def csms16(csms: DevCsms) -> DevCsms:
    csms.checker.version = "1.6"  # type: ignore[attr-defined]
    return csms


def status(connector_id: int, value: str | None = None) -> Any:
    return lambda p: p["connectorId"] == connector_id and value in (None, p["status"])


async def test_boot_statuses_and_local_session(csms16: DevCsms, station_factory: Any) -> None:
    st = station_factory(version="1.6")
    st.start()
    boot = await csms16.wait_for(STATION, "BootNotification")
    assert boot["chargePointSerialNumber"] == STATION  # §6.3
    assert boot["chargePointVendor"] and boot["chargePointModel"]
    await booted16(csms16)
    first = calls(csms16, "StatusNotification")[:3]  # errata 3.22: 0 and every connector
    assert [(p["connectorId"], p["status"], p["errorCode"]) for p in first] == [
        (0, "Available", "NoError"), (1, "Available", "NoError"), (2, "Available", "NoError")
    ]
    state = await st.state()
    assert state["ocpp"] == {"connected": True, "version": "1.6", "registration": "Accepted"}

    await st.plug(1, max_current_a=16)
    await csms16.wait_for(STATION, "StatusNotification", status(1, "Preparing"))  # §4.9
    await st.tap("AABBCCDD")
    auth = await csms16.wait_for(STATION, "Authorize")
    assert auth == {"idTag": "AABBCCDD"}
    start = await csms16.wait_for(STATION, "StartTransaction")
    assert start["connectorId"] == 1 and start["idTag"] == "AABBCCDD"
    assert isinstance(start["meterStart"], int)
    await csms16.wait_for(STATION, "StatusNotification", status(1, "Charging"))
    mv = await csms16.wait_for(STATION, "MeterValues", lambda p: "transactionId" in p)
    tx_id = mv["transactionId"]
    assert isinstance(tx_id, int) and mv["connectorId"] == 1
    sampled = mv["meterValue"][0]["sampledValue"]
    assert {s["measurand"] for s in sampled} >= {"Energy.Active.Import.Register"}
    assert all(isinstance(s["value"], str) for s in sampled)  # 1.6 values are strings
    state = await st.state()
    assert state["evses"][0]["transaction_id"] == str(tx_id)  # the CSMS's id (DESIGN)

    await st.tap("AABBCCDD")  # the same card ends it; idTag says who stopped it (§6.49)
    stop = await csms16.wait_for(STATION, "StopTransaction")
    assert stop["transactionId"] == tx_id
    assert stop["reason"] == "Local" and stop["idTag"] == "AABBCCDD"
    assert stop["meterStop"] >= start["meterStart"]
    contexts = [s["context"] for v in stop["transactionData"] for s in v["sampledValue"]]
    assert contexts == ["Transaction.Begin", "Transaction.End"]  # errata 3.16.6
    await csms16.wait_for(STATION, "StatusNotification", status(1, "Finishing"))
    await st.unplug(1)
    await csms16.wait_for(STATION, "StatusNotification", status(1, "Available"))
    assert all(p["transactionId"] == tx_id for p in calls(csms16, "MeterValues")
               if "transactionId" in p)
    assert await st.terminate() == 0


async def test_remote_start_and_stop(csms16: DevCsms, station_factory: Any) -> None:
    """§5.11 RemoteStartTransaction, §5.12 RemoteStopTransaction (errata 3.32, 3.33)."""
    st = station_factory(version="1.6")
    st.start()
    await booted16(csms16)
    for bad in ({"idTag": "R1", "connectorId": 0}, {"idTag": "R1", "connectorId": 3}):
        assert (await csms16.call(STATION, "RemoteStartTransaction", bad))["status"] == "Rejected"
    profile = {  # §5.11: ignored by a station without Smart Charging
        "chargingProfileId": 1, "stackLevel": 0, "chargingProfilePurpose": "TxProfile",
        "chargingProfileKind": "Relative",
        "chargingSchedule": {"chargingRateUnit": "A",
                             "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 10}]},
    }
    answer = await csms16.call(STATION, "RemoteStartTransaction",
                               {"idTag": "REMOTE1", "connectorId": 2, "chargingProfile": profile})
    assert answer["status"] == "Accepted"
    await csms16.wait_for(STATION, "StatusNotification", status(2, "Preparing"))
    await st.plug(2)
    start = await csms16.wait_for(STATION, "StartTransaction")
    assert start["connectorId"] == 2 and start["idTag"] == "REMOTE1"
    await csms16.wait_for(STATION, "StatusNotification", status(2, "Charging"))
    tx_id = last_tx_id(csms16)
    unknown = await csms16.call(STATION, "RemoteStopTransaction", {"transactionId": tx_id + 100})
    assert unknown["status"] == "Rejected"
    stop = await csms16.call(STATION, "RemoteStopTransaction", {"transactionId": tx_id})
    assert stop["status"] == "Accepted"
    end = await csms16.wait_for(STATION, "StopTransaction")
    assert end["transactionId"] == tx_id and end["reason"] == "Remote"
    assert "idTag" not in end  # nobody presented a tag to stop it (§6.49)
    await csms16.wait_for(STATION, "StatusNotification", status(2, "Finishing"))
    state = await st.state()
    assert state["evses"][1]["contactor_closed"] is False
    assert state["evses"][1]["transaction_id"] is None


def last_tx_id(csms: DevCsms) -> int:
    """The transactionId the development CSMS gave the last StartTransaction: it counts
    from 1, one per StartTransaction."""
    return len(calls(csms, "StartTransaction"))


async def test_remote_start_authorized_first_when_configured(
    csms16: DevCsms, station_factory: Any
) -> None:
    """AuthorizeRemoteTxRequests (= AuthCtrlr.AuthorizeRemoteStart) true: Authorize
    before charging (§5.11); the CSMS refusing the tag refuses the start."""
    st = station_factory(version="1.6")
    st.start()
    await booted16(csms16)
    changed = await csms16.call(STATION, "ChangeConfiguration",
                                {"key": "AuthorizeRemoteTxRequests", "value": "true"})
    assert changed["status"] == "Accepted"
    csms16.authorize_status = "Blocked"
    mark = len(csms16.received)
    answer = await csms16.call(STATION, "RemoteStartTransaction", {"idTag": "BLOCKED1"})
    assert answer["status"] == "Accepted"  # errata 3.32: accepted, will attempt
    auth = await csms16.wait_for(STATION, "Authorize", since=mark)
    assert auth == {"idTag": "BLOCKED1"}
    await st.plug(1)
    await csms16.wait_for(STATION, "StatusNotification", status(1, "Preparing"), since=mark)
    await asyncio.sleep(0.5)
    assert calls(csms16, "StartTransaction") == []


async def test_start_transaction_not_accepted_stops_it(
    csms16: DevCsms, station_factory: Any
) -> None:
    """Errata 3.17: idTagInfo not Accepted in StartTransaction.conf with
    StopTransactionOnInvalidId true: stopped, reason DeAuthorized."""
    csms16.responses["StartTransaction"] = {"transactionId": 42,
                                            "idTagInfo": {"status": "Invalid"}}
    st = station_factory(version="1.6")
    st.start()
    await booted16(csms16)
    got = await csms16.call(STATION, "GetConfiguration", {"key": ["StopTransactionOnInvalidId"]})
    assert got["configurationKey"][0]["value"] == "true"
    await st.plug(1)
    await st.tap("CARD-INVALID")
    stop = await csms16.wait_for(STATION, "StopTransaction")
    assert stop["transactionId"] == 42 and stop["reason"] == "DeAuthorized"
    await csms16.wait_for(STATION, "StatusNotification", status(1, "Finishing"))
    state = await st.state()
    assert state["evses"][0]["contactor_closed"] is False


async def test_fault_is_faulted_with_a_1_6_error_code(
    csms16: DevCsms, station_factory: Any
) -> None:
    """§4.9 Faulted, with the ChargePointErrorCode of the failing device (§7.6) and
    the HAL's name for the fault in info; back to Available when it clears."""
    st = station_factory(version="1.6")
    st.start()
    await booted16(csms16)
    await st.api("POST", "/api/fault", {"device": "contactor", "fault": "welded", "evse": 2})
    faulted = await csms16.wait_for(STATION, "StatusNotification", status(2, "Faulted"))
    assert faulted["errorCode"] == "PowerSwitchFailure"
    assert faulted["info"] == "contactor:welded"
    mark = len(csms16.received)
    await st.api("POST", "/api/fault", {"clear": True})
    back = await csms16.wait_for(STATION, "StatusNotification", status(2, "Available"),
                                 since=mark)
    assert back["errorCode"] == "NoError"
