"""`DevCsms`: the development CSMS that tests, the demo and `evse-agent csms` drive."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable, Sequence
from datetime import datetime
from http import HTTPStatus
from ssl import SSLContext
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import unquote, urlsplit

from aiohttp import web
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed, NegotiationError
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from .api import start_api
from .errors import UnknownStationError
from .frames import FROM_STATION, FrameHook, FrameLink, format_frame_line
from .session import LOGGER, Payload, ResponseOverride, StationSession
from .station_v16 import StationV16
from .station_v201 import StationV201

if TYPE_CHECKING:
    from .ca import DevCa

SESSION_CLASSES: dict[str, type[StationSession]] = {
    "ocpp2.0.1": StationV201,
    "ocpp1.6": StationV16,
}

Predicate = Callable[[Payload], bool]


class Received(NamedTuple):
    """A CALL a station sent, as it arrived (valid or not)."""

    station_id: str
    action: str
    payload: Payload


def station_id_from_path(path: str) -> str:
    return unquote(urlsplit(path).path.rsplit("/", 1)[-1])


def _select_subprotocol(
    connection: ServerConnection, offered: Sequence[Subprotocol]
) -> Subprotocol | None:
    # The station's order wins: with version "auto" it lists its preference first.
    for subprotocol in offered:
        if subprotocol in SESSION_CLASSES:
            return subprotocol
    LOGGER.warning(
        "refused %s: offered subprotocols %s, need one of %s",
        connection.request.path if connection.request else "?",
        list(offered) or "none",
        list(SESSION_CLASSES),
    )
    raise NegotiationError("no supported subprotocol; expected ocpp2.0.1 or ocpp1.6")


def _check_path(connection: ServerConnection, request: Request) -> Response | None:
    if station_id_from_path(request.path):
        return None
    LOGGER.warning("refused %s: no station id as the last path segment", request.path)
    return connection.respond(HTTPStatus.NOT_FOUND, "expected /<anything>/<station id>\n")


def _parse_call(frame: str) -> tuple[str, Payload] | None:
    try:
        message = json.loads(frame)
    except ValueError:
        return None
    if (
        isinstance(message, list)
        and len(message) >= 4
        and message[0] == 2
        and isinstance(message[2], str)
        and isinstance(message[3], dict)
    ):
        return message[2], message[3]
    return None


class DevCsms:
    """Accepts any station, answers permissively, records and logs every frame.

    Response behaviour is read at answer time, so a test may change `boot_status`,
    `authorize_status`, `boot_interval` or `responses` while stations are connected.
    `responses[action]` is a payload dict or a function of the request payload
    (sync or async; returning None falls back to the built-in answer; raising an
    `ocpp.exceptions.OCPPError` answers with that CALLERROR).
    `certificate_authority` (a csms.ca.DevCa; None: off) signs the CSRs of accepted
    SignCertificate requests and sends them back in CertificateSigned (csms/signing.py).
    """

    def __init__(
        self,
        *,
        boot_status: str = "Accepted",
        boot_interval: int = 300,
        authorize_status: str = "Accepted",
        responses: dict[str, ResponseOverride] | None = None,
        call_timeout: float = 30.0,
        echo: bool = False,
    ) -> None:
        self.boot_status = boot_status
        self.boot_interval = boot_interval
        self.authorize_status = authorize_status
        self.responses: dict[str, ResponseOverride] = dict(responses or {})
        self.call_timeout = call_timeout
        self.echo = echo
        # Profiles 1-2: when set, a station must send Basic auth with this password
        # (401 otherwise); may be changed while running (a new password, A01).
        self.basic_auth_password: str | None = None
        self.auth_log: list[tuple[str, str]] = []  # (station id, how it authenticated)
        self.certificate_authority: DevCa | None = None
        self.stations: dict[str, StationSession] = {}
        self.received: list[Received] = []
        self.on_frame: list[FrameHook] = []
        self.host = "127.0.0.1"
        self.port = 0
        self.api_port = 0
        self._transaction_ids = itertools.count(1)
        self._waiters: list[tuple[Callable[[Received], bool], asyncio.Future[Payload]]] = []
        self._server: Server | None = None
        self._api: web.AppRunner | None = None

    # -- lifecycle ---------------------------------------------------------------

    async def start(
        self,
        host: str = "127.0.0.1",
        port: int = 9000,
        *,
        api_port: int | None = None,
        ssl: SSLContext | None = None,
    ) -> int:
        """Listen for stations; return the bound port. The API takes `port + 1`
        unless `api_port` says otherwise (port 0: any free port for both)."""
        self._server = await serve(
            self._serve_station,
            host,
            port,
            subprotocols=list(SESSION_CLASSES),
            select_subprotocol=_select_subprotocol,
            process_request=self._process_request,
            ssl=ssl,
        )
        self.host = host
        self.port = self._server.sockets[0].getsockname()[1]
        if api_port is None:
            api_port = 0 if port == 0 else self.port + 1
        try:
            self._api, self.api_port = await start_api(self, host, api_port)
        except BaseException:
            await self._close_server()
            raise
        scheme = "wss" if ssl else "ws"
        LOGGER.info(
            "listening on %s://%s:%d/<any>/<station id>, operator API on http://%s:%d/api/stations",
            scheme,
            host,
            self.port,
            host,
            self.api_port,
        )
        return self.port

    async def stop(self) -> None:
        if self._api is not None:
            await self._api.cleanup()
            self._api = None
        await self._close_server()
        for _, slot in self._waiters:
            if not slot.done():
                slot.set_exception(RuntimeError("development CSMS stopped"))

    async def _close_server(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    # -- operator side -----------------------------------------------------------

    async def call(
        self,
        station_id: str,
        action: str,
        payload: Payload,
        *,
        timeout: float | None = None,
        validate: bool = True,
    ) -> Payload:
        """Send a CSMS-initiated request (camelCase payload); return the raw response.

        Raises a `CsmsError`: UnknownStationError, InvalidRequestError,
        StationCallError (CALLERROR), InvalidResponseError, CallTimeoutError,
        StationDisconnectedError.
        """
        session = self.stations.get(station_id)
        if session is None:
            raise UnknownStationError(station_id)
        return await session.request(action, payload, timeout=timeout, validate=validate)

    def next_transaction_id(self) -> int:
        return next(self._transaction_ids)

    async def wait_for(
        self,
        station_id: str | None,
        action: str,
        predicate: Predicate | None = None,
        timeout: float = 10,
        *,
        since: int = 0,
    ) -> Payload:
        """Return the payload of the first matching station CALL in `received[since:]`,
        waiting for one if none has arrived yet. `station_id=None` matches any station;
        pass `since=len(csms.received)` to ignore what came before."""

        def matches(entry: Received) -> bool:
            return (
                (station_id is None or entry.station_id == station_id)
                and entry.action == action
                and (predicate is None or predicate(entry.payload))
            )

        for entry in self.received[since:]:
            if matches(entry):
                return entry.payload
        waiter = (matches, asyncio.get_running_loop().create_future())
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(timeout):
                return await waiter[1]
        except TimeoutError:
            who = station_id or "any station"
            raise TimeoutError(f"no matching {action} from {who} within {timeout:g} s") from None
        finally:
            self._waiters.remove(waiter)

    # -- station side ------------------------------------------------------------

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        refused = _check_path(connection, request)
        if refused is not None or self.basic_auth_password is None:
            return refused
        from .tls import basic_auth_ok

        station_id = station_id_from_path(request.path)
        if basic_auth_ok(request.headers.get("Authorization"), station_id,
                         self.basic_auth_password):
            return None
        LOGGER.warning("refused %s: basic auth missing or wrong (401)", station_id)
        response = connection.respond(HTTPStatus.UNAUTHORIZED, "basic auth required\n")
        response.headers["WWW-Authenticate"] = 'Basic realm="ocpp"'
        return response

    async def _serve_station(self, connection: ServerConnection) -> None:
        assert connection.request is not None and connection.subprotocol is not None
        station_id = station_id_from_path(connection.request.path)
        from .tls import auth_method

        method = auth_method(connection, "Authorization" in connection.request.headers)
        self.auth_log.append((station_id, method))
        LOGGER.info("%s authenticated: %s", station_id, method)
        link = FrameLink(connection, station_id, self._observe)
        session = SESSION_CLASSES[connection.subprotocol](station_id, link, self)
        previous = self.stations.get(station_id)
        self.stations[station_id] = session
        LOGGER.info(
            "%s connected (%s) from %s",
            station_id,
            connection.subprotocol,
            connection.remote_address,
        )
        if previous is not None:
            # A station that reconnects has lost the old socket; the new one is real.
            LOGGER.warning("%s connected again: closing its previous connection", station_id)
            await previous.close()
        try:
            await session.start()
        except ConnectionClosed:
            pass
        finally:
            session.connection_lost()
            if self.stations.get(station_id) is session:
                del self.stations[station_id]
            reason = f" {connection.close_reason}" if connection.close_reason else ""
            LOGGER.info("%s disconnected (code %s%s)", station_id, connection.close_code, reason)

    def _observe(self, station_id: str, direction: str, frame: str) -> None:
        LOGGER.info("%s %s %s", station_id, direction, frame)
        if self.echo:
            print(format_frame_line(station_id, direction, frame, datetime.now()), flush=True)
        if direction == FROM_STATION:
            self._record(station_id, frame)
        for hook in list(self.on_frame):
            try:
                hook(station_id, direction, frame)
            except Exception:
                # A broken observer must not take the station's connection down.
                LOGGER.exception("on_frame hook %r failed", hook)

    def _record(self, station_id: str, frame: str) -> None:
        parsed = _parse_call(frame)
        if parsed is None:
            return
        entry = Received(station_id, *parsed)
        self.received.append(entry)
        for matches, slot in self._waiters:
            if slot.done():
                continue
            try:
                if matches(entry):
                    slot.set_result(entry.payload)
            except Exception as error:  # a predicate's bug belongs to its waiter
                slot.set_exception(error)

    def describe(self) -> list[dict[str, Any]]:
        return [session.describe() for session in self.stations.values()]
