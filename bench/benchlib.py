"""Shared pieces of the benchmarks: a minimal raw OCPP-J CSMS, the two stations under
test as subprocesses, and readers for /proc.

The CSMS is deliberately not DevCsms: it sends hand-built CALL frames and timestamps
the CALLRESULT the moment its frame is read, without schema validation, routing or
logging in between, so what is measured is the station, not the measuring side.
Both stations are measured by the same server instance, in the same event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

BENCH_DIR = Path(__file__).resolve().parent
BARE_STATION = BENCH_DIR / "bare_station.py"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


# --- the measuring CSMS --------------------------------------------------------------
@dataclass
class Link:
    """One expected station: its connection once it comes, and the moments (all
    time.perf_counter() in this process) of its start-up milestones."""

    station_id: str
    evse_count: int
    ws: ServerConnection | None = None
    connected: float | None = None  # websocket handshake done
    boot_received: float | None = None  # BootNotification CALL read
    accepted_sent: float | None = None  # just before the Accepted CALLRESULT is sent
    first_status: float | None = None  # first StatusNotification CALL read
    statuses: int = 0
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    pending: dict[str, asyncio.Future[tuple[float, list[Any]]]] = field(default_factory=dict)
    _ids: int = 0

    async def call(self, action: str, payload: dict[str, Any]) -> tuple[float, list[Any]]:
        """Send one CALL; return (seconds from just before the send to the moment the
        answer frame was read, the answer frame)."""
        assert self.ws is not None
        self._ids += 1
        message_id = f"b{self._ids}"
        frame = json.dumps([2, message_id, action, payload], separators=(",", ":"))
        future: asyncio.Future[tuple[float, list[Any]]] = asyncio.get_running_loop().create_future()
        self.pending[message_id] = future
        start = time.perf_counter()
        await self.ws.send(frame)
        answered, message = await future
        return answered - start, message


class RawCsms:
    """Accepts ocpp2.0.1 connections at ws://127.0.0.1:<port>/ocpp/<station id> and
    answers BootNotification (Accepted), StatusNotification and Heartbeat."""

    def __init__(self, boot_interval: int = 300) -> None:
        self.boot_interval = boot_interval
        self.links: dict[str, Link] = {}
        self.port = 0
        self._server: Server | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ocpp"

    async def start(self) -> None:
        self._server = await serve(
            self._handle,
            "127.0.0.1",
            0,
            subprotocols=[Subprotocol("ocpp2.0.1")],
            # Server pings would make both stations answer pings mid-measurement.
            ping_interval=None,
            # Default permessage-deflate stays on: evse-agent asks for it, and so does
            # a stock websockets client, so both stations pay the same per frame.
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def expect(self, station_id: str, evse_count: int) -> Link:
        """Register a station before it is started, so no milestone is missed."""
        link = Link(station_id, evse_count)
        self.links[station_id] = link
        return link

    async def _handle(self, ws: ServerConnection) -> None:
        connected = time.perf_counter()
        path = ws.request.path if ws.request else "/"
        station_id = unquote(urlsplit(path).path.rsplit("/", 1)[-1])
        link = self.links.get(station_id) or self.expect(station_id, 0)
        link.ws, link.connected = ws, connected
        try:
            async for raw in ws:
                read = time.perf_counter()  # before any parsing: the answer is here
                message = json.loads(raw)
                if message[0] == 2:
                    await self._answer(link, message, read)
                else:
                    future = link.pending.pop(message[1], None)
                    if future is not None and not future.done():
                        future.set_result((read, message))
        except ConnectionClosed:
            pass
        finally:
            link.closed.set()
            for future in link.pending.values():
                if not future.done():
                    future.set_exception(ConnectionError(f"{station_id} disconnected"))

    async def _answer(self, link: Link, message: list[Any], read: float) -> None:
        _, message_id, action, _payload = message
        result: dict[str, Any] = {}
        if action == "BootNotification":
            link.boot_received = read
            result = {
                "currentTime": now_rfc3339(),
                "interval": self.boot_interval,
                "status": "Accepted",
            }
        elif action == "Heartbeat":
            result = {"currentTime": now_rfc3339()}
        elif action == "StatusNotification":
            link.statuses += 1
            if link.first_status is None:
                link.first_status = read
        frame = json.dumps([3, message_id, result], separators=(",", ":"))
        assert link.ws is not None
        if action == "BootNotification":
            link.accepted_sent = time.perf_counter()
        await link.ws.send(frame)
        if link.accepted_sent is not None and link.statuses >= max(link.evse_count, 1):
            link.ready.set()


# --- the stations under test ---------------------------------------------------------
@dataclass
class StationProcess:
    """A station subprocess with its own temp directory, output captured to a file."""

    kind: str  # "evse-agent", "bare" or "bare-sync"
    station_id: str
    workdir: Path
    proc: subprocess.Popen[bytes]
    started: float  # perf_counter() just before Popen
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    async def stop(self, timeout: float = 15.0) -> tuple[int | None, float]:
        """SIGTERM; returns (exit code, seconds until the process was gone). Waits in
        a thread: the CSMS shares this loop and must stay responsive to complete the
        station's websocket closing handshake, or every stop takes close_timeout."""
        start = time.perf_counter()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        # A blocking wait() with no timeout sits in waitpid and returns at the exit;
        # wait(timeout) polls with sleeps of up to 50 ms and would blur the figure.
        waiting = asyncio.ensure_future(asyncio.to_thread(self.proc.wait))
        code: int | None
        try:
            code = await asyncio.wait_for(asyncio.shield(waiting), timeout)
        except TimeoutError:
            self.proc.kill()
            await waiting
            code = None
        return code, time.perf_counter() - start


