"""Test helpers for the serial RFID readers: a pty pair reachable through a symlink
(so a test can unplug the "USB reader" and plug it back), an event collector, the
RDM6300's card frame, and a simulated PN532 in HSU mode that parses the host's frames
itself (LCS, DCS, postamble and TFI checked) and answers with real frames.
"""

from __future__ import annotations

import asyncio
import os
import select
import threading
import time
import tty
from collections import deque
from collections.abc import Callable
from functools import reduce
from operator import xor
from pathlib import Path

from evse_hal.interfaces import DeviceFault, HalEvent, TokenPresented


class PtyReader:
    """The reader's end of a serial line: the driver opens `path` (a symlink to the
    pty's slave side); the test reads and writes the master side."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.master = -1
        self.slave = -1
        self.plug()

    def plug(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)  # no echo before the driver configures the line
        os.set_blocking(self.master, False)
        self.path.unlink(missing_ok=True)
        self.path.symlink_to(os.ttyname(self.slave))

    def unplug(self) -> None:
        """The device disappears: its node goes away and the line dies."""
        self.path.unlink(missing_ok=True)
        for fd in (self.master, self.slave):
            if fd >= 0:
                os.close(fd)
        self.master = self.slave = -1

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(self.master, view) :]
            except BlockingIOError:
                time.sleep(0.001)

    def read(self, timeout: float) -> bytes:
        try:
            ready, _, _ = select.select([self.master], [], [], timeout)
            return os.read(self.master, 4096) if ready else b""
        except (OSError, ValueError):  # unplugged meanwhile
            return b""

    def close(self) -> None:
        self.unplug()


class Events:
    """What the reader emitted (emit runs on the event loop's thread)."""

    def __init__(self) -> None:
        self.items: list[HalEvent] = []

    def __call__(self, event: HalEvent) -> None:
        self.items.append(event)

    @property
    def tokens(self) -> list[TokenPresented]:
        return [e for e in self.items if isinstance(e, TokenPresented)]

    @property
    def faults(self) -> list[DeviceFault]:
        return [e for e in self.items if isinstance(e, DeviceFault)]


async def wait_until(condition: Callable[[], bool], timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.005)


def rdm6300_frame(number: bytes | str, checksum: int | None = None) -> bytes:
    """What an RDM6300 sends for a card (5 bytes, or 10 hex digits): STX, 10 ASCII hex
    digits, the XOR of the 5 bytes in 2 hex digits (or `checksum`, to send a bad one),
    ETX."""
    raw = bytes.fromhex(number) if isinstance(number, str) else number
    check = reduce(xor, raw) if checksum is None else checksum
    return b"\x02" + raw.hex().upper().encode() + b"%02X" % check + b"\x03"


# --- a simulated PN532 --------------------------------------------------------------
ACK = bytes.fromhex("0000ff00ff00")
NACK = bytes.fromhex("0000ffff0000")
ERROR_FRAME = bytes.fromhex("0000ff01ff7f8100")


def pn532_frame(body: bytes) -> bytes:
    """A normal information frame around TFI + PD (written independently of the
    driver's encoder so a shared mistake cannot hide)."""
    length = len(body)
    lcs = (0x100 - length) % 0x100
    dcs = (0x100 - sum(body) % 0x100) % 0x100
    return bytes([0x00, 0x00, 0xFF, length, lcs]) + body + bytes([dcs, 0x00])


class Pn532Sim(threading.Thread):
    """Answers the driver like a PN532 in HSU mode. `card` is the UID in the field.
    `misbehave` holds scripted troubles for the next InListPassiveTarget commands:
    "nack" (NACK instead of ACK), "silent" (no answer), "bad_dcs" (response with a wrong
    data checksum; the good one follows the host's NACK), "error" (error frame),
    "garbage" (noise and a broken frame before ACK and response, both sent in pieces).
    """

    def __init__(self, line: PtyReader) -> None:
        super().__init__(daemon=True)
        self.line = line
        self.card: bytes | None = None
        self.misbehave: deque[str] = deque()
        self.commands: list[int] = []
        self.raw = bytearray()
        self.host_acks = 0
        self.host_nacks = 0
        self.errors: list[str] = []
        self.polls = 0
        self._last_response = b""
        self._buf = bytearray()
        self._halt = threading.Event()

    def stop(self) -> None:
        self._halt.set()
        self.join(2)

    def run(self) -> None:
        while not self._halt.is_set():
            if self.line.master < 0:
                return
            data = self.line.read(0.01)
            if data:
                self.raw += data
                self._buf += data
                self._parse()

    def _parse(self) -> None:
        buf = self._buf
        while True:
            i = buf.find(b"\x00\x00\xff")
            if i < 0:
                del buf[: max(0, len(buf) - 2)]
                return
            if len(buf) < i + 5:
                return
            length, lcs = buf[i + 3], buf[i + 4]
            if (length, lcs) == (0x00, 0xFF):
                self.host_acks += 1
                del buf[: i + 6]
                continue
            if (length, lcs) == (0xFF, 0x00):
                self.host_nacks += 1
                self.line.write(self._last_response)
                del buf[: i + 6]
                continue
            if (length + lcs) % 0x100:
                self.errors.append(f"bad LCS in {bytes(buf[i:i + 5]).hex()}")
                del buf[: i + 3]
                continue
            end = i + 5 + length + 2
            if len(buf) < end:
                return
            body, dcs, post = bytes(buf[i + 5 : end - 2]), buf[end - 2], buf[end - 1]
            del buf[:end]
            if (sum(body) + dcs) % 0x100 or post != 0x00 or body[:1] != b"\xd4":
                self.errors.append(f"bad host frame {body.hex()} dcs {dcs:02x} post {post:02x}")
                self.line.write(ERROR_FRAME)
                continue
            self._command(body[1], body[2:])

    def _command(self, code: int, params: bytes) -> None:
        self.commands.append(code)
        trouble = self.misbehave.popleft() if code == 0x4A and self.misbehave else None
        if trouble == "nack":
            self.line.write(NACK)
            return
        if trouble == "silent":
            return
        response = bytes([0xD5, code + 1]) + self._answer(code, params)
        frame = pn532_frame(response)
        self._last_response = frame
        if trouble == "garbage":
            for piece in (b"\xff\x13\x00", b"\x00\xff\x07", ACK[:3], ACK[3:], b"\x00\x00\xff\x09"):
                self.line.write(piece)
                time.sleep(0.002)
            for piece in (frame[:4], frame[4:9], frame[9:]):
                self.line.write(piece)
                time.sleep(0.002)
            return
        self.line.write(ACK)
        if trouble == "bad_dcs":
            self.line.write(frame[:-2] + bytes([frame[-2] ^ 0x5A, 0x00]))
        elif trouble == "error":
            self.line.write(ERROR_FRAME)
        else:
            self.line.write(frame)

    def _answer(self, code: int, params: bytes) -> bytes:
        if code == 0x02:  # GetFirmwareVersion: IC PN532, firmware 1.6, ISO 14443A/B + 18092
            return bytes([0x32, 0x01, 0x06, 0x07])
        if code == 0x4A:
            self.polls += 1
            if params[:2] != b"\x01\x00":
                self.errors.append(f"InListPassiveTarget params {params.hex()}")
            uid = self.card
            if uid is None:
                return b"\x00"
            sens_res = {4: b"\x00\x04", 7: b"\x00\x44", 10: b"\x00\x42"}[len(uid)]
            return b"\x01\x01" + sens_res + b"\x08" + bytes([len(uid)]) + uid
        return b""  # SAMConfiguration, RFConfiguration: empty answers
