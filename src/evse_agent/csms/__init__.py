"""The development CSMS behind `evse-agent csms`, the demo and the end-to-end tests."""

from .errors import (
    CallTimeoutError,
    CsmsError,
    InvalidRequestError,
    InvalidResponseError,
    StationCallError,
    StationDisconnectedError,
    UnknownStationError,
)
from .frames import FROM_STATION, TO_STATION
from .server import DevCsms, Received
from .session import StationSession

__all__ = [
    "FROM_STATION",
    "TO_STATION",
    "CallTimeoutError",
    "CsmsError",
    "DevCsms",
    "InvalidRequestError",
    "InvalidResponseError",
    "Received",
    "StationCallError",
    "StationDisconnectedError",
    "StationSession",
    "UnknownStationError",
]
