"""The serial plumbing the RFID readers share: open errors as one line, IdToken limits,
debouncing on the injectable clock, and a prompt stop()."""

from __future__ import annotations

import errno
import socket
import time
from pathlib import Path

import pytest
import serial
from evse_hal.backends import OptionError, rdm6300
from evse_hal.backends.rfid_serial import (
    Debouncer,
    describe_open_error,
    serial_settings,
    token_event,
)
from evse_hal.clock import FakeClock
from evse_hal.interfaces import DeviceError, TokenPresented
from rfid_support import Events, PtyReader


def test_open_errors_in_a_few_words() -> None:
    denied = serial.SerialException(
        errno.EACCES, "could not open port /dev/ttyS0: [Errno 13] Permission denied: '/dev/ttyS0'")
    refused = serial.SerialException(
        "Could not open port socket://127.0.0.1:1: [Errno 111] Connection refused")
    odd = serial.SerialException("could not open port /dev/ttyS0: something odd")
    assert describe_open_error(denied) == "permission denied"
    assert describe_open_error(refused) == "connection refused"
    assert describe_open_error(odd) == "something odd"
    assert describe_open_error(FileNotFoundError(errno.ENOENT, "x")) == "no such device"


async def test_a_socket_url_nobody_listens_on_fails_start_naming_it() -> None:
    with socket.socket() as s:  # a port that was free a moment ago
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"socket://127.0.0.1:{port}"
    reader = rdm6300.create({"port": url}, 0, FakeClock())
    with pytest.raises(DeviceError) as err:
        await reader.start(Events())
    assert str(err.value) == f"{url}: connection refused"


async def test_a_file_that_is_no_serial_port_is_named_so() -> None:
    reader = rdm6300.create({"port": "/dev/null"}, 0, FakeClock())
    with pytest.raises(DeviceError, match="^/dev/null: not a serial port$"):
        await reader.start(Events())


async def test_an_unknown_url_scheme_is_a_device_error_too() -> None:
    reader = rdm6300.create({"port": "nosuch://x"}, 0, FakeClock())
    with pytest.raises(DeviceError, match="^nosuch://x: "):
        await reader.start(Events())


def test_common_options() -> None:
    with pytest.raises(OptionError, match="port: must not be empty"):
        serial_settings({"port": ""}, 9600)
    with pytest.raises(OptionError, match="debounce_s: must not be negative"):
        serial_settings({"port": "loop://", "debounce_s": -1}, 9600)
    with pytest.raises(OptionError, match="reopen_interval_s: must be positive"):
        serial_settings({"port": "loop://", "reopen_interval_s": 0}, 9600)
    assert serial_settings({"port": "loop://", "debounce_s": 1}, 9600).debounce_s == 1.0


def test_id_token_limits() -> None:
    """OCPP 2.0.1 IdTokenType.idToken: at most 36 characters."""
    assert token_event("A" * 36, "Local") == TokenPresented("A" * 36, "Local")
    assert token_event("A" * 37, "Local") is None
    assert token_event("", "Local") is None
    assert token_event("AB\x07CD", "Local") is None
    assert token_event("ÄB", "Local") is None


def test_debounce_counts_a_card_again_only_after_absence() -> None:
    clock = FakeClock()
    d = Debouncer(clock, 2.0)
    assert d.accept("A")
    clock.advance(1.9)
    assert not d.accept("A")  # still held (seen 1.9 s after the last read)
    assert d.accept("B")
    clock.advance(1.9)
    assert not d.accept("A")  # seen again within 2 s of the last sighting
    clock.advance(2.0)
    assert d.accept("A")
    for i in range(40):  # many cards: the table of old ones is pruned
        clock.advance(3)
        assert d.accept(f"card{i}")
    assert len(d._last_seen) <= 33


async def test_stop_returns_promptly_and_releases_the_port(tmp_path: Path) -> None:
    line = PtyReader(tmp_path / "tty")
    try:
        reader = rdm6300.create({"port": str(line.path)}, 0, FakeClock())
        await reader.start(Events())
        began = time.monotonic()
        await reader.stop()
        assert time.monotonic() - began < 0.5
        assert reader._thread is None
    finally:
        line.close()


async def test_a_port_in_use_is_device_busy_not_shared() -> None:
    """A device path is opened exclusively: `hal check` while the service holds the
    reader's UART fails clearly instead of stealing half of its bytes; loop:// and
    socket:// are not device paths and open as before."""
    import os

    master, slave = os.openpty()
    path = os.ttyname(slave)
    first = rdm6300.create({"port": path}, 0, FakeClock())
    await first.start(Events())
    try:
        second = rdm6300.create({"port": path}, 0, FakeClock())
        with pytest.raises(DeviceError) as err:
            await second.start(Events())
        assert str(err.value) == f"{path}: device busy (opened by another program)"
        with pytest.raises(DeviceError, match="device busy"):
            await second.probe()
    finally:
        await first.stop()
        os.close(master)
        os.close(slave)
    loop = rdm6300.create({"port": "loop://"}, 0, FakeClock())
    await loop.start(Events())
    await loop.stop()
