"""Driver "gpiozero": a contactor on Raspberry Pi GPIO through gpiozero's pin factories.

The pin factory is gpiozero's default (lgpio on current Raspberry Pi OS; the
GPIOZERO_PIN_FACTORY environment variable chooses another); tests set
`gpiozero.Device.pin_factory = MockFactory()`.

Options: those of evse_hal.backends.contactor (pin, feedback_pin, estop_pin,
active_low, feedback_active_low, estop_active_low, input_bias, debounce_s,
follow_timeout_s, poll_interval_s). Pins are Broadcom numbers (17) or any name gpiozero
accepts ("GPIO17", "BOARD11").
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

from evse_hal.backends import reject_unknown
from evse_hal.backends.contactor import (
    COMMON_OPTIONS,
    ContactorOptions,
    GpioContactor,
    Pin,
    parse_options,
)
from evse_hal.clock import Clock
from evse_hal.interfaces import DeviceError

_PULL_UP = {"pull_up": True, "pull_down": False, "none": None}


def create(options: Mapping[str, Any], evse_id: int, clock: Clock) -> GpioContactor:
    reject_unknown(options, COMMON_OPTIONS)
    opts = parse_options(options, (int, str))
    return GpioContactor(GpiozeroLines(opts, evse_id), opts, evse_id, clock)


class GpiozeroLines:
    """ContactorLines on gpiozero devices; levels are read and written raw."""

    def __init__(self, opts: ContactorOptions, evse_id: int) -> None:
        self._opts = opts
        self._evse_id = evse_id
        self._devices: dict[str, Any] = {}

    def label(self, role: str) -> str:
        pin = self._pin(role)
        return f"GPIO{pin}" if isinstance(pin, int) else str(pin)

    def acquire(self, coil_level: bool) -> None:
        from gpiozero import InputDevice, OutputDevice

        self.release()
        pull_up = _PULL_UP[self._opts.input_bias]
        active_state = True if pull_up is None else None
        try:
            self._open("coil", lambda: OutputDevice(self._opts.pin, initial_value=coil_level))
            roles = ["feedback"] + (["estop"] if self._opts.estop_pin is not None else [])
            for role in roles:
                pin = self._pin(role)
                self._open(
                    role,
                    lambda pin=pin: InputDevice(pin, pull_up=pull_up, active_state=active_state),
                )
        except BaseException:
            self.release()
            raise

    def write_coil(self, level: bool) -> None:
        self._devices["coil"].value = level

    def read_feedback(self) -> bool:
        return bool(self._devices["feedback"].pin.state)

    def read_estop(self) -> bool:
        return bool(self._devices["estop"].pin.state)

    def release(self) -> None:
        for role in ("estop", "feedback", "coil"):
            device = self._devices.pop(role, None)
            if device is not None:
                device.close()

    def _pin(self, role: str) -> Pin | None:
        opts = self._opts
        return {"coil": opts.pin, "feedback": opts.feedback_pin, "estop": opts.estop_pin}[role]

    def _open(self, role: str, make: Any) -> None:
        from gpiozero import BadPinFactory, GPIOZeroError, PinFactoryFallback

        where = f"contactor (EVSE {self._evse_id}) {role} {self.label(role)}"
        with warnings.catch_warnings(record=True) as fallbacks:
            warnings.simplefilter("always", PinFactoryFallback)
            try:
                self._devices[role] = make()
            except BadPinFactory as err:
                # Each factory tried says why it could not run ("Permission denied:
                # '/dev/gpiomem'"); that is the line a person can act on.
                reasons = "; ".join(str(w.message) for w in fallbacks) or str(err)
                raise DeviceError(f"{where}: no usable GPIO pin factory ({reasons})") from None
            except PermissionError as err:
                raise DeviceError(
                    f"{where}: permission denied on {err.filename or 'the GPIO device'}"
                    " (add the user to the gpio group)"
                ) from None
            except (GPIOZeroError, OSError, ValueError, RuntimeError) as err:
                raise DeviceError(f"{where}: {_text(err)}") from None
            except Exception as err:  # noqa: BLE001 - a pin factory's own errors
                # lgpio raises its own `lgpio.error` ("GPIO busy"), RPi.GPIO others: any
                # of them is one line naming the pin, never a traceback.
                raise DeviceError(f"{where}: {_text(err)}") from None


def _text(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__
