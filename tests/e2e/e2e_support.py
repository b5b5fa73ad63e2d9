"""End-to-end fixtures: `evse-agent run` as a real process, the development CSMS (built
on the `ocpp` package) in the test process, a real websocket between them, and every
frame checked against the official JSON schemas."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from ocpp.messages import get_validator

from evse_agent.csms import DevCsms

STATION = "CS-E2E"
RFC3339_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class FrameChecker:
    """Validates every frame on the wire against the official schemas (both ways) and
    every timestamp the station sends as RFC 3339 with a Z. `version` names the
    schemas ("2.0.1", or "1.6" for a test that runs the station on OCPP 1.6)."""

    def __init__(self, version: str = "2.0.1") -> None:
        self.version = version
        self.pending: dict[str, str] = {}
        self.problems: list[str] = []
        self.frames: list[tuple[str, list[Any]]] = []

    def __call__(self, station_id: str, direction: str, raw: str) -> None:
        try:
            msg = json.loads(raw)
            assert isinstance(msg, list) and len(msg) >= 3
        except (ValueError, AssertionError):
            if direction == "<-":  # the station must never send a broken frame
                self.problems.append(f"station sent a malformed frame: {raw[:200]}")
            return  # tests send broken frames to the station on purpose
        self.frames.append((direction, msg))
        if direction == "->" and msg[0] == 2:
            self.pending[msg[1]] = msg[2]
            return
        try:
            if msg[0] == 2:
                self.pending[msg[1]] = msg[2]
                if direction == "<-":  # from the station
                    get_validator(2, msg[2], self.version).validate(msg[3])
                    self._timestamps(msg[2], msg[3])
            elif msg[0] == 3:
                action = self.pending.pop(msg[1], None)
                if action is not None:
                    get_validator(3, action, self.version).validate(msg[2])
            elif msg[0] == 4:
                self.pending.pop(msg[1], None)
        except Exception as err:  # noqa: BLE001 - collected, asserted at teardown
            self.problems.append(f"{direction} {raw[:200]}: {err}")

    def _timestamps(self, action: str, payload: Any) -> None:
        if isinstance(payload, dict):
            for key, value in payload.items():
                if key == "timestamp" or key.endswith("Time"):
                    if not (isinstance(value, str) and RFC3339_Z.match(value)):
                        self.problems.append(f"{action}.{key} not RFC 3339 Z: {value!r}")
                self._timestamps(action, value)
        elif isinstance(payload, list):
            for item in payload:
                self._timestamps(action, item)


class Station:
    """One `evse-agent run` process and its mock control API."""

    def __init__(
        self,
        tmp: Path,
        csms_port: int,
        settings: dict[str, dict[str, Any]] | None = None,
        station_id: str = STATION,
        version: str | None = None,
        ocpp: dict[str, Any] | None = None,
    ) -> None:
        """`ocpp`: more [ocpp] keys (security_profile, basic_auth_password, a wss://
        csms_url, ...); they replace the defaults."""
        self.tmp = tmp
        self.sim_port = free_port()
        self.config = tmp / "station.toml"
        device_model: dict[str, dict[str, Any]] = {
            "OCPPCommCtrlr": {
                "RetryBackOffWaitMinimum": 1,
                "RetryBackOffRandomRange": 0,
                "RetryBackOffRepeatTimes": 1,
                "MessageTimeout[Default]": 3,
                "MessageAttemptInterval[TransactionEvent]": 1,
            },
            "SampledDataCtrlr": {"TxUpdatedInterval": 1},
        }
        for component, values in (settings or {}).items():
            device_model.setdefault(component, {}).update(values)
        tables = "".join(
            f"\n[device_model.{component}]\n"
            + "".join(f'"{k}" = {json.dumps(v)}\n' for k, v in values.items())
            for component, values in device_model.items()
        )
        keys: dict[str, Any] = {"csms_url": f"ws://127.0.0.1:{csms_port}/ocpp"}
        if version:
            keys["version"] = version
        keys.update(ocpp or {})
        ocpp_keys = "".join(f"{k} = {json.dumps(v)}\n" for k, v in keys.items())
        self.config.write_text(
            f"""
