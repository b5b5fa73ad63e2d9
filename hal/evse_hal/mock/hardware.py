"""The whole simulated station: EVSEs 1..n, one card reader, one display, and the
operations the mock control API drives.

Everything starts fresh at every process start (nothing plugged), except the meters'
energy registers, which are kept in a JSON file as a real meter keeps its register.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from evse_hal.clock import Clock
from evse_hal.interfaces import DeviceError, Emit
from evse_hal.mock.devices import (
    EVSE_FAULTS,
    STATION_FAULTS,
    MockDevice,
    MockDisplay,
    MockIdTokenReader,
    unknown_fault,
)
from evse_hal.mock.errors import SimConflict, UnknownEvse
from evse_hal.mock.ev import SimulatedEV
from evse_hal.mock.evse import MockEvse

log = logging.getLogger(__name__)

_STATE_FORMAT = 1


def load_registers(path: Path) -> dict[int, float]:
    """Energy registers by EVSE id from a state file; {} when there is none yet."""
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as err:
        raise DeviceError(f"mock meter state file {path} cannot be read: {err}") from err
    try:
        data = json.loads(raw)
        registers = {int(k): float(v) for k, v in data["energy_wh"].items()}
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise DeviceError(
            f"mock meter state file {path} is not valid ({err!r}); "
            "delete it to reset the energy registers to 0"
        ) from err
    return registers


def save_registers(path: Path, registers: dict[int, float]) -> None:
    """Write atomically: a crash mid-write leaves the previous file, never half a one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    data = {"format": _STATE_FORMAT, "energy_wh": {str(k): v for k, v in registers.items()}}
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class MockHardware:
    def __init__(
        self,
        evse_count: int,
        clock: Clock,
        state_file: Path | None = None,
        save_interval_s: float = 60.0,
        phases: int = 3,
    ) -> None:
        """`save_interval_s` bounds how often meter reads write the state file, so a
        fast poll does not turn into a disk write per read."""
        if evse_count < 1:
            raise ValueError(f"evse_count must be >= 1, got {evse_count}")
        self.clock = clock
        self.state_file = state_file
        self.save_interval_s = save_interval_s
        registers = load_registers(state_file) if state_file is not None else {}
        self.evses: dict[int, MockEvse] = {
            n: MockEvse(
                n,
                clock,
                energy_wh=registers.get(n, 0.0),
                phases=phases,
                on_meter_read=self._maybe_save,
            )
            for n in range(1, evse_count + 1)
        }
        self.reader = MockIdTokenReader()
        self.display = MockDisplay()
        self._saved: dict[int, float] = {n: e.energy_wh for n, e in self.evses.items()}
        self._last_save = clock.monotonic()

    @property
    def evse_count(self) -> int:
        return len(self.evses)

    def evse(self, evse_id: int | str) -> MockEvse:
        """The EVSE with this id; a digit string (from a URL path) is accepted too."""
        key: int | None = None
        if isinstance(evse_id, int) and not isinstance(evse_id, bool):
            key = evse_id
        elif isinstance(evse_id, str) and evse_id.strip().isdigit():
            key = int(evse_id)
        if key is None or key not in self.evses:
            raise UnknownEvse(evse_id, self.evse_count)
        return self.evses[key]

    def devices(self) -> list[MockDevice]:
        devs: list[MockDevice] = [self.reader, self.display]
        for evse in self.evses.values():
            devs.extend(evse.devices)
        return devs

    async def start(self, emit: Emit) -> None:
        for dev in self.devices():
            await dev.start(emit)

    async def stop(self) -> None:
        for dev in self.devices():
            await dev.stop()
        try:
            self.save()
        except OSError as err:
            log.error("mock meter registers not saved to %s: %s", self.state_file, err)

    def sync(self) -> None:
        """Catch every EVSE up with the clock (emits e.g. an EV that got full)."""
        for evse in self.evses.values():
            evse.sync()

    def snapshot(self) -> dict[str, Any]:
        return {
            "evses": [evse.snapshot() for evse in self.evses.values()],
            "display": {"text": self.display.text},
            "rfid": {"faults": sorted(self.reader.faults)},
        }

    # --- control API operations ----------------------------------------------------
    def plug(
        self,
        evse_id: int | str,
        max_current_a: float | None = None,
        battery_wh: float | None = None,
        soc: float | None = None,
        iso15118: bool = False,
        phases: int | None = None,
        emaid: str | None = None,
        certificate_request: str | None = None,
    ) -> SimulatedEV:
        return self.evse(evse_id).plug(
            max_current_a, battery_wh, soc, iso15118, phases, emaid, certificate_request
        )

    def unplug(self, evse_id: int | str) -> SimulatedEV:
        return self.evse(evse_id).unplug()

    def set_ev_charging(self, evse_id: int | str, charging: bool) -> None:
        self.evse(evse_id).set_charging(charging)

    def tap(self, id_token: str, type: str = "ISO14443") -> None:
        if self.reader.faults:
            raise SimConflict("the RFID reader is gone (injected fault); the card was not read")
        if not self.reader.present(id_token, type):
            raise SimConflict("the RFID reader is not started; the card was not read")

    def inject_fault(self, device: str, fault: str, evse: int | str | None = None) -> None:
        """`evse` is ignored for station-wide devices and defaults to EVSE 1 for the
        others, so a one-EVSE bench needs no id."""
        if device in STATION_FAULTS:
            self.reader.inject_fault(fault)
        elif device in EVSE_FAULTS:
            self.evse(1 if evse is None else evse).inject_fault(device, fault)
        else:
            raise unknown_fault(device, fault)

    def clear_faults(self) -> None:
        self.reader.clear_faults()
        for evse in self.evses.values():
            evse.clear_faults()

    # --- persistence ---------------------------------------------------------------
    def save(self) -> None:
        """Write the energy registers to the state file now (no-op without one)."""
        self._last_save = self.clock.monotonic()
        if self.state_file is None:
            return
        registers = {n: evse.energy_wh for n, evse in self.evses.items()}
        save_registers(self.state_file, registers)
        self._saved = registers

    def _maybe_save(self) -> None:
        if self.state_file is None:
            return
        if self.clock.monotonic() - self._last_save < self.save_interval_s:
            return
        if {n: e.energy_wh for n, e in self.evses.items()} == self._saved:
            self._last_save = self.clock.monotonic()
            return
        try:
            self.save()
        except OSError as err:
            # A full disk must not make the meter look dead; retry at the next interval.
            self._last_save = self.clock.monotonic()
            log.warning("mock meter registers not saved to %s: %s", self.state_file, err)
