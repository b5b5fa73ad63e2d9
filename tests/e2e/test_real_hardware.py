"""`backend = "real"` end to end: the agent process with a real RDM6300 reader driver on
a pty and a real SDM630 Modbus RTU driver talking to a pymodbus-simulated meter over a
pty null modem; pilot and contactor simulated (driver = "mock") and driven through the
mock control API. Every frame is checked against the OCPP 2.0.1 schemas (csms fixture).

Requirement ids: OCPP 2.0.1 Part 2 C01 (Authorize with the card's IdToken), E01/E02
(transaction on plug), J02 (TransactionEvent meter values: Energy.Active.Import.Register
in Wh, Power.Active.Import in W, Current.Import per phase, Voltage per phase to N).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest
from e2e_support import STATION, Station, tx_events
from hw_support import NullModem, Pn532, Pty, Sdm630
from rfid_support import rdm6300_frame

from evse_agent.csms import DevCsms

# driver -> (extra options, the card's number on the wire, the IdToken it must become)
READERS = {
    "rdm6300": ("debounce_s = 0.3", bytes.fromhex("0A00123456"),
                {"idToken": "0A00123456", "type": "Local"}),
    "pn532": ("debounce_s = 0.3\npoll_interval_s = 0.05", bytes.fromhex("04A1B2C3D4E5F6"),
              {"idToken": "04A1B2C3D4E5F6", "type": "ISO14443"}),
}


def hal_config(driver: str, reader: str, meter: str) -> str:
    return f"""
[hal]
backend = "real"

[hal.rfid]
driver = "{driver}"
port = "{reader}"
{READERS[driver][0]}

[hal.display]
driver = "mock"

[[hal.meter]]
evse = 1
driver = "sdm630"
port = "{meter}"
unit_id = 1

[[hal.meter]]
evse = 2
driver = "mock"

[[hal.contactor]]
evse = 1
driver = "mock"

[[hal.contactor]]
evse = 2
driver = "mock"

[[hal.ev_bridge]]
evse = 1
driver = "mock"

[[hal.ev_bridge]]
evse = 2
driver = "mock"
"""


class Bench:
    """The loopback hardware and the station wired to it."""

    def __init__(self, station: Station, driver: str) -> None:
        self.station = station
        self.driver = driver
        self.card = READERS[driver][1]
        self.id_token = READERS[driver][2]
        self.reader = Pty()
        self.pn532 = Pn532(self.reader) if driver == "pn532" else None
        self.modem = NullModem()
        self.meter = Sdm630(self.modem.b.path, unit_id=1)
        with open(station.config, "a", encoding="utf-8") as f:
            f.write(hal_config(driver, self.reader.path, self.modem.a.path))

    def present_card(self) -> None:
        """The card as the reader sees it: RDM6300 frames pushed on the line (with
        garbage and a frame split in two before them), or a card in the PN532's field
        for 0.3 s (several InListPassiveTarget polls: debounced to one token)."""
        if self.pn532 is None:
            frame = rdm6300_frame(self.card)
            self.reader.write(b"\x00noise\x02" + frame[:5])
            self.reader.write(frame[5:] + frame)
            return
        pn532 = self.pn532
        pn532.card = self.card
        asyncio.get_running_loop().call_later(0.3, setattr, pn532, "card", None)

    def close(self) -> None:
        if self.pn532 is not None:
            self.pn532.close()
        self.reader.close()
        self.modem.close()


@pytest.fixture(params=list(READERS))
async def bench(station_factory: Any, request: pytest.FixtureRequest) -> AsyncIterator[Bench]:
    b = Bench(station_factory(settings={"SampledDataCtrlr": {
        "TxUpdatedMeasurands": "Energy.Active.Import.Register,Power.Active.Import,"
                               "Current.Import,Voltage",
    }}), request.param)
    b.meter.set(import_kwh=1234.5, power_w=10752.0, voltage_v=(230.5, 231.25, 229.75),
                current_a=(15.5, 15.75, 16.0), power_phase_w=(3572.75, 3642.25, 3537.0),
                frequency_hz=50.0)
    await b.meter.start()
    yield b
    if b.station.proc is not None and b.station.proc.poll() is None:
        assert await b.station.terminate() == 0
    await b.meter.stop()
    b.close()


def sampled(event: dict[str, Any]) -> dict[tuple[str, str | None], Any]:
    """(measurand, phase) -> sampledValue, over the event's meter values."""
    return {
        (s.get("measurand", "Energy.Active.Import.Register"), s.get("phase")): s
        for mv in event.get("meterValue", []) for s in mv["sampledValue"]
    }


