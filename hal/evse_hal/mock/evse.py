"""The simulated hardware of one EVSE: the circuit that pilot, contactor, meter, lock
and EV bridge observe, with the EV (if any) at the end of the cable.

Time is handled lazily: nothing runs in the background. Every read or state change
first calls sync(), which integrates the power that flowed since the last call (at the
power that was flowing then) and emits what followed from it, such as the battery
filling up. A clock moved by hand (FakeClock) thus gives exact energies.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from evse_hal.clock import Clock
from evse_hal.interfaces import (
    ContactorChanged,
    DeviceFault,
    MeterReading,
    PilotChanged,
    PilotState,
)
from evse_hal.mock.devices import (
    EVSE_FAULTS,
    MockConnectorLock,
    MockContactor,
    MockControlPilot,
    MockDevice,
    MockEvBridge,
    MockPowerMeter,
    unknown_fault,
)
from evse_hal.mock.errors import SimConflict
from evse_hal.mock.ev import PHASE_VOLTAGE_V, SimulatedEV

GRID_FREQUENCY_HZ = 50.0


class MockEvse:
    def __init__(
        self,
        evse_id: int,
        clock: Clock,
        energy_wh: float = 0.0,
        phases: int = 3,
        on_meter_read: Callable[[], None] | None = None,
    ) -> None:
        """`energy_wh` restores the meter's register from an earlier run; `phases` is the
        supply (and meter) of this EVSE; `on_meter_read` runs after every meter read,
        which is where MockHardware persists registers without a task of its own."""
        if phases not in (1, 2, 3):
            raise ValueError(f"phases must be 1, 2 or 3, got {phases}")
        self.evse_id = evse_id
        self.clock = clock
        self.phases = phases
        self._on_meter_read = on_meter_read
        self._ev: SimulatedEV | None = None
        self._offered_a = 0.0
        self._commanded_closed = False
        self._closed = False
        self._energy_wh = float(energy_wh)
        self._last_sync = clock.monotonic()
        self._faults: set[tuple[str, str]] = set()
        self._pilot_state: PilotState = "A"

        self.pilot = MockControlPilot(self)
        self.contactor = MockContactor(self)
        self.meter = MockPowerMeter(self)
        self.lock = MockConnectorLock(self)
        self.ev_bridge = MockEvBridge(self)

    def __repr__(self) -> str:
        return f"<MockEvse {self.evse_id} pilot={self._pilot_state} ev={self._ev!r}>"

    @property
    def devices(self) -> tuple[MockDevice, ...]:
        # Pilot before contactor: stopping in this order drops the load before the
        # contacts open, as a real station does.
        return (self.pilot, self.contactor, self.meter, self.lock, self.ev_bridge)

    def device(self, name: str) -> MockDevice:
        for dev in self.devices:
            if dev.name == name:
                return dev
        raise unknown_fault(name, "")

    # --- state, as the devices observe it ------------------------------------------
    @property
    def ev(self) -> SimulatedEV | None:
        return self._ev

    @property
    def plugged(self) -> bool:
        return self._ev is not None

    @property
    def pilot_state(self) -> PilotState:
        """The state last reported (call sync() first to catch up with the clock)."""
        return self._pilot_state

    @property
    def offered_current_a(self) -> float:
        return self._offered_a

    @property
    def contactor_closed(self) -> bool:
        return self._closed

    @property
    def energy_wh(self) -> float:
        self.sync()
        return self._energy_wh

    @property
    def power_w(self) -> float:
        self.sync()
        return sum(self._phase_currents()) * PHASE_VOLTAGE_V

    def has_fault(self, device: str, fault: str) -> bool:
        return (device, fault) in self._faults

    @property
    def faults(self) -> list[tuple[str, str]]:
        return sorted(self._faults)

    def seconds_until_full(self) -> float | None:
        """When the EV will stop drawing at today's power: lets a caller schedule the
        next sync() instead of polling."""
        self.sync()
        if self._ev is None:
            return None
        return self._ev.seconds_until_full(sum(self._phase_currents()) * PHASE_VOLTAGE_V)

    def meter_reading(self) -> MeterReading:
        self.sync()
        currents = self._phase_currents()
        ev = self._ev
        reading = MeterReading(
            energy_wh=self._energy_wh,
            power_w=sum(currents) * PHASE_VOLTAGE_V,
            voltage_v=[PHASE_VOLTAGE_V] * self.phases,
            current_a=currents,
            frequency_hz=GRID_FREQUENCY_HZ,
            # A basic IEC 61851 EV never tells its SoC; only ISO 15118 does.
            soc_percent=ev.soc if ev is not None and ev.iso15118 else None,
        )
        if self._on_meter_read is not None:
            self._on_meter_read()
        return reading

    def snapshot(self) -> dict[str, Any]:
        self.sync()
        ev = self._ev
        return {
            "id": self.evse_id,
            "pilot": self._pilot_state,
            "contactor_closed": self._closed,
            "offered_current_a": self._offered_a,
            "energy_wh": self._energy_wh,
            "power_w": sum(self._phase_currents()) * PHASE_VOLTAGE_V,
            "plugged": ev is not None,
            "soc": ev.soc if ev is not None else None,
            "ev": None
            if ev is None
            else {
                "max_current_a": ev.max_current_a,
                "battery_wh": ev.battery_wh,
                "soc": ev.soc,
                "phases": ev.phases,
                "iso15118": ev.iso15118,
                "charging_wanted": ev.charging_wanted,
                "emaid": ev.emaid,
                "iso15118_certificates": self.ev_bridge.certificate_state(),
            },
            "locked": self.lock.locked,
            "faults": [{"device": d, "fault": f} for d, f in sorted(self._faults)],
        }

    # --- time ----------------------------------------------------------------------
    def sync(self) -> None:
        """Bring the simulation up to the clock's now and emit what resulted."""
        now = self.clock.monotonic()
        elapsed = now - self._last_sync
        if elapsed > 0:
            self._last_sync = now
            power = sum(self._phase_currents()) * PHASE_VOLTAGE_V
            if self._ev is not None and power > 0:
                self._energy_wh += self._ev.advance(elapsed, power)
        self._refresh_pilot()

    # --- what the station commands -------------------------------------------------
    def set_offered_current(self, amps: float) -> None:
        if not math.isfinite(amps) or amps < 0:
            raise ValueError(f"offered current must be a finite value >= 0, got {amps}")
        self.sync()
        self._offered_a = float(amps)
        self._refresh_pilot()

    def command_contactor(self, closed: bool) -> None:
        self.sync()
        self._commanded_closed = closed
        self._apply_contactor()

    # --- what happens to the station (control API) ---------------------------------
    def plug(
        self,
        max_current_a: float | None = None,
        battery_wh: float | None = None,
        soc: float | None = None,
        iso15118: bool = False,
        phases: int | None = None,
        emaid: str | None = None,
        certificate_request: str | None = None,
    ) -> SimulatedEV:
        if self._ev is not None:
            raise SimConflict(f"EVSE {self.evse_id} already has an EV plugged in")
        # None means "the EV's default", so the control API can pass its body through.
        given: dict[str, Any] = {
            "max_current_a": max_current_a,
            "battery_wh": battery_wh,
            "soc": soc,
            "phases": phases,
        }
        ev = SimulatedEV(
            iso15118=iso15118, emaid=emaid, certificate_request=certificate_request,
            **{k: v for k, v in given.items() if v is not None},
        )
        self.sync()
        self._ev = ev
        if self._pilot_now() == "C":
            # The EV answers a PWM already on the line only after it has been seen in
            # B, so the station observes B then C as with a real car.
            self._set_pilot("B")
        self._refresh_pilot()
        self.ev_bridge.ev_plugged(ev)  # ISO 15118: certificates, Plug & Charge
        return ev

    def unplug(self) -> SimulatedEV:
        if self._ev is None:
            raise SimConflict(f"EVSE {self.evse_id} has no EV plugged in")
        self.sync()
        ev, self._ev = self._ev, None
        self._refresh_pilot()
        return ev

    def set_charging(self, wanted: bool) -> None:
        """The EV pauses (False) or resumes (True) charging on its own."""
        if self._ev is None:
            raise SimConflict(f"EVSE {self.evse_id} has no EV plugged in")
        self.sync()
        self._ev.charging_wanted = wanted
        self._refresh_pilot()

    def inject_fault(self, device: str, fault: str) -> None:
        if fault not in EVSE_FAULTS.get(device, frozenset()):
            raise unknown_fault(device, fault)
        if (device, fault) in self._faults:
            return
        self.sync()
        self._faults.add((device, fault))
        self.device(device).report(DeviceFault(device, self.evse_id, fault, True))
        self._apply_contactor()
        self._refresh_pilot()

    def clear_faults(self) -> None:
        self.sync()
        for device, fault in sorted(self._faults):
            self.device(device).report(DeviceFault(device, self.evse_id, fault, False))
        self._faults.clear()
        # Repaired hardware follows its command again.
        self._apply_contactor()
        self._refresh_pilot()

    # --- internals -----------------------------------------------------------------
    def _pilot_now(self) -> PilotState:
        if self.has_fault("pilot", "diode_fault"):
            return "F"
        if self._ev is None:
            return "A"
        if self._offered_a > 0 and self._ev.wants_charge:
            return "C"
        return "B"

    def _set_pilot(self, state: PilotState) -> None:
        if state != self._pilot_state:
            self._pilot_state = state
            self.pilot.report(PilotChanged(self.evse_id, state))

    def _refresh_pilot(self) -> None:
        self._set_pilot(self._pilot_now())

    def _phase_currents(self) -> list[float]:
        """Current per supply phase; the EV draws only in C (an EV in F or B does not)."""
        currents = [0.0] * self.phases
        ev = self._ev
        if ev is None or self._pilot_now() != "C":
            return currents
        amps = ev.current_a(self._offered_a, self._closed)
        for phase in range(min(ev.phases, self.phases)):
            currents[phase] = amps
        return currents

    def _apply_contactor(self) -> None:
        target = self._commanded_closed
        if self._closed and self.has_fault("contactor", "welded"):
            target = True
        if not self._closed and self.has_fault("contactor", "stuck_open"):
            target = False
        if target != self._closed:
            self._closed = target
            self.contactor.report(ContactorChanged(self.evse_id, target))
