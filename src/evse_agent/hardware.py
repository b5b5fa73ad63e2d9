"""Config -> HAL devices. The agent only sees the interfaces of evse_hal; which backend
stands behind each device is decided here, by name, from the [hal.*] sections.

`backend = "mock"` simulates the whole station ([hal.*] sections are then ignored).
`backend = "real"` needs a section for every device of the station: [hal.rfid],
[hal.display], and an entry per EVSE in [[hal.meter]], [[hal.contactor]] and
[[hal.ev_bridge]]. A section may say `driver = "mock"`, so a board is brought up one
device at a time; a missing section is an error rather than a silent simulation,
because a simulated meter or contactor on a station that was meant to be real would
bill energy nobody measured. The connector lock has no real driver yet and the
control pilot comes from the EV bridge, so both are simulated unless a bridge provides
them. Backend modules are imported only when a section names them (meter_models, the
register tables that name the meter drivers, is data only).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from evse_hal.backends import meter_models  # data only, no I/O
from evse_hal.clock import Clock
from evse_hal.interfaces import (
    ConnectorLock,
    Contactor,
    ControlPilot,
    Device,
    DeviceError,
    Display,
    Emit,
    EvBridge,
    IdTokenReader,
    PowerMeter,
)
from evse_hal.mock import MockDevice, MockHardware

from .config import DEVICE_SECTIONS, Config, ConfigError, DeviceSection

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Driver:
    """Where a driver lives: `module` in evse_hal.backends, its factory, and options
    the driver name implies (a meter model, a display kind)."""

    module: str
    factory: str = "create"
    preset: Mapping[str, Any] = field(default_factory=dict)


# role -> driver name -> backend. "mock" is valid for every role.
DRIVERS: dict[str, dict[str, Driver]] = {
    "rfid": {
        "pn532": Driver("pn532"),
        "rdm6300": Driver("rdm6300"),
        "ascii-line": Driver("ascii_line"),
    },
    # "meter": every register table in meter_models.MODELS, see drivers().
    "contactor": {
        "gpiozero": Driver("gpiozero_contactor"),
        "gpiod": Driver("gpiod_contactor"),
    },
    "ev_bridge": {"can": Driver("can_bridge")},
    "display": {
        "terminal": Driver("display", "create_terminal"),
        "png": Driver("display", "create_png"),
        "framebuffer": Driver("display", "create_framebuffer"),
    },
}
PACKAGE = "evse_hal.backends"


def drivers(role: str) -> dict[str, Driver]:
    """The driver names of `role`. Every meter register table is a driver, looked up
    when asked: a new meter model is only an entry in meter_models.MODELS."""
    if role == "meter":
        return {name: Driver("modbus_meter", preset={"model": name})
                for name in meter_models.MODELS}
    return DRIVERS.get(role, {})


@dataclass(frozen=True)
class Slot:
    """One configured device: where it is in the config, and the backend's device
    (None when simulated)."""

    role: str
    evse: int  # 0 for the station-wide devices
    key: str  # "hal.meter[0]"
    driver: str
    label: str  # "hal.meter[0] evse 1 sdm630 /dev/ttyUSB0 unit 1", for messages
    device: Device | None = None

    @property
    def simulated(self) -> bool:
        return self.device is None

    def explain(self, err: BaseException | str) -> str:
        """The error as one line after the label, without repeating the port or pin
        the backend put in front of it ("/dev/ttyUSB0: no such device")."""
        text = err if isinstance(err, str) else _one_line(err)
        text = " ".join(text.split())
        head, sep, rest = text.partition(": ")
        if sep and rest and set(head.split()) <= set(self.label.split()[1:]):
            return rest
        return text


@dataclass
class EvseDevices:
    pilot: ControlPilot
    contactor: Contactor
    meter: PowerMeter
    lock: ConnectorLock
    bridge: EvBridge | None = None


@dataclass
class Hardware:
    evses: dict[int, EvseDevices]
    reader: IdTokenReader
    display: Display
    mock: MockHardware | None  # the simulation behind every simulated device
    slots: list[Slot] = field(default_factory=list)
    announce: str = ""  # logged once every device started
    _started: list[tuple[Slot, Device]] = field(default_factory=list)

    def devices(self) -> list[Device]:
        out: list[Device] = [self.reader, self.display]
        for e in self.evses.values():
            out += [e.pilot, e.contactor, e.meter, e.lock]
        return out

    @property
    def real(self) -> list[Slot]:
        return [s for s in self.slots if not s.simulated]

    def real_devices(self) -> list[tuple[Slot, Device]]:
        """Every real device in use with the slot it was configured in: an EV bridge
        counts with its pilot and contactor views (the first view started opens the
        link, the last one stopped closes it)."""
        out: list[tuple[Slot, Device]] = []
        for slot in self.real:
            assert slot.device is not None
            out.append((slot, slot.device))
            if slot.role == "ev_bridge":
                evse = self.evses[slot.evse]
                bridge = slot.device
                views = (getattr(bridge, "pilot", None), getattr(bridge, "contactor", None))
                out += [(slot, view) for view in (evse.pilot, evse.contactor)
                        if any(view is v for v in views)]
        return out

    @property
    def serves_sim(self) -> bool:
        """The mock control API has something to drive: a simulated reader, display,
        pilot, contactor or meter (the lock alone, simulated on every board, is not)."""
        return any(isinstance(d, MockDevice) and d.name != "lock" for d in self.devices())

    def is_simulated(self, device: Device) -> bool:
        return isinstance(device, MockDevice)

    async def start(self, emit: Emit) -> None:
        """Start the simulated devices in use, then each real one. A real device that
        cannot start raises DeviceError naming its section and port or pin, after the
        ones already started are stopped again."""
        for dev in self.devices():
            if isinstance(dev, MockDevice):
                await dev.start(emit)
        for slot, device in self.real_devices():
            try:
                await device.start(emit)
            except Exception as err:  # DeviceError, a stray OSError or a library's own class
                log.debug("%s: start failed", slot.label, exc_info=True)
                await self.stop()
                raise DeviceError(f"{slot.label}: {slot.explain(err)}") from None
            self._started.append((slot, device))
        if self.announce:
            log.info("%s", self.announce)

    async def stop(self) -> None:
        for slot, device in reversed(self._started):
            try:
                await device.stop()
            except Exception as err:  # stopping the others matters more
                log.error("%s: %s", slot.label, slot.explain(err))
                log.debug("%s: stop failed", slot.label, exc_info=True)
        self._started.clear()
        if self.mock is not None:
            await self.mock.stop()


def configure(cfg: Config, clock: Clock) -> list[Slot]:
    """A slot per device of the station (per EVSE where the role is per EVSE), the real
    ones created by their backends (not opened). Raises ConfigError naming the file and
    key for an unknown driver, a bad option, a duplicate or a missing section."""
    evse_ids = range(1, cfg.evse_count + 1)
    wanted = [(role, evse) for role, per_evse in DEVICE_SECTIONS.items()
              for evse in (evse_ids if per_evse else [0])]
    if cfg.hal_backend != "real":
        if cfg.devices:
            log.info("hal.backend is \"mock\": the [hal.*] device sections are not used")
        return [_mock_slot(role, evse) for role, evse in wanted]
    found: dict[tuple[str, int], Slot] = {}
    for section in cfg.devices:
        role = section.section.removeprefix("hal.")
        where = (role, section.evse)
        if where in found:
            raise ConfigError(
                f"{cfg.path}: {section.key}.evse: EVSE {section.evse} already has a {role}"
                f" ({found[where].key})"
            )
        found[where] = _slot(cfg, role, section, clock)
    for (role, evse), slot in list(found.items()):
        if role == "ev_bridge" and getattr(slot.device, "contactor", None) is not None:
            # The module switches power itself (power_switching): it is the contactor.
            other = found.pop(("contactor", evse), None)
            if other is not None:
                raise ConfigError(
                    f"{cfg.path}: {other.key}: EVSE {evse}'s contactor is switched by its EV"
                    f" bridge ({slot.key} power_switching = true); remove this entry"
                )
            wanted.remove(("contactor", evse))
    missing = [(role, evse) for role, evse in wanted if (role, evse) not in found]
    if missing:
        role, evse = missing[0]
        if evse:
            raise ConfigError(
                f"{cfg.path}: hal.{role}: no entry for EVSE {evse} (backend = \"real\" needs"
                f' [[hal.{role}]] with evse = {evse} and a driver; driver = "mock" simulates it)'
            )
        raise ConfigError(
            f"{cfg.path}: hal.{role}: missing (backend = \"real\" needs [hal.{role}] with a"
            ' driver; driver = "mock" simulates it)'
        )
    return [found[w] for w in wanted]


def build(cfg: Config, clock: Clock) -> Hardware:
    """The station's devices: real where a section names a backend, simulated elsewhere."""
    slots = configure(cfg, clock)
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
    reader: IdTokenReader = mock.reader
    display: Display = mock.display
    for slot in slots:
        dev: Any = slot.device
        if dev is None:
            continue
        match slot.role:
            case "rfid":
                reader = dev
            case "display":
                display = dev
            case "meter":
                evses[slot.evse].meter = dev
            case "contactor":
                evses[slot.evse].contactor = dev
            case "ev_bridge":
                _attach_bridge(evses[slot.evse], dev)
    announce = ""
    if cfg.hal_backend == "real":
        simulated = [s.key + (f" evse {s.evse}" if s.evse else "") for s in slots if s.simulated]
        if simulated:  # said once started: a device error stays the only line
            announce = f"simulated devices (driver = \"mock\"): {', '.join(simulated)}"
    return Hardware(evses, reader, display, mock, slots, announce)


