"""Loopback hardware for the end-to-end tests of `backend = "real"`: serial lines made
of pty pairs, the backend tests' PN532 simulator, and their Eastron SDM630 (pymodbus
SimDevice) behind a Modbus RTU server on a pty.

The agent runs as a separate process: it is given the path of a pty's slave side,
while the test holds the master side (os.ttyname(slave)).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import tty
from typing import Any

# The simulators live with the backend tests (tests/hal/backends, on sys.path through
# tests/conftest.py); one copy serves both.
from meter_support import SDM630, SimMeter
from pymodbus import FramerType
from pymodbus.server import ModbusSerialServer
from rfid_support import Pn532Sim


class Pty:
    """A serial line the test holds one end of: the agent opens `path`."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.master)
        tty.setraw(self.slave)  # no echo, no line discipline before the driver opens it
        self.path = os.ttyname(self.slave)

    def write(self, data: bytes) -> None:
        os.write(self.master, data)

    def read(self, timeout: float) -> bytes:
        """What the agent wrote, for a simulated device on this end (Pn532Sim)."""
        try:
            ready, _, _ = select.select([self.master], [], [], timeout)
            return os.read(self.master, 4096) if ready else b""
        except (OSError, ValueError):  # closed meanwhile
            return b""

    def close(self) -> None:
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)


class NullModem:
    """Two pty pairs whose masters the test's event loop joins byte for byte, so two
    programs that each open a serial port path (the agent, the pymodbus server) talk
    as over a cable."""

    def __init__(self) -> None:
        self.a, self.b = Pty(), Pty()
        loop = asyncio.get_running_loop()
        loop.add_reader(self.a.master, self._copy, self.a.master, self.b.master)
        loop.add_reader(self.b.master, self._copy, self.b.master, self.a.master)

    @staticmethod
    def _copy(src: int, dst: int) -> None:
        try:
            data = os.read(src, 4096)
        except OSError:  # the other side closed its end: nothing to carry
            return
        with contextlib.suppress(OSError):
            os.write(dst, data)

    def close(self) -> None:
        loop = asyncio.get_running_loop()
        for pty in (self.a, self.b):
            loop.remove_reader(pty.master)
            pty.close()


class Pn532:
    """The PN532 simulator of the backend tests (rfid_support.Pn532Sim: every host
    frame checked, real ACK and response frames) on the test's end of a Pty."""

    def __init__(self, pty: Pty) -> None:
        self.sim = Pn532Sim(pty)  # type: ignore[arg-type]  # a Pty reads and writes too
        self.sim.start()

    @property
    def card(self) -> bytes | None:
        return self.sim.card

    @card.setter
    def card(self, uid: bytes | None) -> None:
        self.sim.card = uid

    @property
    def commands(self) -> list[int]:
        return self.sim.commands

    @property
    def bad_frames(self) -> int:
        return len(self.sim.errors)

    def close(self) -> None:
        self.sim.stop()


# What the e2e tests set, by MeterReading field -> the Eastron register numbers.
SDM630_FIELDS = {
    "voltage_v": (30001, 30003, 30005),
    "current_a": (30007, 30009, 30011),
    "power_phase_w": (30013, 30015, 30017),
    "power_w": (30053,),
    "frequency_hz": (30071,),
    "import_kwh": (30073,),
}


class Sdm630:
    """The backend tests' simulated SDM630 (meter_support.SimMeter) at `unit_id`,
    answering Modbus RTU on `port` at 9600 8N1. `set(...)` changes what it measures;
    the next request sees it."""

    def __init__(self, port: str, unit_id: int = 1) -> None:
        self.sim = SimMeter(unit_id, SDM630)
        self.server = ModbusSerialServer([self.sim.device], framer=FramerType.RTU, port=port,
                                         baudrate=9600)
        self.task: asyncio.Task[Any] | None = None

    @property
    def requests(self) -> int:
        return self.sim.requests

    def set(self, **values: float | tuple[float, ...]) -> None:
        for name, value in values.items():
            numbers = value if isinstance(value, tuple) else (value,)
            for register, number in zip(SDM630_FIELDS[name], numbers, strict=True):
                self.sim.values[register] = number

    async def start(self) -> None:
        self.task = asyncio.ensure_future(self.server.serve_forever())
        await asyncio.sleep(0.2)  # the server opens its port

    async def stop(self) -> None:
        await self.server.shutdown()
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task
