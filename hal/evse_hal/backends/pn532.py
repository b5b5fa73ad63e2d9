"""NXP PN532 NFC reader in HSU (high-speed UART) mode: ISO 14443A cards (charge cards,
MIFARE, DESFire). Driver name "pn532".

Wire protocol (PN532 User Manual UM0701-02, section 6.2):
  information frame  00 00 FF LEN LCS TFI PD0..PDn DCS 00
                     LEN = bytes in TFI+PD, LEN + LCS = 0 (mod 256),
                     TFI + PD0 + ... + PDn + DCS = 0 (mod 256);
                     TFI D4 host -> PN532, D5 PN532 -> host
  extended frame     00 00 FF FF FF LENM LENL LCS TFI PD... DCS 00 (understood on input)
  ACK                00 00 FF 00 FF 00    the PN532 took the command
  NACK               00 00 FF FF 00 00    "send your last frame again"
  error frame        00 00 FF 01 FF 7F 81 00  (the PN532 could not parse our frame)
Every command is answered by an ACK, then a response frame (code = command + 1). A
missing ACK, a NACK or an error frame makes the driver send the command again; a
response with a bad checksum is answered with a NACK (the PN532 repeats it).
Garbage and partial frames between frames are skipped.

Session: wake-up preamble (55 55 00 ... 00, the PN532 sleeps in HSU until it sees it),
SAMConfiguration (normal mode), GetFirmwareVersion (logged), RFConfiguration
MaxRetries (so InListPassiveTarget returns at once without a card), then
InListPassiveTarget (1 target, 106 kbps type A) every `poll_interval_s`. The UID
(NFCID1: 4, 7 or 10 bytes) becomes an ISO14443 IdToken in upper-case hex, byte 0 first
as OCPP recommends (2.0.1 part 2, C "ID Tokens" note; 1.6 section 3.9): "04A1B2C3D4E5F6".

Options ([hal.rfid] with driver = "pn532"):
  port               required; any pyserial URL (/dev/ttyAMA0, /dev/ttyUSB0, socket://...)
  baudrate           int, default 115200 (the PN532's HSU speed)
  poll_interval_s    float, default 0.1; pause between two InListPassiveTarget polls
  response_timeout_s float, default 1.0; how long to wait for a response frame
  debounce_s         float, default 2.0; a card held on the reader counts once
  reopen_interval_s  float, default 2.0; retry interval after the reader is lost
`probe()` answers "PN532 firmware 1.6 on PORT".
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..clock import Clock
from . import reject_unknown
from .rfid_serial import (
    COMMON_OPTIONS,
    ReaderSettings,
    ReaderSilent,
    SerialReader,
    positive,
    read_some,
    serial_settings,
)

if TYPE_CHECKING:
    import serial

log = logging.getLogger("evse_hal.rfid")

HOST_TFI = 0xD4
PN532_TFI = 0xD5
ERROR_TFI = 0x7F
ACK_FRAME = bytes.fromhex("0000ff00ff00")
NACK_FRAME = bytes.fromhex("0000ffff0000")
WAKEUP = b"\x55\x55" + bytes(14)  # as libnfc does: 0x55 wakes the UART, zeros give it time

GET_FIRMWARE_VERSION = 0x02
SAM_CONFIGURATION = 0x14
RF_CONFIGURATION = 0x32
IN_LIST_PASSIVE_TARGET = 0x4A

SAM_NORMAL_MODE = bytes([0x01, 0x14, 0x01])  # normal mode, timeout 1 s, use IRQ
# RFConfiguration item 5 (MaxRetries): MxRtyATR, MxRtyPSL, MxRtyPassiveActivation.
# The default passive activation retry 0xFF waits for a card forever.
RF_MAX_RETRIES = bytes([0x05, 0xFF, 0x01, 0x01])
POLL_ONE_TYPE_A = bytes([0x01, 0x00])  # MaxTg 1, BrTy 0: 106 kbps type A
UID_LENGTHS = (4, 7, 10)  # ISO 14443-3 single, double, triple size UIDs

ACK_TIMEOUT_S = 0.2
ATTEMPTS = 3
MAX_NACKS = 3
MAX_FRAME_DATA = 265  # TFI + PD of the longest PN532 frame

OPTIONS = COMMON_OPTIONS | {"poll_interval_s", "response_timeout_s"}


# --- frames (sans-I/O) --------------------------------------------------------------
@dataclass(frozen=True)
class Ack:
    pass


@dataclass(frozen=True)
class Nack:
    pass


@dataclass(frozen=True)
class Frame:
    """An information frame that passed LCS and DCS: TFI and packet data."""

    tfi: int
    data: bytes


@dataclass(frozen=True)
class BadFrame:
    """A frame whose length checksum was right but whose data checksum was not."""


Received = Ack | Nack | Frame | BadFrame


def encode(command: int, params: bytes = b"") -> bytes:
    """The host's normal information frame for `command` with `params`."""
    body = bytes([HOST_TFI, command]) + params
    if len(body) > 255:
        raise ValueError("PN532 command too long for a normal frame")
    n = len(body)
    return b"\x00\x00\xff" + bytes([n, -n & 0xFF]) + body + bytes([-sum(body) & 0xFF, 0])


