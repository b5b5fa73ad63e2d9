"""The Modbus RTU meter backend against pymodbus's RTU server (SimDevice) on a pty line.

The simulated meters are described here from Eastron's register lists ("30001" is
input register address 0), independently of meter_models, so a wrong address, word
order or scale in the tables makes these tests fail. Bytes travel as real RTU frames:
client -> pty -> relay -> pty -> pymodbus server and back. The relay plays the cable
(`mute` cuts it); the server's packet hook plays a noisy line (`corrupt` flips a CRC
bit in genuine answers) and the bus (units that are not on it stay silent).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tty
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from evse_hal.backends import OptionError
from evse_hal.backends.modbus_meter import FAULT, ModbusMeter, create
from evse_hal.clock import SystemClock
from evse_hal.interfaces import DeviceError, DeviceFault, HalEvent
from meter_support import SDM72_V1, SDM72_V2, SDM120, SDM630, SimMeter
from pymodbus import FramerType
from pymodbus.server import ModbusSerialServer

from evse_agent.core.metering import sample
from evse_agent.ocpp import rpc
from evse_agent.ocpp.v16_messages import meter_value


class Line:
    """Two pty pairs joined by a relay: the client's port, and the meter's port."""

    def __init__(self) -> None:
        self._fds = [*os.openpty(), *os.openpty()]
        self.client_master, client_slave, self.meter_master, meter_slave = self._fds
        for fd in (client_slave, meter_slave):
            tty.setraw(fd)  # as a serial line: no echo, no line editing
        self.client_port = os.ttyname(client_slave)
        self.meter_port = os.ttyname(meter_slave)
        self.mute = False  # the cable is cut: the meter hears nothing
        self.corrupt = 0  # how many answers get a CRC bit flipped
        self.units: set[int] = set()  # units present on the bus
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self.client_master, self._relay, self.client_master,
                              self.meter_master)
        self._loop.add_reader(self.meter_master, self._relay, self.meter_master,
                              self.client_master)

    def _relay(self, src: int, dst: int) -> None:
        try:
            data = os.read(src, 4096)
        except OSError:
            return
        if src == self.client_master and self.mute:
            return
        os.write(dst, data)

    def server_packet(self, sending: bool, packet: bytes) -> bytes:
        if not sending:
            return packet
        if packet[0] not in self.units:
            return b""  # nobody with that address on the line: silence
        if self.corrupt:
            self.corrupt -= 1
            return packet[:-1] + bytes([packet[-1] ^ 0x01])
        return packet

    def unplug_client(self) -> None:
        """The master of the client's pty closes: the port hangs up and cannot be
        opened again. The test's own slave fd stays open until close(), so the pty's
        number is not handed to a parallel test while the meter tries to reopen it."""
        self._loop.remove_reader(self.client_master)
        os.close(self.client_master)
        self._fds[0] = -1

    def close(self) -> None:
        for fd in (self.client_master, self.meter_master):
            if fd in self._fds:
                self._loop.remove_reader(fd)
        for fd in self._fds:
            with contextlib.suppress(OSError):
                os.close(fd)


class Bench:
    def __init__(self, line: Line) -> None:
        self.line = line
        self.server: ModbusSerialServer | None = None
        self.meters: list[ModbusMeter] = []
        self.events: list[HalEvent] = []

    async def serve(self, *sims: SimMeter) -> None:
        self.line.units = {s.device.id for s in sims}
        self.server = ModbusSerialServer(
            [s.device for s in sims], framer=FramerType.RTU, port=self.line.meter_port,
            baudrate=9600, trace_packet=self.line.server_packet,
        )
        await self.server.serve_forever(background=True)

    async def meter(self, model: str = "sdm630", **options: object) -> ModbusMeter:
        opts = {"model": model, "port": self.line.client_port, "timeout_s": 0.1,
                "poll_interval_s": 0, **options}
        meter = create(opts, 1, SystemClock())
        await meter.start(self.events.append)
        self.meters.append(meter)
        return meter

    def faults(self) -> list[tuple[str, bool]]:
        return [(e.fault, e.active) for e in self.events if isinstance(e, DeviceFault)]


@pytest.fixture
async def bench() -> AsyncIterator[Bench]:
    line = Line()
    b = Bench(line)
    try:
        yield b
    finally:
        for m in b.meters:
            await m.stop()
        if b.server is not None:
            await b.server.shutdown()
        line.close()


def approx(value: float) -> object:
    return pytest.approx(value, rel=1e-6)  # values travel as float32


# -- each model, read into MeterReading with the right units -------------------------------
async def test_sdm630_three_phase_reading(bench: Bench) -> None:
    await bench.serve(SimMeter(1, SDM630))
    meter = await bench.meter("sdm630")
    r = await meter.read()
    assert r.energy_wh == approx(1234.5 * 1000)  # kWh register -> Wh
    assert r.power_w == approx(11040.0)
    assert r.voltage_v == [approx(230.1), approx(231.2), approx(229.3)]
    assert r.current_a == [approx(16.1), approx(15.9), approx(16.0)]
    assert r.power_phase_w == [approx(3700.0), approx(3650.0), approx(3690.0)]
    assert r.frequency_hz == approx(50.02)
    # V/I/P, total power, frequency + energy: three requests, no gap spanned
    assert meter.stats["requests"] == 3 and meter.stats["readings"] == 1
    assert bench.faults() == []


async def test_sdm120_single_phase_reading(bench: Bench) -> None:
    await bench.serve(SimMeter(1, SDM120))
    r = await (await bench.meter("sdm120")).read()
    assert r.energy_wh == approx(87125.0)
    assert r.voltage_v == [approx(229.8)]
    assert r.current_a == [approx(7.5)]
    assert r.power_phase_w == [approx(1720.0)]
    assert r.power_w == approx(1720.0)  # the one phase is the total
    assert r.frequency_hz == approx(49.98)


async def test_sdm72_v1_totals_only(bench: Bench) -> None:
    await bench.serve(SimMeter(1, SDM72_V1))
    r = await (await bench.meter("sdm72")).read()
    assert r.energy_wh == approx(512750.0)
    assert r.power_w == approx(7200.0)
    assert r.voltage_v == [] and r.current_a == [] and r.power_phase_w == []
    assert r.frequency_hz is None  # not measured: left out, not made up


async def test_sdm72_v2_per_phase(bench: Bench) -> None:
    await bench.serve(SimMeter(1, SDM72_V2))
    r = await (await bench.meter("sdm72v2")).read()
    assert r.energy_wh == approx(1234500.0)
    assert r.current_a == [approx(16.1), approx(15.9), approx(16.0)]
    assert r.power_phase_w == [approx(3700.0), approx(3650.0), approx(3690.0)]


def test_model_chosen_by_driver_name() -> None:
    meter = create({"driver": "sdm120", "port": "/dev/ttyUSB0"}, 1, SystemClock())
    assert meter.model.name == "sdm120" and meter.unit_id == 1
    assert meter.settings.baudrate == 9600 and meter.settings.parity == "N"


async def test_register_change_seen_on_next_read(bench: Bench) -> None:
    sim = SimMeter(1, SDM630)
    await bench.serve(sim)
    meter = await bench.meter()
    first = await meter.read()
    sim.values[30073] = 1235.75
    sim.values[30013] = 7400.0
    second = await meter.read()
    assert first.energy_wh == approx(1234500.0)
    assert second.energy_wh == approx(1235750.0)
    assert second.power_phase_w[0] == approx(7400.0)


# -- a meter that stops answering -----------------------------------------------------------
async def test_silent_meter_raises_and_reports_fault_once(bench: Bench) -> None:
    sim = SimMeter(1, SDM630)
    await bench.serve(sim)
    meter = await bench.meter(retries=1)
    good = await meter.read()
    bench.line.mute = True
    sim.values[30073] = 1300.0  # the register moves on while the bus is dead
    for _ in range(2):
        with pytest.raises(DeviceError) as err:
            await meter.read()
        assert str(err.value) == f"{bench.line.client_port} unit 1: no answer at 9600 baud"
    # first read: 1 + 1 retry; once known silent, one attempt per read
    assert meter.stats["timeouts"] == 3
    assert bench.faults() == [(FAULT, True)]
    assert all(isinstance(e, DeviceFault) and e.device == "meter" and e.evse_id == 1
               for e in bench.events)
    assert meter.latest == good  # nothing new invented while offline
    bench.line.mute = False
    back = await meter.read()
    assert back.energy_wh == approx(1300000.0)  # the register as the meter has it
    assert bench.faults() == [(FAULT, True), (FAULT, False)]


async def test_one_fault_per_outage_beside_the_agents_own(bench: Bench) -> None:
    """The agent feeds DeviceFault("meter", evse, METER_OFFLINE) when its own read fails;
    the backend reports the same fault from its reads and supervision poll: the hard-wired
    FiscalMetering Problem monitor (N07) reports the outage once, and its end once."""
    from evse_agent.device_model.model import DeviceModel
    from evse_agent.device_model.physical import add_physical_components
    from evse_agent.monitoring import MonitoringEngine

    dm = DeviceModel()
    dm.load_standard()
    add_physical_components(dm, 1)
    engine = MonitoringEngine(dm, transactions=lambda: {})
    now = datetime(2026, 1, 1, tzinfo=UTC)
    await bench.serve(SimMeter(1, SDM630))
    meter = await bench.meter(retries=0)
    await meter.read()
    bench.line.mute = True
    with pytest.raises(DeviceError):
        await meter.read()
    agent_fault = DeviceFault("meter", 1, FAULT)  # what the agent then feeds (same name:
    # tests/unit/test_hardware_build.py checks agent.METER_OFFLINE == FAULT)
    reported = [*bench.events, agent_fault]
    assert len(set(reported)) == 1  # one fault, whoever reports it
    events = [e for f in reported
              for e in engine.device_fault(f.device, f.evse_id, f.fault, f.active, now)]
    assert [(e["variable"]["name"], e["cleared"]) for e in events] == [("Problem", False)]
    bench.line.mute = False
    await meter.read()
    cleared = [*bench.events[1:], DeviceFault("meter", 1, FAULT, active=False)]
    events = [e for f in cleared
              for e in engine.device_fault(f.device, f.evse_id, f.fault, f.active, now)]
    assert [(e["variable"]["name"], e["cleared"]) for e in events] == [("Problem", True)]


async def test_background_poll_notices_silence_and_return(bench: Bench) -> None:
    await bench.serve(SimMeter(1, SDM630))
    meter = await bench.meter(poll_interval_s=0.05)
    await asyncio.sleep(0.1)
    assert meter.stats["readings"] >= 1
    bench.line.mute = True
    await _until(lambda: bench.faults() == [(FAULT, True)])
    bench.line.mute = False
    await _until(lambda: bench.faults() == [(FAULT, True), (FAULT, False)])


async def test_crc_error_counted_and_not_accepted(bench: Bench) -> None:
    await bench.serve(SimMeter(1, SDM630))
    meter = await bench.meter(retries=1)
    bench.line.corrupt = 1  # one garbled answer: retried, the reading is the true one
    r = await meter.read()
    assert r.energy_wh == approx(1234500.0) and r.voltage_v[0] == approx(230.1)
    assert meter.stats["crc_errors"] == 1 and bench.faults() == []
    bench.line.corrupt = 2  # every attempt garbled: no reading at all
    with pytest.raises(DeviceError, match="unit 1: CRC error in answer"):
        await meter.read()
    assert meter.stats["crc_errors"] == 3 and meter.stats["readings"] == 1
    assert bench.faults() == [(FAULT, True)]


async def test_wrong_unit_id_gets_no_answer(bench: Bench) -> None:
    sim = SimMeter(1, SDM630)
    await bench.serve(sim)
    meter = await bench.meter(unit_id=2, retries=0)
    with pytest.raises(DeviceError, match=r"unit 2: no answer at 9600 baud$"):
        await meter.read()
    assert meter.stats["timeouts"] == 1 and sim.requests == 0


async def test_exception_response_counted(bench: Bench) -> None:
    # an SDM72D-M v1 has no per-phase registers: the v2 table gets "illegal address"
    await bench.serve(SimMeter(1, SDM72_V1))
    meter = await bench.meter("sdm72v2")
    with pytest.raises(DeviceError, match=r"Modbus exception 2 \(illegal data address\)"):
        await meter.read()
    assert meter.stats["exceptions"] == 1 and meter.stats["timeouts"] == 0


async def test_two_meters_share_one_line(bench: Bench) -> None:
    await bench.serve(SimMeter(1, SDM630), SimMeter(2, SDM120))
    three = await bench.meter("sdm630", unit_id=1)
    one = await bench.meter("sdm120", unit_id=2)
    a, b = await asyncio.gather(three.read(), one.read())
    assert a.energy_wh == approx(1234500.0) and b.energy_wh == approx(87125.0)
    with pytest.raises(DeviceError, match="unit 3: baudrate differ from another meter"):
        await bench.meter("sdm120", unit_id=3, baudrate=19200)


async def test_probe_reads_once(bench: Bench) -> None:
    await bench.serve(SimMeter(1, SDM630))
    meter = create({"model": "sdm630", "port": bench.line.client_port}, 1, SystemClock())
    text = await meter.probe()
    assert text == f"Eastron SDM630 (three phase) at {bench.line.client_port} unit 1: " \
                   "1234.500 kWh, 11040 W"


async def test_port_gone_is_a_fault(bench: Bench) -> None:
    """The USB adapter is pulled: the pty's other end closes under the open port."""
    await bench.serve(SimMeter(1, SDM630))
    meter = await bench.meter(retries=0)
    await meter.read()
    bench.line.unplug_client()
    problems = []
    for _ in range(3):  # the hang-up shows within a read or two, then the reopen fails
        with pytest.raises(DeviceError) as err:
            await meter.read()
        problems.append(str(err.value))
    assert all(p.startswith(f"{bench.line.client_port}") for p in problems)
    assert problems[-1] == f"{bench.line.client_port}: no such device"  # serial_port's words
    assert meter.stats["port_errors"] >= 1
    assert bench.faults() == [(FAULT, True)]


