"""Errors of the mock hardware's control operations. The control API maps them to HTTP
answers: UnknownEvse -> 404, SimConflict -> 409, UnknownFault (a ValueError) -> 400."""

from __future__ import annotations


class SimConflict(Exception):
    """The action does not fit the simulated state (plug an EVSE already plugged, ...)."""


class UnknownEvse(LookupError):
    """No EVSE with this id on the simulated station."""

    def __init__(self, evse_id: object, evse_count: int) -> None:
        super().__init__(f"no EVSE {evse_id!r} (this station has EVSEs 1..{evse_count})")
        self.evse_id = evse_id


class UnknownFault(ValueError):
    """A device or fault name the mock does not simulate."""
