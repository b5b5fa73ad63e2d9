"""One simulated EVSE driven through its device objects, with a FakeClock."""

from typing import Any

import pytest
from evse_hal.clock import FakeClock
from evse_hal.interfaces import (
    ContactorChanged,
    DeviceError,
    DeviceFault,
    HalEvent,
    PilotChanged,
)
from evse_hal.mock import MockEvse, SimConflict, UnknownFault

P16 = 16 * 230 * 3  # 11040 W: a 3-phase EV at 16 A


async def started(energy_wh: float = 0.0) -> tuple[MockEvse, list[HalEvent], FakeClock]:
    clock = FakeClock()
    sim = MockEvse(1, clock, energy_wh=energy_wh)
    events: list[HalEvent] = []
    for dev in sim.devices:
        await dev.start(events.append)
    return sim, events, clock


async def charging(**ev: Any) -> tuple[MockEvse, list[HalEvent], FakeClock]:
    sim, events, clock = await started()
    sim.plug(**ev)
    await sim.pilot.set_offered_current(16)
    await sim.contactor.close()
    return sim, events, clock


async def test_nothing_plugged_is_state_a() -> None:
    sim, events, _ = await started()
    assert sim.pilot.state == "A"
    assert events == []


async def test_plug_offer_close_and_draw() -> None:
    sim, events, _ = await started()
    sim.plug()
    assert sim.pilot.state == "B"
    await sim.pilot.set_offered_current(16)
    assert sim.pilot.state == "C"
    assert (await sim.meter.read()).power_w == 0.0  # contactor still open
    await sim.contactor.close()
    assert sim.contactor.closed
    reading = await sim.meter.read()
    assert reading.power_w == pytest.approx(P16)
    assert reading.current_a == [16, 16, 16]
    assert reading.voltage_v == [230.0] * 3
    assert reading.frequency_hz == 50.0
    assert reading.soc_percent is None  # a basic IEC 61851 EV does not tell its SoC
    assert events == [
        PilotChanged(1, "B"),
        PilotChanged(1, "C"),
        ContactorChanged(1, True),
    ]


async def test_ev_max_current_caps_power() -> None:
    sim, _, _ = await started()
    sim.plug(max_current_a=10, phases=1)
    await sim.pilot.set_offered_current(32)
    await sim.contactor.close()
    reading = await sim.meter.read()
    assert reading.power_w == pytest.approx(10 * 230)
    assert reading.current_a == [10, 0, 0]


async def test_energy_integrates_over_clock_time() -> None:
    sim, _, clock = await charging()
    start = (await sim.meter.read()).energy_wh
    clock.advance(3600)
    assert (await sim.meter.read()).energy_wh - start == pytest.approx(P16)
    assert sim.ev is not None
    assert sim.ev.soc == pytest.approx(20 + P16 / 60000 * 100)


async def test_energy_counts_old_power_until_the_change() -> None:
    sim, _, clock = await charging()
    clock.advance(1800)
    await sim.pilot.set_offered_current(8)  # half the power from now on
    clock.advance(1800)
    assert sim.energy_wh == pytest.approx(P16 / 2 + P16 / 4)


async def test_no_ev_no_energy() -> None:
    sim, _, clock = await started(energy_wh=1234.5)
    await sim.pilot.set_offered_current(16)
    await sim.contactor.close()
    clock.advance(3600)
    reading = await sim.meter.read()
    assert (reading.energy_wh, reading.power_w) == (1234.5, 0.0)


async def test_pause_and_resume() -> None:
    sim, events, clock = await charging()
    events.clear()
    sim.set_charging(False)
    assert sim.pilot.state == "B"
    assert (await sim.meter.read()).power_w == 0.0
    clock.advance(600)
    paused_energy = sim.energy_wh
    clock.advance(600)
    assert sim.energy_wh == paused_energy
    sim.set_charging(True)
    assert sim.pilot.state == "C"
    assert (await sim.meter.read()).power_w == pytest.approx(P16)
    assert events == [PilotChanged(1, "B"), PilotChanged(1, "C")]


async def test_withdrawn_current_returns_to_b() -> None:
    sim, events, _ = await charging()
    events.clear()
    await sim.pilot.set_offered_current(0)
    assert sim.pilot.state == "B"
    assert sim.power_w == 0.0
    assert events == [PilotChanged(1, "B")]


async def test_full_battery_stops_drawing_and_goes_to_b() -> None:
    sim, events, clock = await charging(battery_wh=10000, soc=90)
    events.clear()
    assert sim.seconds_until_full() == pytest.approx(1000 / P16 * 3600)
    clock.advance(3600)
    reading = await sim.meter.read()
    assert reading.energy_wh == pytest.approx(1000)  # only what fitted in the battery
    assert reading.power_w == 0.0
    assert sim.ev is not None and sim.ev.soc == 100
    assert events == [PilotChanged(1, "B")]
    assert sim.contactor.closed  # SuspendedEV: the station decides when to open


