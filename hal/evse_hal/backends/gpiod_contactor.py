"""Driver "gpiod": a contactor on any Linux board's GPIO character device through the
libgpiod v2 Python bindings (`gpiod` 2.x), for boards where gpiozero's pin factories do
not run (i.MX, AM62, STM32MP, ...).

Options: those of evse_hal.backends.contactor (pin, feedback_pin, estop_pin,
active_low, feedback_active_low, estop_active_low, input_bias, debounce_s,
follow_timeout_s, poll_interval_s), where pins are line offsets on the chip, plus
  chip       the GPIO chip's device (default "/dev/gpiochip0")
  consumer   the name the lines are claimed under, shown by `gpioinfo` (default
             "evse-agent")
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from evse_hal.backends import option, reject_unknown
from evse_hal.backends.contactor import (
    COMMON_OPTIONS,
    ContactorOptions,
    GpioContactor,
    parse_options,
)
from evse_hal.clock import Clock
from evse_hal.interfaces import DeviceError


def create(options: Mapping[str, Any], evse_id: int, clock: Clock) -> GpioContactor:
    reject_unknown(options, COMMON_OPTIONS | {"chip", "consumer"})
    opts = parse_options(options, (int,))
    chip = option(options, "chip", str, "/dev/gpiochip0")
    consumer = option(options, "consumer", str, "evse-agent")
    return GpioContactor(GpiodLines(opts, chip, consumer, evse_id), opts, evse_id, clock)


class GpiodLines:
    """ContactorLines as one libgpiod line request: the coil as an output, the
    feedback (and emergency stop) as inputs. Levels are physical: polarity is the
    supervisor's, so the lines are requested active-high."""

    def __init__(self, opts: ContactorOptions, chip: str, consumer: str, evse_id: int) -> None:
        self._opts = opts
        self._chip = chip
        self._consumer = consumer
        self._evse_id = evse_id
        self._request: Any = None
        self._offsets = {
            role: pin
            for role, pin in (
                ("coil", opts.pin),
                ("feedback", opts.feedback_pin),
                ("estop", opts.estop_pin),
            )
            if pin is not None
        }

    def label(self, role: str) -> str:
        return f"{self._chip} line {self._offsets[role]}"

    def acquire(self, coil_level: bool) -> None:
        import gpiod
        from gpiod.line import Bias, Direction, Value

        self.release()
        bias = {"pull_up": Bias.PULL_UP, "pull_down": Bias.PULL_DOWN, "none": Bias.DISABLED}
        config: dict[Any, Any] = {
            self._offsets["coil"]: gpiod.LineSettings(
                direction=Direction.OUTPUT,
                output_value=Value.ACTIVE if coil_level else Value.INACTIVE,
            )
        }
        inputs = tuple(o for role, o in self._offsets.items() if role != "coil")
        config[inputs] = gpiod.LineSettings(
            direction=Direction.INPUT, bias=bias[self._opts.input_bias]
        )
        lines = ", ".join(str(o) for o in self._offsets.values())
        where = f"contactor (EVSE {self._evse_id}): {self._chip} lines {lines}"
        try:
            self._request = gpiod.request_lines(self._chip, consumer=self._consumer, config=config)
        except FileNotFoundError:
            raise DeviceError(f"{where}: no such GPIO chip") from None
        except PermissionError:
            raise DeviceError(
                f"{where}: permission denied (add the user to the group owning {self._chip})"
            ) from None
        except OSError as err:
            # EBUSY: a line is claimed by another consumer (`gpioinfo` names it);
            # ENOTTY / ENODEV: the path is not a GPIO chip.
            raise DeviceError(f"{where}: {err.strerror or err}") from None
        except ValueError as err:  # an offset the chip does not have
            raise DeviceError(f"{where}: {err}") from None

    def write_coil(self, level: bool) -> None:
        from gpiod.line import Value

        self._request.set_value(self._offsets["coil"], Value.ACTIVE if level else Value.INACTIVE)

    def read_feedback(self) -> bool:
        return self._read("feedback")

    def read_estop(self) -> bool:
        return self._read("estop")

    def release(self) -> None:
        request, self._request = self._request, None
        if request is not None:
            request.release()

    def _read(self, role: str) -> bool:
        from gpiod.line import Value

        return bool(self._request.get_value(self._offsets[role]) == Value.ACTIVE)
