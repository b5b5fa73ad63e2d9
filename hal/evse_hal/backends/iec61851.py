"""Control-pilot PWM duty cycle <-> current, as IEC 61851-1 (ed. 3, annex A, tables A.7
and A.8) defines it. Pure functions, shared by every board-support link.

The charging station tells the EV how much current it may draw through the duty cycle
of the 1 kHz pilot signal:
- 6 A .. 51 A:   duty % = I / 0.6          (10 % .. 85 %)
- 52.5 A .. 80 A: duty % = I / 2.5 + 64    (85 % .. 96 %)
- 5 %:           digital communication (ISO 15118) required; the current is negotiated
  over the power line, not signalled by the duty
- 100 %:         no PWM, steady +12 V / +9 V (state X1 / B1): no current offered

Below 6 A there is no duty cycle an EV understands as a current, so offering less than
6 A means offering nothing; above 80 A the table ends, so the offer is clamped. The two
ranges meet at 85 %, which the EV reads as 51 A (table A.8), although the high formula
would give 52.5 A there: from 51 A up to 52.5 A the station offers 51 A, never more than
it was asked.
"""

from __future__ import annotations

import math

MIN_CURRENT_A = 6.0
LOW_RANGE_MAX_A = 51.0  # the end of the linear I / 0.6 range (85 % duty)
HIGH_RANGE_MIN_A = 52.5  # (85 - 64) * 2.5: I / 2.5 + 64 is used above this
MAX_CURRENT_A = 80.0
DIGITAL_COMMUNICATION_DUTY = 5.0  # nominal; the EV accepts 3 % .. 7 %
NO_PWM_DUTY = 100.0  # state X1: steady voltage, the EVSE is not ready to supply
DUTY_RESOLUTION = 0.1  # what the board-support links carry


def duty_for_current(amps: float, digital_communication: bool = False) -> float:
    """The duty cycle (percent, 0.1 % steps, rounded down) that offers `amps` to the EV.

    0 A and anything below 6 A offer nothing (100 %, state X1); more than 80 A is
    clamped to 80 A (96 %). With `digital_communication` (an ISO 15118 session) any
    offer is 5 %, and the current travels over the high-level protocol instead.
    Raises ValueError for a negative or non-finite current.
    """
    if not math.isfinite(amps) or amps < 0:
        raise ValueError(f"offered current must be a finite value >= 0 A, got {amps}")
    if amps < MIN_CURRENT_A:
        return NO_PWM_DUTY
    if digital_communication:
        return DIGITAL_COMMUNICATION_DUTY
    amps = offered_current(amps)
    duty = amps / 0.6 if amps <= LOW_RANGE_MAX_A else amps / 2.5 + 64.0
    # Down to the 0.1 % step, never to the nearest: 10 A is 16.6 % (9.96 A), not
    # 16.7 % (10.02 A), so the EV is never offered more than asked. The epsilon keeps
    # exact steps (32 A: 53.3...%, 6 A: 10 %) from losing a step to float error.
    return round(math.floor(duty / DUTY_RESOLUTION + 1e-9) * DUTY_RESOLUTION, 1)


def offered_current(amps: float) -> float:
    """What the pilot really offers when asked for `amps`: 0 below 6 A, 51 A from
    51 A up to 52.5 A, at most 80 A."""
    if not math.isfinite(amps) or amps < 0:
        raise ValueError(f"offered current must be a finite value >= 0 A, got {amps}")
    if amps < MIN_CURRENT_A:
        return 0.0
    if LOW_RANGE_MAX_A < amps <= HIGH_RANGE_MIN_A:
        return LOW_RANGE_MAX_A
    return min(amps, MAX_CURRENT_A)


def current_for_duty(duty: float) -> float:
    """The maximum current an EV may draw for a measured duty cycle (IEC 61851-1 table
    A.8, the EV's reading). 0.0 where charging is not allowed by the duty alone: below
    8 %, 5 % digital communication, the gaps, and 100 % (no PWM)."""
    if not math.isfinite(duty):
        raise ValueError(f"duty cycle must be finite, got {duty}")
    if duty < 8.0:
        return 0.0  # < 3 % not allowed, 3 .. 7 % digital communication, 7 .. 8 % not allowed
    if duty < 10.0:
        return MIN_CURRENT_A
    if duty <= 85.0:
        return round(duty * 0.6, 2)
    if duty <= 96.0:
        return round((duty - 64.0) * 2.5, 2)
    if duty <= 97.0:
        return MAX_CURRENT_A
    return 0.0


def is_digital_communication(duty: float) -> bool:
    """True for the 3 % .. 7 % band: the EVSE asks for ISO 15118 communication."""
    return 3.0 <= duty <= 7.0