[station]
id = "{station_id}"
evse_count = 2
data_dir = "{tmp / 'data'}"

[ocpp]
{ocpp_keys}

[sim]
listen = "127.0.0.1:{self.sim_port}"
{tables}"""
        )
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = tmp / "agent.log"

    def start(self) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "evse_agent", "-v", "run", "--config", str(self.config)],
            stdout=open(self.log, "ab"),  # noqa: SIM115 - lives as long as the process
            stderr=subprocess.STDOUT,
            env=env,
        )

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(5)

    async def terminate(self) -> int:
        """SIGTERM, then wait without blocking the loop: the in-process CSMS must stay
        responsive to complete the websocket closing handshake."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return await asyncio.to_thread(self.proc.wait, 15)
        except subprocess.TimeoutExpired:
            self.proc.kill()  # never leave a station behind
            raise AssertionError("the station did not stop within 15 s of SIGTERM") from None

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    async def api(self, method: str, path: str, body: Any = None, expect: int = 200) -> Any:
        url = f"http://127.0.0.1:{self.sim_port}{path}"
        for _ in range(100):  # the API comes up a moment after the process starts
            try:
                async with aiohttp.ClientSession() as http:
                    async with http.request(method, url, json=body) as resp:
                        assert resp.status == expect, await resp.text()
                        return await resp.json()
            except aiohttp.ClientConnectorError:
                await asyncio.sleep(0.1)
        raise AssertionError(f"mock control API on {self.sim_port} never answered")

    async def tap(self, card: str) -> Any:
        return await self.api("POST", "/api/rfid", {"id_token": card})

    async def plug(self, evse: int, **ev: Any) -> Any:
        return await self.api("POST", f"/api/evse/{evse}/plug", ev)

    async def unplug(self, evse: int) -> Any:
        return await self.api("POST", f"/api/evse/{evse}/unplug", {})

    async def state(self) -> Any:
        return await self.api("GET", "/api/state")


@pytest.fixture
async def csms() -> AsyncIterator[DevCsms]:
    server = DevCsms()
    checker = FrameChecker()
    server.on_frame.append(checker)
    await server.start("127.0.0.1", 0)
    server.checker = checker  # type: ignore[attr-defined]
    yield server
    await server.stop()
    assert checker.problems == [], checker.problems


@pytest.fixture
async def station_factory(
    tmp_path: Path, csms: DevCsms
) -> AsyncIterator[Callable[..., Station]]:
    started: list[Station] = []

    def make(
        settings: dict[str, dict[str, Any]] | None = None,
        port: int | None = None,
        version: str | None = None,
    ) -> Station:
        st = Station(tmp_path, port or csms.port, settings, version=version)
        started.append(st)
        return st

    yield make  # type: ignore[misc]
    for st in started:
        if st.proc is not None and st.proc.poll() is None:
            await st.terminate()
        assert "Traceback" not in st.output(), st.output()[-3000:]


def tx_events(csms: DevCsms, station_id: str = STATION) -> list[dict[str, Any]]:
    return [
        r.payload for r in csms.received
        if r.station_id == station_id and r.action == "TransactionEvent"
    ]


# -- OCPP 1.6 ------------------------------------------------------------------------
def calls(csms: DevCsms, action: str, since: int = 0, station_id: str = STATION) -> list[Any]:
    """Payloads of the station's `action` CALLs in csms.received[since:]."""
    return [
        r.payload for r in csms.received[since:]
        if r.station_id == station_id and r.action == action
    ]


async def booted16(csms: DevCsms, since: int = 0, connectors: int = 2) -> None:
    """A 1.6 station registered and reported connector 0 and every connector
    (1.6 errata 3.22)."""
    await csms.wait_for(STATION, "BootNotification", since=since, timeout=15)
    await csms.wait_for(
        STATION, "StatusNotification", lambda p: p["connectorId"] == connectors, since=since
    )
