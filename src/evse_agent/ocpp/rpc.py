"""OCPP-J framing: parse frames, validate payloads against the official schemas shipped
in the `ocpp` package, and build CALL / CALLRESULT / CALLERROR frames.

Schema violations map onto the RPC framework error codes of OCPP-J (2.0.1 Part 4
§4.3; 1.6 §4.2.3, which spells two of them differently).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from jsonschema.exceptions import ValidationError, best_match
from ocpp.messages import get_validator

CALL, CALLRESULT, CALLERROR = 2, 3, 4


class RpcError(Exception):
    """An incoming frame the station cannot process; becomes a CALLERROR."""

    def __init__(self, code: str, description: str, message_id: str = "-1") -> None:
        super().__init__(f"{code}: {description}")
        self.code = code
        self.description = description[:255]
        self.message_id = message_id


@dataclass(frozen=True)
class Call:
    message_id: str
    action: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class CallResult:
    message_id: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class CallError:
    message_id: str
    code: str
    description: str
    details: dict[str, Any]


Frame = Call | CallResult | CallError


def codes(version: str) -> dict[str, str]:
    """Error code names per OCPP version (1.6 has its own spellings)."""
    if version == "1.6":
        return {
            "format": "FormationViolation",
            "occurrence": "OccurenceConstraintViolation",
            "property": "PropertyConstraintViolation",
            "type": "TypeConstraintViolation",
            "protocol": "ProtocolError",
            "framework": "ProtocolError",
            "message_type": "ProtocolError",
            "not_implemented": "NotImplemented",
            "generic": "GenericError",
        }
    return {
        "format": "FormatViolation",
        "occurrence": "OccurrenceConstraintViolation",
        "property": "PropertyConstraintViolation",
        "type": "TypeConstraintViolation",
        "protocol": "ProtocolError",
        "framework": "RpcFrameworkError",
        "message_type": "MessageTypeNotSupported",
        "not_implemented": "NotImplemented",
        "generic": "GenericError",
    }


def parse(raw: str | bytes, version: str) -> Frame:
    c = codes(version)
    try:
        msg = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        code = c["format"] if version == "1.6" else c["framework"]
        raise RpcError(code, f"not JSON: {exc}") from None
    if not isinstance(msg, list) or len(msg) < 2:
        raise RpcError(c["framework"], "a frame is a JSON array of 3 to 5 elements")
    type_id, message_id = msg[0], msg[1]
    if not isinstance(message_id, str) or len(message_id) > 36:
        raise RpcError(c["framework"], "MessageId must be a string of up to 36 characters")
    if len(msg) < 3:
        raise RpcError(c["framework"], "a frame is a JSON array of 3 to 5 elements", message_id)
    if type_id == CALL:
        if len(msg) != 4 or not isinstance(msg[2], str) or not isinstance(msg[3], dict):
            raise RpcError(c["protocol"], "CALL is [2, id, action, {payload}]", message_id)
        return Call(message_id, msg[2], msg[3])
    if type_id == CALLRESULT:
        if len(msg) != 3 or not isinstance(msg[2], dict):
            raise RpcError(c["protocol"], "CALLRESULT is [3, id, {payload}]", message_id)
        return CallResult(message_id, msg[2])
    if type_id == CALLERROR:
        if len(msg) != 5:
            raise RpcError(c["protocol"], "CALLERROR has 5 elements", message_id)
        details = msg[4] if isinstance(msg[4], dict) else {}
        return CallError(message_id, str(msg[2]), str(msg[3]), details)
    raise RpcError(c["message_type"], f"unknown MessageTypeId {type_id!r}", message_id)


def validate(action: str, payload: dict[str, Any], version: str, request: bool) -> None:
    """Raise RpcError when `payload` is not valid for `action`; NotImplemented when the
    action has no schema in this OCPP version."""
    c = codes(version)
    try:
        validator = get_validator(CALL if request else CALLRESULT, action, version)
    except OSError:
        raise RpcError(c["not_implemented"], f"unknown action {action}") from None
    if validator.is_valid(payload):  # the common case, without building error trees
        return
    error = best_match(validator.iter_errors(payload), key=_relevance)
    if error is None:
        return
    raise RpcError(_code_for(error, c), f"{action}: {_where(error)}{error.message}")


def _relevance(error: ValidationError) -> tuple[int, int]:
    order = {"required": 0, "type": 1, "additionalProperties": 2}
    return (-order.get(str(error.validator), 3), -len(error.path))


def _code_for(error: ValidationError, c: dict[str, str]) -> str:
    kind = str(error.validator)
    if kind == "required":
        return c["occurrence"]
    if kind in ("minItems", "maxItems"):
        return c["occurrence"]
    if kind == "type":
        return c["type"]
    if kind == "additionalProperties":
        return c["format"]
    return c["property"]  # enum, maxLength, minimum, pattern, ...


def _where(error: ValidationError) -> str:
    path = ".".join(str(p) for p in error.absolute_path)
    return f"{path}: " if path else ""


# --- building frames -----------------------------------------------------------------
def new_message_id() -> str:
    return str(uuid.uuid4())


def call_frame(message_id: str, action: str, payload: dict[str, Any]) -> str:
    return json.dumps([CALL, message_id, action, payload], separators=(",", ":"))


def result_frame(message_id: str, payload: dict[str, Any]) -> str:
    return json.dumps([CALLRESULT, message_id, payload], separators=(",", ":"))


def error_frame(message_id: str, code: str, description: str) -> str:
    return json.dumps([CALLERROR, message_id, code, description, {}], separators=(",", ":"))


def timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC with a 'Z', milliseconds: the form every CSMS accepts."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{moment.microsecond // 1000:03d}Z"
    )
