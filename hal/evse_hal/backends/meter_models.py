"""Register tables of the Modbus energy meters modbus_meter knows, as data.

A meter model is a `MeterModel`: which Modbus table it is read from, how its words
are ordered, how many registers one request may span, and a list of `Register`s, each
saying where a value lives, how it is encoded, how it is scaled to the unit of the
MeterReading field it fills (V, A, W, Wh, Hz), and for per-phase fields which phase.
Supporting another meter is a new entry in MODELS, not new code.

Addresses are protocol addresses (0-based): Eastron's manuals list input register
"30001" as address 0x0000. Eastron meters store every value as an IEEE-754 float32
in two input registers, high word first, and energy in kWh.

Sources: Eastron's Modbus protocol documents for the SDM630 (v2), SDM120 and
SDM72D-M; SDM72D-M v1 only publishes totals (system power, import/export/total
energy), the SDM72D-M-2 ("v2") adds per-phase voltage, current and power and the
frequency at the same addresses as the SDM630. Eastron limits a request to 40
parameters (80 registers) and does not promise to answer for addresses it does not
define, so requests never span gaps by default.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Literal

# The MeterReading fields a register can fill; the per-phase ones need `phase`.
Field = Literal["energy_wh", "power_w", "power_phase_w", "voltage_v", "current_a",
                "frequency_hz"]
PHASE_FIELDS: frozenset[str] = frozenset({"power_phase_w", "voltage_v", "current_a"})
DataType = Literal["float32", "int16", "uint16", "int32", "uint32"]

# struct format and width in registers of each data type (big-endian bytes in a word).
DATA_TYPES: dict[str, tuple[str, int]] = {
    "float32": ("f", 2),
    "int16": ("h", 1),
    "uint16": ("H", 1),
    "int32": ("i", 2),
    "uint32": ("I", 2),
}


@dataclass(frozen=True)
class Register:
    address: int
    field: Field
    phase: int | None = None  # 1..3 (L1..L3) for the per-phase fields
    data_type: DataType = "float32"
    scale: float = 1.0  # raw value * scale = the field's unit (kWh -> Wh: 1000)

    @property
    def width(self) -> int:
        return DATA_TYPES[self.data_type][1]


@dataclass(frozen=True)
class MeterModel:
    name: str
    description: str
    registers: tuple[Register, ...]
    function: Literal["input", "holding"] = "input"  # Modbus function 4 or 3
    word_order: Literal["big", "little"] = "big"  # "big": high word first
    max_count: int = 80  # registers in one request
    max_gap: int = 0  # undefined registers a request may span to save a round trip

    def decode(self, register: Register, words: list[int]) -> float:
        """The scaled value of `register` from its raw words."""
        if self.word_order == "little":
            words = list(reversed(words))
        raw = struct.pack(f">{len(words)}H", *words)
        fmt = DATA_TYPES[register.data_type][0]
        return float(struct.unpack(f">{fmt}", raw)[0]) * register.scale

    def blocks(self) -> list[tuple[int, int]]:
        """(start address, count) of the requests that read every register."""
        out: list[tuple[int, int]] = []
        for r in sorted(self.registers, key=lambda r: r.address):
            end = r.address + r.width
            if out:
                start, count = out[-1]
                gap = r.address - (start + count)
                if gap <= self.max_gap and end - start <= self.max_count:
                    out[-1] = (start, max(count, end - start))
                    continue
            out.append((r.address, r.width))
        return out

    def check(self) -> None:
        """A table that cannot give the MeterReading its required fields is a bug."""
        fields = {r.field for r in self.registers}
        if "energy_wh" not in fields:
            raise ValueError(f"{self.name}: no energy_wh register")
        if "power_w" not in fields and "power_phase_w" not in fields:
            raise ValueError(f"{self.name}: no power_w or power_phase_w register")
        for r in self.registers:
            if (r.phase is not None) != (r.field in PHASE_FIELDS):
                raise ValueError(f"{self.name}: register {r.address}: phase and field disagree")
            if r.phase is not None and not 1 <= r.phase <= 3:
                raise ValueError(f"{self.name}: register {r.address}: phase {r.phase}")
            if r.width > self.max_count:
                raise ValueError(f"{self.name}: register {r.address} wider than a request")


def _phases(field: Field, first: int, count: int = 3) -> tuple[Register, ...]:
    """Consecutive float32 per-phase registers L1, L2, L3 starting at `first`."""
    return tuple(Register(first + 2 * i, field, phase=i + 1) for i in range(count))


KWH = 1000.0  # Eastron energy registers count kWh; MeterReading counts Wh

_EASTRON_3P = (
    *_phases("voltage_v", 0x0000),  # 30001.. phase line to neutral volts
    *_phases("current_a", 0x0006),  # 30007.. phase current
    *_phases("power_phase_w", 0x000C),  # 30013.. phase active power
    Register(0x0034, "power_w"),  # 30053 total system power
    Register(0x0046, "frequency_hz"),  # 30071 frequency of supply voltages
    Register(0x0048, "energy_wh", scale=KWH),  # 30073 import active energy
)

MODELS: dict[str, MeterModel] = {
    "sdm630": MeterModel(
        "sdm630", "Eastron SDM630 (three phase)", _EASTRON_3P,
    ),
    "sdm120": MeterModel(
        "sdm120", "Eastron SDM120 (single phase)",
        (
            Register(0x0000, "voltage_v", phase=1),  # 30001 voltage
            Register(0x0006, "current_a", phase=1),  # 30007 current
            Register(0x000C, "power_phase_w", phase=1),  # 30013 active power
            Register(0x0046, "frequency_hz"),  # 30071 frequency
            Register(0x0048, "energy_wh", scale=KWH),  # 30073 import active energy
        ),
    ),
    # SDM72D-M (v1): totals only. A v2 meter answers these too.
    "sdm72": MeterModel(
        "sdm72", "Eastron SDM72D-M (three phase, totals)",
        (
            Register(0x0034, "power_w"),  # 30053 total system power
            Register(0x0048, "energy_wh", scale=KWH),  # 30073 import active energy
        ),
    ),
    # SDM72D-M-2: per-phase values and frequency at the SDM630's addresses.
    "sdm72v2": MeterModel(
        "sdm72v2", "Eastron SDM72D-M-2 (three phase)", _EASTRON_3P,
    ),
}

for _model in MODELS.values():
    _model.check()
