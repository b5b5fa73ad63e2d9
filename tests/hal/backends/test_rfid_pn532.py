"""PN532 (HSU) driver against a simulated PN532 on the other end of a pty pair: real
frames both ways, checksums checked on both sides. The card reader of OCPP 2.0.1 C01
(authorization by an ISO14443 card; UIDs as hex, byte 0 first, per the ID Tokens note)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from evse_hal.backends import OptionError, pn532
from evse_hal.backends.pn532 import Ack, BadFrame, Frame, FrameParser, Nack
from evse_hal.clock import FakeClock
from evse_hal.interfaces import DeviceError, DeviceFault, TokenPresented
from rfid_support import ACK, NACK, Events, Pn532Sim, PtyReader, pn532_frame, wait_until

FAST = {"poll_interval_s": 0.01, "response_timeout_s": 0.15, "reopen_interval_s": 0.05}
UID4 = bytes.fromhex("a1b2c3d4")
UID7 = bytes.fromhex("04a1b2c3d4e5f6")
UID10 = bytes.fromhex("0811223344556677889a")


# --- frames ----------------------------------------------------------------------
def test_host_frames_are_the_user_manuals_bytes() -> None:
    # UM0701-02: GetFirmwareVersion and SAMConfiguration(normal, 1 s, IRQ) as sent by a host
    assert pn532.encode(0x02) == bytes.fromhex("0000ff02fed4022a00")
    assert pn532.encode(0x14, b"\x01\x14\x01") == bytes.fromhex("0000ff05fbd4140114010200")
    assert pn532_frame(b"\xd5\x03\x32\x01\x06\x07") == bytes.fromhex("0000ff06fad50332010607e800")


def test_parser_finds_ack_nack_and_frames_among_garbage_split_anywhere() -> None:
    response = pn532_frame(b"\xd5\x03\x32\x01\x06\x07")
    stream = (b"\x55\xff\x00" + ACK + b"\x13\x00\xff\x07\x01" + NACK + b"\x00\xff" + response
              + bytes.fromhex("0000ff01ff7f8100"))
    whole = FrameParser().feed(stream)
    parser = FrameParser()
    split = [item for i in range(len(stream)) for item in parser.feed(stream[i : i + 1])]
    expected = [Ack(), Nack(), Frame(0xD5, b"\x03\x32\x01\x06\x07"), Frame(0x7F, b"")]
    assert whole == expected
    assert split == expected


def test_parser_reports_a_bad_data_checksum_and_skips_a_bad_length_checksum() -> None:
    good = pn532_frame(b"\xd5\x4b\x00")
    bad_dcs = good[:-2] + bytes([good[-2] ^ 1, 0])
    bad_lcs = good[:4] + bytes([good[4] ^ 1]) + good[5:]
    assert FrameParser().feed(bad_dcs + good) == [BadFrame(), Frame(0xD5, b"\x4b\x00")]
    assert FrameParser().feed(bad_lcs + good) == [Frame(0xD5, b"\x4b\x00")]


def test_parser_reads_extended_frames() -> None:
    body = b"\xd5\x41\x00" + bytes(range(256))
    n = len(body)
    frame = (b"\x00\x00\xff\xff\xff" + bytes([n >> 8, n & 0xFF, -(n >> 8) - (n & 0xFF) & 0xFF])
             + body + bytes([-sum(body) & 0xFF, 0]))
    assert FrameParser().feed(frame) == [Frame(0xD5, body[1:])]


def test_target_uid_of_4_7_and_10_byte_cards() -> None:
    for uid in (UID4, UID7, UID10):
        assert pn532.target_uid(b"\x01\x01\x00\x44\x00" + bytes([len(uid)]) + uid) == uid
    assert pn532.target_uid(b"\x00") is None


def test_options() -> None:
    clock = FakeClock()
    with pytest.raises(OptionError, match="port: missing"):
        pn532.create({}, 0, clock)
    with pytest.raises(OptionError, match="colour: unknown option"):
        pn532.create({"port": "/dev/ttyAMA0", "colour": 1}, 0, clock)
    with pytest.raises(OptionError, match="id_token_type: unknown option"):
        pn532.create({"port": "/dev/ttyAMA0", "id_token_type": "Local"}, 0, clock)
    with pytest.raises(OptionError, match="poll_interval_s: must be positive"):
        pn532.create({"port": "/dev/ttyAMA0", "poll_interval_s": 0}, 0, clock)
    reader = pn532.create({"port": "/dev/ttyAMA0"}, 0, clock)
    assert (reader.name, reader.settings.baudrate, reader.settings.debounce_s) == (
        "rfid", 115200, 2.0)


# --- the driver against the simulated PN532 ---------------------------------------
@pytest.fixture
def line(tmp_path: Path) -> Iterator[PtyReader]:
    pty = PtyReader(tmp_path / "ttyPN532")
    yield pty
    pty.close()


@pytest.fixture
def sim(line: PtyReader) -> Iterator[Pn532Sim]:
    s = Pn532Sim(line)
    s.start()
    yield s
    s.stop()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def reader(line: PtyReader, clock: FakeClock) -> AsyncIterator[pn532.Pn532Reader]:
    r = pn532.create({"port": str(line.path), **FAST}, 0, clock)
    yield r
    await r.stop()


async def test_wakes_the_pn532_and_reads_4_7_and_10_byte_uids_as_upper_case_hex(
    sim: Pn532Sim, reader: pn532.Pn532Reader, clock: FakeClock,
) -> None:
    events = Events()
    await reader.start(events)
    for n, uid in enumerate((UID4, UID7, UID10), start=1):
        sim.card = uid
        await wait_until(lambda n=n: len(events.tokens) == n)
        sim.card = None
        polls = sim.polls
        await wait_until(lambda polls=polls: sim.polls > polls + 1)
    assert events.tokens == [
        TokenPresented("A1B2C3D4", "ISO14443"),
        TokenPresented("04A1B2C3D4E5F6", "ISO14443"),
        TokenPresented("0811223344556677889A", "ISO14443"),  # 20 characters: fits 1.6 too
    ]
    assert sim.raw.startswith(b"\x55\x55\x00\x00")  # HSU wake-up preamble first
    assert sim.commands[:3] == [0x14, 0x02, 0x32]  # SAMConfiguration, firmware, MaxRetries
    assert set(sim.commands[3:]) == {0x4A}
    assert sim.errors == []
    assert events.faults == []


async def test_a_card_held_on_the_reader_is_one_token_until_gone_for_debounce_s(
    sim: Pn532Sim, reader: pn532.Pn532Reader, clock: FakeClock,
) -> None:
    events = Events()
    await reader.start(events)
    sim.card = UID7
    await wait_until(lambda: sim.polls > 10)
    assert len(events.tokens) == 1
    sim.card = None  # lifted for a moment and held again: still the same tap
    await wait_until(lambda: sim.polls > 14)
    clock.advance(1.5)
    sim.card = UID7
    polls = sim.polls
    await wait_until(lambda: sim.polls > polls + 5)
    assert len(events.tokens) == 1
    sim.card = None
    clock.advance(2.0)  # absent for debounce_s: the next tap counts again
    polls = sim.polls
    await wait_until(lambda: sim.polls > polls + 2)
    sim.card = UID7
    await wait_until(lambda: len(events.tokens) == 2)
    assert events.tokens[1] == TokenPresented("04A1B2C3D4E5F6", "ISO14443")


async def test_nack_silence_error_frame_and_bad_checksum_are_retried(
    sim: Pn532Sim, reader: pn532.Pn532Reader,
) -> None:
    events = Events()
    await reader.start(events)
    await wait_until(lambda: sim.polls > 0)
    # first poll: NACK'd command, then a corrupted response (NACK, good resend);
    # second poll: error frame, silence (aborted by ACK), corrupted response again.
    sim.card = UID4
    sim.misbehave.extend(["nack", "bad_dcs", "error", "silent", "bad_dcs"])
    await wait_until(lambda: not sim.misbehave and sim.polls > 8)
    assert sim.host_nacks == 2  # one NACK per corrupted response, answered by a resend
    assert sim.host_acks >= 1  # the silent command was aborted with an ACK
    assert events.tokens == [TokenPresented("A1B2C3D4", "ISO14443")]
    assert events.faults == []
    assert sim.errors == []


async def test_garbage_and_partial_frames_between_frames_are_skipped(
    sim: Pn532Sim, reader: pn532.Pn532Reader,
) -> None:
    events = Events()
    await reader.start(events)
    await wait_until(lambda: sim.polls > 0)
    sim.misbehave.extend(["garbage"] * 4)
    sim.card = UID10
    await wait_until(lambda: len(events.tokens) == 1 and not sim.misbehave)
    assert events.tokens == [TokenPresented("0811223344556677889A", "ISO14443")]
    assert events.faults == []
    assert sim.errors == []


async def test_missing_port_fails_start_with_one_line_naming_it(
    tmp_path: Path, clock: FakeClock,
) -> None:
    reader = pn532.create({"port": str(tmp_path / "ttyUSB9")}, 0, clock)
    with pytest.raises(DeviceError) as err:
        await reader.start(Events())
    assert str(err.value) == f"{tmp_path / 'ttyUSB9'}: no such device"
    with pytest.raises(DeviceError, match="no such device"):
        await reader.probe()


async def test_probe_reads_the_firmware_version(sim: Pn532Sim, line: PtyReader) -> None:
    reader = pn532.create({"port": str(line.path), **FAST}, 0, FakeClock())
    assert await reader.probe() == f"PN532 firmware 1.6 on {line.path}"


async def test_probe_of_a_silent_port_names_the_problem(line: PtyReader) -> None:
    reader = pn532.create({"port": str(line.path), **FAST}, 0, FakeClock())
    with pytest.raises(DeviceError, match=r"no answer from the PN532 at 115200 baud"):
        await reader.probe()


async def test_reader_unplugged_is_a_device_fault_until_it_comes_back(
    line: PtyReader, reader: pn532.Pn532Reader,
) -> None:
    sim = Pn532Sim(line)
    sim.start()
    events = Events()
    await reader.start(events)
    await wait_until(lambda: sim.polls > 0)
    sim.stop()
    line.unplug()
    await wait_until(lambda: len(events.faults) == 1)
    assert events.faults == [DeviceFault("rfid", 0, "ReaderGone", True)]
    line.plug()
    sim = Pn532Sim(line)
    sim.start()
    try:
        await wait_until(lambda: len(events.faults) == 2)
        assert events.faults[1] == DeviceFault("rfid", 0, "ReaderGone", False)
        sim.card = UID4
        await wait_until(lambda: len(events.tokens) == 1)
        assert sim.commands[:2] == [0x14, 0x02]  # woken up and configured again
    finally:
        sim.stop()


async def test_a_pn532_that_does_not_answer_is_a_fault_cleared_when_it_answers(
    line: PtyReader, reader: pn532.Pn532Reader,
) -> None:
    events = Events()
    await reader.start(events)  # the port is there: start succeeds
    await wait_until(lambda: len(events.faults) == 1)
    assert events.faults == [DeviceFault("rfid", 0, "ReaderNotResponding", True)]
    sim = Pn532Sim(line)
    sim.start()
    try:
        await wait_until(lambda: len(events.faults) == 2)
        assert events.faults[1] == DeviceFault("rfid", 0, "ReaderNotResponding", False)
    finally:
        sim.stop()
