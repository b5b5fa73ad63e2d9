"""A simulated electric vehicle: how much it draws and how its battery fills.

Charging is taken as lossless: every Wh the meter counts ends up in the battery, so a
test can check the meter against the state of charge.
"""

from __future__ import annotations

from dataclasses import dataclass

PHASE_VOLTAGE_V = 230.0

# Float sums of many small steps land a hair below 100 %; this snaps them to full so
# the EV stops drawing instead of trickling forever.
_FULL_EPSILON_WH = 1e-6


@dataclass
class SimulatedEV:
    max_current_a: float = 32.0
    battery_wh: float = 60000.0
    soc: float = 20.0
    phases: int = 3
    iso15118: bool = False
    charging_wanted: bool = True
    # Plug & Charge: the contract (eMAID) the EV presents over ISO 15118, and whether it
    # first asks for that contract certificate ("Install" / "Update", OCPP M01/M02).
    emaid: str | None = None
    certificate_request: str | None = None

    def __post_init__(self) -> None:
        if self.max_current_a <= 0:
            raise ValueError(f"max_current_a must be > 0, got {self.max_current_a}")
        if self.battery_wh <= 0:
            raise ValueError(f"battery_wh must be > 0, got {self.battery_wh}")
        if not 0 <= self.soc <= 100:
            raise ValueError(f"soc must be within 0..100, got {self.soc}")
        if self.phases not in (1, 2, 3):
            raise ValueError(f"phases must be 1, 2 or 3, got {self.phases}")
        if (self.emaid or self.certificate_request) and not self.iso15118:
            raise ValueError("a contract (emaid) needs an ISO 15118 EV (iso15118 true)")
        if self.certificate_request and not self.emaid:
            raise ValueError("certificate_request needs the contract's emaid")
        if self.certificate_request not in (None, "Install", "Update"):
            raise ValueError(
                f"certificate_request must be Install or Update, got {self.certificate_request}"
            )

    @property
    def wants_charge(self) -> bool:
        """True when the EV would close S2 (pilot C) given a PWM offer."""
        return self.charging_wanted and self.soc < 100

    @property
    def room_wh(self) -> float:
        """Energy the battery still accepts."""
        return (100.0 - self.soc) / 100.0 * self.battery_wh

    def current_a(self, offered_a: float, contactor_closed: bool) -> float:
        """Current drawn on each of the EV's phases."""
        if not contactor_closed or offered_a <= 0 or not self.wants_charge:
            return 0.0
        return min(offered_a, self.max_current_a)

    def power_w(
        self, offered_a: float, contactor_closed: bool, voltage_v: float = PHASE_VOLTAGE_V
    ) -> float:
        return self.current_a(offered_a, contactor_closed) * voltage_v * self.phases

    def seconds_until_full(self, power_w: float) -> float | None:
        """When the battery will be full at this power; None when nothing flows."""
        if power_w <= 0:
            return None
        return self.room_wh / power_w * 3600.0

    def advance(self, seconds: float, power_w: float) -> float:
        """Let `power_w` flow for `seconds`; returns the Wh the battery took, which is
        less than power * time when it fills up part way (it stops drawing at 100 %)."""
        if seconds <= 0 or power_w <= 0 or self.soc >= 100:
            return 0.0
        room = self.room_wh
        energy = power_w * seconds / 3600.0
        if energy >= room - _FULL_EPSILON_WH:
            self.soc = 100.0
            return room
        self.soc += energy / self.battery_wh * 100.0
        return energy
