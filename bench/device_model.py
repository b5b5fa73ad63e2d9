"""Device-model figures, in process (no network, no station subprocess):

1. FullInventory: the time to build every NotifyReport page of a FullInventory report
   (reports.base_report) and to encode them as JSON, the number of NotifyReport
   messages and reportData entries, and the largest page against BytesPerMessage.
2. GetVariables: items per second through provisioning.get_variables, in requests of
   ItemsPerMessage[GetVariables] items cycling over every readable variable, against a
   baseline in the same run: a plain dict lookup of the same keys formatting the same
   values. The ratio is what the device model's rules cost per item (case-insensitive
   names, attribute types, WriteOnly, limits, statuses, result dicts).

    .venv/bin/python bench/device_model.py [--evses N] [--repeat N] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from datetime import UTC, datetime
from typing import Any

from evse_agent.device_model.model import DeviceModel, format_value
from evse_agent.device_model.physical import add_physical_components
from evse_agent.ocpp.provisioning import get_variables, request_key
from evse_agent.ocpp.reports import base_report


def build(evses: int) -> DeviceModel:
    dm = DeviceModel()
    dm.load_standard()
    add_physical_components(dm, evses)
    return dm


def timed(fn: Any, repeat: int) -> tuple[float, float, Any]:
    """(median s, min s, last result) of `repeat` calls."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times), result


def full_inventory(dm: DeviceModel, repeat: int) -> dict[str, Any]:
    now = datetime.now(UTC)
    build_s, build_min, (_, pages) = timed(lambda: base_report(dm, 1, "FullInventory", now),
                                           repeat)
    encode_s, _, frames = timed(
        lambda: [json.dumps([2, "0" * 36, "NotifyReport", p], separators=(",", ":"))
                 for p in pages], repeat)
    return {
        "variables": len(list(dm.variables())),
        "components": len(dm.components()),
        "messages": len(pages),
        "entries": sum(len(p["reportData"]) for p in pages),
        "bytes": sum(len(f) for f in frames),
        "largest_frame": max(len(f) for f in frames),
        "bytes_per_message": dm.get("DeviceDataCtrlr", "BytesPerMessage", "GetReport"),
        "build_ms": build_s * 1000,
        "build_min_ms": build_min * 1000,
        "encode_ms": encode_s * 1000,
    }


def requests(dm: DeviceModel) -> list[list[dict[str, Any]]]:
    """Every readable variable once, as GetVariables requests of ItemsPerMessage items."""
    items = []
    for var in dm.variables():
        if not var.has_actual or var.mutability == "WriteOnly":
            continue
        items.append({"component": var.key.component_ocpp(), "variable": var.key.variable_ocpp()})
    size = int(dm.get("DeviceDataCtrlr", "ItemsPerMessage", "GetVariables"))
    return [items[i:i + size] for i in range(0, len(items), size)]


def get_rate(dm: DeviceModel, seconds: float) -> dict[str, Any]:
    batches = requests(dm)
    # The baseline: the same keys in a plain dict, the same values formatted, a
    # minimal result dict per item. No rules, no statuses.
    plain = {request_key(i): dm.value(request_key(i)) for b in batches for i in b}

    def baseline(batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{"attributeStatus": "Accepted", "component": i["component"],
                 "variable": i["variable"], "attributeValue": format_value(plain[request_key(i)])}
                for i in batch]

    rates = {}
    for name, fn in (("device_model", lambda b: get_variables(dm, b)), ("dict_baseline", baseline)):
        items, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            for batch in batches:
                assert len(fn(batch)) == len(batch)
                items += len(batch)
        rates[name] = items / (time.perf_counter() - start)
    return {"items_per_request": len(batches[0]), "distinct_items": sum(map(len, batches)),
            "items_per_s": rates["device_model"], "baseline_items_per_s": rates["dict_baseline"],
            "ratio": rates["dict_baseline"] / rates["device_model"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--evses", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=2.0, help="per GetVariables series")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    start = time.perf_counter()
    dm = build(args.evses)
    build_ms = (time.perf_counter() - start) * 1000
    report = full_inventory(dm, args.repeat)
    rate = get_rate(dm, args.seconds)
    if args.json:
        print(json.dumps({"model_build_ms": build_ms, "full_inventory": report,
                          "get_variables": rate}, indent=2))
        return
    print(f"device model: {report['variables']} variables in {report['components']} "
          f"components ({args.evses} EVSEs), built in {build_ms:.1f} ms (first load, files)")
    print(f"FullInventory: {report['messages']} NotifyReport messages, {report['entries']} "
          f"entries, {report['bytes']} bytes; largest frame {report['largest_frame']} B "
          f"(BytesPerMessage {report['bytes_per_message']})")
    print(f"  build {report['build_ms']:.2f} ms median (min {report['build_min_ms']:.2f}), "
          f"JSON encode {report['encode_ms']:.2f} ms, over {args.repeat} runs")
    print(f"GetVariables: {rate['items_per_s']:,.0f} items/s through provisioning.get_variables "
          f"({rate['items_per_request']} items per request, {rate['distinct_items']} variables)")
    print(f"  baseline dict lookup: {rate['baseline_items_per_s']:,.0f} items/s; "
          f"device model costs {rate['ratio']:.1f}x the baseline per item")


if __name__ == "__main__":
    main()
