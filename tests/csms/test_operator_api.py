"""The operator HTTP API and DevCsms.call carry CSMS-initiated requests to stations."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import aiohttp
import pytest
from ocpp.v201 import call
from websockets.asyncio.client import connect

from evse_agent.csms import DevCsms, StationCallError, StationDisconnectedError

StationFactory = Callable[..., AbstractAsyncContextManager[Any]]

GET_HEARTBEAT_INTERVAL = {
    "getVariableData": [
        {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}
    ]
}


async def test_lists_stations_and_sends_get_variables(
    csms: DevCsms, connect_station: StationFactory, http: aiohttp.ClientSession
) -> None:
    async with connect_station("CS-1") as client:
        await client.call(call.Heartbeat(), suppress=False)  # registered once it has spoken

        async with http.get("/api/stations") as reply:
            assert reply.status == 200
            (listed,) = await reply.json()
        assert listed["id"] == "CS-1" and listed["ocpp_version"] == "2.0.1"
        assert listed["connected_at"].endswith("Z")

        async with http.post(
            "/api/stations/CS-1/GetVariables", json=GET_HEARTBEAT_INTERVAL
        ) as reply:
            assert reply.status == 200
            body = await reply.json()

    assert body == {
        "getVariableResult": [
            {
                "attributeStatus": "Accepted",
                "attributeValue": "300",
                "component": {"name": "OCPPCommCtrlr"},
                "variable": {"name": "HeartbeatInterval"},
            }
        ]
    }


async def test_unknown_station_is_404(http: aiohttp.ClientSession) -> None:
    async with http.post("/api/stations/NOPE/Reset", json={"type": "Immediate"}) as reply:
        assert reply.status == 404
        assert (await reply.json())["error"] == "UnknownStation"


@pytest.mark.parametrize(
    ("action", "body", "error"),
    [
        ("Frobnicate", {}, "UnknownAction"),
        ("StartTransaction", {}, "UnknownAction"),  # a 1.6 action on a 2.0.1 station
        ("GetVariables", {}, "ProtocolError"),  # getVariableData missing
        ("Reset", {"type": "Sometime"}, "FormatViolation"),  # not in the enum
        ("Reset", [1, 2], "BadRequest"),
    ],
)
async def test_bad_requests_are_400_and_never_sent(
    csms: DevCsms,
    connect_station: StationFactory,
    http: aiohttp.ClientSession,
    action: str,
    body: Any,
    error: str,
) -> None:
    frames: list[tuple[str, str, str]] = []
    async with connect_station("CS-1") as client:
        await client.call(call.Heartbeat(), suppress=False)
        csms.on_frame.append(lambda *frame: frames.append(frame))
        async with http.post(f"/api/stations/CS-1/{action}", json=body) as reply:
            assert reply.status == 400
            assert (await reply.json())["error"] == error
    assert frames == []


async def test_callerror_is_502_and_raises_from_call(
    csms: DevCsms, connect_station: StationFactory, http: aiohttp.ClientSession
) -> None:
    async with connect_station("CS-1") as client:
        await client.call(call.Heartbeat(), suppress=False)
        # The test station has no Reset handler, so its ocpp package answers NotImplemented.
        async with http.post("/api/stations/CS-1/Reset", json={"type": "Immediate"}) as reply:
            assert reply.status == 502
            body = await reply.json()
        with pytest.raises(StationCallError) as raised:
            await csms.call("CS-1", "Reset", {"type": "OnIdle"})
    assert body["error"] == "NotImplemented"
    assert raised.value.error == "NotImplemented"


async def test_silent_station_is_504(csms: DevCsms, http: aiohttp.ClientSession) -> None:
    url = f"ws://127.0.0.1:{csms.port}/ocpp/MUTE"
    async with connect(url, subprotocols=["ocpp2.0.1"]) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps([2, "1", "Heartbeat", {}]))
        assert json.loads(await ws.recv())[0] == 3
        async with http.post("/api/stations/MUTE/ClearCache?timeout=0.05") as reply:
            assert reply.status == 504
            assert (await reply.json())["error"] == "Timeout"
        # The request did reach the station; it just never answered.
        assert json.loads(await ws.recv())[2] == "ClearCache"


async def test_invalid_response_is_502_unless_validation_is_off(
    csms: DevCsms, http: aiohttp.ClientSession
) -> None:
    url = f"ws://127.0.0.1:{csms.port}/ocpp/RAW"
    async with connect(url, subprotocols=["ocpp2.0.1"]) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps([2, "1", "Heartbeat", {}]))
        await ws.recv()

        async def answer_once(payload: dict[str, Any]) -> None:
            request = json.loads(await ws.recv())
            await ws.send(json.dumps([3, request[1], payload]))

        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(answer_once({"status": "Maybe"}))
            reply = await http.post("/api/stations/RAW/ClearCache")
        assert reply.status == 502
        body = await reply.json()
        assert body["error"] == "InvalidResponse" and body["response"] == {"status": "Maybe"}

        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(answer_once({"status": "Maybe"}))
            reply = await http.post(
                "/api/stations/RAW/Reset?validate=false", json={"type": "Whenever"}
            )
        assert reply.status == 200
        assert await reply.json() == {"status": "Maybe"}


async def test_station_leaving_mid_request_fails_the_call(csms: DevCsms) -> None:
    url = f"ws://127.0.0.1:{csms.port}/ocpp/GONE"
    async with connect(url, subprotocols=["ocpp2.0.1"]) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps([2, "1", "Heartbeat", {}]))
        await ws.recv()
        pending = asyncio.create_task(csms.call("GONE", "ClearCache", {}))
        assert json.loads(await ws.recv())[2] == "ClearCache"
    with pytest.raises(StationDisconnectedError):
        await pending
    assert "GONE" not in csms.stations
