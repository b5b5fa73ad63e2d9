"""The whole mock station: control operations, snapshot, persisted registers."""

import json
from pathlib import Path

import pytest
from evse_hal.clock import FakeClock
from evse_hal.interfaces import (
    ContactorChanged,
    DeviceError,
    DeviceFault,
    HalEvent,
    PilotChanged,
    TokenPresented,
)
from evse_hal.mock import MockHardware, SimConflict, UnknownEvse, UnknownFault

P16 = 16 * 230 * 3


async def station(
    evse_count: int = 2, state_file: Path | None = None, clock: FakeClock | None = None
) -> tuple[MockHardware, list[HalEvent], FakeClock]:
    clock = clock or FakeClock()
    hw = MockHardware(evse_count, clock, state_file)
    events: list[HalEvent] = []
    await hw.start(events.append)
    return hw, events, clock


async def test_full_session_event_order() -> None:
    hw, events, clock = await station()
    hw.tap("04A1B2C3")
    hw.plug(2, max_current_a=16)
    evse = hw.evse(2)
    await evse.pilot.set_offered_current(32)
    await evse.contactor.close()
    clock.advance(1800)
    hw.set_ev_charging(2, False)
    await evse.contactor.open()
    hw.unplug(2)
    assert events == [
        TokenPresented("04A1B2C3", "ISO14443"),
        PilotChanged(2, "B"),
        PilotChanged(2, "C"),
        ContactorChanged(2, True),
        PilotChanged(2, "B"),
        ContactorChanged(2, False),
        PilotChanged(2, "A"),
    ]
    assert hw.evse(2).energy_wh == pytest.approx(P16 / 2)
    assert hw.evse(1).energy_wh == 0.0


async def test_snapshot() -> None:
    hw, _, clock = await station()
    hw.plug(1, soc=50)
    await hw.evse(1).pilot.set_offered_current(16)
    await hw.evse(1).contactor.close()
    await hw.display.show("Charging")
    clock.advance(3600)
    snap = hw.snapshot()
    one, two = snap["evses"]
    assert one["id"] == 1 and one["pilot"] == "C" and one["contactor_closed"] is True
    assert one["offered_current_a"] == 16
    assert one["energy_wh"] == pytest.approx(P16)
    assert one["power_w"] == pytest.approx(P16)
    assert one["plugged"] is True
    assert one["soc"] == pytest.approx(50 + P16 / 60000 * 100)
    assert two["plugged"] is False and two["pilot"] == "A" and two["ev"] is None
    assert snap["display"] == {"text": "Charging"}
    json.dumps(snap)  # the control API serves it as is


async def test_conflicts_and_unknown_evse() -> None:
    hw, _, _ = await station()
    hw.plug(1)
    with pytest.raises(SimConflict):
        hw.plug(1)
    with pytest.raises(SimConflict):
        hw.unplug(2)
    with pytest.raises(SimConflict):
        hw.set_ev_charging(2, False)
    with pytest.raises(UnknownEvse, match="EVSEs 1..2"):
        hw.plug(3)
    with pytest.raises(UnknownEvse):
        hw.evse(0)
    assert hw.evse("2") is hw.evse(2)


async def test_rfid_gone() -> None:
    hw, events, _ = await station()
    hw.inject_fault("rfid", "gone")
    with pytest.raises(SimConflict, match="gone"):
        hw.tap("CARD")
    hw.clear_faults()
    hw.tap("CARD", "ISO15693")
    assert events == [
        DeviceFault("rfid", 0, "gone", True),
        DeviceFault("rfid", 0, "gone", False),
        TokenPresented("CARD", "ISO15693"),
    ]


async def test_inject_fault_targets_evse() -> None:
    hw, events, _ = await station()
    hw.inject_fault("meter", "offline", evse=2)
    hw.inject_fault("contactor", "welded")  # defaults to EVSE 1
    await hw.evse(1).meter.read()
    with pytest.raises(DeviceError):
        await hw.evse(2).meter.read()
    with pytest.raises(UnknownFault):
        hw.inject_fault("toaster", "burnt")
    hw.clear_faults()
    assert events == [
        DeviceFault("meter", 2, "offline", True),
        DeviceFault("contactor", 1, "welded", True),
        DeviceFault("contactor", 1, "welded", False),
        DeviceFault("meter", 2, "offline", False),
    ]


async def test_registers_survive_restart(tmp_path: Path) -> None:
    state = tmp_path / "sub" / "mock-meters.json"
    hw, _, clock = await station(state_file=state)
    hw.plug(1)
    await hw.evse(1).pilot.set_offered_current(16)
    await hw.evse(1).contactor.close()
    clock.advance(3600)
    await hw.stop()
    assert not (tmp_path / "sub" / "mock-meters.json.tmp").exists()

    again, events, _ = await station(state_file=state, clock=FakeClock())
    assert again.evse(1).energy_wh == pytest.approx(P16)
    assert again.evse(2).energy_wh == 0.0
    assert again.evse(1).plugged is False  # everything else starts fresh
    assert events == []


async def test_reads_save_at_most_every_interval(tmp_path: Path) -> None:
    state = tmp_path / "meters.json"
    clock = FakeClock()
    hw = MockHardware(1, clock, state, save_interval_s=60)
    hw.plug(1)
    await hw.evse(1).pilot.set_offered_current(16)
    await hw.evse(1).contactor.close()
    clock.advance(30)
    await hw.evse(1).meter.read()
    assert not state.exists()  # too soon
    clock.advance(30)
    await hw.evse(1).meter.read()
    saved = json.loads(state.read_text())["energy_wh"]["1"]
    assert saved == pytest.approx(P16 / 60)


async def test_corrupt_state_file_names_the_file(tmp_path: Path) -> None:
    state = tmp_path / "meters.json"
    state.write_text("{not json")
    with pytest.raises(DeviceError, match="meters.json"):
        MockHardware(1, FakeClock(), state)


async def test_devices_share_one_emit_and_stop_cleanly() -> None:
    hw, events, _ = await station(evse_count=1)
    names = sorted(d.name for d in hw.devices())
    assert names == ["contactor", "display", "ev_bridge", "lock", "meter", "pilot", "rfid"]
    hw.plug(1)
    await hw.evse(1).pilot.set_offered_current(16)
    await hw.evse(1).contactor.close()
    await hw.stop()
    assert not hw.evse(1).contactor.closed
    assert hw.evse(1).offered_current_a == 0
    with pytest.raises(SimConflict, match="not started"):
        hw.tap("CARD")
