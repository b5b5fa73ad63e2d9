"""The simulated EV on its own: power drawn and battery filling."""

import pytest
from evse_hal.mock.ev import SimulatedEV


def test_defaults() -> None:
    ev = SimulatedEV()
    assert (ev.max_current_a, ev.battery_wh, ev.soc, ev.phases) == (32, 60000, 20, 3)
    assert ev.iso15118 is False and ev.charging_wanted is True


@pytest.mark.parametrize(
    ("offered", "closed", "expected"),
    [
        (16, True, 16 * 230 * 3),
        (63, True, 32 * 230 * 3),  # the EV caps at its own maximum
        (0, True, 0.0),
        (16, False, 0.0),
    ],
)
def test_power_drawn(offered: float, closed: bool, expected: float) -> None:
    assert SimulatedEV().power_w(offered, closed) == pytest.approx(expected)


def test_single_phase_ev_draws_on_one_phase() -> None:
    assert SimulatedEV(phases=1, max_current_a=16).power_w(32, True) == pytest.approx(3680)


def test_paused_or_full_ev_draws_nothing() -> None:
    assert SimulatedEV(charging_wanted=False).power_w(16, True) == 0.0
    assert SimulatedEV(soc=100).power_w(16, True) == 0.0


def test_advance_raises_soc() -> None:
    ev = SimulatedEV(battery_wh=50000, soc=20)
    taken = ev.advance(3600, 11000)
    assert taken == pytest.approx(11000)
    assert ev.soc == pytest.approx(20 + 22)


def test_advance_stops_at_full() -> None:
    ev = SimulatedEV(battery_wh=10000, soc=95)
    assert ev.advance(3600, 11000) == pytest.approx(500)
    assert ev.soc == 100
    assert ev.advance(3600, 11000) == 0.0


def test_seconds_until_full() -> None:
    ev = SimulatedEV(battery_wh=10000, soc=90)
    assert ev.seconds_until_full(3600) == pytest.approx(1000)
    assert ev.seconds_until_full(0) is None


@pytest.mark.parametrize(
    "kwargs",
    [{"soc": 101}, {"soc": -1}, {"battery_wh": 0}, {"max_current_a": 0}, {"phases": 4}],
)
def test_rejects_impossible_ev(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        SimulatedEV(**kwargs)
