"""Card latency: from a card frame written on the serial line to the Authorize frame
read at the CSMS websocket, through `evse-agent run` with a real RDM6300 reader driver
on a pty (the rest of the station simulated), against a baseline in the same run: the
same station path fed by the mock reader through the mock control API (POST /api/rfid).

Every repetition uses a new card number (a card the station has not seen: no cache hit,
no debounce) and the CSMS answers Invalid, so no EVSE is taken and each tap is a fresh
Authorize. Taps alternate between the two stations, one outstanding at a time.

    .venv/bin/python bench/card_latency.py [--taps N] [--warmup N] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
import tty
from functools import reduce
from operator import xor
from pathlib import Path
from typing import Any

import aiohttp
from benchlib import (
    Link,
    RawCsms,
    StationProcess,
    environment,
    free_port,
    summary,
    wait_ready,
)

KINDS = ("serial", "mock-api")
LABELS = {
    "serial": "rdm6300 frame on a pty -> Authorize",
    "mock-api": "POST /api/rfid (mock reader) -> Authorize",
}


class CardCsms(RawCsms):
    """RawCsms that also answers Authorize (Invalid) and timestamps it on arrival."""

    def __init__(self) -> None:
        super().__init__()
        self.waiting: dict[str, asyncio.Future[float]] = {}

    async def _answer(self, link: Link, message: list[Any], read: float) -> None:
        _, message_id, action, payload = message
        if action != "Authorize":
            await super()._answer(link, message, read)
            return
        future = self.waiting.pop(payload["idToken"]["idToken"], None)
        if future is not None and not future.done():
            future.set_result(read)
        assert link.ws is not None
        answer = [3, message_id, {"idTokenInfo": {"status": "Invalid"}}]
        await link.ws.send(json.dumps(answer, separators=(",", ":")))

    def expect_token(self, id_token: str) -> asyncio.Future[float]:
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.waiting[id_token] = future
        return future


def rdm6300_frame(number: bytes) -> bytes:
    return b"\x02" + number.hex().upper().encode() + b"%02X" % reduce(xor, number) + b"\x03"


def start_agent(kind: str, workdir: Path, csms_url: str, reader_port: str) -> tuple[
        StationProcess, int]:
    workdir.mkdir(parents=True, exist_ok=True)
    sim_port = free_port()
    hal = 'backend = "mock"'
    if kind == "serial":
        hal = f"""backend = "real"
[hal.rfid]
driver = "rdm6300"
port = "{reader_port}"
[hal.display]
driver = "mock"
[[hal.meter]]
driver = "mock"
[[hal.contactor]]
driver = "mock"
[[hal.ev_bridge]]
driver = "mock"
"""
    config = workdir / "station.toml"
    config.write_text(f"""[station]
id = "CARD-{kind.upper()}"
evse_count = 1
data_dir = "{workdir / 'data'}"

[ocpp]
csms_url = "{csms_url}"

[sim]
listen = "127.0.0.1:{sim_port}"

[hal]
{hal}""", encoding="utf-8")
    log = workdir / "station.log"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with open(log, "wb") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "evse_agent", "run", "--config", str(config)],
            stdout=out, stderr=subprocess.STDOUT, env=env, cwd=workdir,
        )
    return StationProcess(kind, f"CARD-{kind.upper()}", workdir, proc, started, log), sim_port


async def measure(taps: int, warmup: int, tmp: Path) -> dict[str, Any]:
    csms = CardCsms()
    await csms.start()
    master, slave = os.openpty()
    tty.setraw(master)
    tty.setraw(slave)
    stations: dict[str, StationProcess] = {}
    sim_ports: dict[str, int] = {}
    http = aiohttp.ClientSession()
    try:
        links = {}
        for kind in KINDS:
            links[kind] = csms.expect(f"CARD-{kind.upper()}", 1)
            stations[kind], sim_ports[kind] = start_agent(
                kind, tmp / kind, csms.url, os.ttyname(slave)
            )
        for kind, station in stations.items():
            await wait_ready(csms, station, links[kind])
        await asyncio.sleep(1.5)  # the mock control API comes up; start-up tail passes
        samples: dict[str, list[float]] = {kind: [] for kind in KINDS}
        gc.collect()
        gc.disable()
        try:
            for i in range(warmup + taps):
                for kind in KINDS:
                    number = bytes([0x0A if kind == "serial" else 0x0B]) + i.to_bytes(4, "big")
                    token = number.hex().upper()
                    arrived = csms.expect_token(token)
                    if kind == "serial":
                        frame = rdm6300_frame(number)
                        start = time.perf_counter()
                        os.write(master, frame)
                    else:
                        url = f"http://127.0.0.1:{sim_ports[kind]}/api/rfid"
                        start = time.perf_counter()
                        posted = asyncio.ensure_future(
                            http.post(url, json={"id_token": token, "type": "Local"})
                        )
                    read = await asyncio.wait_for(arrived, 10)
                    if kind != "serial":
                        (await posted).release()
                    if i >= warmup:
                        samples[kind].append(read - start)
                    await asyncio.sleep(0.02)  # the Invalid answer is handled: station idle
        finally:
            gc.enable()
    finally:
        await http.close()
        exits = {kind: await s.stop() for kind, s in stations.items()}
        await csms.stop()
        os.close(master)
        os.close(slave)
    for kind, (code, _) in exits.items():
        if code != 0:
            print(f"warning: {kind} exited with {code}\n{stations[kind].output_tail()}",
                  file=sys.stderr)
    return {
        "benchmark": "card_latency",
        "taps": taps,
        "warmup": warmup,
        "environment": environment(),
        "paths": {kind: summary(samples[kind]) for kind in KINDS},
    }


def print_table(result: dict[str, Any]) -> None:
    env = result["environment"]
    print(f"Card to Authorize on loopback: {result['taps']} taps per path, "
          f"{result['warmup']} warm-up excluded, one outstanding at a time")
    print(f"python {env['python']}, {env['cpus']} CPUs")
    print()
    print(f"{'path':<44}{'p50 ms':>9}{'p99 ms':>9}{'mean ms':>9}{'max ms':>9}{'min ms':>9}")
    for kind, f in result["paths"].items():
        print(f"{LABELS[kind]:<44}{f['p50_ms']:>9.3f}{f['p99_ms']:>9.3f}{f['mean_ms']:>9.3f}"
              f"{f['max_ms']:>9.3f}{f['min_ms']:>9.3f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--taps", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="evse-card-bench-") as tmp:
        result = asyncio.run(measure(args.taps, args.warmup, Path(tmp)))
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        print_table(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
