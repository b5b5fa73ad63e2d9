"""What the station's display says: one line per EVSE, from the core's state."""

from __future__ import annotations

from collections.abc import Iterable

from .evse import Evse


def display_text(evses: Iterable[Evse]) -> str:
    parts = []
    for e in evses:
        if e.faults:
            parts.append(f"EVSE {e.id}: out of order")
        elif not e.operative:
            parts.append(f"EVSE {e.id}: unavailable")
        elif e.contactor_closed and e.tx is not None:
            kwh = (e.reading.energy_wh / 1000) if e.reading else 0.0
            parts.append(f"EVSE {e.id}: charging, meter {kwh:.2f} kWh")
        elif e.auth is not None and not e.plugged:
            parts.append(f"EVSE {e.id}: plug in your EV")
        elif e.plugged and e.auth is None:
            parts.append(f"EVSE {e.id}: tap your card")
        elif e.plugged:
            parts.append(f"EVSE {e.id}: connected")
        else:
            parts.append(f"EVSE {e.id}: available")
    return " | ".join(parts)
