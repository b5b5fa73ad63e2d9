"""Start-up time, memory and idle CPU of `evse-agent run` (mock hardware, 2 EVSEs),
beside a bare station written directly on the `ocpp` package.

Start-up: from just before Popen to the moment the CSMS sends BootNotification
Accepted, and to the first StatusNotification; repeated with a fresh data dir each
time, stations alternating so machine drift touches both alike. Idle: both stations
started afresh and left connected for --seconds; RSS (VmRSS) sampled every second,
the peak (VmHWM) read at the end, CPU time (utime + stime) over the window.

    .venv/bin/python bench/footprint.py [--seconds 30] [--starts 5] [--json]

Targets: idle RSS <= 60 MiB, start to Accepted <= 1.5 s (evse-agent).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from benchlib import (
    RawCsms,
    StationProcess,
    cpu_seconds,
    environment,
    median,
    proc_status,
    start_station,
    wait_ready,
)

TARGET_RSS_MIB = 60.0
TARGET_START_S = 1.5
EVSES = 2
KINDS = ("evse-agent", "bare")
SETTLE_S = 1.0  # after ready, before the idle window: the start-up tail is not idling


async def one_start(csms: RawCsms, kind: str, workdir: Path, n: int) -> dict[str, float]:
    station_id = f"FP-{kind.upper()}-{n}"
    link = csms.expect(station_id, EVSES)
    station = start_station(kind, workdir, station_id, csms.url, EVSES)
    try:
        await wait_ready(csms, station, link)
        cpu = cpu_seconds(station.pid)  # CPU the start-up cost, up to ready
    finally:
        code, stop_s = await station.stop()
    assert link.connected and link.boot_received and link.accepted_sent and link.first_status
    return {
        "connected_s": link.connected - station.started,
        "boot_received_s": link.boot_received - station.started,
        "accepted_s": link.accepted_sent - station.started,
        "first_status_s": link.first_status - station.started,
        "startup_cpu_s": cpu,
        "sigterm_to_exit_s": stop_s,
        "exit_code": code if code is not None else -9,
    }


async def idle(csms: RawCsms, tmp: Path, seconds: float) -> dict[str, dict[str, Any]]:
    """Both stations connected and idle over the same window."""
    stations: list[StationProcess] = []
    try:
        links = {}
        for kind in KINDS:
            station_id = f"FP-{kind.upper()}-IDLE"
            links[kind] = csms.expect(station_id, EVSES)
            stations.append(start_station(kind, tmp / f"{kind}-idle", station_id, csms.url, EVSES))
        for station in stations:
            await wait_ready(csms, station, links[station.kind])
        await asyncio.sleep(SETTLE_S)
        start = time.perf_counter()
        cpu0 = {s.kind: cpu_seconds(s.pid) for s in stations}
        rss: dict[str, list[int]] = {s.kind: [] for s in stations}
        while (elapsed := time.perf_counter() - start) < seconds:
            for s in stations:
                if s.proc.poll() is not None:
                    raise RuntimeError(f"{s.kind} exited while idle:\n{s.output_tail()}")
                rss[s.kind].append(proc_status(s.pid)["VmRSS"])
            await asyncio.sleep(min(1.0, max(0.0, seconds - elapsed)))
        elapsed = time.perf_counter() - start
        out: dict[str, dict[str, Any]] = {}
        for s in stations:
            status = proc_status(s.pid)
            cpu = cpu_seconds(s.pid) - cpu0[s.kind]
            out[s.kind] = {
                "window_s": elapsed,
                "rss_end_mib": status["VmRSS"] / 1024,
                "rss_max_sampled_mib": max(rss[s.kind]) / 1024,
                "hwm_mib": status["VmHWM"] / 1024,
                "rss_anon_mib": status.get("RssAnon", 0) / 1024,
                "rss_file_mib": status.get("RssFile", 0) / 1024,
                "cpu_s": cpu,
                "cpu_pct_of_core": 100 * cpu / elapsed,
                "cpu_total_s": cpu_seconds(s.pid),
            }
        return out
    finally:
        for s in stations:
            await s.stop()


async def measure(seconds: float, starts: int, tmp: Path) -> dict[str, Any]:
    csms = RawCsms()
    await csms.start()
    try:
        runs: dict[str, list[dict[str, float]]] = {kind: [] for kind in KINDS}
        for n in range(starts):
            for kind in KINDS:
                runs[kind].append(await one_start(csms, kind, tmp / f"{kind}-start-{n}", n))
        idle_figures = await idle(csms, tmp, seconds)
    finally:
        await csms.stop()
    stations: dict[str, Any] = {}
    for kind in KINDS:
        series = runs[kind]
        start_figures: dict[str, Any] = {}
        for key in (
            "connected_s",
            "boot_received_s",
            "accepted_s",
            "first_status_s",
            "startup_cpu_s",
            "sigterm_to_exit_s",
        ):
            values = [r[key] for r in series]
            start_figures[key] = {"median": median(values), "max": max(values), "all": values}
        start_figures["exit_codes"] = [int(r["exit_code"]) for r in series]
        stations[kind] = {"start": start_figures, "idle": idle_figures[kind]}
    agent = stations["evse-agent"]
    return {
        "benchmark": "footprint",
        "evses": EVSES,
        "starts": starts,
        "idle_seconds": seconds,
        "environment": environment(),
        "stations": stations,
        "targets": {
            "idle_rss_mib": TARGET_RSS_MIB,
            "start_to_accepted_s": TARGET_START_S,
        },
        "meets_targets": {
            "idle_rss": agent["idle"]["rss_end_mib"] <= TARGET_RSS_MIB,
            "start_to_accepted": agent["start"]["accepted_s"]["max"] <= TARGET_START_S,
        },
    }


def print_table(r: dict[str, Any]) -> None:
    env = r["environment"]
    print(
        f"Footprint: mock station with {r['evses']} EVSEs; python {env['python']}, "
        f"{env['cpus']} CPUs, ocpp {env['ocpp']}, websockets {env['websockets']}"
    )
    print()
    print(f"Start-up, Popen to ..., {r['starts']} starts each (median / max, seconds)")
    rows = (
        ("websocket connected", "connected_s"),
        ("BootNotification read", "boot_received_s"),
        ("Accepted sent", "accepted_s"),
        ("first StatusNotification", "first_status_s"),
        ("CPU used until ready", "startup_cpu_s"),
        ("SIGTERM to exit", "sigterm_to_exit_s"),
    )
    kinds = list(r["stations"])
    print(f"{'':<26}" + "".join(f"{k:>20}" for k in kinds))
    for label, key in rows:
        cells = "".join(
            f"{s['start'][key]['median']:>10.3f} /{s['start'][key]['max']:>7.3f} "
            for s in r["stations"].values()
        )
        print(f"{label:<26}{cells}")
    print()
    window = r["stations"]["evse-agent"]["idle"]["window_s"]
    print(f"Idle, both connected, over {window:.1f} s")
    idle_rows = (
        ("RSS at end (MiB)", "rss_end_mib", ".1f"),
        ("RSS max sampled (MiB)", "rss_max_sampled_mib", ".1f"),
        ("VmHWM peak (MiB)", "hwm_mib", ".1f"),
        ("  of which anon (MiB)", "rss_anon_mib", ".1f"),
        ("  of which file (MiB)", "rss_file_mib", ".1f"),
        ("CPU time (s)", "cpu_s", ".3f"),
        ("CPU (% of one core)", "cpu_pct_of_core", ".3f"),
    )
    print(f"{'':<26}" + "".join(f"{k:>20}" for k in kinds))
    for label, key, fmt in idle_rows:
        cells = "".join(f"{s['idle'][key]:>20{fmt}}" for s in r["stations"].values())
        print(f"{label:<26}{cells}")
    print()
    agent = r["stations"]["evse-agent"]
    ok = r["meets_targets"]
    print(
        f"target idle RSS <= {r['targets']['idle_rss_mib']:g} MiB: "
        f"evse-agent {agent['idle']['rss_end_mib']:.1f} MiB "
        f"-> {'meets' if ok['idle_rss'] else 'MISSES'}"
    )
    print(
        f"target start to Accepted <= {r['targets']['start_to_accepted_s']:g} s: "
        f"evse-agent median {agent['start']['accepted_s']['median']:.3f} s, "
        f"max {agent['start']['accepted_s']['max']:.3f} s "
        f"-> {'meets' if ok['start_to_accepted'] else 'MISSES'}"
    )
    if r["environment"]["dont_write_bytecode"]:
        print(
            "note: PYTHONDONTWRITEBYTECODE is set, so modules without a cached .pyc (here"
            " evse-agent's own, installed editable) are compiled at every start"
        )
    codes = {k: s["start"]["exit_codes"] for k, s in r["stations"].items()}
    if any(c != 0 for cs in codes.values() for c in cs):
        print(f"note: exit codes after SIGTERM: {codes}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="idle window")
    parser.add_argument("--starts", type=int, default=5, help="start-up repetitions")
    parser.add_argument("--json", action="store_true", help="print figures as JSON")
    args = parser.parse_args()
    if args.seconds <= 0 or args.starts < 1:
        parser.error("--seconds must be > 0 and --starts >= 1")
    with tempfile.TemporaryDirectory(prefix="evse-bench-") as tmp:
        result = asyncio.run(measure(args.seconds, args.starts, Path(tmp)))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_table(result)
    return 0  # a benchmark reports; it does not fail a build


if __name__ == "__main__":
    raise SystemExit(main())
