"""The operator HTTP API: list stations, send them CSMS-initiated requests.

GET  /api/stations                   -> [{"id", "ocpp_version", "connected_at"}]
POST /api/stations/{id}/{Action}     body: the OCPP request payload (camelCase JSON)
     ?timeout=SECONDS  ?validate=false (skip schema checks, to provoke a station)
     -> 200 the station's response payload; errors as {"error", "description", ...}:
        404 unknown station, 400 unknown action / invalid payload / bad body,
        502 CALLERROR, invalid response or disconnect, 504 timeout.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .errors import CsmsError

if TYPE_CHECKING:
    from .server import DevCsms

FALSE_WORDS = frozenset({"0", "false", "no", "off"})


def _error(status: int, error: str, description: str) -> web.Response:
    return web.json_response({"error": error, "description": description}, status=status)


def _payload_from(body: bytes) -> dict[str, Any]:
    # Many requests (ClearCache, GetLocalListVersion, ...) have no fields; allow no body.
    if not body.strip():
        return {}
    try:
        payload = json.loads(body)
    except ValueError as error:
        raise ValueError(f"request body is not valid JSON: {error}") from None
    if not isinstance(payload, dict):
        raise ValueError("request body must be a JSON object: the OCPP request payload")
    return payload


def build_api(csms: DevCsms) -> web.Application:
    async def list_stations(_: web.Request) -> web.Response:
        return web.json_response(csms.describe())

    async def send_request(request: web.Request) -> web.Response:
        station_id = request.match_info["station_id"]
        action = request.match_info["action"]
        try:
            payload = _payload_from(await request.read())
            raw_timeout = request.query.get("timeout")
            timeout = float(raw_timeout) if raw_timeout is not None else None
        except ValueError as error:
            return _error(400, "BadRequest", str(error))
        validate = request.query.get("validate", "true").lower() not in FALSE_WORDS
        try:
            response = await csms.call(
                station_id, action, payload, timeout=timeout, validate=validate
            )
        except CsmsError as error:
            return web.json_response(error.to_json(), status=error.http_status)
        return web.json_response(response)

    app = web.Application()
    app.router.add_get("/api/stations", list_stations)
    app.router.add_post("/api/stations/{station_id}/{action}", send_request)
    return app


async def start_api(csms: DevCsms, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Serve the API; return the runner (to clean up) and the bound port."""
    # The frame log is the record worth reading; access lines would only interleave.
    runner = web.AppRunner(build_api(csms), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner, runner.addresses[0][1]
