"""One connected station: answers what it sends, carries the operator's requests to it.

`StationSession` sits in front of the `ocpp` package's versioned ChargePoint in the
MRO (see `station_v201.py`, `station_v16.py`), so the package's routing, `@on`
handlers and schema validation stay in charge, and this class adds only what a
development CSMS needs on top: raw camelCase requests and responses, response
overrides for tests, and CALLERRORs that raise instead of vanishing.
"""

from __future__ import annotations

import asyncio
import copy
import inspect
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ocpp.charge_point import ChargePoint
from ocpp.exceptions import OCPPError
from ocpp.messages import Call, CallError, CallResult, unpack, validate_payload
from ocpp.v16.enums import Action as Action16
from ocpp.v201.enums import Action as Action201
from websockets.exceptions import ConnectionClosed

from .errors import (
    CallTimeoutError,
    InvalidRequestError,
    InvalidResponseError,
    StationCallError,
    StationDisconnectedError,
)
from .frames import FrameLink

if TYPE_CHECKING:
    from .server import DevCsms

LOGGER = logging.getLogger("evse_agent.csms")


class _ExpectedProtocolErrors(logging.Filter):
    """Drops the package's traceback for every CALLERROR it sends: those are expected
    protocol outcomes, logged as one line by `_handle_call` and visible in the frame log.
    Tracebacks of real bugs (any other exception) still get through."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], OCPPError))


# The package's own logger: per-frame INFO lines would duplicate our frame log.
PACKAGE_LOGGER = logging.getLogger("evse_agent.csms.ocpp")
PACKAGE_LOGGER.setLevel(logging.WARNING)
PACKAGE_LOGGER.addFilter(_ExpectedProtocolErrors())

Payload = dict[str, Any]
# A fixed response, or a function of the request payload; a function returning None
# leaves the answer to the built-in handler.
ResponseOverride = Payload | Callable[[Payload], Payload | None | Awaitable[Payload | None]]

KNOWN_ACTIONS: dict[str, frozenset[str]] = {
    "2.0.1": frozenset(action.value for action in Action201),
    "1.6": frozenset(action.value for action in Action16),
}


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def utc_now() -> str:
    return rfc3339(datetime.now(UTC))


def error_cause(error: OCPPError) -> str:
    # The package puts the useful text in details["cause"] next to non-JSON objects.
    cause = error.details.get("cause") if isinstance(error.details, dict) else None
    return str(cause or error.description)


def _call_id(raw_msg: str) -> str | None:
    try:
        message = json.loads(raw_msg)
    except ValueError:
        return None
    if isinstance(message, list) and len(message) > 1 and message[0] == 2:
        return message[1] if isinstance(message[1], str) else None
    return None


async def check_payload(message: Call | CallResult, ocpp_version: str) -> None:
    """Schema-validate a copy of `message`.

    The package swaps some 1.6 floats for Decimals in place while validating, and
    serialising those afterwards would round them to one decimal place.
    """
    probe = copy.copy(message)
    probe.payload = copy.deepcopy(message.payload)
    await validate_payload(probe, ocpp_version)


class StationSession(ChargePoint):
    _ocpp_version: str  # supplied by the versioned ChargePoint that follows in the MRO

    def __init__(self, station_id: str, link: FrameLink, csms: DevCsms) -> None:
        super().__init__(
            station_id, link, response_timeout=csms.call_timeout, logger=PACKAGE_LOGGER
        )
        self.csms = csms
        self.connected_at = datetime.now(UTC)
        self._pending: dict[str, asyncio.Future[CallResult | CallError]] = {}
        self._closed = False

    @property
    def ocpp_version(self) -> str:
        return self._ocpp_version

    def describe(self) -> Payload:
        return {
            "id": self.id,
            "ocpp_version": self.ocpp_version,
            "connected_at": rfc3339(self.connected_at),
        }

    async def call(
        self,
        payload: Any,
        suppress: bool = False,
        unique_id: str | None = None,
        skip_schema_validation: bool = False,
    ) -> Any:
        """The package's typed call (dataclass in, dataclass out), raising on CALLERROR."""
        return await super().call(payload, suppress, unique_id, skip_schema_validation)

    async def request(
        self,
        action: str,
        payload: Payload,
        *,
        timeout: float | None = None,
        validate: bool = True,
    ) -> Payload:
        """Send a CSMS-initiated CALL with a raw camelCase payload; return the raw response.

        `validate=False` skips the schema checks both ways, so a test can feed a station
        a malformed request on purpose.
        """
        if action not in KNOWN_ACTIONS[self.ocpp_version]:
            raise InvalidRequestError(
                "UnknownAction", f"{action!r} is not an OCPP {self.ocpp_version} action"
            )
        message = Call(str(uuid.uuid4()), action, payload)
        if validate:
            try:
                await check_payload(message, self.ocpp_version)
            except OCPPError as error:
                raise InvalidRequestError(
                    error.code, f"{action} request: {error_cause(error)}"
                ) from None
        if self._closed:
            raise StationDisconnectedError(self.id)
        limit = self.csms.call_timeout if timeout is None else timeout
        reply_slot: asyncio.Future[CallResult | CallError] = (
            asyncio.get_running_loop().create_future()
        )
        self._pending[message.unique_id] = reply_slot
        try:
            async with asyncio.timeout(limit):
                # OCPP allows one outstanding CALL per direction; the package's typed
                # call() takes the same lock.
                async with self._call_lock:
                    await self._connection.send(message.to_json())
                    reply = await reply_slot
        except TimeoutError:
            raise CallTimeoutError(self.id, action, limit) from None
        except ConnectionClosed:
            raise StationDisconnectedError(self.id) from None
        finally:
            self._pending.pop(message.unique_id, None)

        if isinstance(reply, CallError):
            raise StationCallError(reply.error_code, reply.error_description, reply.error_details)
        reply.action = action
        if validate:
            try:
                await check_payload(reply, self.ocpp_version)
            except OCPPError as error:
                raise InvalidResponseError(
                    f"{action} response violates the schema ({error.code}): {error_cause(error)}",
                    reply.payload,
                ) from None
        return reply.payload

    async def close(self, code: int = 1000, reason: str = "") -> None:
        link: FrameLink = self._connection
        await link.close(code, reason)

    def connection_lost(self) -> None:
        self._closed = True
        for slot in self._pending.values():
            if not slot.done():
                slot.set_exception(StationDisconnectedError(self.id))

    async def route_message(self, raw_msg: str) -> None:
        try:
            message = unpack(raw_msg)
        except OCPPError as error:
            LOGGER.warning("%s: malformed frame: %s", self.id, error_cause(error))
            unique_id = _call_id(raw_msg)
            if unique_id is not None:  # a CALL we can address gets the error the spec wants
                reply = CallError(
                    unique_id, error.code, error.description, {"cause": error_cause(error)}
                )
                await self._send(reply.to_json())
            return
        if isinstance(message, CallResult | CallError):
            slot = self._pending.get(message.unique_id)
            if slot is not None and not slot.done():
                slot.set_result(message)
                return
        # CALLs, and replies to the package's own typed call().
        await super().route_message(raw_msg)

    async def _handle_call(self, msg: Call) -> Any:
        try:
            return await self._answer(msg)
        except OCPPError as error:
            # The package answers with this CALLERROR; say why in one line.
            LOGGER.warning(
                "%s: %s answered with CALLERROR %s: %s",
                self.id,
                msg.action,
                error.code,
                error_cause(error),
            )
            raise

    async def _answer(self, msg: Call) -> Any:
        override = self.csms.responses.get(msg.action)
        if override is None:
            return await super()._handle_call(msg)
        await validate_payload(msg, self.ocpp_version)
        try:
            if callable(override):
                payload = override(copy.deepcopy(msg.payload))
                if inspect.isawaitable(payload):
                    payload = await payload
            else:
                payload = copy.deepcopy(override)
        except OCPPError:
            raise  # the package turns it into the CALLERROR it names
        except Exception as error:
            LOGGER.exception("%s: response override for %s failed", self.id, msg.action)
            await self._send(msg.create_call_error(error).to_json())
            return None
        if payload is None:
            return await super()._handle_call(msg)
        result = msg.create_call_result(payload)
        try:
            await check_payload(result, self.ocpp_version)
        except OCPPError as error:
            # Sent anyway: a test may want to see how the station copes with it.
            LOGGER.warning(
                "%s: override response for %s violates the schema, sent as is: %s",
                self.id,
                msg.action,
                error_cause(error),
            )
        await self._send(result.to_json())
        return None
