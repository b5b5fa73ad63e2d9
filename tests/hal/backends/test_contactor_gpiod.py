"""The "gpiod" contactor driver (libgpiod v2). No gpio-sim chip can be made on these
machines (no configfs, no modules), so the line request is a stand-in with the
LineRequest methods the driver calls; the line settings passed to it are the real
`gpiod.LineSettings`, and the error paths run the real `gpiod.request_lines` against
paths that are not GPIO chips. The supervision logic is the gpiozero driver's, tested
in test_contactor_gpiozero.py; real libgpiod line I/O is not exercised here."""

from __future__ import annotations

from typing import Any

import gpiod
import pytest
from evse_hal.backends import OptionError
from evse_hal.backends.gpiod_contactor import create
from evse_hal.clock import FakeClock
from evse_hal.interfaces import ContactorChanged, DeviceError, DeviceFault, HalEvent
from gpiod.line import Bias, Direction, Value


class StandInRequest:
    """The LineRequest surface the driver uses, over a dict of line values."""

    def __init__(self, path: str, consumer: str | None, config: dict[Any, Any]) -> None:
        self.path, self.consumer, self.config = path, consumer, config
        self.values: dict[int, Value] = {}
        self.released = False
        for offsets, settings in config.items():
            for offset in offsets if isinstance(offsets, tuple) else (offsets,):
                self.values[offset] = (
                    settings.output_value
                    if settings.direction == Direction.OUTPUT
                    else Value.ACTIVE  # pulled up, nothing driving it
                )

    def settings(self, offset: int) -> gpiod.LineSettings:
        for offsets, settings in self.config.items():
            if offset in (offsets if isinstance(offsets, tuple) else (offsets,)):
                return settings
        raise KeyError(offset)

    def set_value(self, offset: int, value: Value) -> None:
        assert not self.released
        assert self.settings(offset).direction == Direction.OUTPUT
        self.values[offset] = value

    def get_value(self, offset: int) -> Value:
        assert not self.released
        return self.values[offset]

    def release(self) -> None:
        self.released = True


@pytest.fixture
def requests(monkeypatch: pytest.MonkeyPatch) -> list[StandInRequest]:
    made: list[StandInRequest] = []

    def request_lines(
        path: str, config: dict[Any, Any], consumer: str | None = None, **_: Any
    ) -> StandInRequest:
        made.append(StandInRequest(path, consumer, config))
        return made[-1]

    monkeypatch.setattr(gpiod, "request_lines", request_lines)
    return made


async def test_lines_are_requested_with_the_coil_off(requests: list[StandInRequest]) -> None:
    contactor = create(
        {"chip": "/dev/gpiochip3", "pin": 5, "feedback_pin": 6, "estop_pin": 7}, 1, FakeClock()
    )
    events: list[HalEvent] = []
    await contactor.start(events.append)
    try:
        (request,) = requests
        assert (request.path, request.consumer) == ("/dev/gpiochip3", "evse-agent")
        coil = request.settings(5)
        assert (coil.direction, coil.output_value) == (Direction.OUTPUT, Value.INACTIVE)
        for offset in (6, 7):
            assert request.settings(offset).direction == Direction.INPUT
            assert request.settings(offset).bias == Bias.PULL_UP
        assert events == [DeviceFault("emergency_stop", 1, "pressed", True)]  # 7 reads high
    finally:
        await contactor.stop()
    assert request.released and request.values[5] == Value.INACTIVE


async def test_close_open_and_weld_through_the_line_request(
    requests: list[StandInRequest],
) -> None:
    clock = FakeClock()
    contactor = create({"pin": 17, "feedback_pin": 27, "active_low": True}, 4, clock)
    events: list[HalEvent] = []
    await contactor.start(events.append)
    request = requests[-1]
    try:
        assert request.path == "/dev/gpiochip0"
        assert request.values[17] == Value.ACTIVE  # active-low coil: high is off
        await contactor.close()
        assert request.values[17] == Value.INACTIVE
        request.values[27] = Value.INACTIVE  # aux contact closes to ground
        contactor.poll()
        clock.advance(0.02)
        contactor.poll()
        assert contactor.closed and events == [ContactorChanged(4, True)]
        await contactor.open()
        assert request.values[17] == Value.ACTIVE
        clock.advance(0.5)
        contactor.poll()
        assert events[-1] == DeviceFault("contactor", 4, "welded", True)
    finally:
        await contactor.stop()


async def test_probe_reads_once_and_releases(requests: list[StandInRequest]) -> None:
    contactor = create({"pin": 17, "feedback_pin": 27}, 1, FakeClock())
    assert await contactor.probe() == (
        "contactor (EVSE 1): coil off, feedback open on /dev/gpiochip0 line 27"
    )
    assert requests[-1].released


async def test_missing_chip_names_the_chip_and_the_lines() -> None:
    """Real libgpiod: the chip's device does not exist."""
    contactor = create(
        {"chip": "/dev/no-such-gpiochip", "pin": 17, "feedback_pin": 27}, 2, FakeClock()
    )
    with pytest.raises(DeviceError) as caught:
        await contactor.start(lambda e: None)
    assert str(caught.value) == (
        "contactor (EVSE 2): /dev/no-such-gpiochip lines 17, 27: no such GPIO chip"
    )


@pytest.mark.parametrize("path", ["/dev/null", "regular-file"])
async def test_a_path_that_is_not_a_gpio_chip(path: str, tmp_path: Any) -> None:
    """Real libgpiod: the path exists but is no GPIO character device."""
    if path == "regular-file":
        path = str(tmp_path / "gpiochip0")
        open(path, "w").close()
    contactor = create({"chip": path, "pin": 17, "feedback_pin": 27}, 1, FakeClock())
    with pytest.raises(DeviceError, match=rf"^contactor \(EVSE 1\): {path} lines 17, 27: \w"):
        await contactor.probe()


def test_gpiod_options() -> None:
    with pytest.raises(OptionError) as caught:
        create({"pin": "GPIO17", "feedback_pin": 27}, 1, FakeClock())
    assert caught.value.key == "pin"  # line offsets only
    with pytest.raises(OptionError) as caught:
        create({"pin": 17, "feedback_pin": 27, "chip": 0}, 1, FakeClock())
    assert caught.value.key == "chip"
