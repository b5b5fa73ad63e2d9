"""`evse-agent demo`: the development CSMS and a mock station in one process, playing
a whole charging session on OCPP 2.0.1 and printing it as a timeline."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .agent import Agent
from .config import parse
from .csms import DevCsms

STATION = "DEMO-STATION"
CARD = "04A2B3C4D5E6F7"


class Timeline:
    def __init__(self) -> None:
        self.start = time.monotonic()
        self._calls: dict[str, str] = {}

    def line(self, who: str, text: str) -> None:
        print(f"{time.monotonic() - self.start:6.2f}s  {who:<8} {text}", flush=True)

    def frame(self, station_id: str, direction: str, raw: str) -> None:
        msg = json.loads(raw)
        sender, arrow = ("station", "->") if direction == "<-" else ("CSMS", "<-")
        if msg[0] == 2:
            self._calls[msg[1]] = msg[2]
            self.line(sender, f"{arrow} {msg[2]} {_brief(msg[2], msg[3])}")
        elif msg[0] == 3 and msg[2]:
            action = self._calls.pop(msg[1], "?")
            status = msg[2].get("status") or msg[2].get("idTokenInfo", {}).get("status")
            if status:
                self.line(sender, f"{arrow} {action}Response {status}")


def _brief(action: str, p: dict[str, Any]) -> str:
    if action == "TransactionEvent":
        info = p["transactionInfo"]
        parts = [p["eventType"], f"seq={p['seqNo']}", f"trigger={p['triggerReason']}"]
        if "chargingState" in info:
            parts.append(f"state={info['chargingState']}")
        if "stoppedReason" in info:
            parts.append(f"reason={info['stoppedReason']}")
        for mv in p.get("meterValue", []):
            for s in mv["sampledValue"]:
                if s.get("measurand", "Energy.Active.Import.Register").startswith("Energy"):
                    parts.append(f"energy={s['value']} Wh")
        return " ".join(parts)
    if action == "StatusNotification":
        return f"EVSE {p['evseId']} {p['connectorStatus']}"
    if action == "Authorize":
        return p["idToken"]["idToken"]
    if action == "BootNotification":
        return p["reason"]
    return ""


class _StationLog(logging.Handler):
    def __init__(self, timeline: Timeline) -> None:
        super().__init__(logging.INFO)
        self.timeline = timeline

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.name == "evse_agent" and ("contactor" in text or "connector" in text):
            self.timeline.line("hardware" if "contactor" in text else "station", text)


async def play(data_dir: Path) -> int:
    timeline = Timeline()
    csms = DevCsms()
    csms.on_frame.append(timeline.frame)
    port = await csms.start("127.0.0.1", 0)
    timeline.line("demo", f"development CSMS on ws://127.0.0.1:{port}")
    cfg = parse(
        {
            "station": {"id": STATION, "evse_count": 1, "data_dir": str(data_dir)},
            "ocpp": {"csms_url": f"ws://127.0.0.1:{port}/ocpp"},
            "sim": {"listen": "127.0.0.1:0"},
            "device_model": {
                "SampledDataCtrlr": {"TxUpdatedInterval": 2},
                "OCPPCommCtrlr": {"RetryBackOffWaitMinimum": 1, "RetryBackOffRandomRange": 0},
            },
        },
        data_dir / "demo.toml",
    )
    agent = Agent(cfg)
    logging.getLogger("evse_agent").addHandler(_StationLog(timeline))
    runner = asyncio.ensure_future(agent.run())
    mock = agent.hw.mock
    assert mock is not None
    try:
        await csms.wait_for(STATION, "StatusNotification", timeout=10)
        timeline.line("driver", f"taps card {CARD}")
        mock.tap(CARD)
        await csms.wait_for(STATION, "Authorize", timeout=10)
        await asyncio.sleep(0.3)
        timeline.line("driver", "plugs in the EV (16 A, 3 phases)")
        mock.plug(1, max_current_a=16)
        await csms.wait_for(STATION, "TransactionEvent", _state("Charging"), timeout=10)
        mark = len(csms.received)
        for _ in range(2):
            await csms.wait_for(STATION, "TransactionEvent", _trigger("MeterValuePeriodic"),
                                timeout=10, since=mark)
            mark = len(csms.received)
        timeline.line("driver", "unplugs the EV")
        mock.unplug(1)
        await csms.wait_for(STATION, "TransactionEvent", _event("Ended"), timeout=10)
        await asyncio.sleep(0.2)
        timeline.line("demo", "session complete")
        return 0
    except TimeoutError:
        timeline.line("demo", "FAILED: the expected message did not arrive")
        return 1
    finally:
        agent.stop()
        await runner
        await csms.stop()


def _state(state: str) -> Any:
    return lambda p: p["transactionInfo"].get("chargingState") == state


def _trigger(trigger: str) -> Any:
    return lambda p: p["triggerReason"] == trigger


def _event(event_type: str) -> Any:
    return lambda p: p["eventType"] == event_type


def main(argv: list[str] | None = None) -> int:
    if argv:
        print(f"evse-agent demo: takes no arguments (got {' '.join(argv)})", file=sys.stderr)
        return 2
    logging.getLogger("evse_agent").setLevel(logging.INFO)
    logging.getLogger().handlers.clear()  # the timeline replaces the log
    logging.getLogger().addHandler(logging.NullHandler())
    with tempfile.TemporaryDirectory(prefix="evse-agent-demo-") as tmp:
        return asyncio.run(play(Path(tmp)))
