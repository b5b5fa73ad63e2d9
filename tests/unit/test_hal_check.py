"""`evse-agent hal check --config FILE` (DESIGN.md "Contract: command line"): one line per
device, OK or the exact problem naming section and port or pin; exit 0 only when all
are OK, 2 with one line for a config error. Real drivers on real loopbacks: an RDM6300
on a pty, an SDM630 on a pty nobody answers on, a gpiozero contactor on MockFactory."""

from __future__ import annotations

import os
import tty
from collections.abc import Iterator
from pathlib import Path

import pytest

from evse_agent.hal_check import main

MOCKS = """
[[hal.ev_bridge]]
evse = 1
driver = "mock"
"""


def write_config(tmp_path: Path, hal: str, backend: str = "real") -> Path:
    path = tmp_path / "station.toml"
    path.write_text(f"""
[station]
id = "CS-CHECK"
evse_count = 1
data_dir = "{tmp_path / 'data'}"
[ocpp]
csms_url = "ws://127.0.0.1:9/ocpp"
[hal]
backend = "{backend}"
{hal}""")
    return path


@pytest.fixture
def pty_path() -> Iterator[str]:
    master, slave = os.openpty()
    tty.setraw(slave)
    yield os.ttyname(slave)
    os.close(master)
    os.close(slave)


def test_every_device_answers_exit_0(
    tmp_path: Path, pty_path: str, mock_pins: object, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(tmp_path, f"""
[hal.rfid]
driver = "rdm6300"
port = "{pty_path}"
[hal.display]
driver = "png"
path = "{tmp_path / 'display.png'}"
[[hal.meter]]
evse = 1
driver = "mock"
[[hal.contactor]]
evse = 1
driver = "gpiozero"
pin = 17
feedback_pin = 27
""" + MOCKS)
    assert main(["check", "--config", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [" ".join(line.split()) for line in lines] == [
        f"hal.rfid rdm6300 {pty_path}: OK RDM6300 on {pty_path}: port open at 9600 baud",
        "hal.meter[0] evse 1 mock: mock",
        "hal.contactor[0] evse 1 gpiozero GPIO17 feedback GPIO27: OK contactor (EVSE 1): coil"
        " off, feedback open on GPIO27",
        "hal.ev_bridge[0] evse 1 mock: mock",
        f"hal.display png {tmp_path / 'display.png'}: OK PNG display 480x272 at"
        f" {tmp_path / 'display.png'}",
    ]


def test_missing_port_and_silent_meter_exit_1(
    tmp_path: Path, pty_path: str, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "ttyUSB7"
    path = write_config(tmp_path, f"""
[hal.rfid]
driver = "ascii-line"
port = "{missing}"
[hal.display]
driver = "mock"
[[hal.meter]]
evse = 1
driver = "sdm630"
port = "{pty_path}"
unit_id = 1
timeout_s = 0.1
[[hal.contactor]]
evse = 1
driver = "mock"
""" + MOCKS)
    assert main(["check", "--config", str(path)]) == 1
    lines = [" ".join(line.split()) for line in capsys.readouterr().out.splitlines()]
    assert lines[0] == f"hal.rfid ascii-line {missing}: no such device"
    assert lines[1] == f"hal.meter[0] evse 1 sdm630 {pty_path} unit 1: no answer at 9600 baud"
    assert lines[2:] == ["hal.contactor[0] evse 1 mock: mock", "hal.ev_bridge[0] evse 1 mock: mock",
                         "hal.display mock: mock"]


def test_config_error_exit_2_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(tmp_path, """
[hal.rfid]
driver = "pn532"
port = "/dev/ttyAMA0"
baudrate = "fast"
""")
    assert main(["check", "--config", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"evse-agent: {path}: hal.rfid.baudrate: expected int, got str\n"


def test_mock_backend_everything_simulated_exit_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(tmp_path, "", backend="mock")
    assert main(["check", "--config", str(path)]) == 0
    out = [" ".join(line.split()) for line in capsys.readouterr().out.splitlines()]
    assert out == [
        f'{path}: hal.backend is "mock": every device is simulated',
        "hal.rfid mock: mock", "hal.meter evse 1 mock: mock", "hal.contactor evse 1 mock: mock",
        "hal.ev_bridge evse 1 mock: mock", "hal.display mock: mock",
    ]


class _Broken:
    """A backend whose library raises its own exception class (lgpio.error, ...)."""

    class error(Exception):  # noqa: N801 - as lgpio names it
        pass

    async def probe(self) -> str:
        raise self.error("'GPIO busy'")


def test_an_unexpected_exception_is_one_line_not_a_traceback() -> None:
    import asyncio

    from evse_agent.hal_check import probe
    from evse_agent.hardware import Slot

    slot = Slot("contactor", 1, "hal.contactor[0]", "gpiozero",
                "hal.contactor[0] evse 1 gpiozero GPIO17 feedback GPIO27", _Broken())  # type: ignore[arg-type]
    assert asyncio.run(probe(slot)) == (False, "'GPIO busy'")


class _Slow:
    """A device that never answers its probe."""

    async def probe(self) -> str:
        import asyncio

        await asyncio.sleep(5)
        return "late"


def test_a_probe_timeout_names_the_timeout_not_the_exception_class() -> None:
    """TimeoutError is an OSError since Python 3.11: it must not be explained as one."""
    import asyncio

    from evse_agent.hal_check import probe
    from evse_agent.hardware import Slot

    slot = Slot("rfid", 0, "hal.rfid", "pn532", "hal.rfid pn532 /dev/ttyAMA0",
                _Slow())  # type: ignore[arg-type]
    assert asyncio.run(probe(slot, timeout=0.1)) == (False, "no result within 0.1 s")
