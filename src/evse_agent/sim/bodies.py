"""Validation of the control API's request bodies, kept apart from the HTTP server so
it is plain functions (tested without sockets) and the client could share it.

Each function takes the decoded JSON body and returns what the mock hardware call
needs, or raises BadBody (answered 400) with a message naming the field.
Unknown fields are refused: a typo such as "max_current" would otherwise be ignored
silently and the EV plugged with defaults the user did not ask for.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, TypedDict

# OCPP 2.0.1 IdTokenType.idToken is at most 36 characters; the reader cannot hand the
# agent anything longer without the CSMS refusing it as a schema violation.
ID_TOKEN_MAX_LEN = 36


class BadBody(ValueError):
    """The request body does not fit the route (answered 400)."""


class PlugArgs(TypedDict, total=False):
    max_current_a: float
    battery_wh: float
    soc: float
    iso15118: bool
    phases: int
    emaid: str
    certificate_request: str


@dataclass(frozen=True)
class FaultRequest:
    device: str
    fault: str
    evse: int | None = None


def decode(raw: bytes, *, allow_empty: bool) -> dict[str, Any]:
    """The body as a JSON object; {} for an empty body where the route allows one."""
    if not raw.strip():
        if allow_empty:
            return {}
        raise BadBody("request body is empty; expected a JSON object")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as err:
        raise BadBody(f"request body is not valid JSON: {err}") from None
    if not isinstance(body, dict):
        raise BadBody(f"request body must be a JSON object, got {type(body).__name__}")
    return body


def rfid_args(body: dict[str, Any]) -> tuple[str, str]:
    """(id_token, type) for POST /api/rfid."""
    _only(body, {"id_token", "type"})
    if "id_token" not in body:
        raise BadBody('"id_token" is required')
    id_token = _text(body, "id_token")
    if len(id_token) > ID_TOKEN_MAX_LEN:
        raise BadBody(f'"id_token" is at most {ID_TOKEN_MAX_LEN} characters, got {len(id_token)}')
    token_type = _text(body, "type") if "type" in body else "ISO14443"
    return id_token, token_type


def plug_args(body: dict[str, Any]) -> PlugArgs:
    """Keyword arguments of MockHardware.plug for POST /api/evse/{n}/plug; a field left
    out keeps the simulated EV's default."""
    _only(body, {"max_current_a", "battery_wh", "soc", "iso15118", "phases", "emaid",
                 "certificate_request"})
    args: PlugArgs = {}
    if "max_current_a" in body:
        args["max_current_a"] = _positive(body, "max_current_a")
    if "battery_wh" in body:
        args["battery_wh"] = _positive(body, "battery_wh")
    if "soc" in body:
        soc = _number(body, "soc")
        if not 0 <= soc <= 100:
            raise BadBody(f'"soc" must be within 0..100, got {soc}')
        args["soc"] = soc
    if "iso15118" in body:
        args["iso15118"] = _bool(body, "iso15118")
    if "phases" in body:
        phases = body["phases"]
        if not _is_int(phases) or phases not in (1, 2, 3):
            raise BadBody(f'"phases" must be 1, 2 or 3, got {phases!r}')
        args["phases"] = phases
    # Plug & Charge: the ISO 15118 EV presents a contract (eMAID, an IdToken: at most
    # 36 characters), optionally asking first for its certificate (Install / Update).
    if "emaid" in body:
        emaid = _text(body, "emaid")
        if len(emaid) > ID_TOKEN_MAX_LEN:
            raise BadBody(f'"emaid" is at most {ID_TOKEN_MAX_LEN} characters, got {len(emaid)}')
        if not args.get("iso15118"):
            raise BadBody('"emaid" needs "iso15118": true (Plug & Charge is ISO 15118)')
        args["emaid"] = emaid
    if "certificate_request" in body:
        request = body["certificate_request"]
        if request not in ("Install", "Update"):
            raise BadBody(f'"certificate_request" must be "Install" or "Update", got {request!r}')
        if "emaid" not in args:
            raise BadBody('"certificate_request" needs the contract\'s "emaid"')
        args["certificate_request"] = request
    return args


def ev_charging(body: dict[str, Any]) -> bool:
    """The wanted charging state for POST /api/evse/{n}/ev."""
    _only(body, {"charging"})
    if "charging" not in body:
        raise BadBody('"charging" is required (true to resume, false to pause)')
    return _bool(body, "charging")


def fault_request(body: dict[str, Any]) -> FaultRequest | None:
    """What POST /api/fault asks for; None means clear every fault."""
    if "clear" in body:
        # Mixing both forms is ambiguous: refuse rather than guess which one was meant.
        # `is True`: 1 == True in Python, and {"clear": 1} is not the documented form.
        if len(body) != 1 or body["clear"] is not True:
            raise BadBody('to clear faults send exactly {"clear": true}')
        return None
    _only(body, {"device", "fault", "evse"})
    for key in ("device", "fault"):
        if key not in body:
            raise BadBody(f'"{key}" is required (or send {{"clear": true}})')
    evse = body.get("evse")
    if evse is not None and not _is_int(evse):
        raise BadBody(f'"evse" must be an integer EVSE id, got {evse!r}')
    return FaultRequest(_text(body, "device"), _text(body, "fault"), evse)


# --- field checks ------------------------------------------------------------------
def _only(body: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise BadBody(
            f"unknown field(s) {', '.join(map(repr, unknown))}; "
            f"allowed: {', '.join(sorted(allowed))}"
        )


def _is_int(value: object) -> bool:
    # JSON true/false decode to bool, which Python counts as int; they are not ids.
    return isinstance(value, int) and not isinstance(value, bool)


def _number(body: dict[str, Any], key: str) -> float:
    value = body[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadBody(f'"{key}" must be a number, got {value!r}')
    if not math.isfinite(value):
        raise BadBody(f'"{key}" must be finite, got {value!r}')
    return float(value)


def _positive(body: dict[str, Any], key: str) -> float:
    value = _number(body, key)
    if value <= 0:
        raise BadBody(f'"{key}" must be > 0, got {value}')
    return value


def _bool(body: dict[str, Any], key: str) -> bool:
    value = body[key]
    if not isinstance(value, bool):
        raise BadBody(f'"{key}" must be true or false, got {value!r}')
    return value


def _text(body: dict[str, Any], key: str) -> str:
    value = body[key]
    if not isinstance(value, str) or not value.strip():
        raise BadBody(f'"{key}" must be a non-empty string, got {value!r}')
    return value
