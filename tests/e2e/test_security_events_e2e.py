"""Security events end to end (2.0.1 A04, 1.6 security whitepaper "Security Events"):
critical events reach the CSMS as SecurityEventNotification, queued while offline and
across restarts and kill -9, in order, once (A04.FR.01-03); non-critical ones are only
logged (A04.FR.04). Part 6: after a reboot the station sends SecurityEventNotification
StartupOfTheDevice / ResetOrReboot after the connector statuses (TC_B_21_CS step 11,
TC_G_19_CS and TC_G_21_CS step 6). The events of TC_A_05/06/14_CS (TLS, certificates)
and TC_L_*_CS (firmware) are recorded by their modules through the same log."""

from __future__ import annotations

import asyncio
from typing import Any

from e2e_support import STATION, FrameChecker, booted16, free_port

from evse_agent.csms import DevCsms

ACTION = "SecurityEventNotification"


def notifications(checker: FrameChecker) -> list[list[Any]]:
    return [m for d, m in checker.frames if d == "<-" and m[0] == 2 and m[2] == ACTION]


async def logged(st: Any, needle: str, count: int = 1, timeout: float = 15) -> None:
    for _ in range(int(timeout * 10)):
        if st.output().count(needle) >= count:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{needle!r} x{count} not in the log:\n{st.output()[-3000:]}")


async def wait_count(checker: FrameChecker, count: int, timeout: float = 20) -> None:
    for _ in range(int(timeout * 10)):
        if len(notifications(checker)) >= count:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{len(notifications(checker))} of {count} notifications")


async def test_offline_events_survive_stop_and_kill_9_and_arrive_once_in_order(
    station_factory: Any,
) -> None:
    """A04.FR.02: three start-ups while no CSMS is reachable (a clean stop, then a
    kill -9 in between) reach the CSMS once it is there: each once, oldest first."""
    port = free_port()
    st = station_factory(port=port)
    startup = "security event StartupOfTheDevice (critical)"
    st.start()
    await logged(st, startup, 1)
    assert await st.terminate() == 0
    st.start()
    await logged(st, startup, 2)
    await asyncio.sleep(0.3)
    st.kill()
    st.start()
    await logged(st, startup, 3)

    back = DevCsms()
    checker = FrameChecker()
    back.on_frame.append(checker)
    await back.start("127.0.0.1", port, api_port=0)
    try:
        await wait_count(checker, 3)
        await asyncio.sleep(1.5)  # nothing more may come
        sent = notifications(checker)
        assert len(sent) == 3, sent
        assert len({m[1] for m in sent}) == 3  # three events, no duplicate
        assert [m[3]["type"] for m in sent] == ["StartupOfTheDevice"] * 3
        stamps = [m[3]["timestamp"] for m in sent]
        assert stamps == sorted(stamps) and len(set(stamps)) == 3
        assert checker.problems == []
    finally:
        await back.stop()


async def test_reset_and_startup_are_notified_in_order(
    csms: DevCsms, station_factory: Any
) -> None:
    """Reset (B11) records ResetOrReboot; the restarted agent records StartupOfTheDevice;
    both critical, sent in that order after BootNotification Accepted."""
    st = station_factory()
    st.start()
    first = await csms.wait_for(STATION, ACTION)
    assert first["type"] == "StartupOfTheDevice"
    # TC_B_21_CS / TC_G_19_CS: BootNotification, every connector's status, then the event
    order = [r.action for r in csms.received if r.action != "Heartbeat"][:4]
    assert order == ["BootNotification", "StatusNotification", "StatusNotification", ACTION]
    since = len(csms.received)
    answer = await csms.call(STATION, "Reset", {"type": "Immediate"})
    assert answer["status"] == "Accepted"
    await csms.wait_for(STATION, "BootNotification", since=since, timeout=20)
    await csms.wait_for(STATION, ACTION, lambda p: p["type"] == "StartupOfTheDevice",
                        since=since, timeout=20)
    later = [r.payload["type"] for r in csms.received[since:] if r.action == ACTION]
    assert later == ["ResetOrReboot", "StartupOfTheDevice"]
    sent = notifications(csms.checker)  # type: ignore[attr-defined]
    assert len({m[1] for m in sent}) == len(sent) == 3


async def test_non_critical_events_are_logged_not_sent(
    csms: DevCsms, station_factory: Any
) -> None:
    """InvalidMessages (a malformed frame got a CALLERROR) and
    ReconfigurationOfSecurityParameters (SetVariables on SecurityCtrlr) are not
    critical: in the security log only (A04.FR.04), never with the value set."""
    st = station_factory()
    st.start()
    await csms.wait_for(STATION, ACTION)
    link = csms.stations[STATION]._connection
    await link.send('[2, "bad-1", "Reset", {"type": "Sometimes"}]')
    await link.send('[2, "bad-2", "Reset", {"type": "Sometimes"}]')  # within the minute
    await logged(st, "security event InvalidMessages: PropertyConstraintViolation")
    answer = await csms.call(STATION, "SetVariables", {"setVariableData": [
        {"component": {"name": "SecurityCtrlr"}, "variable": {"name": "OrganizationName"},
         "attributeValue": "Other CSO"},
        {"component": {"name": "SecurityCtrlr"}, "variable": {"name": "BasicAuthPassword"},
         "attributeValue": "Secret-Password-1234"},
    ]})
    assert {r["attributeStatus"] for r in answer["setVariableResult"]} <= {
        "Accepted", "RebootRequired"}
    await logged(st, "ReconfigurationOfSecurityParameters: SecurityCtrlr.OrganizationName")
    await logged(st, "ReconfigurationOfSecurityParameters: SecurityCtrlr.BasicAuthPassword")
    await asyncio.sleep(0.5)
    assert st.output().count("security event InvalidMessages") == 1  # rate-limited
    security_lines = [x for x in st.output().splitlines() if "evse_agent.security" in x]
    assert not any("Secret-Password-1234" in x for x in security_lines)
    types = [r.payload["type"] for r in csms.received if r.action == ACTION]
    assert types == ["StartupOfTheDevice"]


async def test_ocpp16_security_event_notification(
    csms: DevCsms, station_factory: Any
) -> None:
    """1.6 security extension: the same SecurityEventNotification.req (type,
    timestamp, techInfo), valid against the 1.6 schema, and queued over a restart."""
    csms.checker.version = "1.6"  # type: ignore[attr-defined]
    st = station_factory(version="1.6")
    st.start()
    await booted16(csms)
    first = await csms.wait_for(STATION, ACTION)
    assert first["type"] == "StartupOfTheDevice"
    since = len(csms.received)
    answer = await csms.call(STATION, "Reset", {"type": "Soft"})
    assert answer["status"] == "Accepted"
    await csms.wait_for(STATION, ACTION, lambda p: p["type"] == "StartupOfTheDevice",
                        since=since, timeout=20)
    later = [r.payload["type"] for r in csms.received[since:] if r.action == ACTION]
    assert later == ["ResetOrReboot", "StartupOfTheDevice"]
