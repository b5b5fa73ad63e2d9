"""Driver "can": the EV-communication module of one EVSE on a CAN bus.

The message set is the DBC shipped with the package (evse_hal/data/evse-bridge.dbc,
from config/can/), encoded and decoded with cantools; payloads longer than 8 bytes
(EVCCID, charging needs, certificate hash data, EXI messages of several kB) travel
over ISO-TP (can-isotp's NotifierBasedCanStack, sharing the bus's Notifier; transfers
above 4095 bytes use the 32-bit length escape). The pilot / EV / contactor logic is
board_support's; this module is only the CAN encoding of its messages.

One module serves one EVSE. `create()` returns the EvBridge; its `.pilot` is the
EVSE's ControlPilot and, with `power_switching = true`, its `.contactor` the EVSE's
Contactor (the module switches power, confirmed by its mirror contact).

Options of `[hal.ev_bridge]` (besides `driver = "can"`; `evse` picks the EVSE, 1 when
absent):
- interface (str, required): any python-can interface ("socketcan", "pcan", "slcan",
  "virtual", ...)
- channel (str or int, required): "can0", "PCAN_USBBUS1", "/dev/ttyACM0@115200", ...
- bitrate (int, optional): passed to python-can when given (socketcan takes the
  bitrate from `ip link`)
- base_id (int, default 0x300 + 0x10 * (evse - 1)): the module's first CAN id; its
  frames use base+0x00..base+0x0F (29-bit ids when that goes beyond 0x7FF)
- heartbeat_interval_s (float, 0.5): our heartbeat, and the command repeated with it
- heartbeat_timeout_s (float, 2.0): the module's heartbeat counter must move within
  this, or the EV side is gone (DeviceFault "pilot" / "HeartbeatLost", pilot F)
- power_switching (bool, false): the module switches the power contactor itself
- power_confirm_timeout_s (float, 2.0): how long the mirror contact may disagree
  with the command before the contactor is reported (stuck_open / welded)
- isotp_max_size (int, 65536): the longest ISO-TP payload accepted from the module
- isotp_stmin_ms (int, 0), isotp_blocksize (int, 0): ISO-TP flow control we ask for
"""

from __future__ import annotations

import asyncio
import functools
import importlib.resources
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

import can
import cantools
import isotp

from evse_hal.backends import OptionError, option, reject_unknown
from evse_hal.backends.board_messages import (
    DataKind,
    EvIdentity,
    EvStatus,
    Heartbeat,
    Iso15118Data,
    ModuleMessage,
    PilotCommand,
    PilotStatus,
    Telemetry,
)
from evse_hal.backends.board_support import BoardEvBridge, BoardSupport
from evse_hal.clock import Clock
from evse_hal.interfaces import DeviceError, PilotState

log = logging.getLogger(__name__)

DBC_BASE = 0x300  # the ids written in the DBC (EVSE 1); other modules are offset from it
DEFAULT_BASE = 0x300
PROTOCOL_VERSION = 1
ISOTP_FROM_MODULE = 0x0E
ISOTP_TO_MODULE = 0x0F
PILOT_STATES: tuple[PilotState, ...] = ("A", "B", "C", "D", "E", "F")
# DBC error flag signal -> board_support error flag
ERROR_SIGNALS = {
    "ErrDiodeFault": "diode_fault",
    "ErrPilotShort": "pilot_short",
    "ErrRcdTripped": "rcd_tripped",
    "ErrProximityInvalid": "proximity_invalid",
    "ErrOvertemperature": "overtemperature",
    "ErrRelayWelded": "relay_welded",
    "ErrInternal": "internal",
    "ErrControllerTimeout": "controller_timeout",
}
KNOWN_OPTIONS = {
    "interface", "channel", "bitrate", "base_id", "heartbeat_interval_s",
    "heartbeat_timeout_s", "power_switching", "power_confirm_timeout_s",
    "isotp_max_size", "isotp_stmin_ms", "isotp_blocksize",
}