def _attach_bridge(evse: EvseDevices, bridge: Any) -> None:
    """The EV-communication module measures the control pilot and drives its PWM, and
    may switch the contactor too: it stands in for each of those it implements."""
    evse.bridge = bridge
    pilot = getattr(bridge, "pilot", bridge)
    if callable(getattr(pilot, "set_offered_current", None)):
        evse.pilot = pilot
    contactor = getattr(bridge, "contactor", None)
    if contactor is not None and callable(getattr(contactor, "close", None)):
        evse.contactor = contactor


def _mock_slot(role: str, evse: int, key: str = "") -> Slot:
    key = key or f"hal.{role}"
    return Slot(role, evse, key, "mock", _label(key, evse, "mock", {}), None)


def _slot(cfg: Config, role: str, section: DeviceSection, clock: Clock) -> Slot:
    key = section.key or section.section
    if section.driver == "mock":
        return _mock_slot(role, section.evse, key)
    known = drivers(role)
    driver = known.get(section.driver)
    if driver is None:
        names = ", ".join(f'"{n}"' for n in [*known, "mock"])
        raise ConfigError(
            f"{cfg.path}: {key}.driver: unknown driver {section.driver!r}; known: {names}"
        )
    module = _import(cfg, key, section.driver, driver)
    options = {**driver.preset, **section.options}
    factory = getattr(module, driver.factory)
    try:
        device = factory(options, section.evse, clock)
    except ValueError as err:  # OptionError and plain value checks
        option = getattr(err, "key", None)
        problem = getattr(err, "problem", str(err))
        at = f"{key}.{option}" if option else key
        evse = f" (evse {section.evse})" if section.evse else ""
        raise ConfigError(f"{cfg.path}: {at}{evse}: {problem}") from None
    shown = dict(section.options)
    if role == "meter":  # a Modbus unit is named even when it is the default
        shown.setdefault("unit_id", getattr(device, "unit_id", 1))
    return Slot(role, section.evse, key, section.driver,
                _label(key, section.evse, section.driver, shown), device)


