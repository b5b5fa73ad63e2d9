"""The websocket edge: connect (and reconnect with back-off) to the CSMS, and run one
OCPP-J endpoint per connection.

The endpoint keeps at most one CALL of ours outstanding (OCPP-J §4.1.1), answers the
CSMS's CALLs in their own tasks so a handler never blocks the receive loop, validates
every frame both ways against the official schemas, and answers a bad frame with the
CALLERROR the spec names.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import random
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import websockets
from websockets.asyncio.client import ClientConnection, connect

from . import rpc

log = logging.getLogger("evse_agent.ocpp")

SUBPROTOCOLS = {"2.0.1": "ocpp2.0.1", "1.6": "ocpp1.6"}


class CallFailed(Exception):
    """Our CALL got no usable answer: kind is 'timeout', 'error' (a CALLERROR, code
    set), 'invalid' (a response that breaks the schema) or 'closed'."""

    def __init__(self, kind: str, detail: str = "", code: str | None = None) -> None:
        super().__init__(f"{kind}: {code or ''} {detail}".strip())
        self.kind = kind
        self.code = code


@dataclass
class Reply:
    """A handler's answer: the response payload, and work to do once it is sent
    (a TriggerMessage's message, a reset)."""

    payload: dict[str, Any]
    after: Callable[[], Awaitable[None]] | None = None


Handler = Callable[[rpc.Call], Awaitable[Reply]]


class Endpoint:
    def __init__(
        self,
        ws: ClientConnection,
        version: str,
        handler: Handler,
        on_frame: Callable[[str, str], None] | None = None,
    ) -> None:
        self.ws = ws
        self.version = version
        self._handler = handler
        self._on_frame = on_frame
        self._lock = asyncio.Lock()
        self._pending: tuple[str, str, asyncio.Future[dict[str, Any]]] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.closed = asyncio.Event()

    async def call(
        self,
        action: str,
        payload: dict[str, Any],
        timeout: float,
        message_id: str | None = None,
    ) -> dict[str, Any]:
        rpc.validate(action, payload, self.version, request=True)  # our own bug if it fails
        async with self._lock:
            if self.closed.is_set():
                raise CallFailed("closed")
            message_id = message_id or rpc.new_message_id()
            future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
            self._pending = (message_id, action, future)
            try:
                await self._send(rpc.call_frame(message_id, action, payload))
                # MessageTimeout runs from the moment the CALL is on the wire.
                async with asyncio.timeout(timeout):  # not wait_for: see aio.wait_event
                    return await future
            except TimeoutError:
                raise CallFailed("timeout", f"{action} not answered in {timeout:g} s") from None
            except websockets.ConnectionClosed:
                raise CallFailed("closed") from None
            finally:
                self._pending = None

    async def _send(self, frame: str) -> None:
        if self._on_frame:
            self._on_frame("->", frame)
        await self.ws.send(frame)

    async def run(self) -> None:
        """Receive until the connection closes."""
        try:
            async for raw in self.ws:
                text = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
                if self._on_frame:
                    self._on_frame("<-", text)
                self._receive(text)
        except websockets.ConnectionClosed:
            pass
        finally:
            self.closed.set()
            if self._pending and not self._pending[2].done():
                self._pending[2].set_exception(CallFailed("closed"))
            for task in list(self._tasks):
                task.cancel()

    def _receive(self, text: str) -> None:
        try:
            frame = rpc.parse(text, self.version)
        except rpc.RpcError as err:
            log.warning("bad frame from CSMS: %s", err)
            self._spawn(self._send(rpc.error_frame(err.message_id, err.code, err.description)))
            return
        if isinstance(frame, rpc.Call):
            self._spawn(self._answer(frame))
            return
        pending = self._pending
        if pending is None or pending[0] != frame.message_id or pending[2].done():
            log.warning("answer to a call we are not waiting for: %s", frame.message_id)
            return
        _, action, future = pending
        if isinstance(frame, rpc.CallError):
            future.set_exception(CallFailed("error", frame.description, frame.code))
            return
        try:
            rpc.validate(action, frame.payload, self.version, request=False)
        except rpc.RpcError as err:
            future.set_exception(CallFailed("invalid", err.description, err.code))
            return
        future.set_result(frame.payload)

    async def _answer(self, call: rpc.Call) -> None:
        try:
            rpc.validate(call.action, call.payload, self.version, request=True)
            reply = await self._handler(call)
            rpc.validate(call.action, reply.payload, self.version, request=False)
        except rpc.RpcError as err:
            log.warning("CSMS %s %s refused: %s", call.action, call.message_id, err)
            await self._send(rpc.error_frame(call.message_id, err.code, err.description))
            return
        except Exception:
            log.exception("handler for %s failed", call.action)
            code = "InternalError"
            await self._send(rpc.error_frame(call.message_id, code, "internal error"))
            return
        await self._send(rpc.result_frame(call.message_id, reply.payload))
        if reply.after is not None:
            try:
                await reply.after()
            except CallFailed as failure:  # e.g. the link dropped under a triggered message
                log.warning("after %s: %s", call.action, failure)

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


@dataclass
class Backoff:
    """OCPP-J reconnect back-off: RetryBackOffWaitMinimum, doubled up to
    RetryBackOffRepeatTimes times, plus up to RetryBackOffRandomRange random seconds."""

    wait_minimum: float
    repeat_times: int
    random_range: float
    failures: int = 0

    def next_wait(self) -> float:
        wait = self.wait_minimum * (2 ** min(self.failures, self.repeat_times))
        self.failures += 1
        return wait + random.uniform(0, self.random_range)


def station_url(csms_url: str, station_id: str) -> str:
    return csms_url.rstrip("/") + "/" + quote(station_id, safe="")


def basic_auth_header(station_id: str, password: str) -> dict[str, str]:
    """HTTP Basic: user = the station identity, password as UTF-8 text (2.0.1
    A00.FR.303/304). 1.6: the AuthorizationKey as the CSMS wrote it (hex digits), which
    is how CSMSs read the whitepaper's `<ChargePointId>:<AuthorizationKey>`."""
    token = base64.b64encode(f"{station_id}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def failure_event(err: BaseException) -> str | None:
    """The security event (OCA appendix names, 2.0.1) a failed connection attempt
    stands for: a TLS problem (security/tls.py) or HTTP 401 from the CSMS."""
    response = getattr(err, "response", None)
    if isinstance(err, websockets.InvalidStatus) and response is not None:
        return "FailedToAuthenticateAtCsms" if response.status_code == 401 else None
    if isinstance(err, ssl.SSLError):
        from ..security.tls import tls_failure_event

        return tls_failure_event(err)
    return None


async def open_connection(
    url: str,
    versions: list[str],
    headers: dict[str, str],
    ping_interval: float | None,
    open_timeout: float,
    tls: ssl.SSLContext | None = None,
) -> tuple[ClientConnection, str]:
    """Connect offering the given OCPP versions in order; returns the connection and
    the version the CSMS chose. Raises OSError (ssl.SSLError) / InvalidHandshake /
    ValueError. `tls`: the context for wss:// (security profiles 2 and 3)."""
    offered = [SUBPROTOCOLS[v] for v in versions]
    if url.startswith("wss:") and tls is None:  # never the system trust store
        raise ValueError("a wss:// CSMS needs security profile 2 or 3")
    ws = await connect(
        url,
        ssl=tls if url.startswith("wss:") else None,
        subprotocols=offered,  # type: ignore[arg-type]
        additional_headers=headers,
        compression="deflate",
        open_timeout=open_timeout,
        close_timeout=3,  # a CSMS that never completes the closing handshake cannot hold SIGTERM
        ping_interval=ping_interval,
        max_size=2**22,
    )
    chosen = ws.subprotocol
    for version, name in SUBPROTOCOLS.items():
        if chosen == name:
            return ws, version
    await ws.close()
    raise ValueError(f"CSMS accepted none of the offered subprotocols {offered}")
