"""What every serial device shares (RFID readers, Modbus RTU meters): the line's
settings, opening a port, and one wording for why a port does not open.

Ports are pyserial URLs: a device path (/dev/ttyUSB0, a pty) or `loop://`,
`socket://host:port`, `rfc2217://...`. A device path is opened exclusively (flock), so
a second program on the same UART (`evse-agent hal check` while the service runs)
gets "device busy" instead of stealing half the bytes. pymodbus opens its ports
exclusively itself.
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..interfaces import DeviceError
from . import OptionError, option

if TYPE_CHECKING:
    import serial

_ERRNO_TEXT = {
    errno.ENOENT: "no such device",
    errno.ENODEV: "no such device",
    errno.ENXIO: "no such device",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EBUSY: "device busy",
    errno.EAGAIN: "device busy (opened by another program)",  # the flock of `exclusive`
    errno.ECONNREFUSED: "connection refused",
    errno.ENOTTY: "not a serial port",
}


@dataclass(frozen=True)
class SerialLine:
    """Where a device is attached and how fast the line runs; the device families add
    their own settings in subclasses."""

    port: str
    baudrate: int


def line_options(options: Mapping[str, Any], default_baudrate: int) -> tuple[str, int]:
    """`port` and `baudrate` of a section, checked (OptionError names the key)."""
    port = option(options, "port", str)
    if not port:
        raise OptionError("port", "must not be empty")
    baudrate = option(options, "baudrate", int, default_baudrate)
    if baudrate <= 0:
        raise OptionError("baudrate", "must be positive")
    return port, baudrate


def is_device_path(port: str) -> bool:
    """A path (/dev/ttyAMA0), not a pyserial URL handler (loop://, socket://)."""
    return "://" not in port


def describe_open_error(err: BaseException) -> str:
    """What went wrong opening a port, in a few words ("no such device")."""
    code = getattr(err, "errno", None)
    if code is None:  # socket:// and termios failures put the error number only into the text
        found = re.search(r"\[Errno (\d+)\]|^Could not configure port: \((\d+),", str(err))
        code = int(found.group(1) or found.group(2)) if found else None
    if code in _ERRNO_TEXT:
        return _ERRNO_TEXT[code]
    if isinstance(code, int) and code > 0:
        return os.strerror(code).lower()
    text = re.sub(r"(?i)^could not open port [^:]*(://[^:]*)?(:\d+)?: ", "", str(err))
    return text or type(err).__name__


def open_serial(port: str, **settings: Any) -> serial.SerialBase:
    """Open `port` (exclusively when it is a device path) or raise DeviceError
    "PORT: no such device" / "PORT: permission denied" / ..."""
    import serial

    if is_device_path(port):
        settings.setdefault("exclusive", True)
    try:
        return serial.serial_for_url(port, **settings)
    except (serial.SerialException, OSError, ValueError) as err:
        raise DeviceError(f"{port}: {describe_open_error(err)}") from None


def open_problem(port: str) -> str:
    """Why `port` does not open, for a library that only says it failed (pymodbus)."""
    try:
        open_serial(port).close()
    except DeviceError as err:
        return str(err).removeprefix(f"{port}: ")
    return "cannot open the port"
