"""`evse-agent sim ...` against a running SimServer (the client blocks: run in a thread)."""

from __future__ import annotations

import asyncio
import json
import socket

import pytest
from evse_hal.interfaces import PilotChanged, TokenPresented
from simharness import Sim

from evse_agent.sim.client import base_url, main


async def run(*argv: str) -> int:
    return await asyncio.to_thread(main, list(argv))


async def test_state_prints_pretty_json(sim: Sim, capsys: pytest.CaptureFixture[str]) -> None:
    assert await run("--url", sim.url, "state") == 0
    out = capsys.readouterr().out
    assert out.startswith("{\n")
    assert json.loads(out)["evses"][0]["id"] == 1


async def test_plug_prints_compact_state(sim: Sim, capsys: pytest.CaptureFixture[str]) -> None:
    code = await run(
        "--url", sim.url, "plug", "2", "--max-current", "16", "--soc", "40", "--iso15118"
    )
    assert code == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    assert json.loads(out)["evses"][1]["pilot"] == "B"
    assert PilotChanged(2, "B") in sim.events
    ev = sim.hardware.evse(2).ev
    assert ev is not None and (ev.max_current_a, ev.soc, ev.iso15118) == (16, 40, True)


async def test_other_commands(sim: Sim, capsys: pytest.CaptureFixture[str]) -> None:
    url = sim.url.removeprefix("http://")  # "host:port" as in [sim] listen works too
    assert await run("--url", url, "tap", "AABBCCDD", "--type", "ISO15693") == 0
    assert sim.events == [TokenPresented("AABBCCDD", "ISO15693")]
    assert await run("--url", url, "plug", "1") == 0
    assert await run("--url", url, "ev", "1", "--pause") == 0
    assert sim.hardware.evse(1).ev is not None
    assert not sim.hardware.evse(1).ev.charging_wanted
    assert await run("--url", url, "ev", "1", "--resume") == 0
    assert sim.hardware.evse(1).ev.charging_wanted
    assert await run("--url", url, "fault", "contactor", "welded", "--evse", "2") == 0
    assert sim.hardware.evse(2).has_fault("contactor", "welded")
    assert await run("--url", url, "clear-faults") == 0
    assert not sim.hardware.evse(2).has_fault("contactor", "welded")
    assert await run("--url", url, "unplug", "1") == 0
    assert sim.hardware.evse(1).ev is None
    capsys.readouterr()


async def test_refused_action_is_one_line_exit_1(
    sim: Sim, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await run("--url", sim.url, "unplug", "1") == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("evse-agent sim: ")
    assert "409" in err and "no EV plugged" in err
    assert await run("--url", sim.url, "plug", "9") == 1
    assert "404" in capsys.readouterr().err
    assert await run("--url", sim.url, "fault", "meter", "melted") == 1
    assert "400" in capsys.readouterr().err


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_no_station(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    assert await run("--url", url, "state") == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        f'evse-agent sim: no mock station at {url} (is evse-agent running with backend = "mock"?)\n'
    )


def test_usage_errors_return_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert main(["plug", "one"]) == 2
    assert main(["ev", "1"]) == 2  # --pause or --resume is required
    assert main(["ev", "1", "--pause", "--resume"]) == 2
    assert main(["--help"]) == 0
    capsys.readouterr()


def test_base_url() -> None:
    assert base_url("127.0.0.1:8800") == "http://127.0.0.1:8800"
    assert base_url("http://bench:8800/") == "http://bench:8800"
