"""Generic line-oriented readers (industrial USB-CDC / RS-232 readers that print each
card as a line of text). Driver name "ascii-line".

Wire protocol: the reader only talks. Bytes are cut into lines at `line_ending`; each
line is decoded as ASCII (other bytes become U+FFFD and will not match a sensible
pattern) and searched with the regular expression `pattern`. The named group `uid`,
or else group 1, is the card number. Lines that do not match are skipped, as is a
"line" longer than 256 bytes without an ending (noise on the wire).

The number becomes an IdToken of type `id_token_type` (default "Local"); with
`upper_case` (default true) it is upper-cased, as OCPP recommends for hex UIDs.

Options ([hal.rfid] with driver = "ascii-line"):
  port               required; any pyserial URL
  baudrate           int, default 9600
  pattern            regular expression, default ^\\s*(?P<uid>[0-9A-Fa-f]+)\\s*$
  line_ending        "auto" (default: CR or LF ends a line) or the exact string, e.g. "\\r\\n"
  id_token_type      default "Local"; an OCPP IdTokenEnumType value (e.g. "ISO14443")
  upper_case         bool, default true
  debounce_s         float, default 2.0; a card held on the reader counts once
  reopen_interval_s  float, default 2.0; retry interval after the port is lost
`probe()` opens the port and listens briefly (the reader says nothing without a card).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
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

log = logging.getLogger("evse_hal.rfid")

DEFAULT_PATTERN = r"^\s*(?P<uid>[0-9A-Fa-f]+)\s*$"
MAX_LINE = 256
OPTIONS = COMMON_OPTIONS | {"pattern", "line_ending", "id_token_type", "upper_case"}


class LineParser:
    """Bytes in, matched card numbers out."""

    def __init__(self, pattern: re.Pattern[str], line_ending: str = "auto") -> None:
        self.pattern = pattern
        self._ending = None if line_ending == "auto" else line_ending.encode("latin-1")
        self._buf = bytearray()
        self._overlong = False

    def feed(self, data: bytes) -> list[str]:
        self._buf += data
        out: list[str] = []
        for line in self._lines():
            uid = self.match(line.decode("ascii", errors="replace"))
            if uid is not None:
                out.append(uid)
        if len(self._buf) > MAX_LINE:
            log.debug("RFID ascii-line: %d bytes without a line ending, dropped", len(self._buf))
            self._buf.clear()
            self._overlong = True  # the rest of this line is noise too
        return out

    def match(self, line: str) -> str | None:
        found = self.pattern.search(line)
        if found is None:
            return None
        uid = found.group("uid") if "uid" in self.pattern.groupindex else found.group(1)
        return uid.strip() if uid else None

    def _lines(self) -> list[bytes]:
        lines: list[bytes] = []
        while True:
            if self._ending is None:
                # CR and LF each end a line; the empty line between CR and LF matches
                # no uid, so CR LF needs no look-ahead (which would delay a lone CR).
                cut = re.search(rb"[\r\n]", self._buf)
                if cut is None:
                    return lines
                end, after = cut.start(), cut.end()
            else:
                end = self._buf.find(self._ending)
                if end < 0:
                    return lines
                after = end + len(self._ending)
            line = bytes(self._buf[:end])
            del self._buf[:after]
            if self._overlong:
                self._overlong = False
            else:
                lines.append(line)


def compile_pattern(text: str) -> re.Pattern[str]:
    try:
        pattern = re.compile(text)
    except re.error as err:
        raise OptionError("pattern", f"not a regular expression: {err}") from None
    if "uid" not in pattern.groupindex and pattern.groups < 1:
        raise OptionError("pattern", "needs a group named uid, or a group 1")
    return pattern


class AsciiLineReader(SerialReader):
    model = "ascii-line reader"

    def __init__(
        self, settings: ReaderSettings, clock: Clock, pattern: re.Pattern[str],
        line_ending: str, token_type: str, upper_case: bool,
    ) -> None:
        super().__init__(settings, clock)
        self.pattern = pattern
        self.line_ending = line_ending
        self.token_type = token_type
        self.upper_case = upper_case

    def _serve(self, port: serial.SerialBase) -> None:
        parser = LineParser(self.pattern, self.line_ending)
        self._ready()
        while not self.stopping:
            for uid in parser.feed(read_some(port)):
                self._card(uid.upper() if self.upper_case else uid, self.token_type)

    def _probe(self, port: serial.SerialBase) -> str:
        seen = listen_briefly(port, LineParser(self.pattern, self.line_ending).feed)
        line = super()._probe(port)
        return line + (f", card {seen} in the field" if seen is not None else "")


def create(options: Mapping[str, Any], evse_id: int, clock: Clock) -> AsciiLineReader:
    reject_unknown(options, OPTIONS)
    line_ending = option(options, "line_ending", str, "auto")
    if not line_ending:
        raise OptionError("line_ending", "must not be empty")
    try:
        line_ending.encode("latin-1")
    except UnicodeEncodeError:
        raise OptionError("line_ending", "must be single-byte characters") from None
    return AsciiLineReader(
        serial_settings(options, 9600),
        clock,
        compile_pattern(option(options, "pattern", str, DEFAULT_PATTERN)),
        line_ending,
        id_token_type(options),
        option(options, "upper_case", bool, True),
    )