async def test_plug_with_current_already_offered_goes_b_then_c() -> None:
    sim, events, _ = await started()
    await sim.pilot.set_offered_current(16)
    sim.plug()
    assert events == [PilotChanged(1, "B"), PilotChanged(1, "C")]


async def test_unplug_stops_flow_and_goes_to_a() -> None:
    sim, events, clock = await charging()
    events.clear()
    clock.advance(60)
    sim.unplug()
    energy = sim.energy_wh
    clock.advance(3600)
    assert sim.energy_wh == energy == pytest.approx(P16 / 60)
    assert sim.pilot.state == "A"
    assert events == [PilotChanged(1, "A")]


async def test_conflicts() -> None:
    sim, _, _ = await started()
    with pytest.raises(SimConflict):
        sim.unplug()
    with pytest.raises(SimConflict):
        sim.set_charging(False)
    sim.plug()
    with pytest.raises(SimConflict, match="already"):
        sim.plug()


async def test_iso15118_ev_reports_soc() -> None:
    sim, _, _ = await started()
    sim.plug(iso15118=True, soc=55, battery_wh=40000)
    assert (await sim.meter.read()).soc_percent == 55
    info = sim.ev_bridge.ev_info()
    assert info["soc_percent"] == 55
    assert info["energy_request_wh"] == pytest.approx(18000)


async def test_welded_contactor_stays_closed() -> None:
    sim, events, clock = await charging()
    events.clear()
    sim.inject_fault("contactor", "welded")
    await sim.contactor.open()
    assert sim.contactor.closed
    await sim.pilot.set_offered_current(0)
    clock.advance(10)
    sim.clear_faults()  # repaired: the contactor follows its last command, open
    assert not sim.contactor.closed
    assert events == [
        DeviceFault("contactor", 1, "welded", True),
        PilotChanged(1, "B"),
        DeviceFault("contactor", 1, "welded", False),
        ContactorChanged(1, False),
    ]


async def test_stuck_open_contactor_does_not_close() -> None:
    sim, events, _ = await started()
    sim.plug()
    sim.inject_fault("contactor", "stuck_open")
    await sim.pilot.set_offered_current(16)
    await sim.contactor.close()
    assert not sim.contactor.closed
    assert sim.power_w == 0.0
    assert ContactorChanged(1, True) not in events


async def test_meter_offline_raises_but_keeps_counting() -> None:
    sim, events, clock = await charging()
    sim.inject_fault("meter", "offline")
    assert events[-1] == DeviceFault("meter", 1, "offline", True)
    with pytest.raises(DeviceError, match="meter on EVSE 1 does not answer"):
        await sim.meter.read()
    clock.advance(3600)
    sim.clear_faults()
    assert (await sim.meter.read()).energy_wh == pytest.approx(P16)


async def test_diode_fault_is_state_f_and_stops_flow() -> None:
    sim, events, _ = await charging()
    events.clear()
    sim.inject_fault("pilot", "diode_fault")
    assert sim.pilot.state == "F"
    assert sim.power_w == 0.0
    sim.clear_faults()
    assert sim.pilot.state == "C"
    assert events == [
        DeviceFault("pilot", 1, "diode_fault", True),
        PilotChanged(1, "F"),
        DeviceFault("pilot", 1, "diode_fault", False),
        PilotChanged(1, "C"),
    ]


async def test_jammed_lock() -> None:
    sim, _, _ = await started()
    assert await sim.lock.lock() is True
    sim.inject_fault("lock", "jammed")
    assert await sim.lock.unlock() is False
    sim.clear_faults()
    assert await sim.lock.unlock() is True


async def test_unknown_fault_is_rejected() -> None:
    sim, events, _ = await started()
    with pytest.raises(UnknownFault, match="welded"):
        sim.inject_fault("contactor", "melted")
    assert events == []


async def test_stop_drops_pwm_opens_contactor_and_goes_silent() -> None:
    sim, events, _ = await charging()
    events.clear()
    for dev in sim.devices:
        await dev.stop()
    assert sim.offered_current_a == 0
    assert not sim.contactor.closed
    assert events == []


async def test_events_before_start_are_dropped_but_state_moves() -> None:
    sim = MockEvse(2, FakeClock())
    sim.plug()
    events: list[HalEvent] = []
    await sim.pilot.start(events.append)
    assert sim.pilot.state == "B"
    await sim.pilot.set_offered_current(6)
    assert events == [PilotChanged(2, "C")]
