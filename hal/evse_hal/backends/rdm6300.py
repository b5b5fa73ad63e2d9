"""RDM6300-style 125 kHz readers (EM4100 cards and fobs). Driver name "rdm6300".

Wire protocol: the reader only talks; 9600 baud 8N1. Every read of a card is one
14-byte frame, repeated while the card stays in the field:
  02                STX
  10 ASCII hex      2 version (customer) + 8 tag digits, e.g. "0A00123456"
  2 ASCII hex       checksum: XOR of the five bytes the 10 digits spell
  03                ETX
A frame with a wrong checksum, a missing ETX or non-hex characters is skipped, and so
is any garbage between frames; the search restarts at the next STX.

The number becomes an IdToken of type `id_token_type` (default "Local"):
  number_format = "hex10"  all five bytes in upper-case hex: "0A00123456" (default)
                  "hex8"    the four tag bytes in upper-case hex: "00123456"
                  "dec10"   the four tag bytes as the 10-digit decimal number printed on
                            most EM4100 cards: "0001193046"

Options ([hal.rfid] with driver = "rdm6300"):
  port               required; any pyserial URL
  baudrate           int, default 9600
  id_token_type      default "Local"; an OCPP IdTokenEnumType value
  number_format      "hex10" (default), "hex8" or "dec10"
  debounce_s         float, default 2.0; a card held on the reader counts once
  reopen_interval_s  float, default 2.0; retry interval after the port is lost
`probe()` opens the port and listens briefly (the reader says nothing without a card).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import reduce
from operator import xor
from typing import TYPE_CHECKING, Any

from ..clock import Clock
from . import OptionError, option, reject_unknown
from .rfid_serial import (
    COMMON_OPTIONS,
    ReaderSettings,
    SerialReader,
    id_token_type,
    listen_briefly,
    read_some,
    serial_settings,
)

if TYPE_CHECKING:
    import serial

STX, ETX = 0x02, 0x03
FRAME_LEN = 14
HEX_DIGITS = frozenset(b"0123456789ABCDEFabcdef")
NUMBER_FORMATS = ("hex10", "hex8", "dec10")
OPTIONS = COMMON_OPTIONS | {"id_token_type", "number_format"}


class FrameParser:
    """Bytes in, card numbers (5 bytes: version + tag) out."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        buf = self._buf
        buf += data
        out: list[bytes] = []
        while True:
            start = buf.find(STX)
            if start < 0:
                buf.clear()
                return out
            del buf[:start]
            if len(buf) < FRAME_LEN:
                return out  # partial: wait for the rest
            number = _decode(bytes(buf[:FRAME_LEN]))
            if number is None:
                del buf[:1]  # not a frame: look for the next STX
                continue
            out.append(number)
            del buf[:FRAME_LEN]


def _decode(frame: bytes) -> bytes | None:
    digits = frame[1:13]
    if frame[13] != ETX or not set(digits) <= HEX_DIGITS:
        return None
    raw = bytes.fromhex(digits.decode("ascii"))
    number, checksum = raw[:5], raw[5]
    return number if reduce(xor, number) == checksum else None


def format_number(number: bytes, number_format: str) -> str:
    if number_format == "hex8":
        return number[1:].hex().upper()
    if number_format == "dec10":
        return f"{int.from_bytes(number[1:], 'big'):010d}"
    return number.hex().upper()


class Rdm6300Reader(SerialReader):
    model = "RDM6300"

    def __init__(
        self, settings: ReaderSettings, clock: Clock, token_type: str, number_format: str
    ) -> None:
        super().__init__(settings, clock)
        self.token_type = token_type
        self.number_format = number_format

    def _serve(self, port: serial.SerialBase) -> None:
        parser = FrameParser()
        self._ready()
        while not self.stopping:
            for number in parser.feed(read_some(port)):
                self._card(format_number(number, self.number_format), self.token_type)

    def _probe(self, port: serial.SerialBase) -> str:
        seen = listen_briefly(port, FrameParser().feed)
        line = super()._probe(port)
        if seen is not None:
            line += f", card {format_number(seen, self.number_format)} in the field"
        return line


def create(options: Mapping[str, Any], evse_id: int, clock: Clock) -> Rdm6300Reader:
    reject_unknown(options, OPTIONS)
    number_format = option(options, "number_format", str, "hex10")
    if number_format not in NUMBER_FORMATS:
        raise OptionError("number_format", f"expected one of {', '.join(NUMBER_FORMATS)}")
    return Rdm6300Reader(
        serial_settings(options, 9600), clock, id_token_type(options), number_format
    )
