"""Serial plumbing shared by the RFID reader drivers (pn532, rdm6300, ascii-line).

A reader is opened with `serial.serial_for_url`, so `port` may be a device path
(`/dev/ttyAMA0`, `/dev/ttyUSB0`, a pty), `socket://host:port`, `rfc2217://...` or
`loop://`. The protocol work runs on one thread per reader (pyserial blocks); events
reach the agent through `emit` on the event loop's thread.

Life of a reader:
- `start()` opens the port; a port that cannot be opened raises DeviceError with one
  line naming it ("/dev/ttyUSB9: no such device").
- After that, a port that fails (USB unplugged, pty closed, socket dropped) is reported
  as DeviceFault(device="rfid", evse_id=0, fault="ReaderGone") and reopened every
  `reopen_interval_s`; when it works again the fault clears (active=False) and reading
  resumes. A port that is open but whose reader does not answer (PN532 only) is
  fault "ReaderNotResponding", handled the same way.
- A card held on the reader is reported once: the same UID is reported again only after
  it has been absent for `debounce_s` (measured on the injectable clock).

Options common to all serial readers (each driver adds its own):
  port               required; any pyserial URL
  baudrate           int; the driver's default (PN532 115200, RDM6300 / ascii-line 9600)
  debounce_s         float, default 2.0; how long a card must be gone before it counts again
  reopen_interval_s  float, default 2.0; pause between attempts to reopen a lost port

IdTokens: at most 36 characters (OCPP 2.0.1 IdTokenType.idToken); longer or
unprintable values are logged and dropped here. OCPP 1.6 allows 20 (CiString20Type):
the 1.6 adapter answers a longer token Invalid locally, without sending it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from ..clock import Clock
from ..interfaces import DeviceError, DeviceFault, Emit, HalEvent, TokenPresented
from . import OptionError, option
from .serial_port import SerialLine, describe_open_error, line_options, open_serial

if TYPE_CHECKING:
    import serial

__all__ = ["describe_open_error"]  # re-exported: the readers' wording is serial_port's

log = logging.getLogger("evse_hal.rfid")

ID_TOKEN_MAX_LEN = 36  # OCPP 2.0.1 IdTokenType.idToken (1.6 IdToken: 20, see module doc)
# IdTokenEnumType values a reader can produce (NoAuthorization has an empty idToken).
ID_TOKEN_TYPES = frozenset(
    {"Central", "eMAID", "ISO14443", "ISO15693", "KeyCode", "Local", "MacAddress"}
)
COMMON_OPTIONS = frozenset({"port", "baudrate", "debounce_s", "reopen_interval_s"})
READ_TIMEOUT_S = 0.05  # one blocking read; the thread checks for stop() in between
WRITE_TIMEOUT_S = 1.0
FAULT_GONE = "ReaderGone"
FAULT_SILENT = "ReaderNotResponding"
PROBE_LISTEN_S = 0.3  # how long `hal check` listens to a reader that talks unasked
T = TypeVar("T")


class ReaderSilent(Exception):
    """The port is open but the reader does not answer."""


@dataclass(frozen=True)
class ReaderSettings(SerialLine):
    debounce_s: float = 2.0
    reopen_interval_s: float = 2.0


def serial_settings(options: Mapping[str, Any], default_baudrate: int) -> ReaderSettings:
    """The common options, checked (OptionError names the key)."""
    port, baudrate = line_options(options, default_baudrate)
    settings = ReaderSettings(
        port=port,
        baudrate=baudrate,
        debounce_s=option(options, "debounce_s", float, 2.0),
        reopen_interval_s=option(options, "reopen_interval_s", float, 2.0),
    )
    if settings.debounce_s < 0:
        raise OptionError("debounce_s", "must not be negative")
    if settings.reopen_interval_s <= 0:
        raise OptionError("reopen_interval_s", "must be positive")
    return settings


def id_token_type(options: Mapping[str, Any], default: str = "Local") -> str:
    value = option(options, "id_token_type", str, default)
    if value not in ID_TOKEN_TYPES:
        raise OptionError("id_token_type", f"expected one of {', '.join(sorted(ID_TOKEN_TYPES))}")
    return value


def positive(options: Mapping[str, Any], key: str, default: float) -> float:
    value = option(options, key, float, default)
    if value <= 0:
        raise OptionError(key, "must be positive")
    return value


def open_port(settings: ReaderSettings) -> serial.SerialBase:
    """Open the port (exclusively when it is a device path) or raise DeviceError
    naming it."""
    return open_serial(settings.port, baudrate=settings.baudrate, timeout=READ_TIMEOUT_S,
                       write_timeout=WRITE_TIMEOUT_S)


def read_some(port: serial.SerialBase) -> bytes:
    """What has arrived, waiting at most READ_TIMEOUT_S for the first byte."""
    return bytes(port.read(port.in_waiting or 1))


def listen_briefly(
    port: serial.SerialBase, feed: Callable[[bytes], list[T]], seconds: float = PROBE_LISTEN_S
) -> T | None:
    """For `hal check` on readers that only talk when a card is present: the first
    value `feed` (a frame parser) finds within `seconds`, or None."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = feed(read_some(port))
        if found:
            return found[0]
    return None


def token_event(value: str, token_type: str) -> TokenPresented | None:
    """The event for a token value, or None (logged) when OCPP cannot carry it."""
    if not value or not value.isascii() or not value.isprintable():
        log.warning("RFID: ignored token %r: not printable ASCII", value)
        return None
    if len(value) > ID_TOKEN_MAX_LEN:
        log.warning(
            "RFID: ignored token %r: %d characters, OCPP allows at most %d",
            value, len(value), ID_TOKEN_MAX_LEN,
        )
        return None
    return TokenPresented(value, token_type)


