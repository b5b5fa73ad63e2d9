"""OCPP 1.6 with the security extension (1.6 security whitepaper ed. 3): profile 2 over
TLS, and the SecurityProfile key raised through ChangeConfiguration (A05.FR.01-09):
accepted only upwards and when its prerequisites hold, then a reconnect with the new
profile, and the fallback to the previous one when that does not connect (A05.FR.08)."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from e2e_support import STATION, booted16
from tls_support import PASSWORD, Bench, install_root, provision_station_certificate


@pytest.fixture
async def bench(tmp_path: Path) -> AsyncIterator[Bench]:
    b = Bench(tmp_path)
    yield b
    await b.close()


async def connections(csms: Any, count: int, timeout: float = 20) -> None:
    """Wait until `count` websocket connections were accepted (a reconnect after an
    Accepted boot sends no new BootNotification)."""
    for _ in range(int(timeout * 10)):
        if len(csms.auth_log) >= count and STATION in csms.stations:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{len(csms.auth_log)} connection(s), expected {count}")


async def get_key(csms: Any, key: str) -> dict[str, Any]:
    answer = await csms.call(STATION, "GetConfiguration", {"key": [key]})
    return dict(answer["configurationKey"][0])


async def change(csms: Any, key: str, value: str) -> str:
    answer = await csms.call(STATION, "ChangeConfiguration", {"key": key, "value": value})
    return str(answer["status"])


async def test_v16_profile_2_then_raised_to_3(bench: Bench) -> None:
    """Profile 2 (whitepaper §2.4: TLS + Basic auth with the AuthorizationKey), then
    ChangeConfiguration SecurityProfile=3: Accepted (A05.FR.05), the station reconnects
    with its client certificate (A05.FR.06/07); lower values are Rejected (A05.FR.01)."""
    ctx = bench.server_context(client_ca=True)
    ctx.verify_mode = ssl.CERT_OPTIONAL  # this CSMS takes profile 2 and profile 3 stations
    csms = await bench.csms(ctx, version="1.6")
    st = bench.station(f"wss://localhost:{csms.port}/ocpp", security_profile=2,
                       basic_auth_password=PASSWORD, version="1.6")
    install_root(st.config, bench.ca)
    provision_station_certificate(st.config, bench.ca, bench.tmp)
    st.start()
    await booted16(csms)
    assert "basic auth" in csms.auth_log[0][1]
    assert "client certificate" not in csms.auth_log[0][1]
    assert (await get_key(csms, "SecurityProfile"))["value"] == "2"
    assert "value" not in await get_key(csms, "AuthorizationKey")  # write-only
    assert await change(csms, "SecurityProfile", "1") == "Rejected"  # A05.FR.01
    assert await change(csms, "SecurityProfile", "2") == "Rejected"  # A05.FR.01: equal

    assert await change(csms, "SecurityProfile", "3") == "Accepted"
    await connections(csms, 2)
    assert len(csms.auth_log) == 2
    assert f"client certificate CN={STATION}" in csms.auth_log[1][1]
    assert "basic auth" not in csms.auth_log[1][1]  # profile 3: no password
    assert (await get_key(csms, "SecurityProfile"))["value"] == "3"
    assert await change(csms, "SecurityProfile", "2") == "Rejected"  # A05.FR.09


async def test_v16_raise_that_cannot_connect_falls_back(bench: Bench) -> None:
    """A05.FR.08: profile 1 on ws://, raised to 2 (root installed, so Accepted); the
    CSMS speaks no TLS on that address: after the attempts the station is back on
    profile 1, and SecurityProfile still reads 1. A05.FR.03: without a root, Rejected."""
    plain = await bench.csms(password=PASSWORD, version="1.6")
    st = bench.station(f"ws://127.0.0.1:{plain.port}/ocpp", security_profile=1,
                       basic_auth_password=PASSWORD, version="1.6",
                       settings={"OCPPCommCtrlr": {"NetworkProfileConnectionAttempts": 2,
                                                   "RetryBackOffWaitMinimum": 1,
                                                   "RetryBackOffRepeatTimes": 0}})
    st.start()
    await booted16(plain)
    assert await change(plain, "SecurityProfile", "2") == "Rejected"  # no root (A05.FR.03)
    install_root(st.config, bench.ca)
    assert await change(plain, "SecurityProfile", "3") == "Rejected"  # no cert (A05.FR.04)
    assert await change(plain, "SecurityProfile", "2") == "Accepted"
    await connections(plain, 2)  # back on profile 1: a new connection
    out = st.output()
    assert out.count(f"cannot reach CSMS at wss://127.0.0.1:{plain.port}") == 2
    assert "security profile 2 could not connect: falling back to 1" in out
    assert (await get_key(plain, "SecurityProfile"))["value"] == "1"
