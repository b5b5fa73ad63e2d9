"""GetVariables round trip, CSMS -> station -> CSMS, on loopback: `evse-agent run` (mock
hardware) against a bare station written directly on the `ocpp` package.

A minimal raw websockets CSMS in this process sends one CALL at a time (one variable:
OCPPCommCtrlr.HeartbeatInterval) and times it from just before the send to the moment
the CALLRESULT frame is read. The stations run side by side as subprocesses and the
calls rotate between them, so drift in machine load touches every series alike.

Two baselines: "bare" is the stock ocpp ChargePoint, which validates schemas in a
thread pool (two thread hops per CALL); "bare-sync" validates in the event loop as
evse-agent does. The target is against "bare"; the second ratio is the stricter view.

    .venv/bin/python bench/latency.py [--calls N] [--warmup N] [--json]

Target: evse-agent p99 <= 1.5 x bare p99.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchlib import RawCsms, StationProcess, environment, start_station, summary, wait_ready

TARGET_RATIO = 1.5
EVSES = 2
REQUEST = {
    "getVariableData": [
        {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}
    ]
}
KINDS = ("evse-agent", "bare", "bare-sync")


def check_answer(kind: str, message: list[Any]) -> None:
    """A CALLERROR or a non-Accepted result would time the wrong code path."""
    if message[0] != 3:
        raise RuntimeError(f"{kind} answered GetVariables with {message}")
    status = message[2]["getVariableResult"][0]["attributeStatus"]
    if status != "Accepted":
        raise RuntimeError(f"{kind}: GetVariables attributeStatus {status}")


async def measure(calls: int, warmup: int, tmp: Path) -> dict[str, Any]:
    csms = RawCsms()
    await csms.start()
    stations: list[StationProcess] = []
    try:
        links = {}
        for kind in KINDS:
            station_id = f"LAT-{kind.upper()}"
            links[kind] = csms.expect(station_id, EVSES)
            stations.append(start_station(kind, tmp / kind, station_id, csms.url, EVSES))
        for station in stations:
            await wait_ready(csms, station, links[station.kind])
        # Let the start-up tail (first meter reads, status messages) pass before timing.
        await asyncio.sleep(1.0)
        samples: dict[str, list[float]] = {kind: [] for kind in KINDS}
        # The measuring side's own garbage collections would land in some samples'
        # tails; this process allocates little, so it can go without for the loop.
        gc.collect()
        gc.disable()
        try:
            for i in range(warmup + calls):
                for kind in KINDS:
                    elapsed, answer = await links[kind].call("GetVariables", REQUEST)
                    check_answer(kind, answer)
                    if i >= warmup:
                        samples[kind].append(elapsed)
        finally:
            gc.enable()
    finally:
        exits = {s.kind: await s.stop() for s in stations}
        await csms.stop()
    for kind, (code, _) in exits.items():
        if code != 0:
            station = next(s for s in stations if s.kind == kind)
            print(f"warning: {kind} exited with {code}\n{station.output_tail()}", file=sys.stderr)
    figures = {kind: summary(samples[kind]) for kind in KINDS}
    ratio = figures["evse-agent"]["p99_ms"] / figures["bare"]["p99_ms"]
    strict = figures["evse-agent"]["p99_ms"] / figures["bare-sync"]["p99_ms"]
    return {
        "benchmark": "latency",
        "action": "GetVariables",
        "calls": calls,
        "warmup": warmup,
        "environment": environment(),
        "stations": figures,
        "p99_ratio": ratio,
        "p99_ratio_vs_bare_sync": strict,
        "target_p99_ratio": TARGET_RATIO,
        "meets_target": ratio <= TARGET_RATIO,
    }


def print_table(result: dict[str, Any]) -> None:
    env = result["environment"]
    print(
        f"GetVariables round trip on loopback: {result['calls']} calls per station, "
        f"{result['warmup']} warm-up excluded, one outstanding at a time"
    )
    print(
        f"python {env['python']}, {env['cpus']} CPUs, ocpp {env['ocpp']}, "
        f"websockets {env['websockets']}"
    )
    print()
    print(f"{'station':<12}{'p50 ms':>9}{'p99 ms':>9}{'mean ms':>9}{'max ms':>9}{'min ms':>9}")
    for kind, f in result["stations"].items():
        print(
            f"{kind:<12}{f['p50_ms']:>9.3f}{f['p99_ms']:>9.3f}{f['mean_ms']:>9.3f}"
            f"{f['max_ms']:>9.3f}{f['min_ms']:>9.3f}"
        )
    print()
    verdict = "meets" if result["meets_target"] else "MISSES"
    print(
        f"p99 evse-agent / bare = {result['p99_ratio']:.2f}x "
        f"(target <= {result['target_p99_ratio']}x): {verdict} the target"
    )
    print(
        f"p99 evse-agent / bare-sync = {result['p99_ratio_vs_bare_sync']:.2f}x "
        "(informative: baseline without ocpp's thread-pool validation)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000, help="timed calls per station")
    parser.add_argument("--warmup", type=int, default=50, help="untimed calls first")
    parser.add_argument("--json", action="store_true", help="print figures as JSON")
    args = parser.parse_args()
    if args.calls < 1 or args.warmup < 0:
        parser.error("--calls must be >= 1 and --warmup >= 0")
    with tempfile.TemporaryDirectory(prefix="evse-bench-") as tmp:
        result = asyncio.run(measure(args.calls, args.warmup, Path(tmp)))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_table(result)
    return 0  # a benchmark reports; it does not fail a build


if __name__ == "__main__":
    raise SystemExit(main())
