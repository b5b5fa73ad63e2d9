"""Config -> HAL devices. The agent only sees the interfaces of evse_hal; which backend
stands behind each device is decided here, by name, from the [hal] sections."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from evse_hal.clock import Clock
from evse_hal.interfaces import (
    ConnectorLock,
    Contactor,
    ControlPilot,
    Device,
    Display,
    IdTokenReader,
    PowerMeter,
)
from evse_hal.mock import MockHardware

from .config import Config, ConfigError


@dataclass
class EvseDevices:
    pilot: ControlPilot
    contactor: Contactor
    meter: PowerMeter
    lock: ConnectorLock


@dataclass
class Hardware:
    evses: dict[int, EvseDevices]
    reader: IdTokenReader
    display: Display
    mock: MockHardware | None  # present when any device is simulated

    def devices(self) -> list[Device]:
        out: list[Device] = [self.reader, self.display]
        for e in self.evses.values():
            out += [e.pilot, e.contactor, e.meter, e.lock]
        return out


def build(cfg: Config, clock: Clock) -> Hardware:
    """Mock devices by default; a [hal.*] section naming another driver selects a real
    backend. Real drivers arrive with the hardware-backends work: until then naming
    one is a configuration error that says so."""
    for device in cfg.devices:
        if device.driver != "mock":
            where = device.section + (f" (evse {device.evse})" if device.evse else "")
            raise ConfigError(
                f"{cfg.path}: {where}.driver: driver {device.driver!r} is not available in"
                ' this build; use driver = "mock"'
            )
    if cfg.hal_backend == "real" and not cfg.devices:
        raise ConfigError(f"{cfg.path}: hal.backend: \"real\" needs [hal.*] device sections")
    # Saved on every read that changed it: any value the CSMS was told survives a
    # kill -9, so the register never runs backwards after a restart, as a real one.
    mock = MockHardware(
        cfg.evse_count, clock, state_file=Path(cfg.data_dir) / "mock-meters.json",
        save_interval_s=0.0,
    )
    evses = {
        i: EvseDevices(
            pilot=mock.evse(i).pilot,
            contactor=mock.evse(i).contactor,
            meter=mock.evse(i).meter,
            lock=mock.evse(i).lock,
        )
        for i in range(1, cfg.evse_count + 1)
    }
    return Hardware(evses, mock.reader, mock.display, mock)
