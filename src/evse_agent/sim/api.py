"""The mock hardware control API: a JSON HTTP API and a web page that drive the mock
devices of a running station (see "Contract: mock hardware control API" in DESIGN.md).

GET  /                       the web page (static/index.html)
GET  /api/state              the whole station, as the agent's `state()` builds it
POST /api/rfid               {"id_token": str, "type": str?}
POST /api/evse/{n}/plug      {"max_current_a"?, "battery_wh"?, "soc"?, "iso15118"?, "phases"?,
                              "emaid"?, "certificate_request"?}  (the last two: Plug & Charge)
POST /api/evse/{n}/unplug
POST /api/evse/{n}/ev        {"charging": bool}
POST /api/fault              {"device": str, "fault": str, "evse": int?} | {"clear": true}
GET  /api/display.png        the display text drawn as the HAL's PNG display draws it
WS   /api/events             the state JSON, sent on connect and whenever it changes

Answers: 200 with the new state; {"error": "..."} with 404 (unknown EVSE), 409 (the
action does not fit the simulated state), 400 (bad body, unknown device or fault).

The server owns no station state: the agent hands it `state()` (it alone knows the OCPP
connection, connector status and transaction ids) and `after_action()`, awaited after
each successful action so the events the action produced are processed before the
answer leaves, and a client doing "plug" then "state" sees the effect.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

from aiohttp import WSCloseCode, web
from evse_hal.mock import MockHardware, SimConflict, UnknownEvse, UnknownFault

from evse_agent.sim.bodies import (
    BadBody,
    decode,
    ev_charging,
    fault_request,
    plug_args,
    rfid_args,
)

log = logging.getLogger(__name__)

StateProvider = Callable[[], dict[str, Any]]
AfterAction = Callable[[], Awaitable[None]]

_dumps = functools.partial(json.dumps, separators=(",", ":"))
DISPLAY_SIZE = (480, 272)  # a common 4.3" panel; the PNG driver's default


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


def read_page() -> str:
    """The web page, from the installed package data."""
    page = resources.files("evse_agent.sim").joinpath("static").joinpath("index.html")
    return page.read_text(encoding="utf-8")


@web.middleware
async def _json_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Maps the mock's exceptions to the contract's status codes, and aiohttp's own
    404/405 under /api to JSON, so a script always gets {"error": ...} to print."""
    try:
        return await handler(request)
    except UnknownEvse as err:
        return _error(404, str(err))
    except SimConflict as err:
        return _error(409, str(err))
    except (BadBody, UnknownFault) as err:
        return _error(400, str(err))
    except web.HTTPException as exc:
        if exc.status < 400 or not request.path.startswith("/api/"):
            raise
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        if exc.status == 405:
            message = f"{request.method} is not allowed on {request.path}"
        elif exc.status == 404:
            message = f"no such control API route: {request.method} {request.path}"
        else:
            message = exc.reason
        return _error(exc.status, message, headers)


