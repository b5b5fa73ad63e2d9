"""The GPIO contactor (driver "gpiozero") on gpiozero's MockFactory: the test drives the
auxiliary contact's pin and moves a FakeClock; the coil pin's level is what the board
would put on the relay driver. Issue 7 item 3."""

from __future__ import annotations

import asyncio
import itertools
import subprocess
import sys
import textwrap
from typing import Any

import pytest
from evse_hal.backends import OptionError
from evse_hal.backends.contactor import GpioContactor
from evse_hal.backends.gpiozero_contactor import create
from evse_hal.clock import FakeClock, SystemClock
from evse_hal.interfaces import ContactorChanged, DeviceError, DeviceFault, HalEvent
from gpiozero import Device
from gpiozero.pins.mock import MockFactory

COIL, FEEDBACK, ESTOP = 17, 27, 22


class Rig:
    """One contactor on mock pins: an aux contact to ground with the pull-up (the
    default wiring), so closed reads low."""

    def __init__(self, factory: MockFactory, clock: FakeClock, contactor: GpioContactor) -> None:
        self.factory = factory
        self.clock = clock
        self.contactor = contactor
        self.events: list[HalEvent] = []

    @property
    def coil(self) -> bool:
        return bool(self.factory.pin(COIL).state)

    def contact(self, closed: bool) -> None:
        pin = self.factory.pin(FEEDBACK)
        pin.drive_low() if closed else pin.drive_high()
        self.contactor.poll()

    def after(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.contactor.poll()

    def faults(self) -> list[DeviceFault]:
        return [e for e in self.events if isinstance(e, DeviceFault)]

    def edges(self) -> list[ContactorChanged]:
        return [e for e in self.events if isinstance(e, ContactorChanged)]


async def rig(factory: MockFactory, **options: Any) -> Rig:
    clock = FakeClock()
    contactor = create({"pin": COIL, "feedback_pin": FEEDBACK, **options}, 1, clock)
    r = Rig(factory, clock, contactor)
    await contactor.start(r.events.append)
    return r


async def test_close_and_open_follow_the_feedback(mock_pins: MockFactory) -> None:
    r = await rig(mock_pins)
    try:
        assert (r.coil, r.contactor.closed) == (False, False)
        await r.contactor.close()
        assert r.coil is True
        r.after(0.03)  # mechanical closing time
        r.contact(True)
        r.after(0.01)
        assert r.contactor.closed is False  # not yet stable for debounce_s
        r.after(0.015)
        assert r.contactor.closed is True
        assert r.edges() == [ContactorChanged(1, True)]
        await r.contactor.open()
        assert r.coil is False
        r.contact(False)
        r.after(0.02)
        assert r.edges() == [ContactorChanged(1, True), ContactorChanged(1, False)]
        r.after(5.0)
        assert r.faults() == [] and r.contactor.faults == set()
    finally:
        await r.contactor.stop()


async def test_bouncing_feedback_is_filtered(mock_pins: MockFactory) -> None:
    r = await rig(mock_pins)
    try:
        await r.contactor.close()
        for level in itertools.islice(itertools.cycle([True, False]), 12):
            r.contact(level)
            r.after(0.005)  # shorter than debounce_s = 0.02
        assert r.edges() == []
        r.contact(True)
        r.after(0.019)
        assert r.edges() == []
        r.after(0.001)
        assert r.edges() == [ContactorChanged(1, True)]
        assert r.faults() == []
    finally:
        await r.contactor.stop()


async def test_welded_contactor_is_a_fault(mock_pins: MockFactory) -> None:
    r = await rig(mock_pins)
    try:
        await r.contactor.close()
        r.contact(True)
        r.after(0.02)
        await r.contactor.open()
        r.after(0.49)  # follow_timeout_s = 0.5
        assert r.faults() == []
        r.after(0.01)
        assert r.faults() == [DeviceFault("contactor", 1, "welded", True)]
        assert r.contactor.closed is True  # what it really is
        assert r.coil is False
        with pytest.raises(DeviceError, match=r"contactor \(EVSE 1\).*welded"):
            await r.contactor.close()
        assert r.coil is False
        r.after(10.0)
        assert len(r.faults()) == 1  # reported once, latched
    finally:
        await r.contactor.stop()


async def test_contactor_that_does_not_close_is_a_fault_and_the_coil_drops(
    mock_pins: MockFactory,
) -> None:
    r = await rig(mock_pins, follow_timeout_s=0.2)
    try:
        await r.contactor.close()
        assert r.coil is True
        r.after(0.19)
        assert r.faults() == []
        r.after(0.01)
        assert r.faults() == [DeviceFault("contactor", 1, "stuck_open", True)]
        assert r.coil is False  # opened on fault
    finally:
        await r.contactor.stop()


async def test_dropout_while_closed_is_a_fault(mock_pins: MockFactory) -> None:
    r = await rig(mock_pins)
    try:
        await r.contactor.close()
        r.contact(True)
        r.after(0.02)
        r.after(60.0)
        r.contact(False)  # the aux contact opens on its own (coil supply lost, ...)
        r.after(0.02)
        assert r.edges()[-1] == ContactorChanged(1, False)
        r.after(0.5)
        assert r.faults() == [DeviceFault("contactor", 1, "stuck_open", True)]
        assert r.coil is False
    finally:
        await r.contactor.stop()


async def test_emergency_stop_opens_at_once_and_reports(mock_pins: MockFactory) -> None:
    # External pulls (input_bias "none"): a mock pin's pull-up would drive it high on
    # claiming, where a real button to ground keeps the line low.
    mock_pins.pin(ESTOP).drive_low()  # NC button to ground: low while not pressed
    mock_pins.pin(FEEDBACK).drive_high()
    r = await rig(mock_pins, estop_pin=ESTOP, input_bias="none")
    try:
        await r.contactor.close()
        r.contact(True)
        r.after(0.02)
        mock_pins.pin(ESTOP).drive_high()  # pressed
        r.contactor.poll()  # no time passes: opening does not wait for a debounce
        assert r.coil is False
        assert r.faults() == [DeviceFault("emergency_stop", 1, "pressed", True)]
        with pytest.raises(DeviceError, match="emergency stop"):
            await r.contactor.close()
        mock_pins.pin(ESTOP).drive_low()
        r.contact(False)
        r.after(0.02)
        assert r.faults()[-1] == DeviceFault("emergency_stop", 1, "pressed", False)
        await r.contactor.close()  # usable again once released
        assert r.coil is True
        assert DeviceFault("contactor", 1, "stuck_open", True) not in r.faults()
    finally:
        await r.contactor.stop()


async def test_emergency_stop_pressed_at_start(mock_pins: MockFactory) -> None:
    mock_pins.pin(ESTOP).drive_high()
    r = await rig(mock_pins, estop_pin=ESTOP)
    try:
        assert r.faults() == [DeviceFault("emergency_stop", 1, "pressed", True)]
        with pytest.raises(DeviceError):
            await r.contactor.close()
        assert r.coil is False
    finally:
        await r.contactor.stop()


async def test_stop_opens_and_releases_the_pins(mock_pins: MockFactory) -> None:
    r = await rig(mock_pins)
    await r.contactor.close()
    assert r.coil is True
    await r.contactor.stop()
    assert r.coil is False
    # Released: another device may claim the same pins now.
    again = await rig(mock_pins)
    await again.contactor.stop()


def test_process_exit_opens_the_contactor() -> None:
    """An interpreter that ends with the contactor closed de-energizes the coil (atexit);
    a checker registered before runs after, and sees the coil's level."""
    script = textwrap.dedent(
        f"""
        import asyncio, atexit
        from gpiozero import Device
        from gpiozero.pins.mock import MockFactory
        from evse_hal.clock import FakeClock
        from evse_hal.backends.gpiozero_contactor import create
        Device.pin_factory = MockFactory()
        atexit.register(lambda: print("coil at exit:", Device.pin_factory.pin({COIL}).state))
        async def main():
            c = create({{"pin": {COIL}, "feedback_pin": {FEEDBACK}}}, 1, FakeClock())
            await c.start(lambda e: None)
            await c.close()
            print("coil closed:", Device.pin_factory.pin({COIL}).state)
        asyncio.run(main())
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert "coil closed: True" in out
    assert "coil at exit: False" in out


async def test_polarity_options(mock_pins: MockFactory) -> None:
    r = await rig(mock_pins, active_low=True, feedback_active_low=False, input_bias="pull_down")
    try:
        assert r.coil is True  # active low: high is off
        await r.contactor.close()
        assert r.coil is False
        mock_pins.pin(FEEDBACK).drive_high()  # active-high feedback: high is closed
        r.contactor.poll()
        r.after(0.02)
        assert r.contactor.closed is True
        await r.contactor.stop()
        assert r.coil is True
    finally:
        await r.contactor.stop()


async def test_probe(mock_pins: MockFactory) -> None:
    clock = FakeClock()
    mock_pins.pin(FEEDBACK).drive_high()
    contactor = create({"pin": COIL, "feedback_pin": FEEDBACK, "input_bias": "none"}, 1, clock)
    assert await contactor.probe() == "contactor (EVSE 1): coil off, feedback open on GPIO27"
    mock_pins.pin(FEEDBACK).drive_low()  # reads closed with the coil off
    with pytest.raises(DeviceError, match="GPIO27 reads closed while the coil is off"):
        await contactor.probe()
    assert mock_pins.pin(COIL).state is False


class _NoAccessFactory(MockFactory):
    """A board where /dev/gpiomem is not ours, as on a Pi for a user outside `gpio`."""

    def pin(self, name: Any, pin_class: Any = None, **kwargs: Any) -> Any:
        raise PermissionError(13, "Permission denied", "/dev/gpiomem")


async def test_permission_denied_names_the_pin_and_the_device(mock_pins: MockFactory) -> None:
    Device.pin_factory = _NoAccessFactory()
    contactor = create({"pin": COIL, "feedback_pin": FEEDBACK}, 2, FakeClock())
    with pytest.raises(DeviceError) as caught:
        await contactor.start(lambda e: None)
    message = str(caught.value)
    assert "contactor (EVSE 2)" in message and "GPIO17" in message
    assert "permission denied on /dev/gpiomem" in message


class error(Exception):  # noqa: N801 - as lgpio names it
    """lgpio's exception class: not a gpiozero or OS error."""


class _BusyFactory(MockFactory):
    """lgpio when another process holds the line: `lgpio.error: 'GPIO busy'`."""

    def pin(self, name: Any, pin_class: Any = None, **kwargs: Any) -> Any:
        raise error("'GPIO busy'")


async def test_a_pin_factorys_own_error_is_one_line(mock_pins: MockFactory) -> None:
    Device.pin_factory = _BusyFactory()
    contactor = create({"pin": COIL, "feedback_pin": FEEDBACK}, 2, FakeClock())
    with pytest.raises(DeviceError) as caught:
        await contactor.start(lambda e: None)
    assert str(caught.value) == "contactor (EVSE 2) coil GPIO17: 'GPIO busy'"
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


async def test_no_pin_factory_is_one_clear_error(
    mock_pins: MockFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    Device.pin_factory = None
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "no-such-factory")
    contactor = create({"pin": COIL, "feedback_pin": FEEDBACK}, 1, FakeClock())
    with pytest.raises(DeviceError, match=r"GPIO17: no usable GPIO pin factory.*no-such-factory"):
        await contactor.start(lambda e: None)


async def test_pin_in_use(mock_pins: MockFactory) -> None:
    first = await rig(mock_pins)
    try:
        second = create({"pin": 5, "feedback_pin": FEEDBACK}, 2, FakeClock())
        with pytest.raises(DeviceError, match=r"contactor \(EVSE 2\) feedback GPIO27"):
            await second.start(lambda e: None)
        assert mock_pins.pin(5).function == "input"  # the coil it had claimed is released
    finally:
        await first.contactor.stop()


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"feedback_pin": 27}, "pin"),
        ({"pin": 17}, "feedback_pin"),
        ({"pin": 17, "feedback_pin": 17}, "feedback_pin"),
        ({"pin": 17, "feedback_pin": 27, "estop_pin": 27}, "estop_pin"),
        ({"pin": True, "feedback_pin": 27}, "pin"),
        ({"pin": 17, "feedback_pin": 27, "input_bias": "up"}, "input_bias"),
        ({"pin": 17, "feedback_pin": 27, "debounce_s": 0.5}, "follow_timeout_s"),
        ({"pin": 17, "feedback_pin": 27, "debounce_s": "fast"}, "debounce_s"),
        ({"pin": 17, "feedback_pin": 27, "chip": "/dev/gpiochip0"}, "chip"),
    ],
)
def test_option_errors_name_the_option(options: dict[str, Any], key: str) -> None:
    with pytest.raises(OptionError) as caught:
        create(options, 1, FakeClock())
    assert caught.value.key == key


async def test_the_poll_task_supervises_on_the_system_clock(mock_pins: MockFactory) -> None:
    """Without anyone calling poll(): the started contactor samples its inputs itself."""
    contactor = create(
        {"pin": COIL, "feedback_pin": FEEDBACK, "follow_timeout_s": 0.1}, 1, SystemClock()
    )
    events: list[HalEvent] = []
    await contactor.start(events.append)
    try:
        await contactor.close()
        mock_pins.pin(FEEDBACK).drive_low()
        for _ in range(100):
            await asyncio.sleep(0.01)
            if events:
                break
        assert events == [ContactorChanged(1, True)]
        await contactor.open()  # and it stays closed: welded
        await asyncio.sleep(0.3)
        assert events[-1] == DeviceFault("contactor", 1, "welded", True)
    finally:
        await contactor.stop()