class FrameParser:
    """Bytes in, frames out. Anything that is not a well-formed frame is skipped byte
    by byte until the next start code (00 FF)."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[Received]:
        buf = self._buf
        buf += data
        out: list[Received] = []
        while True:
            i = buf.find(b"\x00\xff")
            if i < 0:
                # keep a trailing 00: it may be the first half of a start code
                del buf[: len(buf) - 1 if buf.endswith(b"\x00") else len(buf)]
                return out
            del buf[:i]
            if len(buf) < 4:
                return out
            a, b = buf[2], buf[3]
            if (a, b) == (0x00, 0xFF):
                out.append(Ack())
                del buf[:4]
                continue
            if (a, b) == (0xFF, 0x00):
                out.append(Nack())
                del buf[:4]
                continue
            if (a, b) == (0xFF, 0xFF):  # extended frame
                if len(buf) < 7:
                    return out
                n, header, lcs_ok = (buf[4] << 8) | buf[5], 7, (buf[4] + buf[5] + buf[6]) & 0xFF
            else:
                n, header, lcs_ok = a, 4, (a + b) & 0xFF
            if lcs_ok != 0 or n == 0 or n > MAX_FRAME_DATA:
                del buf[:2]  # not a frame after all: resynchronise after this start code
                continue
            if len(buf) < header + n + 1:
                return out  # partial: wait for the rest
            body = bytes(buf[header : header + n])
            if (sum(body) + buf[header + n]) & 0xFF:
                out.append(BadFrame())
                del buf[:2]  # a real frame may start inside what we took for this one
                continue
            out.append(Frame(body[0], body[1:]))
            del buf[: header + n + 1]


def target_uid(response: bytes) -> bytes | None:
    """The NFCID1 of the first target in an InListPassiveTarget response (after the
    response code), None when no card is in the field. Layout for 106 kbps type A:
    NbTg, Tg, SENS_RES (2), SEL_RES, NFCIDLength, NFCID1..., [ATS]."""
    if not response or response[0] == 0:
        return None
    if len(response) < 6 or len(response) < 6 + response[5]:
        raise ValueError(f"short InListPassiveTarget response {response.hex()}")
    return response[6 : 6 + response[5]]


# --- the driver ---------------------------------------------------------------------
class Pn532Reader(SerialReader):
    model = "PN532"

    def __init__(
        self, settings: ReaderSettings, clock: Clock, poll_interval_s: float,
        response_timeout_s: float,
    ) -> None:
        super().__init__(settings, clock)
        self.poll_interval_s = poll_interval_s
        self.response_timeout_s = response_timeout_s
        self._parser = FrameParser()
        self._received: deque[Received] = deque()

    def _serve(self, port: serial.SerialBase) -> None:
        version = self._handshake(port)
        log.info("RFID PN532 on %s: firmware %s", self.port, version)
        self._exchange(port, RF_CONFIGURATION, RF_MAX_RETRIES)
        self._ready()
        while not self.stopping:
            response = self._exchange(port, IN_LIST_PASSIVE_TARGET, POLL_ONE_TYPE_A)
            try:
                uid = target_uid(response)
            except ValueError as err:
                log.warning("RFID PN532 on %s: %s", self.port, err)
                uid = None
            if uid is not None:
                if len(uid) in UID_LENGTHS:
                    self._card(uid.hex().upper(), "ISO14443")
                else:
                    log.warning("RFID PN532: ignored UID %s of %d bytes", uid.hex(), len(uid))
            self.wait(self.poll_interval_s)

    def _probe(self, port: serial.SerialBase) -> str:
        return f"PN532 firmware {self._handshake(port)} on {self.port}"

    def _handshake(self, port: serial.SerialBase) -> str:
        """Wake the PN532 up, leave its low-power state; its firmware version."""
        port.reset_input_buffer()
        self._parser = FrameParser()
        self._exchange(port, SAM_CONFIGURATION, SAM_NORMAL_MODE, wake=True)
        fw = self._exchange(port, GET_FIRMWARE_VERSION)
        if len(fw) < 4:
            raise ReaderSilent(f"odd GetFirmwareVersion answer {fw.hex()}")
        if fw[0] != 0x32:
            log.warning("RFID on %s: IC 0x%02X answers, not a PN532 (0x32)", self.port, fw[0])
        return f"{fw[1]}.{fw[2]}"

    def _exchange(
        self, port: serial.SerialBase, command: int, params: bytes = b"", wake: bool = False,
    ) -> bytes:
        """Send a command and return its response data (after the response code)."""
        frame = (WAKEUP if wake else b"") + encode(command, params)
        for _ in range(ATTEMPTS):
            self._received.clear()
            port.write(frame)
            if not self._acknowledged(port):
                continue
            response = self._response(port, command + 1)
            if response is not None:
                return response
            port.write(ACK_FRAME)  # abort whatever the PN532 may still be doing
        raise ReaderSilent(
            f"no answer from the PN532 at {self.settings.baudrate} baud "
            f"(command 0x{command:02X})"
        )

    def _acknowledged(self, port: serial.SerialBase) -> bool:
        deadline = time.monotonic() + ACK_TIMEOUT_S
        while (item := self._next(port, deadline)) is not None:
            if isinstance(item, Ack):
                return True
            if isinstance(item, Nack):
                return False  # the PN532 asks for the command again
            log.debug("RFID PN532: %s while waiting for ACK, skipped", item)
        return False

    def _response(self, port: serial.SerialBase, code: int) -> bytes | None:
        nacks = 0
        deadline = time.monotonic() + self.response_timeout_s
        while (item := self._next(port, deadline)) is not None:
            match item:
                case Frame(tfi=tfi, data=data) if tfi == PN532_TFI and data[:1] == bytes([code]):
                    return data[1:]
                case Frame(tfi=tfi) if tfi == ERROR_TFI:
                    log.debug("RFID PN532: error frame, sending the command again")
                    return None
                case BadFrame() if nacks < MAX_NACKS:
                    nacks += 1
                    port.write(NACK_FRAME)
                    deadline = time.monotonic() + self.response_timeout_s
                case _:
                    log.debug("RFID PN532: %s while waiting for 0x%02X, skipped", item, code)
        return None

    def _next(self, port: serial.SerialBase, deadline: float) -> Received | None:
        """The next frame received before `deadline`, or None."""
        while not self._received:
            if time.monotonic() >= deadline or self.stopping:
                return None
            data = read_some(port)
            if data:
                self._received.extend(self._parser.feed(data))
        return self._received.popleft()


def create(options: Mapping[str, Any], evse_id: int, clock: Clock) -> Pn532Reader:
    reject_unknown(options, OPTIONS)
    return Pn532Reader(
        serial_settings(options, 115200),
        clock,
        poll_interval_s=positive(options, "poll_interval_s", 0.1),
        response_timeout_s=positive(options, "response_timeout_s", 1.0),
    )