class Debouncer:
    """A card held on the reader counts once: a UID counts again only after it has been
    absent (not seen) for `debounce_s`."""

    def __init__(self, clock: Clock, debounce_s: float) -> None:
        self._clock = clock
        self.debounce_s = debounce_s
        self._last_seen: dict[str, float] = {}

    def accept(self, uid: str) -> bool:
        now = self._clock.monotonic()
        last = self._last_seen.get(uid)
        self._last_seen[uid] = now
        if len(self._last_seen) > 32:  # forget cards long gone
            self._last_seen = {
                k: t for k, t in self._last_seen.items() if now - t < self.debounce_s
            }
        return last is None or now - last >= self.debounce_s


class SerialReader:
    """An IdTokenReader on a serial port. Subclasses implement `_serve` (talk to the
    reader until `self.stopping`, calling `_ready` once it answers and `_card` for
    every UID read) and may override `_probe`."""

    name = "rfid"
    evse_id = 0
    model = "serial reader"

    def __init__(self, settings: ReaderSettings, clock: Clock) -> None:
        self.settings = settings
        self.port = settings.port
        self.debouncer = Debouncer(clock, settings.debounce_s)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._emit: Callable[[HalEvent], None] | None = None
        self._fault: str | None = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.port}>"

    # -- device protocol -----------------------------------------------------------
    async def start(self, emit: Emit) -> None:
        if self._thread is not None:
            return
        loop = asyncio.get_running_loop()

        def on_loop(event: HalEvent) -> None:
            try:
                loop.call_soon_threadsafe(emit, event)
            except RuntimeError:  # the loop is closed: nobody listens any more
                pass

        port = await asyncio.to_thread(open_port, self.settings)
        log.info("RFID %s: %s open at %d baud", self.model, self.port, self.settings.baudrate)
        self._emit = on_loop
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._main, args=(port,), name=f"rfid {self.port}", daemon=True
        )
        self._thread.start()

    async def stop(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            await asyncio.to_thread(thread.join, 5.0)
        self._emit = None

    async def probe(self) -> str:
        """Open, talk to the reader once, close: one line for `hal check`."""
        return await asyncio.to_thread(self._probe_once)

    # -- for subclasses ---------------------------------------------------------------
    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def wait(self, seconds: float) -> bool:
        """Sleep up to `seconds`; True when stop() was called meanwhile."""
        return self._stop.wait(seconds)

    def _serve(self, port: serial.SerialBase) -> None:
        raise NotImplementedError

    def _probe(self, port: serial.SerialBase) -> str:
        return f"{self.model} on {self.port}: port open at {self.settings.baudrate} baud"

    def _ready(self) -> None:
        """The reader works (again): clear the fault reported before."""
        if self._fault is not None:
            log.info("RFID %s: %s works again", self.model, self.port)
            self._report(DeviceFault("rfid", 0, self._fault, active=False))
            self._fault = None

    def _card(self, uid: str, token_type: str) -> None:
        if not self.debouncer.accept(uid):
            return
        event = token_event(uid, token_type)
        if event is not None:
            log.info("RFID %s: card %s (%s)", self.model, uid, token_type)
            self._report(event)

    # -- the reader thread ------------------------------------------------------------
    def _report(self, event: HalEvent) -> None:
        if self._emit is not None:
            self._emit(event)

    def _set_fault(self, fault: str, why: object) -> None:
        if self._fault == fault:
            return
        log.warning("RFID %s: %s: %s (%s)", self.model, self.port, fault, why)
        if self._fault is not None:
            self._report(DeviceFault("rfid", 0, self._fault, active=False))
        self._fault = fault
        self._report(DeviceFault("rfid", 0, fault, active=True))

    def _main(self, port: serial.SerialBase | None) -> None:
        import serial

        try:
            while not self.stopping:
                if port is None:
                    try:
                        port = open_port(self.settings)
                    except DeviceError as err:
                        self._set_fault(FAULT_GONE, err)
                        self.wait(self.settings.reopen_interval_s)
                        continue
                try:
                    self._serve(port)
                except (serial.SerialException, OSError) as err:
                    self._set_fault(FAULT_GONE, err)
                    _close(port)
                    port = None
                    self.wait(self.settings.reopen_interval_s)
                except ReaderSilent as err:
                    if self.stopping:  # stop() cut the exchange short: not the reader's fault
                        break
                    self._set_fault(FAULT_SILENT, err)
                    self.wait(self.settings.reopen_interval_s)
        except Exception:  # a bug must not pass silently on a thread nobody joins
            log.exception("RFID %s: %s: reader thread failed", self.model, self.port)
            self._set_fault(FAULT_GONE, "reader thread failed")
        finally:
            if port is not None:
                _close(port)

    def _probe_once(self) -> str:
        import serial

        port = open_port(self.settings)
        try:
            return self._probe(port)
        except (serial.SerialException, OSError) as err:
            raise DeviceError(f"{self.port}: {err}") from None
        except ReaderSilent as err:
            raise DeviceError(f"{self.port}: {err}") from None
        finally:
            _close(port)


def _close(port: serial.SerialBase) -> None:
    try:
        port.close()
    except Exception:  # closing a port that vanished may fail; it is gone either way
        log.debug("closing %s failed", port.portstr, exc_info=True)
