"""The baseline for the benchmarks: the least a station can be on the stock `ocpp`
package (ocpp.v201.ChargePoint over websockets) - BootNotification, one
StatusNotification per EVSE, and a GetVariables handler answering one Accepted result.

It has no device model, storage, HAL or core, so the gap between it and evse-agent is
what evse-agent's own layers cost. Like evse-agent it validates every frame against
the official schemas (the ChargePoint default) and negotiates permessage-deflate.

    python bench/bare_station.py --csms ws://127.0.0.1:9000/ocpp --id BARE-1
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from datetime import UTC, datetime
from typing import Any

import ocpp.messages
import websockets
from ocpp.routing import on
from ocpp.v201 import ChargePoint, call, call_result
from ocpp.v201.enums import Action


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class BareStation(ChargePoint):  # type: ignore[misc]  # ocpp ships no type hints
    @on(Action.get_variables)  # type: ignore[misc]
    async def on_get_variables(
        self, get_variable_data: list[dict[str, Any]], **_: Any
    ) -> call_result.GetVariables:
        # One result per request item, echoing component and variable as the spec asks;
        # the value is fixed: the baseline has no device model to look it up in.
        return call_result.GetVariables(
            get_variable_result=[
                {
                    "attribute_status": "Accepted",
                    "component": item["component"],
                    "variable": item["variable"],
                    "attribute_value": "300",
                }
                for item in get_variable_data
            ]
        )


async def run(csms_url: str, station_id: str, evse_count: int) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with websockets.connect(
        f"{csms_url.rstrip('/')}/{station_id}",
        subprotocols=["ocpp2.0.1"],  # type: ignore[list-item]
        # evse-agent's factory WebSocketPingInterval is 0 (no pings): match it so the
        # idle CPU figures compare like with like.
        ping_interval=None,
    ) as ws:
        station = BareStation(station_id, ws)
        receiver = asyncio.ensure_future(station.start())
        boot = await station.call(
            call.BootNotification(
                charging_station={"model": "bare-ocpp", "vendor_name": "bench"},
                reason="PowerUp",
            )
        )
        if boot.status != "Accepted":
            print(f"bare station: BootNotification {boot.status}", flush=True)
            return 1
        for evse_id in range(1, evse_count + 1):
            await station.call(
                call.StatusNotification(
                    timestamp=now_rfc3339(),
                    connector_status="Available",
                    evse_id=evse_id,
                    connector_id=1,
                )
            )
        closed = asyncio.ensure_future(ws.wait_closed())
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait([receiver, closed, stopping], return_when=asyncio.FIRST_COMPLETED)
        for task in (receiver, closed, stopping):
            task.cancel()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csms", required=True, help="CSMS URL without the station id")
    parser.add_argument("--id", default="BARE-1", help="station id (last path segment)")
    parser.add_argument("--evses", type=int, default=2, help="StatusNotifications to send")
    parser.add_argument(
        "--sync-validation",
        action="store_true",
        help="validate schemas in the event loop instead of the ocpp default, a thread pool",
    )
    args = parser.parse_args()
    if args.sync_validation:
        # ocpp validates in run_in_executor by default: two thread hops per CALL. This
        # variant validates inline, as evse-agent does, for a baseline without them.
        ocpp.messages.ASYNC_VALIDATION = False
    return asyncio.run(run(args.csms, args.id, args.evses))


if __name__ == "__main__":
    raise SystemExit(main())