async def test_missing_port_is_one_clear_error() -> None:
    meter = create({"model": "sdm630", "port": "/dev/ttyUSB-none"}, 1, SystemClock())
    with pytest.raises(DeviceError) as err:
        await meter.start(lambda e: None)
    assert str(err.value) == "/dev/ttyUSB-none: no such device"


async def test_a_port_in_use_is_device_busy(bench: Bench) -> None:
    """The port is held by the running service: a second opener (`hal check`) is told
    so instead of sharing the RS-485 line (pymodbus opens it exclusively)."""
    await bench.serve(SimMeter(1, SDM630))
    await bench.meter()
    from evse_hal.backends.modbus_meter import Bus

    Bus._open.clear()  # as in another process: no shared Bus
    other = create({"model": "sdm630", "port": bench.line.client_port}, 1, SystemClock())
    with pytest.raises(DeviceError) as err:
        await other.start(lambda e: None)
    assert str(err.value) == f"{bench.line.client_port}: device busy (opened by another program)"


@pytest.mark.parametrize(("options", "key"), [
    ({"model": "sdm630", "port": "/dev/x", "baud": 9600}, "baud"),
    ({"model": "sdm630"}, "port"),
    ({"model": "sdm999", "port": "/dev/x"}, "model"),
    ({"driver": "modbus", "port": "/dev/x"}, "driver"),
    ({"port": "/dev/x"}, "model"),
    ({"model": "sdm630", "port": "/dev/x", "parity": "X"}, "parity"),
    ({"model": "sdm630", "port": "/dev/x", "unit_id": 0}, "unit_id"),
    ({"model": "sdm630", "port": "/dev/x", "timeout_s": "1"}, "timeout_s"),
])
def test_bad_options(options: dict[str, object], key: str) -> None:
    with pytest.raises(OptionError) as err:
        create(options, 1, SystemClock())
    assert err.value.key == key


