"""hardware.build: config sections -> real backends and mock devices, mixed per device,
and the one-line errors a board integrator sees (DESIGN.md "Contract: configuration")."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from evse_hal.clock import FakeClock, SystemClock
from evse_hal.interfaces import DeviceError, HalEvent, TokenPresented
from evse_hal.mock import MockDevice
from rfid_support import rdm6300_frame  # tests/hal/backends, see tests/conftest.py

from evse_agent import hardware
from evse_agent.config import ConfigError, load, parse
from evse_agent.hardware import Driver, build, configure

ALL_MOCK = {
    "rfid": {"driver": "mock"},
    "display": {"driver": "mock"},
    "meter": [{"evse": 1, "driver": "mock"}],
    "contactor": [{"evse": 1, "driver": "mock"}],
    "ev_bridge": [{"evse": 1, "driver": "mock"}],
}


def config(tmp_path: Path, hal: dict[str, Any], evse_count: int = 1) -> Any:
    raw = {
        "station": {"id": "CS-HW", "evse_count": evse_count, "data_dir": str(tmp_path / "d")},
        "ocpp": {"csms_url": "ws://127.0.0.1:9/ocpp"},
        "hal": hal,
    }
    return parse(raw, tmp_path / "config.toml")


@pytest.fixture
def pty_pair() -> Iterator[tuple[int, str]]:
    master, slave = os.openpty()
    yield master, os.ttyname(slave)
    os.close(master)
    os.close(slave)


def test_mock_backend_simulates_everything_and_ignores_sections(tmp_path: Path) -> None:
    cfg = config(tmp_path, {"backend": "mock", "rfid": {"driver": "rdm6300", "port": "/nope"}})
    hw = build(cfg, FakeClock())
    assert all(isinstance(d, MockDevice) for d in hw.devices())
    assert hw.real == [] and hw.serves_sim


def test_real_backend_with_every_section_mock_is_the_simulation(tmp_path: Path) -> None:
    hw = build(config(tmp_path, {"backend": "real", **ALL_MOCK}), FakeClock())
    assert all(isinstance(d, MockDevice) for d in hw.devices())
    assert [s.label for s in hw.slots] == [
        "hal.rfid mock", "hal.meter[0] evse 1 mock", "hal.contactor[0] evse 1 mock",
        "hal.ev_bridge[0] evse 1 mock", "hal.display mock",
    ]


def test_missing_section_under_real_is_an_error_naming_it(tmp_path: Path) -> None:
    hal = {**ALL_MOCK, "backend": "real", "meter": [{"evse": 1, "driver": "mock"}]}
    with pytest.raises(ConfigError, match=r"config.toml: hal.meter: no entry for EVSE 2"):
        build(config(tmp_path, hal, evse_count=2), FakeClock())
    hal = {k: v for k, v in ALL_MOCK.items() if k != "display"} | {"backend": "real"}
    with pytest.raises(ConfigError, match=r"config.toml: hal.display: missing .*driver = \"mock\""):
        build(config(tmp_path, hal), FakeClock())


def test_unknown_driver_lists_the_known_ones(tmp_path: Path) -> None:
    hal = {**ALL_MOCK, "backend": "real", "meter": [{"evse": 1, "driver": "sdm999"}]}
    with pytest.raises(ConfigError) as err:
        build(config(tmp_path, hal), FakeClock())
    assert str(err.value) == (
        f"{tmp_path / 'config.toml'}: hal.meter[0].driver: unknown driver 'sdm999'; known:"
        ' "sdm630", "sdm120", "sdm72", "sdm72v2", "mock"'
    )


def test_option_error_names_file_section_evse_and_option(tmp_path: Path) -> None:
    hal = {**ALL_MOCK, "backend": "real",
           "meter": [{"evse": 1, "driver": "sdm630", "port": "/dev/null", "unit_id": "1"}]}
    with pytest.raises(ConfigError) as err:
        build(config(tmp_path, hal), FakeClock())
    assert str(err.value) == (
        f"{tmp_path / 'config.toml'}: hal.meter[0].unit_id (evse 1): expected int, got str"
    )
    hal = {**ALL_MOCK, "backend": "real", "rfid": {"driver": "rdm6300", "port": "/dev/x",
                                                     "baud": 9600}}
    with pytest.raises(ConfigError, match=r"config.toml: hal.rfid.baud: unknown option$"):
        build(config(tmp_path, hal), FakeClock())


def test_one_device_per_evse_and_role(tmp_path: Path) -> None:
    hal = {**ALL_MOCK, "backend": "real",
           "contactor": [{"evse": 1, "driver": "mock"}, {"evse": 1, "driver": "mock"}]}
    with pytest.raises(ConfigError, match=r"hal.contactor\[1\].evse: EVSE 1 already has a"
                                          r" contactor \(hal.contactor\[0\]\)"):
        build(config(tmp_path, hal), FakeClock())


def test_single_table_for_a_per_evse_section_on_a_one_evse_station(tmp_path: Path) -> None:
    hal = {**ALL_MOCK, "backend": "real", "ev_bridge": {"driver": "mock"},
           "meter": {"driver": "mock"}}
    slots = configure(config(tmp_path, hal), FakeClock())
    assert {(s.key, s.evse) for s in slots if s.role in ("meter", "ev_bridge")} == {
        ("hal.meter[0]", 1), ("hal.ev_bridge[0]", 1)}


def test_backend_module_missing_or_needing_a_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(hardware.DRIVERS["display"], "eink", Driver("no_such_backend"))
    hal = {**ALL_MOCK, "backend": "real", "display": {"driver": "eink"}}
    with pytest.raises(ConfigError, match=r"hal.display.driver: driver 'eink' is not in this"
                                          r" build \(no module evse_hal.backends.no_such_backend\)"):
        build(config(tmp_path, hal), FakeClock())


async def test_real_reader_mixed_with_mock_devices_reads_a_card_from_a_pty(
    tmp_path: Path, pty_pair: tuple[int, str]
) -> None:
    master, port = pty_pair
    hal = {**ALL_MOCK, "backend": "real", "rfid": {"driver": "rdm6300", "port": port}}
    hw = build(config(tmp_path, hal), SystemClock())
    assert [s.label for s in hw.real] == [f"hal.rfid rdm6300 {port}"]
    assert not isinstance(hw.reader, MockDevice)
    assert isinstance(hw.evses[1].meter, MockDevice) and hw.serves_sim
    events: list[HalEvent] = []
    got = asyncio.Event()

    def emit(event: HalEvent) -> None:
        events.append(event)
        got.set()

    await hw.start(emit)
    try:
        assert hw.mock is not None
        assert not hw.mock.reader.started  # a tap on the control API reads nothing
        os.write(master, b"\x02garbage" + rdm6300_frame(bytes.fromhex("0A00123456")))
        await asyncio.wait_for(got.wait(), 5)
    finally:
        await hw.stop()
    assert events == [TokenPresented("0A00123456", "Local")]


async def test_a_real_device_that_cannot_start_names_section_and_port(tmp_path: Path) -> None:
    port = str(tmp_path / "ttyNONE")
    hal = {**ALL_MOCK, "backend": "real", "rfid": {"driver": "rdm6300", "port": port}}
    hw = build(config(tmp_path, hal), FakeClock())
    with pytest.raises(DeviceError) as err:
        await hw.start(lambda event: None)
    assert str(err.value) == f"hal.rfid rdm6300 {port}: no such device"
    assert hw.mock is not None and not hw.mock.evse(1).meter.started  # stopped again


def test_run_with_a_missing_port_exits_1_with_one_line(tmp_path: Path) -> None:
    """`evse-agent run`: an absent device stops start-up with one line naming the
    section and the port (DESIGN.md), no traceback."""
    port = str(tmp_path / "ttyUSB9")
    path = tmp_path / "station.toml"
    path.write_text(f"""
