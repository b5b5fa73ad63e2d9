"""Failures of an operator request, each carrying what the HTTP API needs to answer."""

from __future__ import annotations

from typing import Any


class CsmsError(Exception):
    """Base of every failure `DevCsms.call` raises; `http_status` and `to_json` feed the API."""

    http_status = 500

    def __init__(self, error: str, description: str) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description

    def to_json(self) -> dict[str, Any]:
        return {"error": self.error, "description": self.description}


class UnknownStationError(CsmsError):
    http_status = 404

    def __init__(self, station_id: str) -> None:
        super().__init__("UnknownStation", f"station {station_id!r} is not connected")
        self.station_id = station_id


class InvalidRequestError(CsmsError):
    """Unknown action or a payload the schema rejects: nothing was sent to the station."""

    http_status = 400


class StationCallError(CsmsError):
    """The station answered CALLERROR."""

    http_status = 502

    def __init__(self, error: str, description: str, details: Any = None) -> None:
        super().__init__(error, description)
        self.details = details if details is not None else {}

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "details": self.details}


class InvalidResponseError(CsmsError):
    """The station answered CALLRESULT, but its payload violates the schema."""

    http_status = 502

    def __init__(self, description: str, response: Any) -> None:
        super().__init__("InvalidResponse", description)
        self.response = response

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "response": self.response}


class StationDisconnectedError(CsmsError):
    http_status = 502

    def __init__(self, station_id: str) -> None:
        super().__init__("Disconnected", f"station {station_id!r} disconnected before answering")


class CallTimeoutError(CsmsError, TimeoutError):
    http_status = 504

    def __init__(self, station_id: str, action: str, timeout: float) -> None:
        super().__init__(
            "Timeout", f"station {station_id!r} did not answer {action} within {timeout:g} s"
        )