def agent_config(workdir: Path, station_id: str, csms_url: str, evse_count: int) -> Path:
    """A mock-hardware station, otherwise factory defaults (no -v: frames not logged)."""
    config = workdir / "station.toml"
    config.write_text(
        f"""[station]
id = "{station_id}"
evse_count = {evse_count}
data_dir = "{workdir / "data"}"

[ocpp]
csms_url = "{csms_url}"

[hal]
backend = "mock"

[sim]
listen = "127.0.0.1:{free_port()}"
""",
        encoding="utf-8",
    )
    return config


def start_station(
    kind: str, workdir: Path, station_id: str, csms_url: str, evse_count: int
) -> StationProcess:
    """Start `evse-agent run` or the bare ocpp station with the interpreter running
    the benchmark, so both load the same site-packages."""
    workdir.mkdir(parents=True, exist_ok=True)
    if kind == "evse-agent":
        config = agent_config(workdir, station_id, csms_url, evse_count)
        argv = [sys.executable, "-m", "evse_agent", "run", "--config", str(config)]
    elif kind in ("bare", "bare-sync"):
        argv = [
            sys.executable,
            str(BARE_STATION),
            "--csms",
            csms_url,
            "--id",
            station_id,
            "--evses",
            str(evse_count),
        ]
        if kind == "bare-sync":
            argv.append("--sync-validation")
    else:
        raise ValueError(kind)
    log = workdir / "station.log"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with open(log, "wb") as out:  # the child keeps its own copy of the descriptor
        started = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=workdir)
    return StationProcess(kind, station_id, workdir, proc, started, log)


async def wait_ready(
    csms: RawCsms, station: StationProcess, link: Link, timeout: float = 30.0
) -> None:
    """Until BootNotification is Accepted and every EVSE reported its status; a station
    that dies or hangs fails the run with its output."""
    deadline = time.perf_counter() + timeout
    while not link.ready.is_set():
        if station.proc.poll() is not None:
            raise RuntimeError(
                f"{station.kind} exited with {station.proc.returncode} before it was ready:\n"
                + station.output_tail()
            )
        if time.perf_counter() > deadline:
            raise RuntimeError(
                f"{station.kind} not ready in {timeout:g} s:\n" + station.output_tail()
            )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(link.ready.wait(), 0.05)


# --- /proc ---------------------------------------------------------------------------
def proc_status(pid: int) -> dict[str, int]:
    """The memory lines of /proc/<pid>/status, in kB (the kernel's kB are KiB)."""
    out: dict[str, int] = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem"):
                out[name] = int(rest.split()[0])
    return out


def cpu_seconds(pid: int) -> float:
    """utime + stime of the process itself, from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        text = f.read()
    # comm (field 2) may contain spaces and parentheses: split after the last ')'.
    fields = text[text.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of stat(5)
    return (utime + stime) / CLK_TCK


# --- figures -------------------------------------------------------------------------
def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile: a value that was actually observed."""
    if not sorted_values:
        return float("nan")
    rank = max(1, -(-len(sorted_values) * p // 100))  # ceil(n * p / 100)
    return sorted_values[int(rank) - 1]


def summary(seconds: list[float]) -> dict[str, float]:
    """Latency figures in ms of `seconds` (nearest-rank percentiles)."""
    ms = sorted(s * 1000 for s in seconds)
    return {
        "n": len(ms),
        "p50_ms": percentile(ms, 50),
        "p99_ms": percentile(ms, 99),
        "mean_ms": statistics.fmean(ms),
        "max_ms": ms[-1],
        "min_ms": ms[0],
    }


def median(values: list[float]) -> float:
    ordered = sorted(values)
    n = len(ordered)
    if n == 0:
        return float("nan")
    mid = n // 2
    return ordered[mid] if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def environment() -> dict[str, Any]:
    from importlib.metadata import version

    return {
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "ocpp": version("ocpp"),
        "websockets": version("websockets"),
        "evse_agent": version("evse-agent"),
        # The children inherit it: every start then compiles what has no .pyc yet.
        "dont_write_bytecode": bool(os.environ.get("PYTHONDONTWRITEBYTECODE")),
    }