[station]
id = "CS-HW"
evse_count = 1
data_dir = "{tmp_path / 'data'}"
[ocpp]
csms_url = "ws://127.0.0.1:9/ocpp"
[hal]
backend = "real"
[hal.rfid]
driver = "rdm6300"
port = "{port}"
[hal.display]
driver = "mock"
[[hal.meter]]
evse = 1
driver = "mock"
[[hal.contactor]]
evse = 1
driver = "mock"
[[hal.ev_bridge]]
evse = 1
driver = "mock"
""")
    load(path)  # the config itself is fine
    proc = subprocess.run([sys.executable, "-m", "evse_agent", "run", "--config", str(path)],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1, proc.stderr
    # Exactly one line: no "simulated devices" INFO line before the error.
    assert proc.stderr.splitlines() == [
        f"evse-agent: {path}: hal.rfid rdm6300 {port}: no such device"]


def can_bridge_hal(channel: str, **extra: Any) -> dict[str, Any]:
    bridge = {"evse": 1, "driver": "can", "interface": "virtual", "channel": channel, **extra}
    return {**ALL_MOCK, "backend": "real", "ev_bridge": [bridge]}


async def test_can_bridge_is_the_evse_pilot_and_opens_its_bus(tmp_path: Path) -> None:
    import can

    channel = f"hw-build-{os.getpid()}-{id(tmp_path)}"
    hw = build(config(tmp_path, can_bridge_hal(channel, heartbeat_interval_s=0.05)),
               SystemClock())
    bridge = hw.evses[1].bridge
    assert bridge is not None and hw.evses[1].pilot is bridge.pilot  # type: ignore[attr-defined]
    assert isinstance(hw.evses[1].contactor, MockDevice)  # power_switching is off
    assert [(s.label, type(d).__name__) for s, d in hw.real_devices()] == [
        (f"hal.ev_bridge[0] evse 1 can virtual {channel}", "BoardEvBridge"),
        (f"hal.ev_bridge[0] evse 1 can virtual {channel}", "BoardPilot"),
    ]
    module = can.Bus(interface="virtual", channel=channel)
    try:
        await hw.start(lambda event: None)
        frame = await asyncio.to_thread(module.recv, 2.0)  # our heartbeat or command
        assert frame is not None and 0x300 <= frame.arbitration_id <= 0x30F
        await hw.stop()
    finally:
        module.shutdown()


def test_a_bridge_that_switches_power_is_the_contactor(tmp_path: Path) -> None:
    hal = can_bridge_hal("hw-build-ps", power_switching=True)
    del hal["contactor"]  # not needed: the module switches power
    hw = build(config(tmp_path, hal), FakeClock())
    assert hw.evses[1].contactor is hw.evses[1].bridge.contactor  # type: ignore[union-attr]
    with pytest.raises(ConfigError, match=r"hal.contactor\[0\]: EVSE 1's contactor is switched"
                                          r" by its EV bridge \(hal.ev_bridge\[0\]"):
        build(config(tmp_path, can_bridge_hal("hw-build-ps", power_switching=True)), FakeClock())


def test_an_all_real_station_serves_no_mock_control_api(tmp_path: Path) -> None:
    """Only the lock (no real driver yet) is simulated: nothing for the control API."""
    hal = {
        "backend": "real",
        "rfid": {"driver": "pn532", "port": "/dev/ttyAMA0"},
        "display": {"driver": "png", "path": str(tmp_path / "d.png")},
        "meter": [{"evse": 1, "driver": "sdm120", "port": "/dev/ttyUSB0", "unit_id": 2}],
        "contactor": [{"evse": 1, "driver": "gpiod", "pin": 5, "feedback_pin": 6,
                       "estop_pin": 7}],
        "ev_bridge": [{"evse": 1, "driver": "can", "interface": "virtual", "channel": "x"}],
    }
    hw = build(config(tmp_path, hal), FakeClock())  # created, nothing opened yet
    assert not hw.serves_sim
    assert [isinstance(d, MockDevice) for d in hw.devices()] == [
        False, False, False, False, False, True]  # reader, display, pilot, contactor, meter, lock
    assert [s.label for s in hw.real] == [
        "hal.rfid pn532 /dev/ttyAMA0",
        "hal.meter[0] evse 1 sdm120 /dev/ttyUSB0 unit 2",
        "hal.contactor[0] evse 1 gpiod /dev/gpiochip0 line 5 feedback line 6 estop line 7",
        "hal.ev_bridge[0] evse 1 can virtual x",
        f"hal.display png {tmp_path / 'd.png'}",
    ]


async def test_an_unexpected_exception_at_start_is_one_device_error(tmp_path: Path) -> None:
    """A library's own exception class (lgpio.error, a backend bug) ends start-up with the
    same one line naming the section as a DeviceError; the started devices stop again."""
    hw = build(config(tmp_path, {**ALL_MOCK, "backend": "real"}), FakeClock())

    class Exploding:
        async def start(self, emit: Any) -> None:
            raise KeyError("coil")

        async def stop(self) -> None:
            pass

    slot = hardware.Slot("display", 0, "hal.display", "png", "hal.display png /x.png",
                         Exploding())  # type: ignore[arg-type]
    hw.slots.append(slot)
    with pytest.raises(DeviceError) as err:
        await hw.start(lambda event: None)
    assert str(err.value) == "hal.display png /x.png: 'coil'"
    assert err.value.__cause__ is None and err.value.__suppress_context__
    assert hw.mock is not None and not hw.mock.evse(1).meter.started


async def test_hardware_worker_survives_a_backend_bug_and_reports_the_device(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The agent's hardware worker: an unexpected exception from a backend is one log
    line and a DeviceFault for that device; the next command still runs."""
    from types import SimpleNamespace

    from evse_hal.interfaces import DeviceFault

    from evse_agent.agent import Agent
    from evse_agent.core import messages as m

    class Contactor:
        closed = False

        async def close(self) -> None:
            raise ZeroDivisionError("division by zero")

        async def open(self) -> None:
            self.closed = False

    fed: list[Any] = []
    commands: asyncio.Queue[Any] = asyncio.Queue()
    fake = SimpleNamespace(_hw_commands=commands, feed=fed.append,
                           hw=SimpleNamespace(evses={1: SimpleNamespace(contactor=Contactor())}))
    worker = asyncio.ensure_future(Agent._hardware_worker(fake))  # type: ignore[arg-type]
    commands.put_nowait(m.CloseContactor(1))
    commands.put_nowait(m.OpenContactor(1))
    for _ in range(20):
        await asyncio.sleep(0)
    assert not worker.done()
    worker.cancel()
    assert fed == [DeviceFault("contactor", 1, "internal error")]
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert [r.getMessage() for r in errors] == [
        "contactor on EVSE 1 failed: division by zero"]
    assert all(r.exc_info is None for r in errors)


