"""Stations connect, get permissive answers, and every frame is logged and recorded."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import Any

import pytest
from ocpp.exceptions import OCPPError, SecurityError
from ocpp.v16 import call as call16
from ocpp.v201 import call
from ocpp.v201.datatypes import IdTokenType
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Subprotocol

from evse_agent.csms import FROM_STATION, TO_STATION, DevCsms

# What the connect_station fixture returns; the client is an ocpp ChargePoint with `.ws`.
StationFactory = Callable[..., AbstractAsyncContextManager[Any]]

BOOT = call.BootNotification(
    charging_station={"model": "Desk-1", "vendor_name": "Acme"}, reason="PowerUp"
)


async def test_boot_is_accepted_and_every_frame_is_logged(
    csms: DevCsms, connect_station: StationFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="evse_agent.csms")
    frames: list[tuple[str, str, str]] = []
    csms.on_frame.append(lambda *frame: frames.append(frame))

    async with connect_station("CS-1") as client:
        response = await client.call(BOOT, suppress=False)

    assert response.status == "Accepted"
    assert response.interval == 300
    assert datetime.fromisoformat(response.current_time).tzinfo == UTC
    assert response.current_time.endswith("Z")

    (station_id, direction, raw_in), (_, direction_out, raw_out) = frames
    request, answer = json.loads(raw_in), json.loads(raw_out)
    assert (station_id, direction, direction_out) == ("CS-1", FROM_STATION, TO_STATION)
    assert request[0] == 2 and request[2] == "BootNotification"
    assert answer[:2] == [3, request[1]] and answer[2]["status"] == "Accepted"

    lines = [r.getMessage() for r in caplog.records if r.name == "evse_agent.csms"]
    assert f"CS-1 <- {raw_in}" in lines
    assert f"CS-1 -> {raw_out}" in lines

    assert csms.received == [("CS-1", "BootNotification", request[3])]
    boot = await csms.wait_for("CS-1", "BootNotification", timeout=0.1)
    assert boot["chargingStation"]["vendorName"] == "Acme"


async def test_permissive_answers_and_overrides(
    csms: DevCsms, connect_station: StationFactory
) -> None:
    csms.boot_status = "Pending"
    csms.boot_interval = 7
    csms.responses["Heartbeat"] = {"currentTime": "2030-01-01T00:00:00Z"}
    # None falls back to the built-in answer, so only the listed card is refused.
    csms.responses["Authorize"] = lambda payload: (
        {"idTokenInfo": {"status": "Blocked"}} if payload["idToken"]["idToken"] == "BAD" else None
    )
    token = IdTokenType(id_token="GOOD", type="ISO14443")

    async with connect_station("CS-1") as client:
        boot = await client.call(BOOT, suppress=False)
        heartbeat = await client.call(call.Heartbeat(), suppress=False)
        good = await client.call(call.Authorize(id_token=token), suppress=False)
        bad = await client.call(
            call.Authorize(id_token=IdTokenType(id_token="BAD", type="ISO14443")),
            suppress=False,
        )
        started = await client.call(
            call.TransactionEvent(
                event_type="Started",
                timestamp="2025-01-01T00:00:00Z",
                trigger_reason="Authorized",
                seq_no=0,
                transaction_info={"transaction_id": "T1"},
                id_token=token,
            ),
            suppress=False,
        )
        updated = await client.call(
            call.TransactionEvent(
                event_type="Updated",
                timestamp="2025-01-01T00:00:10Z",
                trigger_reason="MeterValuePeriodic",
                seq_no=1,
                transaction_info={"transaction_id": "T1"},
            ),
            suppress=False,
        )
        # Not implemented by the dev CSMS, and that is allowed to show.
        with pytest.raises(OCPPError):
            await client.call(call.GetVariables(get_variable_data=[]), suppress=False)

    assert (boot.status, boot.interval) == ("Pending", 7)
    assert heartbeat.current_time == "2030-01-01T00:00:00Z"
    assert good.id_token_info["status"] == "Accepted"
    assert bad.id_token_info["status"] == "Blocked"
    assert started.id_token_info["status"] == "Accepted"
    assert updated.id_token_info is None


async def test_ocpp16_station_gets_increasing_transaction_ids(
    csms: DevCsms, connect_station: StationFactory
) -> None:
    # The station's first offer wins.
    async with connect_station("CS-16", subprotocols=["ocpp1.6", "ocpp2.0.1"]) as client:
        assert client.ws.subprotocol == "ocpp1.6"
        boot = await client.call(
            call16.BootNotification(charge_point_model="M", charge_point_vendor="V"),
            suppress=False,
        )
        assert boot.status == "Accepted"
        assert csms.stations["CS-16"].ocpp_version == "1.6"
        ids = []
        for connector in (1, 2, 1):
            started = await client.call(
                call16.StartTransaction(
                    connector_id=connector,
                    id_tag="TAG1",
                    meter_start=0,
                    timestamp="2025-01-01T00:00:00Z",
                ),
                suppress=False,
            )
            assert started.id_tag_info["status"] == "Accepted"
            ids.append(started.transaction_id)
        stopped = await client.call(
            call16.StopTransaction(
                meter_stop=10, timestamp="2025-01-01T01:00:00Z", transaction_id=ids[0]
            ),
            suppress=False,
        )

    assert all(isinstance(i, int) for i in ids)
    assert ids == sorted(set(ids))
    assert stopped.id_tag_info is None


async def test_station_id_is_the_percent_decoded_last_segment(
    csms: DevCsms, connect_station: StationFactory
) -> None:
    async with connect_station("CS A/1", path="/some/deep/path") as client:
        await client.call(call.Heartbeat(), suppress=False)
        assert list(csms.stations) == ["CS A/1"]
    # A station that reconnects replaces its old session.
    async with connect_station("CS-2") as first:
        await first.call(call.Heartbeat(), suppress=False)
        old = csms.stations["CS-2"]
        async with connect_station("CS-2") as second:
            await second.call(call.Heartbeat(), suppress=False)
            await first.ws.wait_closed()
            assert csms.stations["CS-2"] is not old


async def test_wait_for_waits_for_a_matching_message(
    csms: DevCsms, connect_station: StationFactory
) -> None:
    async with connect_station("CS-1") as client:
        waiting = asyncio.create_task(
            csms.wait_for(
                "CS-1", "StatusNotification", lambda p: p["connectorStatus"] == "Occupied"
            )
        )
        for status in ("Available", "Occupied"):
            await client.call(
                call.StatusNotification(
                    timestamp="2025-01-01T00:00:00Z",
                    connector_status=status,
                    evse_id=1,
                    connector_id=1,
                ),
                suppress=False,
            )
        assert (await waiting)["connectorStatus"] == "Occupied"
        with pytest.raises(TimeoutError, match="StatusNotification"):
            await csms.wait_for(
                "CS-1", "StatusNotification", since=len(csms.received), timeout=0.05
            )


@pytest.mark.parametrize(
    ("path", "subprotocols", "status"),
    [
        ("/ocpp/CS-1", [], 400),
        ("/ocpp/CS-1", ["ocpp2.1"], 400),
        ("/ocpp/", ["ocpp2.0.1"], 404),
    ],
)
async def test_refuses_handshakes_it_cannot_serve(
    csms: DevCsms, path: str, subprotocols: list[str], status: int
) -> None:
    offered = [Subprotocol(name) for name in subprotocols]
    with pytest.raises(InvalidStatus) as refused:
        async with connect(f"ws://127.0.0.1:{csms.port}{path}", subprotocols=offered or None):
            pass
    assert refused.value.response.status_code == status


async def test_malformed_and_invalid_calls_get_callerrors(
    csms: DevCsms, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="evse_agent.csms")
    csms.responses["DataTransfer"] = _refuse_data_transfer
    url = f"ws://127.0.0.1:{csms.port}/ocpp/RAW"
    async with connect(url, subprotocols=[Subprotocol("ocpp2.0.1")]) as ws:
        exchanges = [
            ('[2,"a","Heartbeat"]', "a", "ProtocolError"),  # payload missing
            ('[2,"b","BootNotification",{"reason":"PowerUp"}]', "b", "ProtocolError"),
            ('[2,"c","DataTransfer",{"vendorId":"x"}]', "c", "SecurityError"),  # the override's
        ]
        for frame, unique_id, code in exchanges:
            await ws.send(frame)
            assert json.loads(await ws.recv())[:3] == [4, unique_id, code]
    warnings = [r.getMessage() for r in caplog.records if r.name.startswith("evse_agent.csms")]
    assert any("BootNotification answered with CALLERROR ProtocolError" in w for w in warnings)
    assert not any(r.exc_info for r in caplog.records), "expected errors need no traceback"


def _refuse_data_transfer(payload: dict[str, Any]) -> dict[str, Any]:
    raise SecurityError(description=f"vendor {payload['vendorId']} is not welcome")
