"""`evse-agent hal check --config FILE`: open each configured device once, read it, and
print one line per device, for the person wiring a board.

    hal.rfid pn532 /dev/ttyAMA0: OK PN532 firmware 1.6
    hal.meter[0] evse 1 sdm630 /dev/ttyUSB0 unit 1: no answer at 9600 baud
    hal.contactor[0] evse 1: mock

Exit 0 only when every real device answered; 1 when one did not; 2 (one line on
stderr) for a configuration error. Devices are probed one after the other: meters
often share one RS-485 bus, where two questions at once would collide.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from evse_hal.clock import SystemClock

from .config import ConfigError, load
from .hardware import Slot, configure

PROBE_TIMEOUT_S = 15.0


async def probe(slot: Slot, timeout: float = PROBE_TIMEOUT_S) -> tuple[bool, str]:
    """(ok, what to print after the label) for one device."""
    if slot.device is None:
        return True, "mock"
    try:
        seen = await asyncio.wait_for(slot.device.probe(), timeout)  # type: ignore[attr-defined]
    except TimeoutError:  # first: since Python 3.11 it is an OSError too
        return False, f"no result within {timeout:g} s"
    except Exception as err:  # DeviceError, a stray OSError or a library's own class
        logging.getLogger(__name__).debug("%s: probe failed", slot.label, exc_info=True)
        return False, slot.explain(err)
    return True, slot.explain(f"OK {seen}")


async def check(slots: list[Slot], out: list[str], timeout: float = PROBE_TIMEOUT_S) -> bool:
    width = max((len(s.label) for s in slots), default=0)
    ok = True
    for slot in slots:
        good, text = await probe(slot, timeout)
        ok = ok and good
        line = f"{slot.label + ':':<{width + 1}} {text}"
        out.append(line)
        print(line, flush=True)
    return ok


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="evse-agent hal", description="check the devices a station config names"
    )
    sub = parser.add_subparsers(dest="action", required=True)
    chk = sub.add_parser("check", help="open, read once and close every configured device")
    chk.add_argument("--config", required=True, help="station TOML file")
    chk.add_argument("--timeout", type=float, default=PROBE_TIMEOUT_S,
                     help="seconds per device (default %(default)s)")
    args = parser.parse_args(argv)
    try:
        cfg = load(Path(args.config))
        slots = configure(cfg, SystemClock())
    except ConfigError as err:
        print(f"evse-agent: {err}", file=sys.stderr)
        return 2
    if cfg.hal_backend != "real":
        print(f'{cfg.path}: hal.backend is "{cfg.hal_backend}": every device is simulated')
    # One line per device is the whole answer: the backends' own log lines (retries,
    # faults) would repeat it, so they are silenced for the probes.
    logging.disable(logging.CRITICAL)
    try:
        return 0 if asyncio.run(check(slots, [], args.timeout)) else 1
    finally:
        logging.disable(logging.NOTSET)