# -- registers -> OCPP meter values -----------------------------------------------------------
async def test_registers_become_ocpp_meter_values(bench: Bench) -> None:
    """J02.FR.06 / Part 2 J §2.3: every phase measured is reported, with its phase;
    Voltage per phase is L1-N..L3-N; units W, V, A, Hz, Wh."""
    await bench.serve(SimMeter(1, SDM630))
    reading = await (await bench.meter()).read()
    measurands = ["Energy.Active.Import.Register", "Power.Active.Import", "Voltage",
                  "Current.Import", "Frequency"]
    now = datetime(2026, 1, 1, tzinfo=UTC)
    mv = sample(reading, measurands, "Sample.Periodic", now)
    assert mv is not None
    got = {(s.measurand, s.phase): (round(s.value, 2), s.unit, s.context) for s in mv.sampled}
    ctx = "Sample.Periodic"
    assert got == {
        ("Energy.Active.Import.Register", None): (1234500.0, "Wh", ctx),
        ("Power.Active.Import", None): (11040.0, "W", ctx),
        ("Power.Active.Import", "L1"): (3700.0, "W", ctx),
        ("Power.Active.Import", "L2"): (3650.0, "W", ctx),
        ("Power.Active.Import", "L3"): (3690.0, "W", ctx),
        ("Voltage", "L1-N"): (230.1, "V", ctx),
        ("Voltage", "L2-N"): (231.2, "V", ctx),
        ("Voltage", "L3-N"): (229.3, "V", ctx),
        ("Current.Import", "L1"): (16.1, "A", ctx),
        ("Current.Import", "L2"): (15.9, "A", ctx),
        ("Current.Import", "L3"): (16.0, "A", ctx),
        ("Frequency", None): (50.02, "Hz", ctx),
    }
    v201 = {"timestamp": rpc.timestamp(now), "sampledValue": [s.to_ocpp() for s in mv.sampled]}
    rpc.validate("MeterValues", {"evseId": 1, "meterValue": [v201]}, "2.0.1", request=True)
    v16 = meter_value(mv)
    rpc.validate("MeterValues", {"connectorId": 1, "meterValue": [v16]}, "1.6", request=True)
    # only the configured measurands are sent
    only = sample(reading, ["Energy.Active.Import.Register"], "Transaction.Begin", now)
    assert only is not None and [(s.measurand, s.context) for s in only.sampled] == [
        ("Energy.Active.Import.Register", "Transaction.Begin")]


async def _until(condition: object, timeout: float = 3.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)
