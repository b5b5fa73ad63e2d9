"""Pilot PWM duty <-> current, IEC 61851-1 annex A (tables A.7 for the EVSE, A.8 for
the EV's reading). Issue 7 item 4."""

from __future__ import annotations

import math

import pytest
from evse_hal.backends import iec61851
from evse_hal.backends.iec61851 import (
    current_for_duty,
    duty_for_current,
    is_digital_communication,
    offered_current,
)


@pytest.mark.parametrize(
    ("amps", "duty"),
    [
        (6, 10.0),  # the smallest current an EV understands
        (10, 16.6),  # 16.67 % rounded down: 9.96 A, never 10.02 A
        (13, 21.6),
        (16, 26.6),
        (20, 33.3),
        (32, 53.3),
        (51, 85.0),  # end of the I / 0.6 range
        (52, 85.0),  # 51 .. 52.5 A: 85 % (51 A), as 52 / 2.5 + 64 = 84.8 % reads 50.9 A
        (52.5, 85.0),  # 85 % still reads 51 A (table A.8)
        (53, 85.2),  # the high-current formula: 53 / 2.5 + 64
        (63, 89.2),
        (70, 92.0),
        (80, 96.0),  # end of the table
    ],
)
def test_duty_for_current_follows_table_a7(amps: float, duty: float) -> None:
    assert duty_for_current(amps) == duty


def test_low_range_is_10_to_85_percent_and_high_range_85_to_96() -> None:
    for tenths in range(60, 511):
        duty = duty_for_current(tenths / 10)
        assert 10.0 <= duty <= 85.0
    for tenths in range(511, 801):
        duty = duty_for_current(tenths / 10)
        assert 85.0 <= duty <= 96.0


def test_nothing_offered_below_6_amps_is_x1_without_pwm() -> None:
    assert duty_for_current(0) == iec61851.NO_PWM_DUTY == 100.0
    assert duty_for_current(5.9) == 100.0
    assert offered_current(0) == 0.0
    assert offered_current(5.9) == 0.0


def test_above_80_amps_is_clamped() -> None:
    assert duty_for_current(125) == 96.0
    assert offered_current(125) == 80.0


def test_digital_communication_offers_with_5_percent() -> None:
    assert duty_for_current(16, digital_communication=True) == 5.0
    assert duty_for_current(0, digital_communication=True) == 100.0  # nothing to offer
    assert is_digital_communication(5.0)
    assert not is_digital_communication(10.0)


@pytest.mark.parametrize("bad", [-1.0, math.nan, math.inf])
def test_invalid_currents_are_refused(bad: float) -> None:
    with pytest.raises(ValueError):
        duty_for_current(bad)
    with pytest.raises(ValueError):
        offered_current(bad)


@pytest.mark.parametrize(
    ("duty", "amps"),
    [
        (2.0, 0.0),  # < 3 %: not allowed
        (5.0, 0.0),  # digital communication: the current is negotiated
        (7.5, 0.0),  # gap
        (9.0, 6.0),  # 8 .. 10 %: 6 A
        (26.7, 16.02),
        (85.0, 51.0),
        (89.2, 63.0),
        (96.0, 80.0),
        (96.5, 80.0),
        (98.0, 0.0),
        (100.0, 0.0),  # no PWM
    ],
)
def test_current_for_duty_as_the_ev_reads_it(duty: float, amps: float) -> None:
    assert current_for_duty(duty) == pytest.approx(amps)


def test_round_trip_never_more_and_within_one_duty_step() -> None:
    """0.1 % duty resolution, rounded down: the EV reads at most what was asked and at
    most one step (0.06 A, or 0.25 A above 51 A) less."""
    for hundredths in range(600, 8001):
        amps = hundredths / 100
        duty = duty_for_current(amps)
        back = current_for_duty(duty)
        step = (0.6 if duty <= 85 else 2.5) * 0.1 + 1e-9  # amps per 0.1 % of duty
        assert back <= amps + 1e-9
        assert back > amps - step or (duty == 85.0 and back == 51.0)


def test_the_gap_between_the_formulas_never_offers_more_than_asked() -> None:
    for hundredths in range(5101, 5251):
        amps = hundredths / 100
        assert offered_current(amps) == 51.0
        assert current_for_duty(duty_for_current(amps)) <= amps