def test_every_meter_register_table_is_a_driver(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new meter model is a register table only (issue 7 item 2): hardware.drivers
    derives the meter drivers from meter_models.MODELS when a config is read."""
    from evse_hal.backends import meter_models

    assert set(hardware.drivers("meter")) == set(meter_models.MODELS)
    extra = meter_models.MeterModel(
        "sdm630x", "a test table",
        (meter_models.Register(0x34, "power_w"), meter_models.Register(0x48, "energy_wh")),
    )
    monkeypatch.setitem(meter_models.MODELS, "sdm630x", extra)
    hal = {**ALL_MOCK, "backend": "real",
           "meter": [{"evse": 1, "driver": "sdm630x", "port": "loop://"}]}
    slot = next(s for s in configure(config(tmp_path, hal), FakeClock()) if s.role == "meter")
    assert slot.device is not None and slot.device.model is extra  # type: ignore[attr-defined]


async def test_a_missing_meter_port_is_named_once(tmp_path: Path) -> None:
    """serial_port's one wording, and the port not repeated after the label (no
    "…/dev/ttyUSB7 unit 1: /dev/ttyUSB7 unit 1: cannot open: …")."""
    port = str(tmp_path / "ttyUSB7")
    hal = {**ALL_MOCK, "backend": "real", "meter": [{"evse": 1, "driver": "sdm630", "port": port}]}
    hw = build(config(tmp_path, hal), FakeClock())
    with pytest.raises(DeviceError) as err:
        await hw.start(lambda event: None)
    assert str(err.value) == f"hal.meter[0] evse 1 sdm630 {port} unit 1: no such device"


def test_agent_and_modbus_backend_name_a_meter_outage_alike() -> None:
    """One fault per outage: the agent's own fault on a failed read and the backend's
    carry the same name, so the core and monitoring see one fault, not two."""
    from evse_hal.backends.modbus_meter import FAULT

    from evse_agent.agent import METER_OFFLINE

    assert METER_OFFLINE == FAULT
