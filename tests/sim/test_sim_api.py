"""The control API over real HTTP: status codes, effects on the mock, web page, events."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import aiohttp
import pytest
from evse_hal.interfaces import DeviceFault, PilotChanged, TokenPresented
from evse_hal.mock import EVSE_FAULTS, STATION_FAULTS
from PIL import Image
from simharness import Sim, start_sim, station_state, stop_sim

from evse_agent.sim.api import SimServer


async def post(sim: Sim, path: str, body: Any = None, raw: bytes | None = None) -> tuple[int, Any]:
    kwargs: dict[str, Any] = {"data": raw} if raw is not None else {"json": body}
    async with sim.http.post(sim.url + path, **kwargs) as response:
        return response.status, await response.json()


async def test_plug_answers_new_state_after_events_processed(sim: Sim) -> None:
    status, state = await post(sim, "/api/evse/1/plug", {"max_current_a": 16, "soc": 50})
    assert status == 200
    assert PilotChanged(1, "B") in sim.events
    assert state["evses"][0]["pilot"] == "B"
    assert state["evses"][0]["connector_status"] == "Occupied"
    assert state["evses"][1]["pilot"] == "A"
    # after_action ran once, after the action's event existed, before the answer.
    assert sim.after_action_calls == [1]
    assert sim.hardware.evse(1).ev is not None
    assert sim.hardware.evse(1).ev.max_current_a == 16


async def test_plug_twice_conflicts_and_skips_after_action(sim: Sim) -> None:
    assert (await post(sim, "/api/evse/2/plug"))[0] == 200
    status, body = await post(sim, "/api/evse/2/plug")
    assert status == 409
    assert "already" in body["error"]
    assert sim.after_action_calls == [1]


@pytest.mark.parametrize("n", ["9", "0", "abc", "-1"])
async def test_unknown_evse_is_404(sim: Sim, n: str) -> None:
    for action in ("plug", "unplug", "ev"):
        status, body = await post(sim, f"/api/evse/{n}/{action}", {"charging": True})
        assert status == 404, action
        assert "no EVSE" in body["error"]


@pytest.mark.parametrize(
    ("path", "raw"),
    [
        ("/api/evse/1/plug", b"{not json"),
        ("/api/evse/1/plug", b"[1, 2]"),
        ("/api/evse/1/plug", b'{"max_current_a": "16"}'),
        ("/api/evse/1/plug", b'{"max_current_a": 0}'),
        ("/api/evse/1/plug", b'{"soc": 101}'),
        ("/api/evse/1/plug", b'{"iso15118": 1}'),
        ("/api/evse/1/plug", b'{"max_current": 16}'),
        ("/api/evse/1/ev", b"{}"),
        ("/api/evse/1/ev", b'{"charging": "no"}'),
        ("/api/rfid", b""),
        ("/api/rfid", b'{"id_token": ""}'),
        ("/api/rfid", b'{"id_token": 1234}'),
        ("/api/rfid", b'{"id_token": "' + b"A" * 37 + b'"}'),
        ("/api/rfid", b'{"id_token": "AA", "type": 5}'),
        ("/api/fault", b'{"device": "meter"}'),
        ("/api/fault", b'{"device": "meter", "fault": "offline", "evse": "1"}'),
        ("/api/fault", b'{"clear": false}'),
        ("/api/fault", b'{"device": "meter", "fault": "melted"}'),
        ("/api/fault", b'{"device": "toaster", "fault": "offline"}'),
    ],
)
async def test_bad_body_is_400(sim: Sim, path: str, raw: bytes) -> None:
    status, body = await post(sim, path, raw=raw)
    assert status == 400
    assert body["error"]
    assert sim.events == []
    assert sim.after_action_calls == []


async def test_rfid_tap(sim: Sim) -> None:
    status, _ = await post(sim, "/api/rfid", {"id_token": "AABBCCDD"})
    assert status == 200
    status, _ = await post(sim, "/api/rfid", {"id_token": "E1", "type": "ISO15693"})
    assert status == 200
    assert sim.events == [TokenPresented("AABBCCDD", "ISO14443"), TokenPresented("E1", "ISO15693")]


async def test_pause_and_resume(sim: Sim) -> None:
    assert (await post(sim, "/api/evse/1/ev", {"charging": False}))[0] == 409  # no EV yet
    await post(sim, "/api/evse/1/plug")
    await sim.hardware.evse(1).pilot.set_offered_current(16)
    assert sim.hardware.evse(1).pilot_state == "C"
    status, state = await post(sim, "/api/evse/1/ev", {"charging": False})
    assert (status, state["evses"][0]["pilot"]) == (200, "B")
    status, state = await post(sim, "/api/evse/1/ev", {"charging": True})
    assert (status, state["evses"][0]["pilot"]) == (200, "C")


async def test_fault_inject_and_clear(sim: Sim) -> None:
    status, _ = await post(sim, "/api/fault", {"device": "meter", "fault": "offline", "evse": 2})
    assert status == 200
    status, _ = await post(sim, "/api/fault", {"device": "rfid", "fault": "gone"})
    assert status == 200
    assert sim.events == [DeviceFault("meter", 2, "offline"), DeviceFault("rfid", 0, "gone")]
    # The reader is gone: a tap does not fit the state.
    assert (await post(sim, "/api/rfid", {"id_token": "AABBCCDD"}))[0] == 409
    assert (await post(sim, "/api/fault", {"device": "lock", "fault": "jammed", "evse": 7}))[
        0
    ] == 404
    status, _ = await post(sim, "/api/fault", {"clear": True})
    assert status == 200
    assert DeviceFault("meter", 2, "offline", False) in sim.events
    assert DeviceFault("rfid", 0, "gone", False) in sim.events
    assert not sim.hardware.reader.faults


async def test_unplug(sim: Sim) -> None:
    assert (await post(sim, "/api/evse/1/unplug"))[0] == 409
    await post(sim, "/api/evse/1/plug")
    status, state = await post(sim, "/api/evse/1/unplug")
    assert (status, state["evses"][0]["pilot"]) == (200, "A")
    assert sim.events[-1] == PilotChanged(1, "A")


async def test_get_state_and_unknown_routes(sim: Sim) -> None:
    async with sim.http.get(sim.url + "/api/state") as response:
        assert response.status == 200
        assert await response.json() == station_state(sim.hardware)
    async with sim.http.get(sim.url + "/api/nothing") as response:
        assert response.status == 404
        assert "error" in await response.json()
    async with sim.http.get(sim.url + "/api/rfid") as response:
        assert response.status == 405
        assert "POST" in response.headers["Allow"]
        assert "error" in await response.json()


async def test_display_png_draws_the_display_text(sim: Sim) -> None:
    async def fetch() -> Image.Image:
        async with sim.http.get(sim.url + "/api/display.png") as response:
            assert response.status == 200
            assert response.content_type == "image/png"
            image = Image.open(io.BytesIO(await response.read()))
        assert (image.format, image.size) == ("PNG", (480, 272))
        return image

    assert (await fetch()).convert("L").getbbox() is None  # nothing shown yet: blank
    await sim.hardware.display.show("EVSE 1: tap your card")
    assert (await fetch()).convert("L").getbbox() is not None


async def test_web_page(sim: Sim) -> None:
    async with sim.http.get(sim.url + "/") as response:
        assert response.status == 200
        assert response.content_type == "text/html"
        page = await response.text()
    for label in ("Tap card", "Plug", "Unplug", "Pause", "Resume", "Inject fault", "Clear faults"):
        assert label in page
    assert 'value="AABBCCDD"' in page
    assert "/api/events" in page
    # Works offline on a bench: nothing loaded from elsewhere.
    assert 'src="http' not in page and 'href="http' not in page and "//cdn" not in page
    # The page's fault menu mirrors what the mock simulates.
    for device, faults in {**EVSE_FAULTS, **STATION_FAULTS}.items():
        assert f"{device}: [" in page
        for fault in faults:
            assert f'"{fault}"' in page


async def receive_state(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    return await asyncio.wait_for(ws.receive_json(), timeout=2)


async def test_events_push_state_after_action(sim: Sim) -> None:
    async with sim.http.ws_connect(sim.url + "/api/events") as ws:
        first = await receive_state(ws)
        assert first["evses"][0]["pilot"] == "A"
        await post(sim, "/api/evse/1/plug")
        pushed = await receive_state(ws)
        assert pushed["evses"][0]["pilot"] == "B"


async def test_notify_pushes_at_once() -> None:
    sim = await start_sim(poll_interval_s=60)
    try:
        async with sim.http.ws_connect(sim.url + "/api/events") as ws:
            await receive_state(ws)
            # A change made by the agent, not through the API, then announced.
            await sim.hardware.display.show("Tap your card")
            sim.server.notify()
            assert (await receive_state(ws))["display"]["text"] == "Tap your card"
    finally:
        await stop_sim(sim)


async def test_poll_pushes_unannounced_changes_and_skips_unchanged() -> None:
    sim = await start_sim(poll_interval_s=0.05)
    try:
        async with sim.http.ws_connect(sim.url + "/api/events") as ws:
            await receive_state(ws)
            # Several polls pass without a change: nothing is sent.
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(ws.receive_json(), timeout=0.2)
            sim.hardware.plug(2)
            assert (await receive_state(ws))["evses"][1]["pilot"] == "B"
    finally:
        await stop_sim(sim)


async def test_after_action_failure_is_500_json() -> None:
    sim = await start_sim()

    async def broken() -> None:
        raise RuntimeError("queue closed")

    server = SimServer(sim.hardware, lambda: station_state(sim.hardware), "127.0.0.1", 0, broken)
    port = await server.start()
    try:
        async with sim.http.post(f"http://127.0.0.1:{port}/api/evse/1/plug") as response:
            assert response.status == 500
            assert "queue closed" in (await response.json())["error"]
    finally:
        await server.stop()
        await stop_sim(sim)


async def test_stop_closes_open_event_sockets() -> None:
    sim = await start_sim()
    ws = await sim.http.ws_connect(sim.url + "/api/events")
    await receive_state(ws)
    await asyncio.wait_for(sim.server.stop(), timeout=2)
    message = await asyncio.wait_for(ws.receive(), timeout=2)
    assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    await ws.close()
    await stop_sim(sim)  # stopping twice is harmless
