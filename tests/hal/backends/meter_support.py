"""Simulated Eastron meters for the Modbus tests (backend tests and end to end): the
input registers as the manuals list them ("30001" is protocol address 0), written
independently of meter_models, so a wrong address, word order or scale in the tables
makes the tests fail. `SimMeter.device` is a pymodbus SimDevice for an RTU server.
"""

from __future__ import annotations

import struct

from pymodbus.simulator import DataType, SimData, SimDevice

# Eastron input registers ("3xxxx" numbers of the manuals) -> value in the meter's units.
SDM630 = {
    30001: 230.1, 30003: 231.2, 30005: 229.3,  # phase line-to-neutral volts
    30007: 16.1, 30009: 15.9, 30011: 16.0,  # phase current A
    30013: 3700.0, 30015: 3650.0, 30017: 3690.0,  # phase active power W
    30053: 11040.0,  # total system power W
    30071: 50.02,  # frequency Hz
    30073: 1234.5,  # import active energy kWh
    30075: 2.25,  # export active energy kWh (not read)
}
SDM120 = {30001: 229.8, 30007: 7.5, 30013: 1720.0, 30071: 49.98, 30073: 87.125,
          30075: 0.5}
SDM72_V1 = {30053: 7200.0, 30073: 512.75, 30075: 1.0, 30343: 513.75}
SDM72_V2 = {**SDM630, 30343: 1236.75}


def protocol_address(number: int) -> int:
    return number - 30001


class SimMeter:
    """A meter's input registers; the server reads `values` on every request, so a
    change shows on the next poll."""

    def __init__(self, unit: int, values: dict[int, float]) -> None:
        self.values = dict(values)
        self.requests = 0
        self.device = SimDevice(
            id=unit,
            simdata=[SimData(protocol_address(n), values=v, datatype=DataType.FLOAT32)
                     for n, v in sorted(values.items())],
            action=self._refresh,
        )

    async def _refresh(self, function_code: int, start: int, address: int, count: int,
                       registers: list[int], set_values: object) -> None:
        self.requests += 1
        for number, value in self.values.items():
            hi, lo = struct.unpack(">2H", struct.pack(">f", value))
            offset = protocol_address(number) - start
            if 0 <= offset and offset + 2 <= len(registers):  # in the requested block
                registers[offset:offset + 2] = [hi, lo]