class SimServer:
    def __init__(
        self,
        hardware: MockHardware,
        state: StateProvider,
        host: str,
        port: int,
        after_action: AfterAction | None = None,
        *,
        poll_interval_s: float = 1.0,
    ) -> None:
        """`poll_interval_s` bounds how stale the web page gets for changes nobody
        notify()-ed (an EV slowly filling up, a meter counting)."""
        if poll_interval_s <= 0:
            raise ValueError(f"poll_interval_s must be > 0, got {poll_interval_s}")
        self.hardware = hardware
        self.host = host
        self._state = state
        self._requested_port = port
        self._after_action = after_action
        self._poll_interval_s = poll_interval_s
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._page = ""
        self._pusher: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        # One action (and the agent's processing of its events) at a time, so two
        # clients racing "plug" and "unplug" see each other's effects in order.
        self._action_lock = asyncio.Lock()
        # Each page's websocket, with the state text it last got: a page is sent only
        # what differs from what it already shows.
        self._clients: dict[web.WebSocketResponse, str] = {}

    @property
    def port(self) -> int | None:
        """The bound port once started (useful when constructed with port 0)."""
        return self._port

    @property
    def url(self) -> str | None:
        return None if self._port is None else f"http://{self.host}:{self._port}"

    async def start(self) -> int:
        """Listen; returns the bound port. Raises OSError when the address is taken."""
        if self._runner is not None:
            raise RuntimeError("SimServer already started")
        # Read now, so missing package data fails the start, not the first page load.
        self._page = read_page()
        # Agent logs are the record worth reading; access lines would only interleave.
        runner = web.AppRunner(self._build_app(), access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self._requested_port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._port = runner.addresses[0][1]
        self._pusher = asyncio.create_task(self._push_loop(), name="sim-events")
        return self._port

    async def stop(self) -> None:
        pusher, self._pusher = self._pusher, None
        if pusher is not None:
            pusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pusher
        # Close the page's websockets first: cleanup would otherwise wait for their
        # handlers, which end only when the browser goes away.
        for ws in list(self._clients):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"station stopping")
        self._clients.clear()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        self._port = None

    def notify(self) -> None:
        """The state may have changed: push it to the web pages now rather than at the
        next poll. Call from the event loop's thread."""
        self._wake.set()

    # --- app -----------------------------------------------------------------------
    def _build_app(self) -> web.Application:
        app = web.Application(middlewares=[_json_errors])
        app.router.add_get("/", self._index)
        app.router.add_get("/api/state", self._get_state)
        app.router.add_post("/api/rfid", self._rfid)
        app.router.add_post("/api/evse/{n}/plug", self._plug)
        app.router.add_post("/api/evse/{n}/unplug", self._unplug)
        app.router.add_post("/api/evse/{n}/ev", self._ev)
        app.router.add_post("/api/fault", self._fault)
        app.router.add_get("/api/display.png", self._display_png)
        app.router.add_get("/api/events", self._events)
        return app

    async def _index(self, _: web.Request) -> web.Response:
        return web.Response(text=self._page, content_type="text/html", charset="utf-8")

    async def _get_state(self, _: web.Request) -> web.Response:
        return web.json_response(self._state(), dumps=_dumps)

    async def _display_png(self, _: web.Request) -> web.Response:
        # Pillow only when someone looks; rendered off the loop, as the drivers do.
        from evse_hal.backends.display import render_png

        text = str(self._state()["display"]["text"])
        png = await asyncio.to_thread(render_png, text, DISPLAY_SIZE[0], DISPLAY_SIZE[1])
        return web.Response(body=png, content_type="image/png")

    async def _rfid(self, request: web.Request) -> web.Response:
        id_token, token_type = rfid_args(decode(await request.read(), allow_empty=False))
        return await self._act(lambda: self.hardware.tap(id_token, token_type))

    async def _plug(self, request: web.Request) -> web.Response:
        evse_id = self._evse_id(request)
        args = plug_args(decode(await request.read(), allow_empty=True))
        return await self._act(lambda: self.hardware.plug(evse_id, **args))

    async def _unplug(self, request: web.Request) -> web.Response:
        # The contract defines no body here; whatever is sent is ignored.
        evse_id = self._evse_id(request)
        return await self._act(lambda: self.hardware.unplug(evse_id))

    async def _ev(self, request: web.Request) -> web.Response:
        evse_id = self._evse_id(request)
        charging = ev_charging(decode(await request.read(), allow_empty=False))
        return await self._act(lambda: self.hardware.set_ev_charging(evse_id, charging))

    async def _fault(self, request: web.Request) -> web.Response:
        wanted = fault_request(decode(await request.read(), allow_empty=False))
        if wanted is None:
            return await self._act(self.hardware.clear_faults)
        return await self._act(
            lambda: self.hardware.inject_fault(wanted.device, wanted.fault, wanted.evse)
        )

    def _evse_id(self, request: web.Request) -> int:
        # Checked before the body, so /api/evse/9/plug is 404 whatever it carries.
        return self.hardware.evse(request.match_info["n"]).evse_id

    async def _act(self, action: Callable[[], object]) -> web.Response:
        async with self._action_lock:
            action()  # the mock's errors propagate to _json_errors
            if self._after_action is not None:
                try:
                    await self._after_action()
                except Exception as err:
                    log.exception("processing a simulated action failed")
                    self.notify()
                    return _error(
                        500, f"the action was done, but the agent failed to process it: {err}"
                    )
        self.notify()
        return web.json_response(self._state(), dumps=_dumps)

    # --- live updates --------------------------------------------------------------
    async def _events(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=30.0)
        await ws.prepare(request)
        text = self._state_text()
        self._clients[ws] = text
        try:
            await ws.send_str(text)
            # The page sends nothing; reading is how a closed tab is noticed.
            async for _ in ws:
                pass
        finally:
            self._clients.pop(ws, None)
        return ws

    def _state_text(self) -> str:
        return _dumps(self._state())

    async def _push_loop(self) -> None:
        while True:
            # asyncio.timeout, not wait_for: Python 3.11's wait_for can swallow a cancel
            # that lands as the event fires, and stop() would then wait forever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._poll_interval_s):
                    await self._wake.wait()
            self._wake.clear()
            if not self._clients:
                continue
            try:
                text = self._state_text()
            except Exception:
                # A broken provider must not end live updates for good; try next tick.
                log.exception("building the simulated station's state failed")
                continue
            await self._broadcast(text)

    async def _broadcast(self, text: str) -> None:
        stale = [ws for ws, shown in self._clients.items() if shown != text]
        for ws in stale:
            self._clients[ws] = text
        results = await asyncio.gather(*(ws.send_str(text) for ws in stale), return_exceptions=True)
        for ws, result in zip(stale, results, strict=True):
            if isinstance(result, Exception):
                self._clients.pop(ws, None)
