"""RDM6300 (125 kHz) driver: real frames written to the far end of a pty pair."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from evse_hal.backends import OptionError, rdm6300
from evse_hal.clock import FakeClock
from evse_hal.interfaces import DeviceError, DeviceFault, TokenPresented
from rfid_support import Events, PtyReader, rdm6300_frame, wait_until

FAST = {"reopen_interval_s": 0.05}


def test_frame_layout() -> None:
    # 1E ^ 00 ^ 9A ^ 8C ^ 2A = 22
    assert rdm6300_frame("1E009A8C2A") == b"\x021E009A8C2A22\x03"
    assert rdm6300.FrameParser().feed(b"\x021E009A8C2A22\x03") == [bytes.fromhex("1E009A8C2A")]


def test_parser_skips_bad_checksums_garbage_and_waits_for_split_frames() -> None:
    good = rdm6300_frame("0A00123456")
    stream = (b"\xff\x03garbage\x02\x02" + rdm6300_frame("0A00123456", checksum=0x00) + b"\x0212"
              + good + b"\x02ZZ00123456" + b"1C\x03" + rdm6300_frame("1E009A8C2A")[:-1] + b"\x00"
              + good)
    parser = rdm6300.FrameParser()
    split = [n for i in range(len(stream)) for n in parser.feed(stream[i : i + 1])]
    assert rdm6300.FrameParser().feed(stream) == split == [bytes.fromhex("0A00123456")] * 2


def test_number_formats() -> None:
    number = bytes.fromhex("0A00123456")
    assert rdm6300.format_number(number, "hex10") == "0A00123456"
    assert rdm6300.format_number(number, "hex8") == "00123456"
    assert rdm6300.format_number(number, "dec10") == "0001193046"


def test_options() -> None:
    clock = FakeClock()
    reader = rdm6300.create({"port": "/dev/ttyS0"}, 0, clock)
    assert (reader.settings.baudrate, reader.token_type, reader.number_format) == (
        9600, "Local", "hex10")
    with pytest.raises(OptionError, match="number_format"):
        rdm6300.create({"port": "/dev/ttyS0", "number_format": "octal"}, 0, clock)
    with pytest.raises(OptionError, match="id_token_type"):
        rdm6300.create({"port": "/dev/ttyS0", "id_token_type": "Badge"}, 0, clock)
    with pytest.raises(OptionError, match="baudrate: expected int"):
        rdm6300.create({"port": "/dev/ttyS0", "baudrate": "9600"}, 0, clock)
    with pytest.raises(OptionError, match="poll_interval_s: unknown option"):
        rdm6300.create({"port": "/dev/ttyS0", "poll_interval_s": 1}, 0, clock)


@pytest.fixture
def line(tmp_path: Path) -> Iterator[PtyReader]:
    pty = PtyReader(tmp_path / "ttyRDM")
    yield pty
    pty.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


async def started(line: PtyReader, clock: FakeClock, **options: object) -> tuple[
        rdm6300.Rdm6300Reader, Events]:
    reader = rdm6300.create({"port": str(line.path), **FAST, **options}, 0, clock)
    events = Events()
    await reader.start(events)
    return reader, events


@pytest.fixture
async def stop_later() -> AsyncIterator[list[rdm6300.Rdm6300Reader]]:
    readers: list[rdm6300.Rdm6300Reader] = []
    yield readers
    for r in readers:
        await r.stop()


async def test_cards_become_tokens_of_the_configured_type(
    line: PtyReader, clock: FakeClock, stop_later: list,
) -> None:
    reader, events = await started(line, clock, id_token_type="ISO15693", number_format="dec10")
    stop_later.append(reader)
    line.write(b"\x00\xfe" + rdm6300_frame("0A00123456") + b"noise" + rdm6300_frame("1E009A8C2A"))
    await wait_until(lambda: len(events.tokens) == 2)
    assert events.tokens == [TokenPresented("0001193046", "ISO15693"),
                             TokenPresented("0010128426", "ISO15693")]


async def test_bad_checksum_garbage_and_split_frames(
    line: PtyReader, clock: FakeClock, stop_later: list,
) -> None:
    reader, events = await started(line, clock)
    stop_later.append(reader)
    line.write(rdm6300_frame("0A00123456", checksum=0x5C))  # wrong XOR: no card
    line.write(b"\x02\x0312\xff")
    good = rdm6300_frame("1E009A8C2A")
    for i in range(0, len(good), 3):
        line.write(good[i : i + 3])
    await wait_until(lambda: len(events.tokens) == 1)
    line.write(rdm6300_frame("0A00123456"))
    await wait_until(lambda: len(events.tokens) == 2)
    assert events.tokens == [TokenPresented("1E009A8C2A", "Local"),
                             TokenPresented("0A00123456", "Local")]


async def test_a_held_card_repeating_its_frame_is_one_token_until_gone_for_debounce_s(
    line: PtyReader, clock: FakeClock, stop_later: list,
) -> None:
    reader, events = await started(line, clock, debounce_s=1.0)
    stop_later.append(reader)
    other = rdm6300_frame("1E009A8C2A")
    line.write(rdm6300_frame("0A00123456") * 5)
    line.write(other)  # a different card is not debounced by the first one
    await wait_until(lambda: len(events.tokens) == 2)
    clock.advance(0.9)
    line.write(rdm6300_frame("0A00123456"))  # within debounce_s of the last read: same tap
    line.write(other)
    line.write(rdm6300_frame("0B00ABCDEF"))  # a third card marks that both were read
    await wait_until(lambda: len(events.tokens) == 3)
    clock.advance(1.0)
    line.write(rdm6300_frame("0A00123456"))  # gone for debounce_s: a new tap
    await wait_until(lambda: len(events.tokens) == 4)
    assert [t.id_token for t in events.tokens] == [
        "0A00123456", "1E009A8C2A", "0B00ABCDEF", "0A00123456"]


async def test_missing_port_fails_start_naming_it(tmp_path: Path, clock: FakeClock) -> None:
    reader = rdm6300.create({"port": str(tmp_path / "ttyUSB9")}, 0, clock)
    with pytest.raises(DeviceError, match=r"ttyUSB9: no such device$"):
        await reader.start(Events())


async def test_probe_opens_the_port_and_reports_a_card_in_the_field(
    line: PtyReader, clock: FakeClock,
) -> None:
    reader = rdm6300.create({"port": str(line.path)}, 0, clock)
    held = asyncio.Event()

    async def card_held() -> None:  # the reader repeats the frame while the card is there
        while not held.is_set():
            line.write(rdm6300_frame("0A00123456"))
            await asyncio.sleep(0.02)

    repeating = asyncio.create_task(card_held())
    try:
        assert await reader.probe() == (
            f"RDM6300 on {line.path}: port open at 9600 baud, card 0A00123456 in the field")
    finally:
        held.set()
        await repeating
    assert await reader.probe() == f"RDM6300 on {line.path}: port open at 9600 baud"


async def test_reader_unplugged_is_a_device_fault_until_plugged_back(
    line: PtyReader, clock: FakeClock, stop_later: list,
) -> None:
    reader, events = await started(line, clock)
    stop_later.append(reader)
    line.unplug()
    await wait_until(lambda: len(events.faults) == 1)
    assert events.faults == [DeviceFault("rfid", 0, "ReaderGone", True)]
    line.plug()
    await wait_until(lambda: len(events.faults) == 2)
    assert events.faults[1] == DeviceFault("rfid", 0, "ReaderGone", False)
    line.write(rdm6300_frame("0A00123456"))
    await wait_until(lambda: len(events.tokens) == 1)
