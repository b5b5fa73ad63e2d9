"""Turning a meter reading into OCPP sampled values for a list of measurands.

Only what the meter really measured is reported: a measurand the reading lacks is
left out rather than made up (a real meter that is offline gives no values at all).
"""

from __future__ import annotations

from datetime import datetime

from evse_hal.interfaces import MeterReading

from .messages import MeterValue, SampledValue

PHASES = ("L1", "L2", "L3")


def sample(
    reading: MeterReading | None,
    measurands: list[str],
    context: str,
    timestamp: datetime,
    offered_current_a: float = 0.0,
) -> MeterValue | None:
    if reading is None:
        return None
    values: list[SampledValue] = []
    for m in measurands:
        if m == "Energy.Active.Import.Register":
            values.append(SampledValue(reading.energy_wh, m, context, "Wh"))
        elif m == "Power.Active.Import":
            # The total, then each phase the meter measured (Part 2 J §2.3: all phases).
            values.append(SampledValue(reading.power_w, m, context, "W"))
            for phase, watts in zip(PHASES, reading.power_phase_w, strict=False):
                values.append(SampledValue(watts, m, context, "W", phase))
        elif m == "Current.Import":
            for phase, amps in zip(PHASES, reading.current_a, strict=False):
                values.append(SampledValue(amps, m, context, "A", phase))
        elif m == "Voltage":
            for phase, volts in zip(PHASES, reading.voltage_v, strict=False):
                values.append(SampledValue(volts, m, context, "V", f"{phase}-N"))
        elif m == "Frequency" and reading.frequency_hz is not None:
            values.append(SampledValue(reading.frequency_hz, m, context, "Hz"))
        elif m == "SoC" and reading.soc_percent is not None:
            values.append(SampledValue(reading.soc_percent, m, context, "Percent"))
        elif m == "Current.Offered":
            values.append(SampledValue(offered_current_a, m, context, "A"))
    if not values:
        return None
    return MeterValue(timestamp, tuple(values))
