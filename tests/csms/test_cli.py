"""`evse-agent csms` as a process: serves, logs frames to stdout, exits 0 on SIGTERM."""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import sys

from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

COMMAND = [sys.executable, "-m", "evse_agent.csms", "--host", "127.0.0.1"]


async def _line_matching(stream: asyncio.StreamReader, pattern: str) -> re.Match[str]:
    while line := (await stream.readline()).decode():
        if found := re.search(pattern, line):
            return found
    raise AssertionError(f"output ended before a line matching {pattern!r}")


async def test_serves_logs_frames_and_stops_on_sigterm() -> None:
    process = await asyncio.create_subprocess_exec(
        *COMMAND, "--port", "0", stdout=asyncio.subprocess.PIPE
    )
    assert process.stdout is not None
    try:
        async with asyncio.timeout(5):
            port = (await _line_matching(process.stdout, r"listening on ws://[\d.]+:(\d+)"))[1]
            url = f"ws://127.0.0.1:{port}/ocpp/CS-9"
            async with connect(url, subprotocols=[Subprotocol("ocpp2.0.1")]) as ws:
                await ws.send('[2,"42","Heartbeat",{}]')
                await ws.recv()
            await _line_matching(process.stdout, r'^\d\d:\d\d:\d\d\.\d{3} CS-9 <- \[2,"42",')
            await _line_matching(process.stdout, r'^\d\d:\d\d:\d\d\.\d{3} CS-9 -> \[3,"42",')
            process.send_signal(signal.SIGTERM)
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_busy_port_is_one_line_and_exit_1() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        process = await asyncio.create_subprocess_exec(
            *COMMAND, "--port", str(port), stderr=asyncio.subprocess.PIPE
        )
        async with asyncio.timeout(5):
            _, stderr = await process.communicate()
    assert process.returncode == 1
    assert stderr.decode().count("\n") == 1
    assert stderr.decode().startswith("evse-agent csms: cannot listen:")
    assert str(port) in stderr.decode()
