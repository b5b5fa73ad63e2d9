"""An energy meter polled over Modbus RTU (pymodbus), described by a register table.

Options of a `[[hal.meter]]` section:
  model            register table: "sdm630", "sdm120", "sdm72" (SDM72D-M, totals
                   only) or "sdm72v2" (SDM72D-M-2, per phase); default: the section's
                   `driver` when that names a table (meter_models.MODELS)
  driver           accepted so a section can be passed whole; names the model as above
  port             serial port, any pyserial URL or path: /dev/ttyUSB0, a pty (required)
  unit_id          Modbus unit (slave) address, 1..247 (default 1)
  baudrate         default 9600 (Eastron's factory setting)
  parity           "N", "E" or "O" (default "N")
  stopbits         1 or 2 (default 1); 8 data bits always, as Modbus RTU requires
  timeout_s        wait this long for each answer (default 0.5)
  retries          further attempts after a timeout, CRC or framing error (default 1)
  poll_interval_s  supervision poll when nobody has read the meter for this long, so a
                   dead meter is reported (and its return noticed) between the agent's
                   reads; 0 turns it off (default 5)

Freshness: `read()` always asks the meter; it never hands out a stored sample. The agent
reads the meter right before a plug or unplug is processed, so that a transaction
begins and ends on the register as it is at that moment, and once a second while
charging; a background sample up to poll_interval_s old would break the first and gain
nothing for the second. The background poll only runs while nobody read the meter for
poll_interval_s, so it adds no traffic while the agent polls.

Failures: every request is counted in `stats` (requests, readings, timeouts, crc_errors,
framing_errors, exceptions, port_errors). A read that gets no valid answer raises
DeviceError naming port and unit ("/dev/ttyUSB0 unit 1: no answer at 9600 baud") and,
on the first such read, the meter reports DeviceFault("meter", evse_id, "offline") (the
agent's name for a failed read: one fault per outage); the first good read clears it.
Nothing is estimated while the meter is silent: there is no reading until it answers
again. A dead meter is asked once per read (no retries), so a read fails within
timeout_s. pymodbus opens the port exclusively: a second program on the same line gets
"device busy".

Meters on one RS-485 line share the port (opened once, requests taken in turn); they
must agree on its serial settings.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from evse_hal.backends import OptionError, option, reject_unknown
from evse_hal.backends.meter_models import MODELS, MeterModel, Register
from evse_hal.backends.serial_port import SerialLine, line_options, open_problem
from evse_hal.clock import Clock
from evse_hal.interfaces import DeviceError, DeviceFault, Emit, MeterReading

log = logging.getLogger(__name__)

# The agent reports a failed read as this fault too: one name, so one fault per outage.
FAULT = "offline"
OPTIONS = {"model", "driver", "port", "unit_id", "baudrate", "parity", "stopbits",
           "timeout_s", "retries", "poll_interval_s"}
EXCEPTION_NAMES = {
    1: "illegal function", 2: "illegal data address", 3: "illegal data value",
    4: "device failure", 5: "acknowledge", 6: "device busy",
}
STAT_KEYS = ("requests", "readings", "timeouts", "crc_errors", "framing_errors",
             "exceptions", "port_errors")


@dataclass(frozen=True)
class BusSettings(SerialLine):
    """An RS-485 line: 8 data bits always, as Modbus RTU requires."""

    parity: str = "N"
    stopbits: int = 1
    timeout_s: float = 0.5


def create(options: Mapping[str, Any], evse_id: int, clock: Clock) -> ModbusMeter:
    reject_unknown(options, OPTIONS)
    name = options.get("model", options.get("driver"))
    key = "model" if "model" in options else "driver"
    if name is None:
        raise OptionError("model", f"missing; one of {', '.join(sorted(MODELS))}")
    if not isinstance(name, str) or name.lower() not in MODELS:
        raise OptionError(key, f"unknown meter model {name!r}; one of {', '.join(sorted(MODELS))}")
    port, baudrate = line_options(options, 9600)
    unit_id = option(options, "unit_id", int, 1)
    if not 1 <= unit_id <= 247:
        raise OptionError("unit_id", "must be 1..247")
    parity = option(options, "parity", str, "N").upper()
    if parity not in ("N", "E", "O"):
        raise OptionError("parity", 'must be "N", "E" or "O"')
    stopbits = option(options, "stopbits", int, 1)
    if stopbits not in (1, 2):
        raise OptionError("stopbits", "must be 1 or 2")
    timeout_s = option(options, "timeout_s", float, 0.5)
    if timeout_s <= 0:
        raise OptionError("timeout_s", "must be positive")
    retries = option(options, "retries", int, 1)
    if not 0 <= retries <= 5:
        raise OptionError("retries", "must be 0..5")
    poll_interval_s = option(options, "poll_interval_s", float, 5.0)
    if poll_interval_s < 0:
        raise OptionError("poll_interval_s", "must be 0 (off) or positive")
    settings = BusSettings(port, baudrate, parity, stopbits, timeout_s)
    return ModbusMeter(MODELS[name.lower()], settings, unit_id, evse_id, clock,
                       retries=retries, poll_interval_s=poll_interval_s)


class _Failure(Exception):
    """One request that got no usable answer; `kind` is its stats counter."""

    def __init__(self, kind: str, text: str) -> None:
        super().__init__(text)
        self.kind = kind


class Bus:
    """One serial line and its pymodbus client, shared by the meters on it: RS-485 is
    half duplex, so requests go one at a time (`lock`)."""

    _open: dict[str, Bus] = {}

    def __init__(self, settings: BusSettings) -> None:
        self.settings = settings
        self.lock = asyncio.Lock()
        self.users = 0
        self.rx = b""  # what arrived during the current request, for telling errors apart
        self._client: Any = None
        self._loop = asyncio.get_running_loop()

    @classmethod
    def acquire(cls, settings: BusSettings, who: str) -> Bus:
        bus = cls._open.get(settings.port)
        if bus is not None and bus._loop is not asyncio.get_running_loop():
            bus = None  # left over from another event loop (tests): start afresh
        if bus is None:
            bus = cls._open[settings.port] = Bus(settings)
        elif bus.settings != settings:
            differ = [k for k in ("baudrate", "parity", "stopbits", "timeout_s")
                      if getattr(bus.settings, k) != getattr(settings, k)]
            raise DeviceError(f"{who}: {', '.join(differ)} differ from another meter on"
                              f" {settings.port}; meters on one line share its settings")
        bus.users += 1
        return bus

    def release(self) -> None:
        self.users -= 1
        if self.users <= 0:
            self.close()
            if Bus._open.get(self.settings.port) is self:
                del Bus._open[self.settings.port]

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _trace(self, sending: bool, data: bytes) -> bytes:
        if not sending and len(data) > len(self.rx):
            self.rx = bytes(data)  # pymodbus hands over its growing receive buffer
        return data

    async def connect(self) -> None:
        if self._client is not None and self._client.connected:
            return
        from pymodbus.client import AsyncModbusSerialClient  # heavy: only when used

        _quiet_pymodbus()
        s = self.settings
        self.close()
        client = AsyncModbusSerialClient(
            s.port, baudrate=s.baudrate, bytesize=8, parity=s.parity, stopbits=s.stopbits,
            timeout=s.timeout_s, retries=0, reconnect_delay=0, name=f"meter {s.port}",
            trace_packet=self._trace,
        )
        if not await client.connect():
            client.close()
            raise _Failure("port_errors", open_problem(s.port))
        self._client = client

    async def read_registers(self, model: MeterModel, unit_id: int, start: int,
                             count: int) -> list[int]:
        """One request; raises _Failure telling what went wrong."""
        from pymodbus.exceptions import ModbusException

        await self.connect()
        client = self._client
        read = (client.read_input_registers if model.function == "input"
                else client.read_holding_registers)
        self.rx = b""
        try:
            response = await read(start, count=count, device_id=unit_id)
        except ModbusException as err:
            if not self.rx:
                raise _Failure("timeouts", "no answer") from err
            if _crc_ok(self.rx):
                raise _Failure("framing_errors", f"garbled answer {self.rx.hex(' ')}") from err
            raise _Failure("crc_errors", f"CRC error in answer {self.rx.hex(' ')}") from err
        if response.isError():
            code = getattr(response, "exception_code", 0)
            raise _Failure("exceptions", f"Modbus exception {code} "
                           f"({EXCEPTION_NAMES.get(code, 'unknown')}) reading {model.function}"
                           f" registers {start}..{start + count - 1}")
        registers = list(response.registers)
        if len(registers) != count:  # e.g. a late answer to an earlier request
            raise _Failure("framing_errors",
                           f"answer has {len(registers)} registers, asked for {count}")
        return registers


def _quiet_pymodbus() -> None:
    """pymodbus logs every missed answer as an ERROR with a dump of the last 20 frames,
    once a second while a meter is off; this module logs each problem once, naming port
    and unit. A level set on the "pymodbus" logger beforehand (debugging) is kept."""
    pymodbus_log = logging.getLogger("pymodbus")
    if pymodbus_log.level == logging.NOTSET:
        pymodbus_log.setLevel(logging.CRITICAL)


def _crc_ok(frame: bytes) -> bool:
    from pymodbus.framer.rtu import FramerRTU

    if len(frame) < 4:
        return False
    return FramerRTU.compute_CRC(frame[:-2]) == int.from_bytes(frame[-2:], "big")


class ModbusMeter:
    """A PowerMeter on a Modbus RTU line."""

    reports_faults = True  # DeviceFault and its log line come from here

    def __init__(self, model: MeterModel, settings: BusSettings, unit_id: int,
                 evse_id: int, clock: Clock, *, retries: int = 1,
                 poll_interval_s: float = 5.0) -> None:
        self.name = "meter"
        self.evse_id = evse_id
        self.model = model
        self.settings = settings
        self.unit_id = unit_id
        self.retries = retries
        self.poll_interval_s = poll_interval_s
        self.stats: dict[str, int] = dict.fromkeys(STAT_KEYS, 0)
        self.latest: MeterReading | None = None  # last good reading, for display only
        self.latest_at: float | None = None  # clock.monotonic() of `latest`
        self.faulted = False
        self._clock = clock
        self._blocks = model.blocks()
        self._emit: Emit | None = None
        self._bus: Bus | None = None
        self._poller: asyncio.Task[None] | None = None
        self._last_attempt = float("-inf")

    @property
    def where(self) -> str:
        return f"{self.settings.port} unit {self.unit_id}"

    def __repr__(self) -> str:
        return f"<ModbusMeter {self.model.name} {self.where} evse={self.evse_id}>"

    # -- Device ------------------------------------------------------------------------
    async def start(self, emit: Emit) -> None:
        self._bus = Bus.acquire(self.settings, self.where)
        try:
            async with self._bus.lock:
                await self._bus.connect()
        except _Failure as err:
            self._release()
            raise DeviceError(self._problem(err)) from None
        self._emit = emit
        if self.poll_interval_s > 0:
            self._poller = asyncio.create_task(self._poll_loop(), name=f"meter {self.where}")

    async def stop(self) -> None:
        self._emit = None
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
            self._poller = None
        self._release()

    async def probe(self) -> str:
        """Open, read once, close: what `evse-agent hal check` prints."""
        started = self._bus is not None
        if not started:
            self._bus = Bus.acquire(self.settings, self.where)
        try:
            r = await self.read()
        finally:
            if not started:
                self._release()
        return (f"{self.model.description} at {self.where}: {r.energy_wh / 1000:.3f} kWh, "
                f"{r.power_w:.0f} W")

    # -- PowerMeter ----------------------------------------------------------------------
    async def read(self) -> MeterReading:
        if self._bus is None:
            raise DeviceError(f"{self.where}: meter not started")
        async with self._bus.lock:
            self._last_attempt = self._clock.monotonic()
            try:
                reading = await self._read_all(self._bus)
            except _Failure as err:
                self._failed(err)
                raise DeviceError(self._problem(err)) from None
        self._answered(reading)
        return reading

    # -- internals -----------------------------------------------------------------------
    async def _read_all(self, bus: Bus) -> MeterReading:
        values: dict[Register, float] = {}
        for start, count in self._blocks:
            words = await self._request(bus, start, count)
            for r in self.model.registers:
                if start <= r.address and r.address + r.width <= start + count:
                    offset = r.address - start
                    values[r] = self.model.decode(r, words[offset:offset + r.width])
        return _reading(values)

    async def _request(self, bus: Bus, start: int, count: int) -> list[int]:
        # A meter known to be silent is asked once: each read then fails in timeout_s.
        attempts = 1 if self.faulted else 1 + self.retries
        for attempt in range(attempts):
            self.stats["requests"] += 1
            try:
                return await bus.read_registers(self.model, self.unit_id, start, count)
            except _Failure as err:
                self.stats[err.kind] += 1
                if err.kind in ("exceptions", "port_errors") or attempt + 1 == attempts:
                    raise
                level = logging.DEBUG if err.kind == "timeouts" else logging.WARNING
                log.log(level, "%s: %s; asking again", self.where, err)
        raise AssertionError("unreachable")

    def _problem(self, err: _Failure) -> str:
        s = self.settings
        if err.kind == "timeouts":
            return f"{self.where}: no answer at {s.baudrate} baud"
        if err.kind == "port_errors":  # the port, not the unit: "/dev/ttyUSB0: no such device"
            return f"{s.port}: {err}"
        return f"{self.where}: {err} (at {s.baudrate} baud)"

    def _failed(self, err: _Failure) -> None:
        if self.faulted:
            log.debug("%s: %s", self.where, self._problem(err))
            return
        self.faulted = True
        log.error("%s; meter readings stop until it answers (%s)", self._problem(err),
                  _format_stats(self.stats))
        if self._emit is not None:
            self._emit(DeviceFault("meter", self.evse_id, FAULT, True))

    def _answered(self, reading: MeterReading) -> None:
        self.stats["readings"] += 1
        self.latest = reading
        self.latest_at = self._clock.monotonic()
        if self.faulted:
            self.faulted = False
            log.warning("%s answers again (%s)", self.where, _format_stats(self.stats))
            if self._emit is not None:
                self._emit(DeviceFault("meter", self.evse_id, FAULT, False))

    async def _poll_loop(self) -> None:
        while True:
            due = self._last_attempt + self.poll_interval_s - self._clock.monotonic()
            if due > 0:
                await asyncio.sleep(due)
                continue
            with contextlib.suppress(DeviceError):
                await self.read()

    def _release(self) -> None:
        if self._bus is not None:
            self._bus.release()
            self._bus = None


def _reading(values: Mapping[Register, float]) -> MeterReading:
    """The MeterReading of one poll; the total power is the sum of the phases when the
    meter has no total register (a single-phase meter)."""
    scalars: dict[str, float] = {}
    phased: dict[str, dict[int, float]] = {}
    for r, v in values.items():
        if r.phase is None:
            scalars[r.field] = v
        else:
            phased.setdefault(r.field, {})[r.phase] = v

    def phases(name: str) -> list[float]:
        by_phase = phased.get(name, {})
        return [by_phase[p] for p in sorted(by_phase)]

    power_phase = phases("power_phase_w")
    power = scalars.get("power_w", sum(power_phase))
    return MeterReading(
        energy_wh=scalars["energy_wh"],
        power_w=power,
        voltage_v=phases("voltage_v"),
        current_a=phases("current_a"),
        frequency_hz=scalars.get("frequency_hz"),
        power_phase_w=power_phase,
    )


def _format_stats(stats: Mapping[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in stats.items() if v)
