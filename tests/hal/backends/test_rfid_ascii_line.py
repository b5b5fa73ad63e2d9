"""Generic ascii-line reader: lines written to the far end of a pty pair."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from evse_hal.backends import OptionError, ascii_line
from evse_hal.clock import FakeClock
from evse_hal.interfaces import DeviceFault, TokenPresented
from rfid_support import Events, PtyReader, wait_until


def parse(chunks: list[bytes], pattern: str = ascii_line.DEFAULT_PATTERN,
          ending: str = "auto") -> list[str]:
    parser = ascii_line.LineParser(re.compile(pattern), ending)
    return [uid for chunk in chunks for uid in parser.feed(chunk)]


def test_lines_end_at_cr_lf_or_both_and_may_arrive_in_pieces() -> None:
    stream = b"04a1b2c3\r\nDEADBEEF\n  12345678  \rnot a card\r\n\xff\xfe\n"
    assert parse([stream]) == ["04a1b2c3", "DEADBEEF", "12345678"]
    assert parse([stream[i : i + 1] for i in range(len(stream))]) == [
        "04a1b2c3", "DEADBEEF", "12345678"]


def test_named_group_uid_or_group_1_and_an_exact_line_ending() -> None:
    assert parse([b"ID=0012345678;RSSI=40\x03junk\x03ID=99\x03"], r"ID=(?P<uid>\d+);",
                 "\x03") == ["0012345678"]
    assert parse([b"[card] 7f00aa\r\n"], r"^\[card\] ([0-9a-f]+)$") == ["7f00aa"]


def test_an_overlong_line_without_ending_is_noise() -> None:
    assert parse([b"A" * 300, b"BBBB\r\n", b"CAFE\r\n"]) == ["CAFE"]


def test_options() -> None:
    clock = FakeClock()
    reader = ascii_line.create({"port": "socket://127.0.0.1:1"}, 0, clock)
    assert (reader.settings.baudrate, reader.token_type, reader.upper_case) == (9600, "Local", True)
    with pytest.raises(OptionError, match="pattern: not a regular expression"):
        ascii_line.create({"port": "/dev/ttyACM0", "pattern": "([0-9"}, 0, clock)
    with pytest.raises(OptionError, match="pattern: needs a group"):
        ascii_line.create({"port": "/dev/ttyACM0", "pattern": "[0-9]+"}, 0, clock)
    with pytest.raises(OptionError, match="line_ending: must not be empty"):
        ascii_line.create({"port": "/dev/ttyACM0", "line_ending": ""}, 0, clock)
    with pytest.raises(OptionError, match="upper_case: expected bool"):
        ascii_line.create({"port": "/dev/ttyACM0", "upper_case": 1}, 0, clock)
    with pytest.raises(OptionError, match="number_format: unknown option"):
        ascii_line.create({"port": "/dev/ttyACM0", "number_format": "hex10"}, 0, clock)


@pytest.fixture
def line(tmp_path: Path) -> Iterator[PtyReader]:
    pty = PtyReader(tmp_path / "ttyACM")
    yield pty
    pty.close()


@pytest.fixture
async def readers() -> AsyncIterator[list[ascii_line.AsciiLineReader]]:
    started: list[ascii_line.AsciiLineReader] = []
    yield started
    for r in started:
        await r.stop()


async def start(line: PtyReader | str, clock: FakeClock, readers: list,
                **options: object) -> Events:
    port = line if isinstance(line, str) else str(line.path)
    reader = ascii_line.create({"port": port, "reopen_interval_s": 0.05, **options}, 0, clock)
    events = Events()
    await reader.start(events)
    readers.append(reader)
    return events


async def test_iso14443_uids_are_upper_case_hex(line: PtyReader, readers: list) -> None:
    events = await start(line, FakeClock(), readers, id_token_type="ISO14443")
    line.write(b"garbage line\r\n04a1b2")
    line.write(b"c3d4e5f6\r\n")
    await wait_until(lambda: len(events.tokens) == 1)
    assert events.tokens == [TokenPresented("04A1B2C3D4E5F6", "ISO14443")]


async def test_tokens_longer_than_ocpp_allows_are_logged_not_sent(
    line: PtyReader, readers: list, caplog: pytest.LogCaptureFixture,
) -> None:
    """IdTokenType.idToken is at most 36 characters (2.0.1); 1.6's 20 is the 1.6
    adapter's to refuse."""
    events = await start(line, FakeClock(), readers, upper_case=False)
    with caplog.at_level(logging.WARNING, logger="evse_hal.rfid"):
        line.write(b"a" * 37 + b"\r\n" + b"b" * 36 + b"\r\n")
        await wait_until(lambda: len(events.tokens) == 1)
    assert events.tokens == [TokenPresented("b" * 36, "Local")]
    assert "at most 36" in caplog.text and "a" * 37 in caplog.text


async def test_a_held_card_is_one_token_until_gone_for_debounce_s(
    line: PtyReader, readers: list,
) -> None:
    clock = FakeClock()
    events = await start(line, clock, readers, debounce_s=3)
    line.write(b"1234\r\n" * 4 + b"5678\r\n")
    await wait_until(lambda: len(events.tokens) == 2)
    clock.advance(3)
    line.write(b"1234\r\n")
    await wait_until(lambda: len(events.tokens) == 3)
    assert [t.id_token for t in events.tokens] == ["1234", "5678", "1234"]


async def test_reader_unplugged_is_a_device_fault_until_plugged_back(
    line: PtyReader, readers: list,
) -> None:
    events = await start(line, FakeClock(), readers)
    line.unplug()
    await wait_until(lambda: len(events.faults) == 1)
    line.plug()
    await wait_until(lambda: len(events.faults) == 2)
    assert events.faults == [DeviceFault("rfid", 0, "ReaderGone", True),
                             DeviceFault("rfid", 0, "ReaderGone", False)]
    line.write(b"CAFE\n")
    await wait_until(lambda: len(events.tokens) == 1)


async def test_a_socket_url_reader_whose_server_goes_away_and_returns(readers: list) -> None:
    """Any pyserial URL: a reader behind a serial-to-TCP bridge (socket://)."""
    connections: list[asyncio.StreamWriter] = []

    async def accept(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    events = await start(f"socket://127.0.0.1:{port}", FakeClock(), readers)
    await wait_until(lambda: len(connections) == 1)
    connections[0].write(b"CAFE\r\n")
    await wait_until(lambda: len(events.tokens) == 1)
    server.close()
    connections[0].close()
    await server.wait_closed()
    await wait_until(lambda: len(events.faults) == 1)
    assert events.faults == [DeviceFault("rfid", 0, "ReaderGone", True)]
    server = await asyncio.start_server(accept, "127.0.0.1", port)
    try:
        await wait_until(lambda: len(events.faults) == 2)
        assert events.faults[1] == DeviceFault("rfid", 0, "ReaderGone", False)
        await wait_until(lambda: len(connections) == 2)  # accepted on our side too
        connections[1].write(b"BEEF\r\n")
        await wait_until(lambda: len(events.tokens) == 2)
        assert [t.id_token for t in events.tokens] == ["CAFE", "BEEF"]
    finally:
        for writer in connections:
            writer.close()
        server.close()