def _import(cfg: Config, key: str, name: str, driver: Driver) -> ModuleType:
    qualified = f"{PACKAGE}.{driver.module}"
    try:
        return importlib.import_module(qualified)
    except ModuleNotFoundError as err:
        if err.name == qualified:
            raise ConfigError(
                f"{cfg.path}: {key}.driver: driver {name!r} is not in this build"
                f" (no module {qualified})"
            ) from None
        raise ConfigError(
            f"{cfg.path}: {key}.driver: driver {name!r} needs the Python package"
            f" {err.name!r}, which is not installed"
        ) from None


def _label(key: str, evse: int, driver: str, options: Mapping[str, Any]) -> str:
    """How a device is named in every message: its key, EVSE, driver and where it is
    attached ("hal.meter[0] evse 1 sdm630 /dev/ttyUSB0 unit 1", "... gpiozero GPIO17
    feedback GPIO27", "... gpiod /dev/gpiochip0 line 17 feedback line 27")."""
    parts = [key]
    if evse:
        parts.append(f"evse {evse}")
    parts.append(driver)
    if driver == "gpiod" and "chip" not in options:
        parts.append("/dev/gpiochip0")
    for name in ("port", "interface", "channel", "chip", "path", "device"):
        if isinstance(options.get(name), str):
            parts.append(options[name])
    if "unit_id" in options:
        parts.append(f"unit {options['unit_id']}")
    for name, role in (("pin", ""), ("feedback_pin", "feedback "), ("estop_pin", "estop ")):
        if name in options:
            parts.append(role + _pin(options[name], driver))
    return " ".join(str(p) for p in parts)


def _pin(value: Any, driver: str) -> str:
    """A Broadcom number as gpiozero names it (GPIO17), a gpiod line offset as a line."""
    if not isinstance(value, int) or isinstance(value, bool):
        return str(value)
    return f"line {value}" if driver == "gpiod" else f"GPIO{value}"


def _one_line(err: BaseException) -> str:
    if isinstance(err, OSError) and err.strerror:
        where = f" {err.filename}" if err.filename else ""
        text = f"{err.strerror}{where}"
    else:
        text = str(err) or type(err).__name__
    return " ".join(text.split())
