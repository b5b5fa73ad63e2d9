"""A running DevCsms per test, and stations built on the `ocpp` package's ChargePoint."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from ocpp.charge_point import ChargePoint
from ocpp.routing import on
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call_result
from ocpp.v201.enums import Action
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from evse_agent.csms import DevCsms


class Station201(ChargePoint201):
    """Answers GetVariables from a tiny fixed device model; anything else NotImplemented."""

    values = {("OCPPCommCtrlr", "HeartbeatInterval"): "300"}

    @on(Action.get_variables)
    def on_get_variables(
        self, get_variable_data: list[dict[str, Any]], **_: Any
    ) -> call_result.GetVariables:
        results = []
        for item in get_variable_data:
            value = self.values.get((item["component"]["name"], item["variable"]["name"]))
            result = {
                "attribute_status": "Accepted" if value is not None else "UnknownVariable",
                "component": item["component"],
                "variable": item["variable"],
            }
            if value is not None:
                result["attribute_value"] = value
            results.append(result)
        return call_result.GetVariables(get_variable_result=results)


class Station16(ChargePoint16):
    pass


@pytest.fixture
async def csms() -> AsyncIterator[DevCsms]:
    server = DevCsms()
    await server.start(port=0)
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def http(csms: DevCsms) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{csms.api_port}") as session:
        yield session


StationFactory = Callable[..., contextlib.AbstractAsyncContextManager[ChargePoint]]


@contextlib.asynccontextmanager
async def _station(
    csms: DevCsms,
    station_id: str = "CS-1",
    subprotocols: Sequence[str] = ("ocpp2.0.1",),
    path: str = "/ocpp",
) -> AsyncIterator[ChargePoint]:
    """A connected station whose ChargePoint loop runs in the background; its class
    follows the negotiated subprotocol and `.ws` is its websocket."""
    url = f"ws://127.0.0.1:{csms.port}{path}/{quote(station_id, safe='')}"
    offered = [Subprotocol(name) for name in subprotocols]
    async with connect(url, subprotocols=offered) as ws:
        cls = Station16 if ws.subprotocol == "ocpp1.6" else Station201
        client = cls(station_id, ws)
        client.ws = ws
        loop = asyncio.create_task(client.start())
        try:
            yield client
        finally:
            loop.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                await loop


@pytest.fixture
def connect_station(csms: DevCsms) -> StationFactory:
    """`async with connect_station("CS-1", subprotocols=[...]) as client: ...`"""
    return functools.partial(_station, csms)
