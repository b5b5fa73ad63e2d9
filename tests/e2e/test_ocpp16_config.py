"""1.6 configuration keys are a view of the 2.0.1 device model (§5.3 ChangeConfiguration,
§5.8 GetConfiguration, §9.1 Core keys): one store, so a change made in either version
is what the other reads, and it survives a restart. Section numbers: OCPP 1.6
edition 2; "errata" is the 1.6 errata sheet v4.x."""

from __future__ import annotations

import asyncio
from typing import Any

from e2e_support import STATION, booted16, calls

from evse_agent.csms import DevCsms


async def get_keys(csms: DevCsms, keys: list[str] | None = None) -> dict[str, Any]:
    answer = await csms.call(STATION, "GetConfiguration", {"key": keys} if keys else {})
    found = {k["key"]: k for k in answer.get("configurationKey", [])}
    return {**found, **{k: None for k in answer.get("unknownKey", [])}}


async def change(csms: DevCsms, key: str, value: str) -> str:
    answer = await csms.call(STATION, "ChangeConfiguration", {"key": key, "value": value})
    return str(answer["status"])


async def test_get_and_change_configuration_round_trip_across_restart(
    csms: DevCsms, station_factory: Any
) -> None:
    csms.checker.version = "1.6"  # type: ignore[attr-defined]
    st = station_factory(version="1.6")
    st.start()
    await booted16(csms)
    everything = await get_keys(csms)  # §5.8: no key -> every key
    assert everything["NumberOfConnectors"] == {"key": "NumberOfConnectors", "readonly": True,
                                                "value": "2"}
    assert everything["SupportedFeatureProfiles"]["value"] == "Core,FirmwareManagement,RemoteTrigger"
    assert everything["HeartbeatInterval"]["readonly"] is False
    assert "value" not in everything["AuthorizationKey"]  # write-only: never shown

    assert await change(csms, "MeterValueSampleInterval", "17") == "Accepted"
    assert await change(csms, "meterValueSampleInterval", "abc") == "Rejected"  # CiString: any case
    assert await change(csms, "NumberOfConnectors", "3") == "Rejected"  # read-only (§5.3)
    assert await change(csms, "NoSuchKey", "1") == "NotSupported"  # unknown (§5.3)
    # Errata 3.14.4: a measurand the station cannot measure -> Rejected, nothing changed.
    assert await change(csms, "MeterValuesSampledData", "Temperature") == "Rejected"
    got = await get_keys(csms, ["MeterValueSampleInterval", "NoSuchKey"])
    assert got["MeterValueSampleInterval"]["value"] == "17"
    assert got["NoSuchKey"] is None  # unknownKey

    assert await st.terminate() == 0
    mark = len(csms.received)
    st.start()
    await booted16(csms, since=mark)
    got = await get_keys(csms, ["MeterValueSampleInterval"])
    assert got["MeterValueSampleInterval"]["value"] == "17"  # persisted


async def test_changed_keys_take_effect(csms: DevCsms, station_factory: Any) -> None:
    """HeartbeatInterval applies at once; MeterValuesSampledData decides what the next
    MeterValues carry (§9.1.10, §9.1.17)."""
    csms.checker.version = "1.6"  # type: ignore[attr-defined]
    st = station_factory(version="1.6")
    st.start()
    await booted16(csms)
    mark = len(csms.received)
    assert await change(csms, "HeartbeatInterval", "1") == "Accepted"
    await csms.wait_for(STATION, "Heartbeat", since=mark, timeout=5)
    assert await change(csms, "MeterValuesSampledData",
                        "Energy.Active.Import.Register,Voltage") == "Accepted"
    await st.plug(1)
    await st.tap("CARD-CFG")
    tx = await csms.wait_for(STATION, "MeterValues", lambda p: "transactionId" in p, timeout=10)
    sampled = tx["meterValue"][0]["sampledValue"]
    assert {s["measurand"] for s in sampled} == {"Energy.Active.Import.Register", "Voltage"}
    assert {s.get("phase") for s in sampled if s["measurand"] == "Voltage"} == {
        "L1-N", "L2-N", "L3-N"}