def energy_is(wh: float) -> Any:
    def check(p: dict[str, Any]) -> bool:
        value = sampled(p).get(("Energy.Active.Import.Register", None))
        return value is not None and value["value"] == wh
    return check


async def test_card_on_serial_line_and_modbus_meter_values(csms: DevCsms, bench: Bench) -> None:
    st = bench.station
    st.start()
    await csms.wait_for(STATION, "StatusNotification", lambda p: p["evseId"] == 2, timeout=15)
    state = await st.state()  # the real meter's register, as /api/state promises
    assert state["evses"][0]["energy_wh"] == 1234500.0
    assert state["evses"][0]["power_w"] == 10752.0

    # C01: the card read by the real driver becomes an Authorize with its IdToken.
    bench.present_card()
    auth = await csms.wait_for(STATION, "Authorize", timeout=10)
    assert auth["idToken"] == bench.id_token
    # The reader is real: a tap on the mock control API reads nothing (DESIGN.md).
    await st.api("POST", "/api/rfid", {"id_token": "AABBCCDD"}, expect=409)

    await st.plug(1, max_current_a=16)
    started = await csms.wait_for(STATION, "TransactionEvent", timeout=10)
    assert started["eventType"] == "Started"
    assert started["idToken"] == bench.id_token
    # The transaction begins on the register as read at the plug (J02.FR.02 context).
    assert sampled(started)[("Energy.Active.Import.Register", None)]["value"] == 1234500.0

    periodic = await csms.wait_for(
        STATION, "TransactionEvent", lambda p: p["triggerReason"] == "MeterValuePeriodic",
        timeout=10,
    )
    values = sampled(periodic)
    assert values[("Energy.Active.Import.Register", None)]["unitOfMeasure"]["unit"] == "Wh"
    assert values[("Power.Active.Import", None)]["value"] == 10752.0
    assert [values[("Current.Import", p)]["value"] for p in ("L1", "L2", "L3")] == [
        15.5, 15.75, 16.0]
    assert [values[("Voltage", p)]["value"] for p in ("L1-N", "L2-N", "L3-N")] == [
        230.5, 231.25, 229.75]

    # The registers move: the next samples carry the new values, never made-up ones.
    mark = len(csms.received)
    bench.meter.set(import_kwh=1235.25, power_w=7360.0)
    later = await csms.wait_for(STATION, "TransactionEvent", energy_is(1235250.0),
                                since=mark, timeout=10)
    assert sampled(later)[("Power.Active.Import", None)]["value"] == 7360.0

    await asyncio.sleep(0.4)  # past debounce_s: the same card counts again
    bench.present_card()  # E07 / C01.FR.03: the same card ends the session
    end = await csms.wait_for(STATION, "TransactionEvent", lambda p: p["eventType"] == "Ended",
                              timeout=10)
    assert end["transactionInfo"]["stoppedReason"] == "Local"
    assert sampled(end)[("Energy.Active.Import.Register", None)]["value"] == 1235250.0
    events = tx_events(csms)
    assert len({e["transactionInfo"]["transactionId"] for e in events}) == 1
    assert [e["seqNo"] for e in events] == list(range(len(events)))
    assert bench.meter.requests > 0
    assert len([r for r in csms.received if r.action == "Authorize"]) == 1  # debounced
    if bench.pn532 is not None:
        assert bench.pn532.bad_frames == 0 and bench.pn532.commands[:2] == [0x14, 0x02]
    assert await st.terminate() == 0


async def test_hal_check_against_the_loopback_devices(bench: Bench) -> None:
    """`evse-agent hal check`: one line per device, exit 0 when all answer."""
    bench.station.log.touch()  # the station itself is not started in this test
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "evse_agent", "hal", "check", "--config", str(bench.station.config),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    lines = out.decode().splitlines()
    assert proc.returncode == 0, (lines, err.decode())
    assert [line.split(":")[0].strip() for line in lines] == [
        f"hal.rfid {bench.driver} {bench.reader.path}",
        f"hal.meter[0] evse 1 sdm630 {bench.modem.a.path} unit 1",
        "hal.meter[1] evse 2 mock",
        "hal.contactor[0] evse 1 mock", "hal.contactor[1] evse 2 mock",
        "hal.ev_bridge[0] evse 1 mock", "hal.ev_bridge[1] evse 2 mock",
        "hal.display mock",
    ]
    if bench.pn532 is not None:
        assert lines[0].endswith(f"OK PN532 firmware 1.6 on {bench.reader.path}")
    assert lines[1].endswith(
        f"OK Eastron SDM630 (three phase) at {bench.modem.a.path} unit 1: 1234.500 kWh, 10752 W"
    )
