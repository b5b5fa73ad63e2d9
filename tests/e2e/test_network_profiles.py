"""Network connection profiles and security profile migration (2.0.1 B09, B10, A05;
Part 6 TC_A_19_CS, TC_B_43_CS, TC_B_45_CS, TC_B_46_CS, TC_B_49_CS): SetNetworkProfile,
NetworkConfigurationPriority, Reset, then a connection with the new profile, or, when
it fails NetworkProfileConnectionAttempts times, the fallback to the one that worked."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from e2e_support import STATION
from tls_support import PASSWORD, Bench, install_root, make_ca, server_cert


@pytest.fixture
async def bench(tmp_path: Path) -> AsyncIterator[Bench]:
    b = Bench(tmp_path)
    yield b
    await b.close()


def connection_data(url: str, security_profile: int, **more: Any) -> dict[str, Any]:
    return {"ocppVersion": "OCPP20", "ocppTransport": "JSON", "ocppCsmsUrl": url,
            "messageTimeout": 30, "securityProfile": security_profile,
            "ocppInterface": "Wired0", **more}


async def get(csms: Any, component: str, variable: str) -> str | None:
    answer = await csms.call(STATION, "GetVariables", {"getVariableData": [
        {"component": {"name": component}, "variable": {"name": variable}}]})
    return answer["getVariableResult"][0].get("attributeValue")


async def set_priority(csms: Any, value: str) -> dict[str, Any]:
    answer = await csms.call(STATION, "SetVariables", {"setVariableData": [{
        "component": {"name": "OCPPCommCtrlr"},
        "variable": {"name": "NetworkConfigurationPriority"}, "attributeValue": value}]})
    return dict(answer["setVariableResult"][0])


async def profile_1_station(bench: Bench, **settings: Any) -> tuple[Any, Any]:
    plain = await bench.csms(password=PASSWORD)
    st = bench.station(f"ws://127.0.0.1:{plain.port}/ocpp", security_profile=1,
                       basic_auth_password=PASSWORD, settings=settings or None)
    install_root(st.config, bench.ca)
    st.start()
    await plain.wait_for(STATION, "BootNotification", timeout=15)
    return plain, st


async def test_upgrade_to_profile_2_through_a_network_profile(bench: Bench) -> None:
    """TC_A_19_CS (A05.FR.04-06), TC_B_45_CS (B09.FR.01, B10.FR.01/04): the new slot
    first, Reset, connected with profile 2; SecurityProfile 2, the profile-1 slot gone
    from NetworkConfigurationPriority; it all survives a restart (the TOML still says
    profile 1 and ws://: what the CSMS set wins)."""
    plain, st = await profile_1_station(bench)
    tls = await bench.csms(bench.server_context(), password=PASSWORD)
    answer = await plain.call(STATION, "SetNetworkProfile", {
        "configurationSlot": 2,
        "connectionData": connection_data(f"wss://localhost:{tls.port}/ocpp", 2)})
    assert answer["status"] == "Accepted"
    assert (await set_priority(plain, "2,1"))["attributeStatus"] == "RebootRequired"
    assert (await plain.call(STATION, "Reset", {"type": "Immediate"}))["status"] == "Accepted"

    await tls.wait_for(STATION, "BootNotification", timeout=20)
    _, method = tls.auth_log[0]
    assert "basic auth" in method and "TLSv1." in method
    assert await get(tls, "SecurityCtrlr", "SecurityProfile") == "2"
    assert await get(tls, "OCPPCommCtrlr", "NetworkConfigurationPriority") == "2"
    assert await get(tls, "OCPPCommCtrlr", "ActiveNetworkProfile") == "2"

    assert await st.terminate() == 0
    mark, plain_boots = len(tls.received), len(plain.received)
    st.start()
    await tls.wait_for(STATION, "BootNotification", since=mark, timeout=20)
    assert not [r for r in plain.received[plain_boots:] if r.action == "BootNotification"]


async def test_failed_upgrade_falls_back_to_the_working_profile(bench: Bench) -> None:
    """TC_B_46_CS / TC_B_49_CS (B10.FR.03/07), A05 (SecurityProfile rises only after a
    successful connection): slot 2 points at a CSMS whose certificate does not verify;
    after NetworkProfileConnectionAttempts (2) tries the station is back on slot 1."""
    plain, st = await profile_1_station(bench, OCPPCommCtrlr={
        "NetworkProfileConnectionAttempts": 2, "RetryBackOffWaitMinimum": 1,
        "RetryBackOffRepeatTimes": 0})
    other = make_ca(bench.tmp / "other", "Untrusted Root")
    untrusted = await bench.csms(
        bench.server_context(server_cert(bench.tmp / "other", other)), password=PASSWORD)
    answer = await plain.call(STATION, "SetNetworkProfile", {
        "configurationSlot": 2,
        "connectionData": connection_data(f"wss://localhost:{untrusted.port}/ocpp", 2)})
    assert answer["status"] == "Accepted"
    assert (await set_priority(plain, "2,1"))["attributeStatus"] == "RebootRequired"
    mark = len(plain.received)
    assert (await plain.call(STATION, "Reset", {"type": "Immediate"}))["status"] == "Accepted"

    await plain.wait_for(STATION, "BootNotification", since=mark, timeout=25)
    out = st.output()
    tries = [line for line in out.splitlines()
             if f"cannot reach CSMS at wss://localhost:{untrusted.port}" in line]
    assert len(tries) == 2, tries  # NetworkProfileConnectionAttempts per slot
    assert "network profile slot 2" in out and "trying slot 1" in out
    assert untrusted.received == []
    assert await get(plain, "SecurityCtrlr", "SecurityProfile") == "1"
    assert await get(plain, "OCPPCommCtrlr", "ActiveNetworkProfile") == "1"
    # The refused certificate is reported on the connection that works (A00.FR.310).
    await plain.wait_for(STATION, "SecurityEventNotification",
                         lambda p: p["type"] == "InvalidCsmsCertificate", since=mark)


async def test_set_network_profile_and_priority_rejections(bench: Bench) -> None:
    """TC_B_43_CS / B09.FR.02/04/05, B10.FR.02, A05.FR.02/03: a lower security profile, a
    slot outside valuesList, a priority naming an empty slot or one whose certificates
    are missing are Rejected, and nothing changes."""
    plain, st = await profile_1_station(bench)
    url = f"ws://127.0.0.1:{plain.port}/ocpp"

    async def set_profile(slot: int, data: dict[str, Any]) -> str:
        answer = await plain.call(STATION, "SetNetworkProfile",
                                  {"configurationSlot": slot, "connectionData": data})
        return str(answer["status"])

    assert await set_profile(2, connection_data(url, 0)) == "Rejected"  # B09.FR.04
    assert await set_profile(9, connection_data(url, 1)) == "Rejected"  # B09.FR.05
    assert await set_profile(2, connection_data(url, 2)) == "Rejected"  # profile 2 needs wss
    assert await set_profile(2, connection_data(url, 1, ocppTransport="SOAP")) == "Rejected"
    assert (await set_priority(plain, "3,1"))["attributeStatus"] == "Rejected"  # B10.FR.02
    mixed = await plain.call(STATION, "SetVariables", {"setVariableData": [
        {"component": {"name": "OCPPCommCtrlr"}, "attributeValue": "3,1",
         "variable": {"name": "NetworkConfigurationPriority"}},
        {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"},
         "attributeValue": "77"}]})
    assert [r["attributeStatus"] for r in mixed["setVariableResult"]] == [
        "Rejected", "Accepted"]  # the other item goes through, in order (B05.FR.01)
    assert await get(plain, "OCPPCommCtrlr", "HeartbeatInterval") == "77"
    # Profile 3 without a ChargingStationCertificate (A05.FR.03): stored, not usable.
    assert await set_profile(3, connection_data("wss://localhost:1/ocpp", 3)) == "Accepted"
    rejected = await set_priority(plain, "3,1")
    assert rejected["attributeStatus"] == "Rejected"
    assert "ChargingStationCertificate" in rejected["attributeStatusInfo"]["additionalInfo"]
    assert await get(plain, "OCPPCommCtrlr", "NetworkConfigurationPriority") == "1"
    assert (await set_priority(plain, "1"))["attributeStatus"] == "RebootRequired"  # valid