@functools.cache
def load_dbc() -> cantools.database.can.Database:
    """The message set shipped as package data."""
    dbc = importlib.resources.files("evse_hal") / "data" / "evse-bridge.dbc"
    db = cantools.database.load_string(dbc.read_text(encoding="utf-8"), database_format="dbc")
    assert isinstance(db, cantools.database.can.Database)
    return db


def create(options: Mapping[str, Any], evse_id: int, clock: Clock) -> BoardEvBridge:
    reject_unknown(options, KNOWN_OPTIONS)
    evse_id = evse_id or 1
    interface = option(options, "interface", str)
    channel = options.get("channel")
    if channel is None:
        raise OptionError("channel", "missing")
    if not isinstance(channel, str | int) or isinstance(channel, bool):
        raise OptionError("channel", f"expected str or int, got {type(channel).__name__}")
    bitrate = options.get("bitrate")
    if bitrate is not None and (not isinstance(bitrate, int) or isinstance(bitrate, bool)):
        raise OptionError("bitrate", f"expected int, got {type(bitrate).__name__}")
    base_id = option(options, "base_id", int, DEFAULT_BASE + 0x10 * (evse_id - 1))
    if not 0 <= base_id <= 0x1FFFFFFF - 0x0F:
        raise OptionError("base_id", "must leave room for 16 ids below 0x1FFFFFFF")
    interval = option(options, "heartbeat_interval_s", float, 0.5)
    timeout = option(options, "heartbeat_timeout_s", float, 2.0)
    if interval <= 0:
        raise OptionError("heartbeat_interval_s", "must be > 0")
    if timeout <= interval:
        raise OptionError("heartbeat_timeout_s", "must be longer than heartbeat_interval_s")
    confirm = option(options, "power_confirm_timeout_s", float, 2.0)
    if confirm <= 0:
        raise OptionError("power_confirm_timeout_s", "must be > 0")
    max_size = option(options, "isotp_max_size", int, 65536)
    if not 8 <= max_size <= 0xFFFFFFFF:
        raise OptionError("isotp_max_size", "must be between 8 and 4294967295")
    stmin = option(options, "isotp_stmin_ms", int, 0)
    if not 0 <= stmin <= 127:
        raise OptionError("isotp_stmin_ms", "must be between 0 and 127")
    blocksize = option(options, "isotp_blocksize", int, 0)
    if not 0 <= blocksize <= 255:
        raise OptionError("isotp_blocksize", "must be between 0 and 255")
    link = CanLink(
        interface, channel, base_id, bitrate=bitrate,
        isotp_params={"max_frame_size": max_size, "stmin": stmin, "blocksize": blocksize},
    )
    board = BoardSupport(
        link, evse_id, clock,
        heartbeat_interval_s=interval, heartbeat_timeout_s=timeout,
        power_switching=option(options, "power_switching", bool, False),
        power_confirm_timeout_s=confirm,
    )
    return board.ev_bridge


