"""Keep secrets out of every log line: the BasicAuthPassword / AuthorizationKey (2.0.1
A00.FR.304 WriteOnly; 1.6 whitepaper A01.FR.12), the Authorization header, and the
VPN / APN passwords of network profiles, and passwords inside URLs.

`SecretFilter` sits on the root log handlers, so it sees what any logger writes (our
frame log "evse_agent.frames", the `ocpp` and `websockets` packages, ...). It blanks
frame fields that carry a secret by their JSON shape (a new password is in the frame
before the station knows it), any `Authorization: Basic ...` value, and every secret the
station currently holds, wherever it appears.
"""

from __future__ import annotations

import base64
import json
import logging
import re
from collections.abc import Callable, Iterable
from typing import Any

MASK = "***"
SECRET_VARIABLES = {"basicauthpassword"}  # 2.0.1 SetVariables variable.name
SECRET_KEYS = {"authorizationkey"}  # 1.6 ChangeConfiguration key
SECRET_FIELDS = {"password", "apnpassword"}  # SetNetworkProfile vpn.password, apn.apnPassword
MARKERS = ("basicauthpassword", "authorizationkey", "password", "authorization")
AUTH_HEADER = re.compile(
    r"(?i)(authorization[\"']?\s*[:=,]\s*[\"']?(?:basic|bearer)\s+)[^\s\"',)]+"
)

# user:password@ in a URL (a GetLog / UpdateFirmware location, a proxy setting).
URL_PASSWORD = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@\"']+:)[^@\s\"'/]+@")


def scrub_urls(text: str) -> str:
    """user:password@ in URLs -> user:***@."""
    return URL_PASSWORD.sub(r"\1***@", text) if "://" in text else text


def redact_frame(text: str) -> str:
    """An OCPP-J frame with the secrets it carries replaced by ***."""
    lowered = text.lower()
    if not any(m in lowered for m in MARKERS[:3]):
        return text
    start = text.find("[")
    try:
        frame = json.loads(text[start:]) if start >= 0 else None
    except ValueError:
        return text
    if not isinstance(frame, list):
        return text
    if not _scrub(frame):
        return text
    return text[:start] + json.dumps(frame, separators=(",", ":"))


def _scrub(node: Any) -> bool:
    changed = False
    if isinstance(node, dict):
        variable = node.get("variable")
        if (
            isinstance(variable, dict)
            and str(variable.get("name", "")).lower() in SECRET_VARIABLES
            and "attributeValue" in node
        ):
            node["attributeValue"] = MASK
            changed = True
        if str(node.get("key", "")).lower() in SECRET_KEYS and "value" in node:
            node["value"] = MASK
            changed = True
        for key, value in node.items():
            if key.lower() in SECRET_FIELDS and isinstance(value, str):
                node[key] = MASK
                changed = True
            else:
                changed |= _scrub(value)
    elif isinstance(node, list):
        for item in node:
            changed |= _scrub(item)
    return changed


class SecretFilter(logging.Filter):
    """Rewrites a record whose text holds a secret. `secrets` gives the values to
    blank (read at each record: a password the CSMS just set counts at once)."""

    def __init__(self, secrets: Callable[[], Iterable[str]]) -> None:
        super().__init__()
        self._secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except Exception:  # a broken format string is the logging module's to report
            return True
        clean = self.clean(text)
        if clean is not text:
            record.msg, record.args = clean, None
        # A traceback and a stack are formatted after the filters ran: format them now,
        # cleaned; the formatters use exc_text as it is and skip exc_info when unset.
        if record.exc_info:
            if not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
        if record.exc_text:
            record.exc_text = self.clean(record.exc_text)
        if record.stack_info:
            record.stack_info = self.clean(record.stack_info)
        return True

    def clean(self, text: str) -> str:
        out = text
        if any(m in text.lower() for m in MARKERS):
            out = AUTH_HEADER.sub(lambda m: m.group(1) + MASK, redact_frame(out))
        out = scrub_urls(out)
        for secret in self._secrets():
            if secret and secret in out:
                out = out.replace(secret, MASK)
        return out if out != text else text


def install(secrets: Callable[[], Iterable[str]]) -> SecretFilter:
    """Put one SecretFilter on every root handler (idempotent per handler)."""
    flt = SecretFilter(secrets)
    for handler in logging.getLogger().handlers:
        for old in [f for f in handler.filters if isinstance(f, SecretFilter)]:
            handler.removeFilter(old)
        handler.addFilter(flt)
    return flt


def basic_auth_forms(user: str, password: str) -> list[str]:
    """The password and the base64 token it travels in (both must stay out of logs)."""
    if not password:
        return []
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return [password, token]