async def test_one_store_for_both_versions(csms: DevCsms, station_factory: Any) -> None:
    """The same data directory run on 2.0.1 then 1.6 then 2.0.1: SetVariables is what
    GetConfiguration reads, ChangeConfiguration is what GetVariables reads."""
    st = station_factory()
    st.start()
    await csms.wait_for(STATION, "StatusNotification", lambda p: p.get("evseId") == 2)
    result = await csms.call(STATION, "SetVariables", {"setVariableData": [
        {"component": {"name": "SampledDataCtrlr"}, "variable": {"name": "TxUpdatedInterval"},
         "attributeValue": "23"}]})
    assert result["setVariableResult"][0]["attributeStatus"] == "Accepted"
    assert await st.terminate() == 0

    csms.checker.version = "1.6"  # type: ignore[attr-defined]
    st16 = station_factory(version="1.6")
    mark = len(csms.received)
    st16.start()
    await booted16(csms, since=mark)
    got = await get_keys(csms, ["MeterValueSampleInterval"])
    assert got["MeterValueSampleInterval"]["value"] == "23"
    assert await change(csms, "ClockAlignedDataInterval", "900") == "Accepted"
    assert await st16.terminate() == 0

    csms.checker.version = "2.0.1"  # type: ignore[attr-defined]
    st201 = station_factory()
    mark = len(csms.received)
    st201.start()
    await csms.wait_for(STATION, "StatusNotification", lambda p: p.get("evseId") == 2,
                        since=mark)
    await asyncio.sleep(0.2)
    got201 = await csms.call(STATION, "GetVariables", {"getVariableData": [
        {"component": {"name": "AlignedDataCtrlr"}, "variable": {"name": "Interval"}}]})
    assert got201["getVariableResult"][0]["attributeValue"] == "900"
    assert calls(csms, "BootNotification", mark)[0]["reason"] == "PowerUp"


async def test_clock_aligned_meter_values(csms: DevCsms, station_factory: Any) -> None:
    """ClockAlignedDataInterval (= AlignedDataCtrlr.Interval) and MeterValuesAlignedData:
    clock-aligned MeterValues for every connector, with the transactionId where one
    runs (errata 3.14.2, 3.16)."""
    csms.checker.version = "1.6"  # type: ignore[attr-defined]
    st = station_factory({"AlignedDataCtrlr": {"Interval": 2}}, version="1.6")
    st.start()
    await booted16(csms)
    got = await get_keys(csms, ["ClockAlignedDataInterval", "MeterValuesAlignedData"])
    assert got["ClockAlignedDataInterval"]["value"] == "2"
    await st.plug(1)
    await st.tap("CARD-CLOCK")
    await csms.wait_for(STATION, "StartTransaction")

    def clock(p: dict[str, Any]) -> bool:
        return p["meterValue"][0]["sampledValue"][0]["context"] == "Sample.Clock"

    mark = len(csms.received)
    await csms.wait_for(STATION, "MeterValues", lambda p: clock(p) and p["connectorId"] == 1,
                        since=mark, timeout=6)
    await csms.wait_for(STATION, "MeterValues", lambda p: clock(p) and p["connectorId"] == 2,
                        since=mark, timeout=6)
    aligned = [p for p in calls(csms, "MeterValues", mark) if clock(p)]
    assert {p["connectorId"]: p.get("transactionId") for p in aligned} == {1: 1, 2: None}
    stamp = aligned[0]["meterValue"][0]["timestamp"]
    assert int(stamp[17:19]) % 2 == 0  # on the clock: a multiple of the interval
    measurands = {s["measurand"] for s in aligned[0]["meterValue"][0]["sampledValue"]}
    assert measurands <= set(got["MeterValuesAlignedData"]["value"].split(","))