class CanLink:
    """The board-support messages as CAN frames (see the DBC's comments)."""

    def __init__(
        self,
        interface: str,
        channel: str | int,
        base_id: int,
        *,
        bitrate: int | None = None,
        isotp_params: Mapping[str, int] | None = None,
    ) -> None:
        self.interface = interface
        self.channel = channel
        self.base_id = base_id
        self.bitrate = bitrate
        self.extended = base_id + 0x0F > 0x7FF
        self.port = f"{interface} {channel}"
        self.address = f"base id 0x{base_id:03X}"
        self.description = f"{self.port} ({self.address})"
        self.bad_frames = 0
        self._isotp_params = {
            "max_frame_size": 65536, "stmin": 0, "blocksize": 0, "tx_padding": 0xCC,
            **(isotp_params or {}),
        }
        self._db = load_dbc()
        self._by_offset = {m.frame_id - DBC_BASE: m for m in self._db.messages}
        self._bus: can.BusABC | None = None
        self._notifier: can.Notifier | None = None
        self._stack: isotp.NotifierBasedCanStack | None = None
        self._reader: threading.Thread | None = None
        self._receive: Callable[[ModuleMessage], None] | None = None
        self._closing = False

    # -- open / close -----------------------------------------------------------------
    async def open(self, receive: Callable[[ModuleMessage], None]) -> None:
        kwargs: dict[str, Any] = {"interface": self.interface, "channel": self.channel}
        if self.bitrate is not None:
            kwargs["bitrate"] = self.bitrate
        try:
            self._bus = can.Bus(**kwargs)
        except (can.CanError, OSError, ValueError, ImportError, NotImplementedError) as err:
            raise DeviceError(f"{self.port}: cannot open the CAN interface: {err}") from None
        self._receive = receive
        self._closing = False
        try:
            self._start_receiving(self._bus)
        except BaseException:
            await self.close()
            raise

    def _start_receiving(self, bus: can.BusABC) -> None:
        self._notifier = can.Notifier(
            bus, [self._on_frame], timeout=0.05, loop=asyncio.get_running_loop()
        )
        modes = isotp.AddressingMode
        mode = modes.Normal_29bits if self.extended else modes.Normal_11bits
        address = isotp.Address(
            mode, rxid=self.base_id + ISOTP_FROM_MODULE, txid=self.base_id + ISOTP_TO_MODULE
        )
        self._stack = isotp.NotifierBasedCanStack(
            bus, self._notifier, address=address, params=dict(self._isotp_params),
            error_handler=self._isotp_error,
        )
        self._stack.start()
        # The stack hands over whole payloads through a blocking queue: one thread
        # waits on it and passes each to the event loop.
        self._reader = threading.Thread(
            target=self._read_isotp, args=(self._stack, asyncio.get_running_loop()),
            name=f"ev-bridge-isotp {self.description}", daemon=True,
        )
        self._reader.start()

    async def close(self) -> None:
        self._closing = True
        if self._reader is not None:
            await asyncio.to_thread(self._reader.join, 1.0)
            self._reader = None
        if self._stack is not None:
            await asyncio.to_thread(self._stack.stop)
            self._stack = None
        if self._notifier is not None:
            await asyncio.to_thread(self._notifier.stop, 1.0)  # joins its thread
            self._notifier = None
        if self._bus is not None:
            self._bus.shutdown()
            self._bus = None
        self._receive = None

    # -- to the module ------------------------------------------------------------------
    def send_command(self, command: PilotCommand) -> None:
        self._send("PilotCommand", {
            "Enable": int(command.enable),
            "AllowPowerOn": int(command.allow_power_on),
            "ForceStateF": int(command.state_f),
            "ForceX1": int(command.x1),
            "PwmDuty": command.duty_percent,
            "MaxCurrent": command.max_current_a,
        })

    def send_heartbeat(self, counter: int) -> None:
        self._send(
            "ControllerHeartbeat", {"Counter": counter, "ProtocolVersion": PROTOCOL_VERSION}
        )

    async def send_data(self, data: Iso15118Data, timeout: float = 10.0) -> None:
        """Send one long payload and wait until its last frame is out."""
        stack = self._stack
        if stack is None:
            raise DeviceError(f"{self.port}: the CAN interface is not open")
        stack.send(bytes([data.kind]) + data.data)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while stack.transmitting():
            if loop.time() > deadline:
                stack.stop_sending()
                raise DeviceError(f"{self.description}: ISO-TP transfer timed out")
            await asyncio.sleep(0.005)

    def _send(self, name: str, signals: Mapping[str, float | int]) -> None:
        bus = self._bus
        if bus is None:
            return
        message = self._db.get_message_by_name(name)
        frame = can.Message(
            arbitration_id=message.frame_id - DBC_BASE + self.base_id,
            is_extended_id=self.extended,
            data=message.encode(dict(signals)),
        )
        # Called on the event loop: never wait for room. A full transmit queue (the
        # module gone, the bus saturated) raises CanError, a failed send like any other.
        try:
            bus.send(frame, timeout=0)
        except can.CanError as err:
            raise DeviceError(f"{self.description}: cannot send: {err}") from None

    # -- from the module ----------------------------------------------------------------
    def _on_frame(self, frame: can.Message) -> None:
        """Called on the event loop's thread by the Notifier."""
        if frame.is_error_frame or frame.is_remote_frame or frame.is_extended_id != self.extended:
            return
        message = self._by_offset.get(frame.arbitration_id - self.base_id)
        if message is None or "EvModule" not in message.senders or not message.signals:
            return  # not ours, our own kind of frame, or ISO-TP (the stack listens itself)
        try:
            values = message.decode(bytes(frame.data), decode_choices=False)
        except (cantools.database.DecodeError, ValueError) as err:
            self.bad_frames += 1
            log.debug("ev_bridge: bad %s frame on %s: %s", message.name, self.description, err)
            return
        decoded = self._translate(message.name, values)
        if decoded is not None and self._receive is not None:
            self._receive(decoded)

    @staticmethod
    def _translate(name: str, v: Mapping[str, Any]) -> ModuleMessage | None:
        match name:
            case "PilotStatus":
                raw_state = int(v["PilotState"])
                ampacity = int(v["ProximityAmpacity"])
                errors = {flag for sig, flag in ERROR_SIGNALS.items() if v[sig]}
                if ampacity == 255:
                    errors.add("proximity_invalid")
                return PilotStatus(
                    state=PILOT_STATES[raw_state] if raw_state < len(PILOT_STATES) else None,
                    duty_percent=round(float(v["PwmDuty"]), 1),
                    proximity_a=float(ampacity) if 0 < ampacity < 255 else None,
                    power_on=bool(v["PowerOn"]),
                    errors=frozenset(errors),
                )
            case "EvStatus":
                return EvStatus(
                    max_current_a=_unless(v["EvMaxCurrent"], 6553.5, 0.1),
                    soc_percent=_unless(v["EvSoc"], 255, 1),
                    hlc_active=bool(v["HlcActive"]),
                    error_code=_EV_ERRORS.get(int(v["EvErrorCode"]), "NoData"),
                    energy_request_wh=_unless(v["EvEnergyRequest"], 655350, 10),
                    battery_wh=_unless(v["EvBatteryCapacity"], 255000, 1000),
                )
            case "EvccId":
                raw = int(v["EvccId"])
                return EvIdentity(raw.to_bytes(6, "little").hex().upper() if raw else None)
            case "ModuleHeartbeat":
                return Heartbeat(int(v["Counter"]), int(v["ProtocolVersion"]))
            case "Telemetry":
                return Telemetry({k: float(x) for k, x in v.items()})
        return None

    def _read_isotp(
        self, stack: isotp.NotifierBasedCanStack, loop: asyncio.AbstractEventLoop
    ) -> None:
        while not self._closing:
            payload = stack.recv(block=True, timeout=0.05)
            if payload:
                loop.call_soon_threadsafe(self._deliver, bytes(payload))

    def _deliver(self, payload: bytes) -> None:
        """One ISO-TP payload, on the event loop's thread."""
        try:
            kind = DataKind(payload[0])
        except ValueError:
            log.warning("ev_bridge: unknown ISO-TP payload kind 0x%02X on %s", payload[0],
                        self.description)
            return
        if self._receive is not None:
            self._receive(Iso15118Data(kind, payload[1:]))

    def _isotp_error(self, error: Exception) -> None:
        log.warning("ev_bridge: ISO-TP on %s: %s", self.description, error)


_EV_ERRORS = {
    0: "NO_ERROR",
    1: "FAILED_RESSTemperatureInhibit",
    2: "FAILED_EVShiftPosition",
    3: "FAILED_ChargerConnectorLockFault",
    4: "FAILED_EVRESSMalfunction",
    5: "FAILED_ChargingCurrentdifferential",
    6: "FAILED_ChargingVoltageOutOfRange",
    7: "FAILED_ChargingSystemIncompatibility",
    8: "NoData",
}


def _unless(value: float, not_available: float, scale: float) -> float | None:
    """The value, or None when it is the signal's "not available" code."""
    if abs(value - not_available) < scale / 2:
        return None
    return float(value)
