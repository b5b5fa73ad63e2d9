"""A contactor on GPIO lines, supervised through its auxiliary (mirror) contact.

This module is the part that does not depend on the GPIO library: polarity, debouncing
of the feedback on an injectable clock, weld / failed-to-close detection, emergency
stop and fail-safe opening. `gpiozero_contactor` (Raspberry Pi) and `gpiod_contactor`
(libgpiod v2, any Linux board) only supply the raw lines.

Options of a `[[hal.contactor]]` section (both drivers):
  pin                  coil output (required)
  feedback_pin         auxiliary (mirror) contact input (required)
  estop_pin            emergency-stop input (optional)
  active_low           coil energized by a low level (default false)
  feedback_active_low  feedback reads low when the contactor is closed (default true: a
                       dry contact to ground with a pull-up)
  estop_active_low     emergency stop active on a low level (default false: a normally
                       closed button to ground with a pull-up reads high when pressed
                       or when its wire breaks)
  input_bias           "pull_up" (default), "pull_down" or "none" for the input lines
  debounce_s           the feedback must be stable this long to count (default 0.02)
  follow_timeout_s     the feedback must follow a command within this time (default 0.5)
  poll_interval_s      how often the inputs are sampled (default 0.005)

Faults, reported as DeviceFault and latched until the agent restarts (a contactor that
welded once needs a service visit; the names are the mock contactor's):
  ("contactor", "welded")            still closed follow_timeout_s after an open
  ("contactor", "stuck_open")        not closed follow_timeout_s after a close, or
                                     dropped out while it should be closed
  ("contactor", "io_error")          the GPIO lines cannot be read any more
  ("emergency_stop", "pressed")      the emergency-stop input; clears on release
The coil is de-energized on any fault, on the emergency stop, on stop() and at process
exit (atexit; SIGKILL or a crashed board needs the hardware's own fail-safe).

Input edges are read by polling on the event loop (not in the GPIO library's threads),
so events reach `emit` on the loop's thread as the agent expects.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from evse_hal.backends import OptionError, option
from evse_hal.clock import Clock
from evse_hal.interfaces import ContactorChanged, DeviceError, DeviceFault, Emit, HalEvent

log = logging.getLogger(__name__)

Pin = int | str
BIASES = ("pull_up", "pull_down", "none")
# Time sums such as 1000.0 + 0.02 round a hair short; a nanosecond is no real difference.
_EPS = 1e-9
COMMON_OPTIONS = {
    "pin",
    "feedback_pin",
    "estop_pin",
    "active_low",
    "feedback_active_low",
    "estop_active_low",
    "input_bias",
    "debounce_s",
    "follow_timeout_s",
    "poll_interval_s",
}


class ContactorLines(Protocol):
    """The raw GPIO lines of one contactor; levels are physical (True = high)."""

    def acquire(self, coil_level: bool) -> None:
        """Claim the lines, the coil output starting at `coil_level`. Raises
        DeviceError naming the pin and the device."""

    def write_coil(self, level: bool) -> None: ...

    def read_feedback(self) -> bool: ...

    def read_estop(self) -> bool: ...

    def release(self) -> None: ...

    def label(self, role: str) -> str:
        """How a person finds the line of `role` ("coil", "feedback", "estop") on the
        board: "GPIO17", "/dev/gpiochip0 line 17"."""
        ...


@dataclass(frozen=True)
class ContactorOptions:
    pin: Pin
    feedback_pin: Pin
    estop_pin: Pin | None = None
    active_low: bool = False
    feedback_active_low: bool = True
    estop_active_low: bool = False
    input_bias: str = "pull_up"
    debounce_s: float = 0.02
    follow_timeout_s: float = 0.5
    poll_interval_s: float = 0.005


def parse_options(options: Mapping[str, Any], pin_types: tuple[type, ...]) -> ContactorOptions:
    """The common options, checked; `pin_types` are what the driver accepts as a pin."""

    def pin(key: str, required: bool) -> Pin | None:
        if key not in options:
            if required:
                raise OptionError(key, "missing")
            return None
        value = options[key]
        if isinstance(value, bool) or not isinstance(value, pin_types):
            names = " or ".join(t.__name__ for t in pin_types)
            raise OptionError(key, f"expected {names}, got {type(value).__name__}")
        if isinstance(value, int) and value < 0:
            raise OptionError(key, "must be >= 0")
        return value

    coil = pin("pin", True)
    feedback = pin("feedback_pin", True)
    estop = pin("estop_pin", False)
    assert coil is not None and feedback is not None
    used = [p for p in (coil, feedback, estop) if p is not None]
    if len(set(used)) != len(used):
        raise OptionError("feedback_pin" if feedback == coil else "estop_pin", "pin used twice")
    bias = option(options, "input_bias", str, "pull_up")
    if bias not in BIASES:
        raise OptionError("input_bias", f"expected one of {', '.join(BIASES)}")
    opts = ContactorOptions(
        pin=coil,
        feedback_pin=feedback,
        estop_pin=estop,
        active_low=option(options, "active_low", bool, False),
        feedback_active_low=option(options, "feedback_active_low", bool, True),
        estop_active_low=option(options, "estop_active_low", bool, False),
        input_bias=bias,
        debounce_s=option(options, "debounce_s", float, 0.02),
        follow_timeout_s=option(options, "follow_timeout_s", float, 0.5),
        poll_interval_s=option(options, "poll_interval_s", float, 0.005),
    )
    for key in ("debounce_s", "follow_timeout_s", "poll_interval_s"):
        if not getattr(opts, key) >= 0:
            raise OptionError(key, "must be >= 0")
    if opts.poll_interval_s == 0:
        raise OptionError("poll_interval_s", "must be > 0")
    if opts.follow_timeout_s <= opts.debounce_s:
        raise OptionError("follow_timeout_s", "must be longer than debounce_s")
    return opts


class Debouncer:
    """A level that counts only once it has been stable for `hold_s`."""

    def __init__(self, value: bool, hold_s: float, now: float) -> None:
        self.value = value
        self._hold_s = hold_s
        self._raw = value
        self._raw_since = now

    def sample(self, raw: bool, now: float) -> bool:
        """Feed one sample; True when the stable value changed."""
        if raw != self._raw:
            self._raw, self._raw_since = raw, now
        if self._raw != self.value and now - self._raw_since + _EPS >= self._hold_s:
            self.value = self._raw
            return True
        return False


class GpioContactor:
    """The Contactor protocol over ContactorLines. `poll()` is one supervision step; a
    task calls it every poll_interval_s while started, tests call it by hand."""

    name = "contactor"

    def __init__(
        self, lines: ContactorLines, opts: ContactorOptions, evse_id: int, clock: Clock
    ) -> None:
        self.evse_id = evse_id
        self._lines = lines
        self._opts = opts
        self._clock = clock
        self._emit: Emit | None = None
        self._task: asyncio.Task[None] | None = None
        self._commanded = False
        self._feedback: Debouncer | None = None
        self._estop: Debouncer | None = None
        self._mismatch_since: float | None = None
        self.faults: set[str] = set()  # latched contactor faults

    def __repr__(self) -> str:
        return f"<GpioContactor evse={self.evse_id} coil={self._lines.label('coil')}>"

    # --- Device --------------------------------------------------------------------
    async def start(self, emit: Emit) -> None:
        self._lines.acquire(self._coil_level(False))
        now = self._clock.monotonic()
        try:
            closed = self._read_closed()
        except BaseException:
            self._lines.release()
            raise
        atexit.register(self._release_at_exit)
        self._feedback = Debouncer(closed, self._opts.debounce_s, now)
        self._mismatch_since = now if self._feedback.value else None
        self._emit = emit
        if self._opts.estop_pin is not None:
            self._estop = Debouncer(False, self._opts.debounce_s, now)
        self.poll()  # an emergency stop already pressed counts at once
        self._task = asyncio.get_running_loop().create_task(
            self._poll_loop(), name=f"contactor-{self.evse_id}"
        )

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._emit = None
        if self._feedback is not None:
            self._feedback = None
            self._commanded = False
            atexit.unregister(self._release_at_exit)
            self._release_at_exit()

    async def probe(self) -> str:
        """Claim the lines with the coil off, read the inputs once, release them."""
        if self._feedback is not None:
            return self._describe()
        self._lines.acquire(self._coil_level(False))
        try:
            closed = self._read_closed()
            estop = self._opts.estop_pin is not None and self._read_estop_active()
        finally:
            self._lines.release()
        if closed:
            raise DeviceError(
                f"{self._where()}: feedback {self._lines.label('feedback')} reads closed while"
                " the coil is off (welded contactor, or wrong feedback_active_low)"
            )
        if estop:
            raise DeviceError(
                f"{self._where()}: emergency stop {self._lines.label('estop')} is active"
                " (pressed, wire broken, or wrong estop_active_low)"
            )
        return f"{self._where()}: coil off, feedback open on {self._lines.label('feedback')}"

    # --- Contactor -----------------------------------------------------------------
    async def close(self) -> None:
        if self._feedback is None:
            raise DeviceError(f"{self._where()}: not started")
        blocked = sorted(self.faults) + (["emergency stop"] if self._estop_active() else [])
        if blocked:
            raise DeviceError(f"{self._where()}: not closing, {', '.join(blocked)}")
        self._command(True)

    async def open(self) -> None:
        if self._feedback is not None:
            self._command(False)

    @property
    def closed(self) -> bool:
        return self._feedback is not None and self._feedback.value

    # --- supervision ---------------------------------------------------------------
    def poll(self) -> None:
        if self._feedback is None:
            return
        now = self._clock.monotonic()
        if self._estop is not None:
            self._poll_estop(now)
        if self._feedback.sample(self._read_closed(), now):
            self._report(ContactorChanged(self.evse_id, self._feedback.value))
        if self._feedback.value == self._commanded:
            self._mismatch_since = None
        elif self._mismatch_since is None:
            self._mismatch_since = now  # dropped out (or in) on its own
        elif now - self._mismatch_since + _EPS >= self._opts.follow_timeout_s:
            self._fault("welded" if self._feedback.value else "stuck_open")

    def _poll_estop(self, now: float) -> None:
        assert self._estop is not None
        active = self._read_estop_active()
        if active and not self._estop.value:
            # Pressed counts on the first sample: opening late is worse than a spurious
            # stop. Release must be stable for debounce_s.
            self._estop = Debouncer(True, self._opts.debounce_s, now)
            self._command(False)
            log.error("%s: emergency stop %s", self._where(), self._lines.label("estop"))
            self._report(DeviceFault("emergency_stop", self.evse_id, "pressed", True))
        elif self._estop.sample(active, now):
            log.warning("%s: emergency stop released", self._where())
            self._report(DeviceFault("emergency_stop", self.evse_id, "pressed", False))

    def _fault(self, fault: str) -> None:
        if fault in self.faults:
            return
        self.faults.add(fault)
        log.error("%s: %s (%s)", self._where(), fault, self._describe())
        try:
            self._command(False)
        finally:  # reported even when the coil cannot be written any more
            self._report(DeviceFault("contactor", self.evse_id, fault, True))

    def _command(self, closed: bool) -> None:
        self._commanded = closed
        self._lines.write_coil(self._coil_level(closed))
        feedback = self._feedback
        if feedback is not None and feedback.value != closed and self._mismatch_since is None:
            self._mismatch_since = self._clock.monotonic()
        elif feedback is not None and feedback.value == closed:
            self._mismatch_since = None

    async def _poll_loop(self) -> None:
        failing = False
        while True:
            try:
                self.poll()
                failing = False
            except Exception as err:  # a GPIO read failing must not end supervision
                if not failing:
                    log.error("%s: reading the inputs failed: %s", self._where(), err)
                    failing = True
                    with contextlib.suppress(Exception):  # the coil write fails too
                        self._fault("io_error")
            await asyncio.sleep(self._opts.poll_interval_s)

    def _release_at_exit(self) -> None:
        try:
            self._lines.write_coil(self._coil_level(False))
        except Exception as err:  # at exit there is nobody left to raise to
            log.error("%s: could not open the contactor: %s", self._where(), err)
        finally:
            self._lines.release()

    # --- levels --------------------------------------------------------------------
    def _coil_level(self, energized: bool) -> bool:
        return energized != self._opts.active_low

    def _read_closed(self) -> bool:
        return self._lines.read_feedback() != self._opts.feedback_active_low

    def _read_estop_active(self) -> bool:
        return self._lines.read_estop() != self._opts.estop_active_low

    def _estop_active(self) -> bool:
        return self._estop is not None and self._estop.value

    def _report(self, event: HalEvent) -> None:
        if self._emit is not None:
            self._emit(event)

    def _where(self) -> str:
        return f"contactor (EVSE {self.evse_id})"

    def _describe(self) -> str:
        state = "closed" if self.closed else "open"
        coil = "on" if self._commanded else "off"
        return (
            f"coil {self._lines.label('coil')} {coil}, feedback "
            f"{self._lines.label('feedback')} {state}"
        )
